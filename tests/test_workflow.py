"""The pull-request workflow parses, runs on pull requests, and calls the report as its CLI defines it."""
import re
import shlex
import subprocess
import sys

import yaml

from pipeline.review import report
from tests.helpers.repos import ROOT

WORKFLOW = ROOT / ".github/workflows/pr-report.yml"


def load() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


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
