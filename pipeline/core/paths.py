"""Every file the pipeline reads or writes, defined once.

Paths are relative to the repository root, which is where DVC runs each stage; `dvc.yaml`
names the same files and `tests/system/test_dvc_yaml.py` checks that the two agree.
"""

import os
from collections.abc import Iterable
from pathlib import Path

PARAMS = Path("params.yaml")
DVC_LOCK = Path("dvc.lock")  # what the last `dvc repro` ran and made: each stage's deps and outs, with md5s
RECIPES = Path("recipes.yaml")  # named sets of train values, run by `python -m pipeline.review.recipes NAME`

RAW = Path("data/raw/mnist.npz")
PREPARED_DIR = Path("data/prepared")
# Digits users corrected or imported: <label>/<sha256>.png (pipeline/collect/). An output of the
# collected stage, which only reads it, so that DVC caches, pushes and records it.
COLLECTED = Path("data/collected")
SPLITS = ("train", "val", "test")
# The collected digits' parts as prepared splits (the collected stage): train's and field's.
COLLECTED_TRAIN = PREPARED_DIR / "collected_train.npz"
COLLECTED_TEST = PREPARED_DIR / "collected_test.npz"
MODEL = Path("models/model.keras")
# The export stage's forms of the model: TF Serving loads SAVED_MODEL/<version>/.
SAVED_MODEL = Path("models/saved_model")
LITERT_FLOAT32 = Path("models/model_float32.tflite")
LITERT_INT8 = Path("models/model_int8.tflite")

METRICS_DIR = Path("metrics")
DATASET_INFO = METRICS_DIR / "dataset.json"
LEARNING_CURVE = METRICS_DIR / "learning_curve.csv"  # loss and accuracy per epoch
METRICS = METRICS_DIR / "metrics.json"
PREDICTIONS = METRICS_DIR / "predictions.csv"
PLOTS_DIR = METRICS_DIR / "plots"
EXPORT_METRICS = METRICS_DIR / "export.json"
FIELD_METRICS = METRICS_DIR / "field.json"  # the exported model on images made from the test split
# Outputs with `cache: false` in dvc.yaml: committed to git, so every clone has them. A missing
# one is a change to report and is restored by git; DVC caches (and `dvc pull`s) the rest.
GIT_TRACKED = (DATASET_INFO, LEARNING_CURVE, METRICS, PREDICTIONS, PLOTS_DIR, EXPORT_METRICS, FIELD_METRICS)
# Outputs with `persist: true`: DVC leaves them in place while their stage runs (it deletes the
# others first), so a failed field stage keeps the last complete scores, and the collected store,
# which no stage writes, is never lost to a run.
PERSISTED = (FIELD_METRICS, COLLECTED)
# Outputs no stage writes: people add to them. A change to one is new data for `dvc repro` to
# record, never another run's file that `dvc checkout` should put back (that would delete it).
USERS_DATA = (COLLECTED,)

# Written by `python -m pipeline.review.report` and `python -m pipeline.review.history`, not by DVC stages.
REPORT_DIR = Path("report")
HISTORY_PLOT = Path("history.png")


def prepared(split: str) -> Path:
    """Path of one prepared split: `train`, `val` or `test`."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}, expected one of {SPLITS}")
    return PREPARED_DIR / f"{split}.npz"


# What each stage writes; the dvc.yaml consistency test compares these with its `outs`.
STAGE_OUTPUTS = {
    "fetch": [RAW, DATASET_INFO],
    "preprocess": [prepared(s) for s in SPLITS],
    "collected": [COLLECTED, COLLECTED_TRAIN, COLLECTED_TEST],
    "train": [MODEL, LEARNING_CURVE],
    "evaluate": [METRICS, PREDICTIONS],
    "plot": [PLOTS_DIR],
    "export": [SAVED_MODEL, LITERT_FLOAT32, LITERT_INT8, EXPORT_METRICS],
    "field": [FIELD_METRICS],
}


def stage_output(path: str | Path) -> Path | None:
    """`path` relative to the repository root if it is a stage's output or inside one, else None.

    Relative paths are taken from the working directory, the repository root where DVC runs
    the stages; `/tmp/model.keras` or a copy elsewhere is nothing the pipeline can restore.
    """
    relative = Path(os.path.relpath(os.path.abspath(path)))
    outputs = [output for outputs in STAGE_OUTPUTS.values() for output in outputs]
    return relative if _within(relative, outputs) else None


def tracked_by_git(path: str | Path) -> bool:
    """Whether `path` (relative to the repository root) is in GIT_TRACKED or inside one of its folders."""
    return _within(Path(path), GIT_TRACKED)


def users_data(path: str | Path) -> bool:
    """Whether `path` (relative to the repository root) is in USERS_DATA or inside one of its folders."""
    return _within(Path(path), USERS_DATA)


def _within(path: Path, outputs: Iterable[Path]) -> bool:
    return any(path == output or output in path.parents for output in outputs)
