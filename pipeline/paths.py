"""Every file the pipeline reads or writes, defined once.

Paths are relative to the repository root, which is where DVC runs each stage; `dvc.yaml`
names the same files and `tests/test_dvc_yaml.py` checks that the two agree.
"""
from pathlib import Path

PARAMS = Path("params.yaml")

RAW = Path("data/raw/mnist.npz")
PREPARED_DIR = Path("data/prepared")
SPLITS = ("train", "val", "test")
MODEL = Path("models/model.keras")

METRICS_DIR = Path("metrics")
DATASET_INFO = METRICS_DIR / "dataset.json"
HISTORY = METRICS_DIR / "history.csv"
METRICS = METRICS_DIR / "metrics.json"
PREDICTIONS = METRICS_DIR / "predictions.csv"
PLOTS_DIR = METRICS_DIR / "plots"

# Written by `python -m pipeline.report` and `python -m pipeline.history`, not by DVC stages.
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
    "train": [MODEL, HISTORY],
    "evaluate": [METRICS, PREDICTIONS],
    "plot": [PLOTS_DIR],
}
