"""Are the committed dvc.lock and metrics the results of this code and these params?

    python -m pipeline.uptodate

Runs `dvc status --json` and drops what only says that data is not here: a fresh clone without
`dvc pull` lists every cached output as "not in cache" and every data dependency as "deleted",
although nothing is out of date. Git-tracked outputs (paths.GIT_TRACKED) are in every clone, so
one deleted, as an output or as a later stage's dependency, is a change. What is left (a changed
param, command, code file or git-tracked output) means `dvc repro` would produce different
results from those committed. Answers without the data, so CI can ask before rebuilding
anything. Exits 1 naming each stale stage and why.
"""
import json
import subprocess
from typing import Any

from pipeline import paths
from pipeline.review import revisions
from pipeline.errors import CheckFailed, PipelineError, complaint

ABSENT = {"deleted", "not in cache"}  # a cached file not in this workspace or cache: not a change


def stale(status: dict[str, Any]) -> dict[str, list[str]]:
    """{stage: reasons} from parsed `dvc status --json`, for changes other than absent data.

    Entries are strings ("changed command") or {"changed deps"|"changed outs": {path: state}},
    where a params file's state is itself {section: state}.
    """
    found = {}
    for stage, changes in status.items():
        reasons = []
        for change in changes if isinstance(changes, list) else [changes]:
            if not isinstance(change, dict):
                reasons.append(str(change))
                continue
            for kind, entries in change.items():
                for path, state in (entries.items() if isinstance(entries, dict) else [(kind, entries)]):
                    if isinstance(state, dict):  # params.yaml: {"train": "modified"}
                        reasons += [f"{path}:{key} {value}" for key, value in state.items()]
                    elif state not in ABSENT or paths.tracked_by_git(path):
                        reasons.append(f"{path} {state}")
        if reasons:
            found[stage] = reasons
    return found


def dvc_status() -> dict[str, Any]:
    result = subprocess.run([revisions.dvc(), "status", "--json"], capture_output=True, text=True)
    if result.returncode != 0:
        raise PipelineError(f"dvc status failed: {complaint(result.stderr, 'no message')}")
    return json.loads(result.stdout or "{}")


def main() -> None:
    found = stale(dvc_status())
    if found:
        details = "; ".join(f"{stage}: {', '.join(reasons)}" for stage, reasons in found.items())
        raise CheckFailed(f"out of date, run `dvc repro` and commit dvc.lock and metrics/ ({details})")
    print("up to date: dvc.lock matches the code and params (data absent here does not count)")

