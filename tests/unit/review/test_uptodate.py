"""Telling a stale pipeline from one whose data is merely absent, in `dvc status --json` output."""

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core.errors import CheckFailed
from pipeline.review import uptodate
from testkit.repos import ROOT, dvc_status, env, run

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
        "train": [{"changed deps": {"data/prepared/train.npz": "deleted", "pipeline/train/training.py": "modified"}}],
        "plot": [{"changed deps": {"params.yaml": {"plot": "modified"}}}, "changed command"],
        "evaluate": [{"changed outs": {"metrics/metrics.json": "modified"}}],
    }
    assert uptodate.stale(status) == {
        "train": ["pipeline/train/training.py modified"],
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
        "evaluate": [
            "metrics/learning_curve.csv deleted",
            "metrics/metrics.json deleted",
            "metrics/predictions.csv deleted",
        ],
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

    run(
        ["git", "rm", "-q", "metrics/metrics.json", "metrics/predictions.csv", "metrics/learning_curve.csv"],
        cwd=unpulled_clone,
    )
    found = {stage: sorted(reasons) for stage, reasons in uptodate.stale(dvc_status(unpulled_clone)).items()}
    assert found == {
        "train": ["metrics/learning_curve.csv deleted"],
        "evaluate": [
            "metrics/learning_curve.csv deleted",
            "metrics/metrics.json deleted",
            "metrics/predictions.csv deleted",
        ],
        "plot": ["metrics/learning_curve.csv deleted", "metrics/predictions.csv deleted"],
    }
    command = [sys.executable, "-m", "pipeline.review.uptodate"]
    result = subprocess.run(command, cwd=unpulled_clone, env=env(PYTHONPATH=str(ROOT)), capture_output=True, text=True)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error: out of date, run `dvc repro`") and result.stderr.count("\n") == 1
    assert "evaluate: " in result.stderr and "metrics/metrics.json deleted" in result.stderr


# `dvc status --json` after `dvc exp apply` of a 2-epoch run and `git checkout -- dvc.lock
# params.yaml metrics/`: the workspace holds the other run's model, and everything else is HEAD's.
CHECKED_OUT = {
    "train": [{"changed outs": {"models/model.keras": "modified"}}],
    "evaluate": [{"changed deps": {"models/model.keras": "modified"}}],
    "export": [
        {"changed deps": {"models/model.keras": "modified"}},
        {"changed outs": {"models/saved_model": "modified"}},
    ],
    "field": [{"changed deps": {"models/model_float32.tflite": "modified"}}],
}


# The tflite too: export's own output, which field reads.
EXPORT_CHECKED_OUT = {
    **CHECKED_OUT,
    "export": CHECKED_OUT["export"] + [{"changed outs": {"models/model_float32.tflite": "modified"}}],
}


def test_cached_outputs_that_only_differ_from_dvc_lock_are_to_check_out_not_to_rebuild():
    assert uptodate.stale(EXPORT_CHECKED_OUT) == {}
    assert uptodate.checked_out(EXPORT_CHECKED_OUT) == {
        "train": ["models/model.keras modified"],
        "evaluate": ["models/model.keras modified"],
        "export": [
            "models/model.keras modified",
            "models/saved_model modified",
            "models/model_float32.tflite modified",
        ],
        "field": ["models/model_float32.tflite modified"],
    }


def test_a_changed_output_of_a_stale_stage_or_a_dep_no_stage_reports_is_to_rebuild():
    stale_train = {
        **EXPORT_CHECKED_OUT,
        "train": [{"changed deps": {"pipeline/train/training.py": "modified"}}, *CHECKED_OUT["train"]],
    }
    assert uptodate.stale(stale_train) == {
        "train": ["pipeline/train/training.py modified", "models/model.keras modified"],
        "evaluate": ["models/model.keras modified"],  # its model comes from a stale stage...
        "export": [
            "models/model.keras modified",
            "models/saved_model modified",
            "models/model_float32.tflite modified",
        ],
        "field": ["models/model_float32.tflite modified"],  # ...and so, through export, does field's
    }
    assert uptodate.checked_out(stale_train) == {}
    # A model that evaluate's lock does not match but train's does: dvc.lock disagrees with itself.
    lock_disagrees = {"evaluate": CHECKED_OUT["evaluate"]}
    assert uptodate.stale(lock_disagrees) == {"evaluate": ["models/model.keras modified"]}
    assert uptodate.checked_out(lock_disagrees) == {}


def test_new_collected_digits_are_to_record_by_dvc_repro_never_to_check_out():
    # A checkout would put back dvc.lock's store: it would delete the digits people just added.
    new_digits = {
        "collected": [{"changed outs": {"data/collected": "modified"}}],
        "field": [{"changed deps": {"data/collected": "modified"}}],
    }
    assert uptodate.checked_out(new_digits) == {}
    assert uptodate.stale(new_digits) == {
        "collected": ["data/collected modified"],
        "field": ["data/collected modified"],
    }


def test_main_names_dvc_checkout_for_outputs_only_checked_out_and_dvc_repro_only_for_stale_stages(monkeypatch):
    monkeypatch.setattr(uptodate, "dvc_status", lambda: EXPORT_CHECKED_OUT)
    with pytest.raises(CheckFailed) as caught:
        uptodate.main()
    message = str(caught.value)
    assert "`dvc checkout`" in message and "dvc repro" not in message and "\n" not in message
    assert "train: models/model.keras modified" in message

    with_stale_plot = {**EXPORT_CHECKED_OUT, "plot": [{"changed deps": {"params.yaml": {"plot": "modified"}}}]}
    monkeypatch.setattr(uptodate, "dvc_status", lambda: with_stale_plot)
    with pytest.raises(CheckFailed) as caught:
        uptodate.main()
    stale_part, _, checkout_part = str(caught.value).partition("; ")
    assert stale_part.startswith("out of date, run `dvc repro`") and "(plot: params.yaml:plot modified)" in stale_part
    assert "`dvc checkout`" in checkout_part and "train: models/model.keras modified" in checkout_part


# The toy whose model depends on a param, so that another run can make another model.
TOY_WITH_PARAMS = TOY_DVC_YAML.replace(
    "echo weights > models/model.keras", "echo weights ${train.epochs} > models/model.keras"
).replace(
    "    outs:\n      - models/model.keras", "    params: [train.epochs]\n    outs:\n      - models/model.keras", 1
)


@pytest.mark.slow
def test_real_outputs_checked_out_from_another_run_name_dvc_checkout_which_fixes_them(tmp_path):
    (tmp_path / "dvc.yaml").write_text(TOY_WITH_PARAMS)
    (tmp_path / "params.yaml").write_text("train:\n  epochs: 1\n")
    run(["git", "init", "-q"], cwd=tmp_path)
    run(["dvc", "init", "-q"], cwd=tmp_path)
    run(["dvc", "repro", "-q"], cwd=tmp_path)
    run(["git", "add", "-A"], cwd=tmp_path)
    run(["git", "commit", "-qm", "built"], cwd=tmp_path)
    # Another run's model in the workspace, with HEAD's dvc.lock, params and metrics: as the issue did.
    run(["dvc", "exp", "run", "-q", "-S", "train.epochs=2", "-n", "two"], cwd=tmp_path)
    run(["dvc", "exp", "apply", "two"], cwd=tmp_path)
    run(["git", "checkout", "--", "dvc.lock", "params.yaml", "metrics/"], cwd=tmp_path)

    def verdict() -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "pipeline.review.uptodate"]
        return subprocess.run(command, cwd=tmp_path, env=env(PYTHONPATH=str(ROOT)), capture_output=True, text=True)

    result = verdict()
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "`dvc checkout`" in result.stderr and "dvc repro" not in result.stderr
    assert "train: models/model.keras modified" in result.stderr
    run(["dvc", "checkout", "-q"], cwd=tmp_path)  # what it says to do...
    assert verdict().returncode == 0  # ...is all it takes

    (tmp_path / "params.yaml").write_text("train:\n  epochs: 3\n")  # a real change still says repro
    result = verdict()
    assert result.returncode == 1 and result.stderr.startswith("error: out of date, run `dvc repro`")
    assert "params.yaml:train.epochs modified" in result.stderr and "checkout" not in result.stderr
