"""The workflows: the pull-request report calls the report as its CLI defines it, the test workflow
runs .ci/run on every push and pull request, and every workflow passes zizmor's supply-chain
audit with each action pinned to a commit SHA that a comment names the release of."""
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
from tests.helpers.repos import BIN, ROOT

WORKFLOWS_DIR = ROOT / ".github/workflows"
WORKFLOW = WORKFLOWS_DIR / "pr-report.yml"
TESTS_WORKFLOW = WORKFLOWS_DIR / "tests.yml"
ZIZMOR = BIN / "zizmor"  # requirements-dev.txt pins it
# `uses: owner/name@<40-hex commit>  # vX.Y.Z`; a local action (./path) has nothing to pin.
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@(?P<sha>[0-9a-f]{40})$")
VERSION_COMMENT = re.compile(r"^\s+#\s+(?P<version>v\d+\.\d+\.\d+)\b")


def load(path: Path = WORKFLOW) -> dict:
    return yaml.safe_load(path.read_text())


def workflows() -> list[Path]:
    """Every workflow file, those added later included."""
    return sorted([*WORKFLOWS_DIR.glob("*.yml"), *WORKFLOWS_DIR.glob("*.yaml")])


def steps() -> list[dict]:
    (job,) = load()["jobs"].values()
    return job["steps"]


def step(uses: str = "", runs: str = "") -> dict:
    found = [s for s in steps() if (uses and s.get("uses", "").startswith(uses)) or (runs and runs in s.get("run", ""))]
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

    order = [position(command) for command in (
        "dvc pull", "python -m pipeline.uptodate", "dvc repro", "status=$(dvc status --json)", "python -m pipeline.report",
    )]  # fmt: skip
    assert order == sorted(order) and len(set(order)) == len(order)
    assert '"$status" != "{}"' in step(runs="dvc status --json")["run"]


def test_report_step_uses_only_flags_the_cli_has():
    report_step = step(runs="python -m pipeline.report")
    (line,) = [ln for ln in report_step["run"].splitlines() if "python -m pipeline.report" in ln]
    words = command_line(line, report_step.get("env", {}))
    assert words[:3] == ["python", "-m", "pipeline.report"]
    help_text = subprocess.run(
        [sys.executable, "-m", "pipeline.report", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for flag in (word.split("=")[0] for word in words[3:] if word.startswith("--")):
        assert re.search(rf"(^|\s){re.escape(flag)}\b", help_text), f"{flag} is not an option of pipeline.report"
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
    out = shlex.split(step(runs="python -m pipeline.report")["run"])
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
    # .ci/run ends with the README's test command (tests/test_requirements.py checks it)
    assert [s["run"].strip() for s in job["steps"] if "run" in s] == [".ci/run"]
    assert os.access(ROOT / ".ci/run", os.X_OK)
    # Debian 12's apt has chromium and chromium-driver for .ci/run to install; Python 3.11 as here
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
