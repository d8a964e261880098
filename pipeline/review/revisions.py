"""Files as they are at a git revision or in the workspace, and the commits that changed them.

What `pipeline.review.report` and `pipeline.review.history` compare. Everything they read under `metrics/` and
`params.yaml` is tracked by git, so any commit can be read with `git show REV:path`: no DVC cache,
no checkout and no retraining. Runs git in the current directory, the repository root.
"""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core import config
from pipeline.core.errors import ConfigError, DataError, PipelineError, RevisionError, complaint

WORKSPACE = None  # the revision that means "the files on disk"
ABSENT = "(absent)"  # the value of a dotted key on the side that does not have it
UNREADABLE = "(params.yaml unreadable)"  # what a table shows for the params of such a commit


@dataclass(frozen=True)
class Unreadable:
    """A params.yaml that is not a YAML mapping. A commit cannot be rewritten, so one bad file
    in the history is shown as such instead of stopping every report that reads it."""

    reason: str  # one line, e.g. "not valid YAML at line 3, column 9: ..."


@dataclass(frozen=True)
class Commit:
    sha: str
    date: str  # author date, YYYY-MM-DD
    subject: str


def _run(args: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True)
    except FileNotFoundError:
        raise RevisionError("git is not installed or not on PATH") from None


def git(args: list[str]) -> str:
    """Run git; its stdout, or RevisionError with git's own first line of complaint."""
    result = _run(args)
    if result.returncode != 0:
        message = complaint(result.stderr, f"exit status {result.returncode}", first=True)
        raise RevisionError(f"git {args[0]}: {message.removeprefix('fatal: ')}")
    return result.stdout


def resolve(rev: str) -> str:
    """The full commit sha `rev` names; RevisionError naming `rev` if there is no such commit."""
    result = _run(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"])
    if result.returncode != 0:
        # --quiet leaves stderr empty for an unknown name; anything there is a bigger problem
        reason = complaint(result.stderr, "not a commit in this repository", first=True).removeprefix("fatal: ")
        raise RevisionError(f"unknown revision {rev!r}: {reason}")
    return result.stdout.strip()


def branch_or_head(name: str) -> str:
    """`name` if a local branch of that name exists, else HEAD (a clone whose default is master)."""
    exists = _run(["rev-parse", "--verify", "--quiet", f"refs/heads/{name}"]).returncode == 0
    return name if exists else "HEAD"


def read_text(rev: str | None, path: Path) -> str | None:
    """`path` at commit `rev` (WORKSPACE: on disk), or None if it does not exist there.

    `rev` must already be known to exist (see `resolve`): any git failure here means no such file.
    """
    if rev is WORKSPACE:
        return Path(path).read_text() if Path(path).is_file() else None
    try:
        return git(["show", f"{rev}:{Path(path).as_posix()}"])
    except RevisionError:
        return None


def read_json(rev: str | None, path: Path) -> Any:
    """Parsed JSON of `path` at `rev`, or None if absent; DataError naming both if malformed."""
    text = read_text(rev, path)
    try:
        return None if text is None else json.loads(text)
    except ValueError as error:
        raise DataError(f"{path} at {describe(rev)}: not valid JSON ({error})") from None


def read_params(rev: str | None, path: Path) -> dict | Unreadable | None:
    """params.yaml at `rev` as DVC reads it (see `config.parse_yaml`): a mapping, None if absent,
    or Unreadable saying why if it is not YAML or not a mapping. An empty file has no params."""
    text = read_text(rev, path)
    if text is None:
        return None
    try:
        params = config.parse_yaml(text, str(path))
    except ConfigError as error:
        return Unreadable(str(error).removeprefix(f"{path}: "))
    if params is None:
        return {}  # as DVC reads it too
    if not isinstance(params, dict):
        return Unreadable(f"expected a mapping of params, got {type(params).__name__}")
    return params


def export(rev: str | None, path: Path, directory: Path) -> Path | None:
    """A file holding `path` as it is at `rev`, for loaders that take a path; None if absent."""
    if rev is WORKSPACE:
        return Path(path) if Path(path).is_file() else None
    text = read_text(rev, path)
    if text is None:
        return None
    copy = Path(directory) / rev / Path(path).name
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(text)
    return copy


def describe(rev: str | None) -> str:
    return "the workspace" if rev is WORKSPACE else rev


def log(rev: str, path: Path) -> list[Commit]:
    """Commits on the first-parent line of `rev` that touched `path`, newest first.

    First parent only: a merged branch's own commits are not part of the line's history, the
    merge commit is.
    """
    out = git(["log", "--first-parent", "--date=short", "--format=%H%x1f%ad%x1f%s", rev, "--", Path(path).as_posix()])
    return [Commit(*line.split("\x1f", 2)) for line in out.splitlines() if line]


def flatten(mapping: dict, prefix: str = "") -> dict[str, Any]:
    """{"train": {"epochs": 2}} -> {"train.epochs": 2}: params as `dvc params diff` names them."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        flat.update(flatten(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return flat


def changed_params(old: dict | None, new: dict | None) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose value differs between two params.yaml mappings: {key: (old, new)}.

    A key present on one side only is ABSENT on the other; order follows `new`, then `old`. An
    Unreadable side has no keys to compare: callers say so instead of calling this.
    """
    before, after = flatten(old or {}), flatten(new or {})
    keys = list(after) + [key for key in before if key not in after]
    return {
        key: (before.get(key, ABSENT), after.get(key, ABSENT))
        for key in keys
        if before.get(key, ABSENT) != after.get(key, ABSENT)
    }


def tool(name: str) -> str | None:
    """An executable from the running virtualenv (as the stages' `python` is) or else from PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


def dvc() -> str:
    """The dvc that `tool` finds; a PipelineError saying how to install it when there is none."""
    found = tool("dvc")
    if found is None:
        raise PipelineError("dvc is not installed here: pip install -r requirements.txt")
    return found


def activated(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` with the running virtualenv's bin first on PATH, as its `activate` script sets it.

    DVC runs each stage's `python -m stages...` through the shell, which looks `python` up on
    PATH: without this, a recipe started as `.venv/bin/python -m pipeline.review.recipes` from a shell
    that never activated the venv would run its stages in another python, without our packages.
    """
    bin_dir = str(Path(sys.executable).parent)
    rest = [part for part in environ.get("PATH", "").split(os.pathsep) if part and part != bin_dir]
    return {**environ, "PATH": os.pathsep.join([bin_dir, *rest])}
