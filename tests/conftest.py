"""Shared test helpers: the repo root, and a shrunken copy of the pipeline in a temporary git repo."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
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


def run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    env.update(GIT_AUTHOR_NAME="test", GIT_AUTHOR_EMAIL="test@example.com",
               GIT_COMMITTER_NAME="test", GIT_COMMITTER_EMAIL="test@example.com")  # fmt: skip
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def set_params(repo: Path, **changes: object) -> None:
    """Set dotted keys in repo/params.yaml, e.g. set_params(repo, **{"train.epochs": 2})."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        section, _, key = dotted.rpartition(".")
        (params[section] if section else params)[key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture
def pipeline_repo(tmp_path: Path) -> Path:
    """The repo's tracked files in a fresh git repo, fed ~3,000 synthetic images, 1 epoch."""
    repo = tmp_path / "repo"
    tracked = run(["git", "ls-files"], cwd=ROOT).stdout.split()
    for name in tracked:
        if name.startswith(("metrics/", "tests/", "benchmarks/")) or name == "dvc.lock":
            continue  # outputs of the real run, and files the pipeline does not need
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, repo / name)
    data = synthetic_mnist(train=2500, test=500)
    np.savez(repo / "small.npz", **data)
    set_params(repo, **{"fetch.source": "small.npz", "train.epochs": 1})
    run(["git", "init", "-q"], cwd=repo)
    run(["git", "add", "-A"], cwd=repo)
    run(["git", "commit", "-qm", "shrunken pipeline"], cwd=repo)
    return repo
