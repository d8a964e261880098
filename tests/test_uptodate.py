"""Telling a stale pipeline from one whose data is merely absent, in `dvc status --json` output."""
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.review import uptodate
from pipeline.errors import CheckFailed
from tests.helpers.repos import ROOT, dvc_status, env, run

# `dvc status --json` in a fresh clone that has not pulled: everything cached is missing.
NOT_PULLED = {
    "fetch": [{"changed outs": {"data/raw/mnist.npz": "not in cache"}}],
    "train": [
        {"changed deps": {"data/prepared/train.npz": "deleted", "data/prepared/val.npz": "deleted"}},
        {"changed outs": {"models/model.keras": "not in cache"}},
    ],
    "evaluate": [{"changed deps": {"models/model.keras": "deleted"}}],
}


def test_absent_data_is_not_a_change():
    assert uptodate.stale(NOT_PULLED) == {}
    assert uptodate.stale({}) == {}


def test_changed_code_params_command_and_tracked_outputs_are():
    status = {
        **NOT_PULLED,
        "train": [{"changed deps": {"data/prepared/train.npz": "deleted", "pipeline/training.py": "modified"}}],
        "plot": [{"changed deps": {"params.yaml": {"plot": "modified"}}}, "changed command"],
        "evaluate": [{"changed outs": {"metrics/metrics.json": "modified"}}],
    }
    assert uptodate.stale(status) == {
        "train": ["pipeline/training.py modified"],
        "plot": ["params.yaml:plot modified", "changed command"],
        "evaluate": ["metrics/metrics.json modified"],
    }


def test_main_fails_with_one_line_naming_each_stale_stage(monkeypatch):
    changed_plot = {"plot": [{"changed deps": {"params.yaml": {"plot": "modified"}}}]}
    monkeypatch.setattr(uptodate, "dvc_status", lambda: changed_plot)
    with pytest.raises(CheckFailed, match=r"out of date, .* \(plot: params.yaml:plot modified\)"):
        uptodate.main()
    monkeypatch.setattr(uptodate, "dvc_status", lambda: NOT_PULLED)
    uptodate.main()


# `dvc status --json` in a clone after `git rm metrics/learning_curve.csv metrics/metrics.json ...`:
# git-tracked outputs, gone from a workspace that git fills, beside cached data never pulled.
TRACKED_DELETED = {
    "fetch": [{"changed outs": {"data/raw/mnist.npz": "not in cache", "metrics/dataset.json": "deleted"}}],
    "train": [{"changed outs": {"models/model.keras": "not in cache", "metrics/learning_curve.csv": "deleted"}}],
    "evaluate": [
        {"changed deps": {"models/model.keras": "deleted", "metrics/learning_curve.csv": "deleted"}},
        {"changed outs": {"metrics/metrics.json": "deleted", "metrics/predictions.csv": "deleted"}},
    ],
    "plot": [
        {"changed deps": {"data/prepared/train.npz": "deleted", "metrics/learning_curve.csv": "deleted"}},
        {"changed outs": {"metrics/plots": "deleted"}},
    ],
}


def test_a_deleted_git_tracked_output_is_a_change_as_an_output_and_as_a_dep():
    assert uptodate.stale(TRACKED_DELETED) == {
        "fetch": ["metrics/dataset.json deleted"],
        "train": ["metrics/learning_curve.csv deleted"],
        "evaluate": ["metrics/learning_curve.csv deleted", "metrics/metrics.json deleted", "metrics/predictions.csv deleted"],
        "plot": ["metrics/learning_curve.csv deleted", "metrics/plots deleted"],
    }


# A toy pipeline with this project's kinds of output: a cached model, git-tracked metrics, one of
# them (learning_curve.csv) a dependency of the next stages, and a git-tracked folder of plots.
TOY_DVC_YAML = """
stages:
  train:
    cmd: mkdir -p models metrics && echo weights > models/model.keras && echo epoch > metrics/learning_curve.csv
    outs:
      - models/model.keras
      - metrics/learning_curve.csv:
          cache: false
  evaluate:
    cmd: cat models/model.keras metrics/learning_curve.csv > metrics/metrics.json && echo 7 > metrics/predictions.csv
    deps: [models/model.keras, metrics/learning_curve.csv]
    metrics:
      - metrics/metrics.json:
          cache: false
    outs:
      - metrics/predictions.csv:
          cache: false
  plot:
    cmd: mkdir -p metrics/plots && cat metrics/learning_curve.csv metrics/predictions.csv > metrics/plots/loss.png
    deps: [metrics/learning_curve.csv, metrics/predictions.csv]
    outs:
      - metrics/plots:
          cache: false
"""


@pytest.fixture
def unpulled_clone(tmp_path: Path) -> Path:
    """The toy pipeline built and committed, then cloned: git brings the metrics, not DVC's cache."""
    origin = tmp_path / "origin"
    origin.mkdir()
    (origin / "dvc.yaml").write_text(TOY_DVC_YAML)
    run(["git", "init", "-q"], cwd=origin)
    run(["dvc", "init", "-q"], cwd=origin)
    run(["dvc", "repro", "-q"], cwd=origin)
    run(["git", "add", "-A"], cwd=origin)
    run(["git", "commit", "-qm", "built"], cwd=origin)
    run(["git", "clone", "-q", str(origin), "clone"], cwd=tmp_path)
    return tmp_path / "clone"


def test_real_dvc_status_of_a_clone_without_data_or_without_its_metrics(unpulled_clone):
    status = dvc_status(unpulled_clone)
    assert status != {}  # the model is not in this clone's cache...
    assert uptodate.stale(status) == {}  # ...which is not a change

    run(["git", "rm", "-q", "metrics/metrics.json", "metrics/predictions.csv", "metrics/learning_curve.csv"], cwd=unpulled_clone)
    found = {stage: sorted(reasons) for stage, reasons in uptodate.stale(dvc_status(unpulled_clone)).items()}
    assert found == {
        "train": ["metrics/learning_curve.csv deleted"],
        "evaluate": ["metrics/learning_curve.csv deleted", "metrics/metrics.json deleted", "metrics/predictions.csv deleted"],
        "plot": ["metrics/learning_curve.csv deleted", "metrics/predictions.csv deleted"],
    }
    command = [sys.executable, "-m", "pipeline.uptodate"]
    result = subprocess.run(command, cwd=unpulled_clone, env=env(PYTHONPATH=str(ROOT)), capture_output=True, text=True)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error: out of date, run `dvc repro`") and result.stderr.count("\n") == 1
    assert "evaluate: " in result.stderr and "metrics/metrics.json deleted" in result.stderr
