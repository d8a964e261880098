"""The workflows: the pull-request report calls the report as its CLI defines it, the test workflow
runs .ci/run on every push and pull request, the sweep (dispatched by hand, one experiment per
parameter set, each pushed: docs/experiments.md#a-sweep-on-several-machines) checks its input and
calls DVC with flags it has; every workflow documents its secrets and passes zizmor's supply-chain
audit with each action pinned to a commit SHA that a comment names the release of."""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.review import report
from testkit.repos import BIN, ROOT

WORKFLOWS_DIR = ROOT / ".github/workflows"
WORKFLOW = WORKFLOWS_DIR / "pr-report.yml"
TESTS_WORKFLOW = WORKFLOWS_DIR / "tests.yml"
SWEEP = WORKFLOWS_DIR / "sweep.yml"
ZIZMOR = BIN / "zizmor"  # requirements-dev.txt pins it
# `uses: owner/name@<40-hex commit>  # vX.Y.Z`; a local action (./path) has nothing to pin.
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@(?P<sha>[0-9a-f]{40})$")
VERSION_COMMENT = re.compile(r"^\s+#\s+(?P<version>v\d+\.\d+\.\d+)\b")


def load(path: Path = WORKFLOW) -> dict:
    return yaml.safe_load(path.read_text())


def workflows() -> list[Path]:
    """Every workflow file, those added later included."""
    return sorted([*WORKFLOWS_DIR.glob("*.yml"), *WORKFLOWS_DIR.glob("*.yaml")])


def steps(workflow: Path = WORKFLOW, job: str | None = None) -> list[dict]:
    """The steps of `job`, or of the workflow's only job."""
    jobs = load(workflow)["jobs"]
    if job is None:
        (only,) = jobs.values()
        return only["steps"]
    return jobs[job]["steps"]


def step(uses: str = "", runs: str = "", workflow: Path = WORKFLOW, job: str | None = None) -> dict:
    found = [
        s
        for s in steps(workflow, job)
        if (uses and s.get("uses", "").startswith(uses)) or (runs and runs in s.get("run", ""))
    ]
    assert len(found) == 1, f"expected one step using {uses or runs!r}, found {len(found)}"
    return found[0]


def command_line(text: str, env: dict) -> list[str]:
    """The shell words of `text`, with ${{ ... }} expressions and $VARIABLES given sample values."""
    text = re.sub(r"\$\{\{[^}]*\}\}", "EXPRESSION", text)
    for name, value in env.items():
        value = re.sub(r"\$\{\{[^}]*\}\}", "0.005" if "DROP" in name else "main", str(value))
        text = text.replace(f'"${name}"', shlex.quote(value)).replace(f"${name}", value)
    return shlex.split(text)


def test_runs_on_pull_requests_with_rights_to_comment():
    workflow = load()
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key `on` as True
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write"}


def test_checks_out_all_history_and_caches_pip():
    assert step(uses="actions/checkout@")["with"]["fetch-depth"] == 0
    python = step(uses="actions/setup-python@")["with"]
    assert python["cache"] == "pip" and python["cache-dependency-path"] == "requirements.txt"
    assert str(python["python-version"]) == "3.11"
    assert "pip install --require-hashes -r requirements.txt" in step(runs="pip install").get("run")


def test_pulls_only_with_a_credential_then_reproduces_and_checks_status():
    pull = step(runs="dvc pull")
    assert "secrets.DVC_REMOTE_CONFIG" in pull["env"]["DVC_REMOTE_CONFIG"]
    assert "> .dvc/config.local" in pull["run"]  # credentials never land in the committed config
    commands = [[line.strip() for line in s.get("run", "").splitlines()] for s in steps()]

    def position(command: str) -> int:  # of the first step with a line starting with `command`
        return next(i for i, lines in enumerate(commands) if any(line.startswith(command) for line in lines))

    order = [
        position(command)
        for command in (
            "dvc pull",
            "python -m pipeline.review.uptodate",
            "dvc repro",
            "status=$(dvc status --json)",
            "python -m pipeline.review.report",
        )
    ]
    assert order == sorted(order) and len(set(order)) == len(order)
    assert '"$status" != "{}"' in step(runs="dvc status --json")["run"]


def test_report_step_uses_only_flags_the_cli_has():
    report_step = step(runs="python -m pipeline.review.report")
    (line,) = [ln for ln in report_step["run"].splitlines() if "python -m pipeline.review.report" in ln]
    words = command_line(line, report_step.get("env", {}))
    assert words[:3] == ["python", "-m", "pipeline.review.report"]
    help_text = subprocess.run(
        [sys.executable, "-m", "pipeline.review.report", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for flag in (word.split("=")[0] for word in words[3:] if word.startswith("--")):
        assert re.search(rf"(^|\s){re.escape(flag)}\b", help_text), f"{flag} is not an option of pipeline.review.report"
    args = report.parse_args(words[3:])
    assert args.base == "origin/main" and args.max_drop == 0.005  # base branch from the PR, margin from vars
    assert "github.base_ref" in report_step["env"]["BASE"]
    assert "vars.MAX_ACCURACY_DROP" in report_step["env"]["MAX_DROP"]
    assert report_step["continue-on-error"] is True  # the comment is still posted when the gate fails


def test_one_sticky_comment_found_by_the_reports_marker():
    comment = step(uses="actions/github-script@")
    script = comment["with"]["script"]
    assert f"'{report.MARKER}'" in script and f"'{report.FIGURES_MARKER}'" in script
    assert "updateComment" in script and "createComment" in script
    upload = step(uses="actions/upload-artifact@")
    out = shlex.split(step(runs="python -m pipeline.review.report")["run"])
    assert upload["with"]["path"].rstrip("/") == out[out.index("--out") + 1]
    assert "report/report.md" in script


def test_job_fails_at_the_end_when_a_recorded_check_failed():
    last = steps()[-1]
    for step_id in ("uptodate", "status", "report"):
        assert f"steps.{step_id}.outcome" in str(last["env"])
    assert "exit $failed" in last["run"]


def test_tests_workflow_runs_ci_run_on_every_push_and_pull_request():
    workflow = load(TESTS_WORKFLOW)
    assert {"push", "pull_request"} <= set(workflow[True])  # YAML 1.1 reads the key `on` as True
    assert not any(workflow[True][event] for event in ("push", "pull_request")), "filtered: not every push or PR"
    assert workflow["permissions"] == {"contents": "read"}
    (job,) = workflow["jobs"].values()
    assert 0 < job["timeout-minutes"] <= 120
    # .ci/run ends with the README's test command (tests/system/test_requirements.py checks it)
    assert [s["run"].strip() for s in job["steps"] if "run" in s] == [".ci/run"]
    assert os.access(ROOT / ".ci/run", os.X_OK) and os.access(ROOT / "install-for-tests", os.X_OK)
    # Debian 12's apt has chromium and chromium-driver for install-for-tests to install; Python 3.11 as here
    assert job["container"] == "python:3.11-bookworm"


def test_every_checkout_keeps_no_credential():
    """No workflow pushes with git: the token checkout would leave in .git/config is not needed."""
    for path in workflows():
        for name, job in load(path)["jobs"].items():
            for step in job.get("steps", []):
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step.get("with", {}).get("persist-credentials") is False, f"{path.name}: job {name}"


def uses_lines(path: Path) -> list[tuple[int, str, str]]:
    """(line number, action reference, rest of the line) of each `uses:` in a workflow's text."""
    found = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = re.match(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)(?P<rest>.*)$", line)
        if match:
            found.append((number, match["ref"].strip("\"'"), match["rest"]))
    return found


def uses_values(workflow: dict) -> list[str]:
    """Each `uses` of a parsed workflow: steps' actions and jobs' reusable workflows."""
    values = []
    for job in workflow["jobs"].values():
        values += [job["uses"]] if "uses" in job else []
        values += [step["uses"] for step in job.get("steps", []) if "uses" in step]
    return values


def test_every_action_is_pinned_to_a_commit_sha_with_its_release_in_a_comment():
    pins = set()  # (action, commit, release)
    for path in workflows():
        lines = uses_lines(path)  # from the text, for the comments; the parsed file says none was missed
        assert sorted(ref for _, ref, _ in lines) == sorted(uses_values(load(path))), path.name
        for number, ref, rest in lines:
            where = f"{path.name}:{number}: uses: {ref}"
            if ref.startswith("./"):
                continue
            assert PINNED.match(ref), f"{where} is not pinned to a 40-hex commit SHA"
            comment = VERSION_COMMENT.match(rest)
            assert comment, f"{where} has no `# vX.Y.Z` comment naming the release it pins"
            pins.add((*ref.split("@"), comment["version"]))
    # Across the workflows, one release of an action is one commit and one commit one release.
    assert len({(action, release) for action, _, release in pins}) == len(pins), sorted(pins)
    assert len({(action, commit) for action, commit, _ in pins}) == len(pins), sorted(pins)


def finding_line(finding: dict) -> str:
    """One finding as `severity audit: description (file:line)`."""
    location = next(where for where in finding["locations"] if where["symbolic"]["kind"] == "Primary")
    path = location["symbolic"]["key"].get("Local", {}).get("verbatim_path", "?")
    row = location["concrete"]["location"]["start_point"]["row"] + 1
    severity = finding["determinations"]["severity"]
    return f"{severity} {finding['ident']}: {finding['desc']} ({Path(path).name}:{row}) {finding['url']}"


def test_zizmor_finds_nothing_in_any_workflow():
    """zizmor at its default persona, offline, with no config file and no ignore comments honoured."""
    assert {"pr-report.yml", "tests.yml"} <= {path.name for path in workflows()}
    assert ZIZMOR.exists(), f"{ZIZMOR} missing: install requirements-dev.txt"
    command = [str(ZIZMOR), "--offline", "--no-config", "--no-ignores", "--format", "json", *map(str, workflows())]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip(), f"zizmor exited {result.returncode} with no report:\n{result.stderr}"
    findings = json.loads(result.stdout)
    listing = "\n".join(map(finding_line, findings))
    if findings or result.returncode != 0:
        pytest.fail(f"zizmor (exit {result.returncode}) on {len(workflows())} workflows:\n{listing}", pytrace=False)


# The sweep workflow, .github/workflows/sweep.yml: dispatched by hand with a list of parameter
# sets, a first job checks them and makes them the matrix, one job per set runs and pushes it.

SWEEP_SAMPLE = '["train.learning_rate=0.002", "train.learning_rate=0.004 train.epochs=20"]'
GITHUB_TOKEN_SAMPLE = "ghs_sample-token-0123456789"


def header(workflow: Path) -> str:
    """The comment block at the top of a workflow: its documentation."""
    lines = workflow.read_text().splitlines()
    return "\n".join(line for line in lines[: next(i for i, ln in enumerate(lines) if not ln.startswith("#"))])


def dvc_parser(path: list[str]) -> argparse.ArgumentParser:
    """DVC's own argument parser for `dvc <path...>`, e.g. ["exp", "push"]."""
    from dvc.cli.parser import get_main_parser

    parser = get_main_parser()
    for word in path:
        (subcommands,) = [a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = subcommands[word]
    return parser


def dvc_command(line: str) -> tuple[list[str], list[str]] | None:
    """A shell line's dvc call as (subcommand path, flags), or None: `VAR=x dvc exp push origin "$N" || ...`."""
    if line.lstrip().startswith("#") or not re.search(r"(^|\s)dvc\s", line):
        return None
    words = shlex.split(line, comments=True)
    start = next((i for i, w in enumerate(words) if w == "dvc"), None)
    if start is None or not all(re.match(r"\w+=", w) for w in words[:start]):
        return None  # `dvc` inside a quoted string: an echo, not a call
    words = words[start + 1 :]
    words = words[: next((i for i, w in enumerate(words) if w in ("||", "&&", "|", ";", ">", ">>")), len(words))]
    path = []
    for word in words:
        parser = dvc_parser(path)
        subcommands = [a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subcommands or word not in subcommands[0]:
            break
        path.append(word)
    # A flag is a word starting with -, or one glued in a bash expansion: "${pairs[@]/#/--set-param=}"
    flags = [m.split("=")[0] for w in words for m in re.findall(r"(?:^|(?<=/))--?[A-Za-z][\w-]*=?", w)]
    return path, flags


def run_script(text: str, env: dict[str, str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """A step's `run:` as GitHub runs it (bash -eo pipefail), with a `dvc` on PATH that only
    records its arguments and, for `dvc exp push`, the git credential DVC's git library would get."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "dvc-calls.jsonl"
    fake = bin_dir / "dvc"
    fake.write_text(f"""#!{sys.executable}
import json, os, sys
call = {{"argv": sys.argv[1:]}}
if sys.argv[1:3] == ["exp", "push"]:
    from scmrepo.git.credentials import Credential
    found = Credential(url="https://github.com/owner/repo.git").fill(interactive=False)
    call["credential"] = [found.username, found.password]
with open({str(calls)!r}, "a") as out:
    out.write(json.dumps(call) + "\\n")
""")
    fake.chmod(0o755)
    for name in ("runner", "home"):
        (tmp_path / name).mkdir(exist_ok=True)
    environment = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path / "home"),
        "RUNNER_TEMP": str(tmp_path / "runner"),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
        **env,
    }
    command = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", text]
    result = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True)
    recorded = [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
    return result, recorded


def test_sweep_is_dispatched_by_hand_with_documented_inputs_and_least_permissions():
    workflow = load(SWEEP)
    assert list(workflow[True]) == ["workflow_dispatch"]  # YAML 1.1 reads the key `on` as True
    inputs = workflow[True]["workflow_dispatch"]["inputs"]
    assert inputs["params"]["required"] is True and inputs["params"]["type"] == "string"
    assert json.loads(re.search(r"\[.*\]", inputs["params"]["description"]).group()) == json.loads(SWEEP_SAMPLE)
    for name in inputs:
        assert re.search(rf"^#\s+{name}\s", header(SWEEP), re.M), f"input {name!r} is not documented in the header"
    assert workflow["permissions"] == {}
    jobs = workflow["jobs"]
    assert "permissions" not in jobs["sets"]  # none: it only reads its input
    assert jobs["experiment"]["permissions"] == {"contents": "write"}  # the push of refs/exps/...
    assert jobs["experiment"]["needs"] == "sets"
    assert jobs["experiment"]["strategy"]["matrix"] == {"params": "${{ fromJSON(needs.sets.outputs.sets) }}"}
    assert jobs["experiment"]["strategy"]["fail-fast"] is False


def test_sweep_first_job_turns_the_input_into_the_matrix_or_refuses_it(tmp_path):
    parse = step(runs="GITHUB_OUTPUT", workflow=SWEEP, job="sets")
    assert parse["env"] == {"PARAMS": "${{ inputs.params }}", "NAME": "${{ inputs.name }}"}  # no ${{ }} in run:
    result, _ = run_script(parse["run"], {"PARAMS": SWEEP_SAMPLE, "NAME": "sweep"}, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    (line,) = (tmp_path / "output").read_text().splitlines()
    assert line.startswith("sets=") and json.loads(line.removeprefix("sets=")) == json.loads(SWEEP_SAMPLE)
    outputs = load(SWEEP)["jobs"]["sets"]["outputs"]
    assert outputs == {"sets": f"${{{{ steps.{parse['id']}.outputs.sets }}}}"}
    refused = {
        "not JSON": ("train.epochs=2", "sweep"),
        "not a list": ('{"a": "train.epochs=2"}', "sweep"),
        "no sets": ("[]", "sweep"),
        "a word without =": ('["train.epochs"]', "sweep"),
        "an empty set": ('[""]', "sweep"),
        "a name with a space": (SWEEP_SAMPLE, "my sweep"),
        "a set that is not text": ('[["train.epochs=2"]]', "sweep"),
    }
    for case, (params, name) in refused.items():
        (tmp_path / "output").unlink(missing_ok=True)
        result, _ = run_script(parse["run"], {"PARAMS": params, "NAME": name}, tmp_path)
        assert result.returncode == 1 and result.stdout.startswith("::error::"), case
        assert not (tmp_path / "output").exists(), case


def test_sweep_installs_the_lock_and_configures_the_remote_as_the_pr_report_does():
    install = step(runs="pip install", workflow=SWEEP, job="experiment")
    assert "pip install --require-hashes -r requirements.txt" in install["run"]
    credential = step(runs="DVC_REMOTE_CONFIG", workflow=SWEEP, job="experiment")
    assert "secrets.DVC_REMOTE_CONFIG" in credential["env"]["DVC_REMOTE_CONFIG"]
    assert '"$DVC_REMOTE_CONFIG" > .dvc/config.local' in credential["run"]  # never in the committed config
    assert "exit 1" in credential["run"]  # no credential: a sweep has nowhere to push its data
    names = [s.get("name") for s in steps(SWEEP, "experiment")]
    run_step = step(runs="dvc exp run", workflow=SWEEP, job="experiment")
    order = [names.index(s["name"]) for s in (install, credential, run_step)]
    assert order == sorted(order)


def test_sweep_uses_only_dvc_commands_and_flags_that_exist():
    calls = [
        call
        for s in steps(SWEEP, "experiment")
        for line in s.get("run", "").splitlines()
        if (call := dvc_command(line))
    ]
    assert [path for path, _ in calls] == [["pull"], ["exp", "run"], ["exp", "push"]]
    for path, flags in calls:
        help_text = dvc_parser(path).format_help()
        for flag in flags:
            # whole flags only: argparse would take --all for --all-commits, a reader would not
            has = re.search(rf"(^|\s){re.escape(flag)}(?![\w-])", help_text)
            assert has, f"{flag} is not an option of dvc {' '.join(path)}"


def test_sweep_runs_each_set_as_one_named_experiment(tmp_path):
    from dvc.cli import parse_args

    run_step = step(runs="dvc exp run", workflow=SWEEP, job="experiment")
    assert run_step["env"]["PARAMS"] == "${{ matrix.params }}" and "${{" not in run_step["run"]
    env = {"PARAMS": "train.learning_rate=0.004 train.epochs=20", "NAME": "sweep", "RUN": "7", "INDEX": "1"}
    result, calls = run_script(run_step["run"], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [call["argv"][:2] for call in calls] == [["pull", "--allow-missing"], ["exp", "run"]]
    args = parse_args(calls[1]["argv"])  # DVC's own parser: every flag and value as DVC reads them
    assert args.name == "sweep-7-2"  # the second set of run 7
    assert args.set_param == ["train.learning_rate=0.004", "train.epochs=20"]
    assert not args.queue and not args.tmp_dir  # in the workspace: the push takes it from there
    assert (tmp_path / "output").read_text() == "experiment=sweep-7-2\n"


def test_sweep_pushes_with_the_job_token_kept_off_disk_and_command_lines(tmp_path):
    from dvc.cli import parse_args

    push = step(runs="dvc exp push", workflow=SWEEP, job="experiment")
    assert push["env"]["EXPERIMENT"] == "${{ steps.run.outputs.experiment }}"
    assert push["env"]["GIT_TOKEN"] == "${{ github.token }}" and "${{" not in push["run"]
    result, calls = run_script(push["run"], {"EXPERIMENT": "sweep-7-2", "GIT_TOKEN": GITHUB_TOKEN_SAMPLE}, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    (call,) = calls
    args = parse_args(call["argv"])
    assert (args.git_remote, args.experiment, args.push_cache) == ("origin", ["sweep-7-2"], True)  # cache too
    assert call["credential"] == ["x-access-token", GITHUB_TOKEN_SAMPLE]  # what the push would authenticate with
    assert GITHUB_TOKEN_SAMPLE not in " ".join(call["argv"])
    written = [path for path in tmp_path.rglob("*") if path.is_file() and path.name != "dvc-calls.jsonl"]
    assert not [path for path in written if GITHUB_TOKEN_SAMPLE in path.read_text(errors="replace")]
    checkout = step(uses="actions/checkout@", workflow=SWEEP, job="experiment")
    assert checkout["with"]["persist-credentials"] is False
    others = [s for s in steps(SWEEP, "experiment") if s.get("name") != push["name"]]
    assert "github.token" not in str(others) and "GITHUB_TOKEN" not in str(others)


def test_sweep_documents_every_secret_and_variable_it_reads():
    text = SWEEP.read_text()
    documented = header(SWEEP)
    for kind, name in set(re.findall(r"\$\{\{\s*(secrets|vars)\.(\w+)", text)):
        assert re.search(rf"\b{name}\b", documented), f"{kind}.{name} is not documented in the workflow's header"
