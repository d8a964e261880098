"""A copy of this repository's tracked files in a fresh git repo, with params overridden.

Used by the end-to-end tests and by the benchmarks: both need the pipeline as a user would
clone it, without the outputs of the last real run.
"""
import subprocess
import shutil
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
GIT_IDENTITY = ["-c", "user.name=pipeline-tests", "-c", "user.email=tests@example.com"]


def copy_repo(destination: Path, skip: tuple[str, ...] = ("metrics/", "dvc.lock")) -> Path:
    """Copy the working tree's files that git sees, except those starting with a prefix in `skip`.

    Tracked files and new ones not yet added (but not ignored ones): what is tested is the code
    as it is on disk, including a module written but not committed yet.
    """
    listing = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    names = subprocess.run(listing, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in sorted(set(names.split("\0")) - {""}):
        if name.startswith(skip) or not (ROOT / name).is_file():  # listed but gone: deleted, not yet committed
            continue
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, destination / name)
    return destination


def set_params(repo: Path, changes: dict[str, object]) -> None:
    """Set dotted keys in repo/params.yaml, e.g. {"train.epochs": 2, "seed": 1}."""
    # Round-trip ruamel, as `dvc exp run -S` edits the file: YAML 1.2 (PyYAML would write `off`
    # back as `false`), key order and comments kept.
    yaml = YAML()
    path = repo / "params.yaml"
    params = yaml.load(path)
    for dotted, value in changes.items():
        section, _, key = dotted.rpartition(".")
        (params[section] if section else params)[key] = value
    yaml.dump(params, path)


def commit_all(repo: Path, message: str) -> None:
    """`git init` if needed, then commit everything: DVC experiments start from a commit."""
    if not (repo / ".git").exists():
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", *GIT_IDENTITY, "commit", "-qm", message], cwd=repo, check=True)
