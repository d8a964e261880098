"""Are the committed dvc.lock and metrics the results of this code and these params?

    python -m pipeline.review.uptodate

Runs `dvc status --json` and drops what only says that data is not here: a fresh clone without
`dvc pull` lists every cached output as "not in cache" and every data dependency as "deleted",
although nothing is out of date. Git-tracked outputs (paths.GIT_TRACKED) are in every clone, so
one deleted, as an output or as a later stage's dependency, is a change. A changed param,
command, code file or git-tracked output means `dvc repro` would produce different results from
those committed. A cached output that is here but is not dvc.lock's, in a stage whose code,
params and deps match dvc.lock, is another run's file (after `dvc exp apply`, say): `dvc repro`
would only give dvc.lock's back, so the fix named is `dvc checkout`; but not in the collected
store, which people add to: new digits there are for `dvc repro` to record. Answers without the data,
so CI can ask before rebuilding anything. Exits 1 naming each stage, why, and which command fixes it.
"""

import json
import subprocess
from dataclasses import dataclass
from typing import Any

from pipeline.core import cli, paths
from pipeline.core.errors import CheckFailed, PipelineError, complaint
from pipeline.review import revisions

ABSENT = {"deleted", "not in cache"}  # a cached file not in this workspace or cache: not a change
OUTS, DEPS = "changed outs", "changed deps"


@dataclass(frozen=True)
class Change:
    """One line of a stage's `dvc status`: what changed (`OUTS`, `DEPS` or e.g. "changed
    command"), the file ("" for a command, "params.yaml" for a param) and how it reads."""

    kind: str
    path: str
    text: str  # "pipeline/train/training.py modified", "params.yaml:train modified", "changed command"


def changes(status: dict[str, Any]) -> dict[str, list[Change]]:
    """{stage: changes} from parsed `dvc status --json`, without those that only say data is absent.

    Entries are strings ("changed command") or {"changed deps"|"changed outs": {path: state}},
    where a params file's state is itself {section: state}.
    """
    found = {}
    for stage, entries in status.items():
        counted = []
        for change in entries if isinstance(entries, list) else [entries]:
            if not isinstance(change, dict):
                counted.append(Change(str(change), "", str(change)))
                continue
            for kind, files in change.items():
                for path, state in files.items() if isinstance(files, dict) else [(kind, files)]:
                    if isinstance(state, dict):  # params.yaml: {"train": "modified"}
                        counted += [Change(kind, path, f"{path}:{key} {value}") for key, value in state.items()]
                    elif state not in ABSENT or paths.tracked_by_git(path):
                        counted.append(Change(kind, path, f"{path} {state}"))
        if counted:
            found[stage] = counted
    return found


def split(status: dict[str, Any]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """({stage: reasons} that `dvc repro` must rebuild, {stage: reasons} that `dvc checkout` restores).

    A cached output that differs from dvc.lock, while its stage's code, params and deps match it,
    was put there by another run (`dvc exp apply`, a checkout of other outputs): rebuilding gives
    dvc.lock's file back, which checking it out from the cache does at once. So does a stage's
    dep that is such an output. Anything else is stale: a command, param or source changed, a
    git-tracked output changed (git has no cache to restore it from), the collected store changed
    (new digits: a checkout would delete them), or a dep that is the output
    of a stale stage or of none that reports it, when dvc.lock disagrees with itself.
    """
    found = changes(status)
    rebuild: set[str] = set()
    while True:  # a stage made stale can make its consumers stale: repeat until nothing moves
        restorable = [
            change.path
            for stage, listed in found.items()
            if stage not in rebuild
            for change in listed
            if change.kind == OUTS and not paths.tracked_by_git(change.path) and not paths.users_data(change.path)
        ]
        now = {
            stage for stage, listed in found.items() if not all(_restorable(change, restorable) for change in listed)
        }
        if now == rebuild:
            break
        rebuild = now
    texts = {stage: [change.text for change in listed] for stage, listed in found.items()}
    return (
        {stage: reasons for stage, reasons in texts.items() if stage in rebuild},
        {stage: reasons for stage, reasons in texts.items() if stage not in rebuild},
    )


def _restorable(change: Change, restorable: list[str]) -> bool:
    """Whether `change` is one of `restorable`'s cached outputs or inside one, as an output or a dep."""
    if change.kind not in (OUTS, DEPS):
        return False
    return any(change.path == out or change.path.startswith(out.rstrip("/") + "/") for out in restorable)


def stale(status: dict[str, Any]) -> dict[str, list[str]]:
    """{stage: reasons} that `dvc repro` would rebuild into other results than dvc.lock's."""
    return split(status)[0]


def checked_out(status: dict[str, Any]) -> dict[str, list[str]]:
    """{stage: reasons} whose outputs only differ from dvc.lock's: `dvc checkout` restores them."""
    return split(status)[1]


def dvc_status() -> dict[str, Any]:
    result = subprocess.run([revisions.dvc(), "status", "--json"], capture_output=True, text=True)
    if result.returncode != 0:
        raise PipelineError(f"dvc status failed: {complaint(result.stderr, 'no message')}")
    return json.loads(result.stdout or "{}")


def main() -> None:
    rebuild, restore = split(dvc_status())
    problems = []
    if rebuild:
        problems.append(f"out of date, run `dvc repro` and commit dvc.lock and metrics/ ({_details(rebuild)})")
    if restore:
        # dvc.lock and the code agree: the workspace merely holds another run's files.
        problems.append(
            "outputs differ from dvc.lock though code, params and deps match it (checked out from another run):"
            f" run `dvc checkout`, nothing needs rebuilding ({_details(restore)})"
        )
    if problems:
        raise CheckFailed("; ".join(problems))
    print("up to date: dvc.lock matches the code and params (data absent here does not count)")


def _details(found: dict[str, list[str]]) -> str:
    return "; ".join(f"{stage}: {', '.join(reasons)}" for stage, reasons in found.items())


if __name__ == "__main__":
    cli.run(main, interrupted=cli.COMMAND_INTERRUPTED)
