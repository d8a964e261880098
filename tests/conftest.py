"""Shared test helpers: the repo root, and a shrunken copy of the pipeline in a temporary git repo."""
import json
import os
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from tests import repo_copy
from tests.repo_copy import ROOT

BIN = Path(sys.executable).parent  # the virtualenv running the tests also has dvc


def synthetic_mnist(train: int, test: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Small learnable data in the Keras layout: each digit is a bright bar at its own row."""
    rng = np.random.default_rng(seed)

    def make(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(count) % 10
        rng.shuffle(labels)
        images = rng.integers(0, 60, size=(count, 28, 28)).astype(np.uint8)
        for image, label in zip(images, labels):
            row = 3 + 2 * label
            image[row : row + 2, 4:24] = 255
        return images, labels.astype(np.uint8)

    x_train, y_train = make(train)
    x_test, y_test = make(test)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def env(**extra: str) -> dict[str, str]:
    """The environment for commands the tests run: this venv's dvc first on PATH, a git identity."""
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com",
        **extra,
    }  # fmt: skip


def run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def set_params(repo: Path, **changes: object) -> None:
    """Set dotted keys in repo/params.yaml, e.g. set_params(repo, **{"train.epochs": 2})."""
    repo_copy.set_params(repo, changes)


def dvc_status(repo: Path) -> dict:
    """`dvc status --json` parsed: {} when everything is up to date."""
    return json.loads(run(["dvc", "status", "--json"], cwd=repo).stdout)


def ran_stages(output: str) -> list[str]:
    """The stages a `dvc repro` ran, in order, from its output."""
    return re.findall(r"Running stage '(\w+)'", output)


def peak_allocation(call) -> int:
    """Peak bytes allocated (Python and numpy) while `call` runs."""
    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def make_pipeline_repo(destination: Path) -> Path:
    """The repo's files in a fresh git repo, fed 3,000 synthetic images, 1 epoch of batch 64."""
    # metrics/ and dvc.lock are the outputs of the real run; tests and benchmarks are not needed
    repo = repo_copy.copy_repo(destination, skip=("metrics/", "dvc.lock", "tests/", "benchmarks/"))
    np.savez(repo / "small.npz", **synthetic_mnist(train=2500, test=500))
    set_params(repo, **{"fetch.source": "small.npz", "train.epochs": 1, "train.batch_size": 64})
    repo_copy.commit_all(repo, "shrunken pipeline")
    return repo


@pytest.fixture
def pipeline_repo(tmp_path: Path) -> Path:
    """A shrunken pipeline in a fresh git repo: see make_pipeline_repo."""
    return make_pipeline_repo(tmp_path / "repo")
