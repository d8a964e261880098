"""Copies of this repository in fresh git repos, params overridden, and the commands run in them.

Used by the end-to-end tests and by the benchmarks: both need the pipeline as a user would
clone it, without the outputs of the last real run, and run git and dvc from this virtualenv.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from ruamel.yaml import YAML

from testkit.builders import synthetic_mnist

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the virtualenv running the tests also has dvc
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


def set_params(repo: Path, **changes: object) -> None:
    """Set dotted keys in repo/params.yaml, e.g. set_params(repo, **{"train.epochs": 2, "seed": 1})."""
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


def make_pipeline_repo(destination: Path) -> Path:
    """The repo's files in a fresh git repo, fed 3,000 synthetic images, 1 epoch of batch 64,
    the field set 100 of the 500 test digits a source."""
    # metrics/ and dvc.lock are the outputs of the real run; tests, their helpers and benchmarks are not needed
    repo = copy_repo(destination, skip=("metrics/", "dvc.lock", "tests/", "testkit/", "benchmarks/"))
    np.savez(repo / "small.npz", **synthetic_mnist(train=2500, test=500))
    set_params(repo, **{"fetch.source": "small.npz", "train.epochs": 1, "train.batch_size": 64, "field.images": 100})
    commit_all(repo, "shrunken pipeline")
    return repo


def env(**extra: str) -> dict[str, str]:
    """The environment for commands the tests run: this venv's dvc first on PATH, a git identity."""
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        **extra,
    }


def run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def dvc_status(repo: Path) -> dict:
    """`dvc status --json` parsed: {} when everything is up to date."""
    return json.loads(run(["dvc", "status", "--json"], cwd=repo).stdout)


def ran_stages(output: str) -> list[str]:
    """The stages a `dvc repro` ran, in order, from its output."""
    return re.findall(r"Running stage '(\w+)'", output)
