"""Temporary git repositories whose commits hold hand-written metrics and params: no training."""

import json
import subprocess
from pathlib import Path

import yaml

from testkit import repos

LEARNING_CURVE_HEADER = "epoch,loss,accuracy,val_loss,val_accuracy\n"


def metrics(accuracy: float, loss: float = 0.1, epochs: int = 2, recall: dict[str, float] | None = None) -> dict:
    """A metrics.json in the evaluate stage's layout; `recall` overrides some digits' recall and F1."""
    per_class = {}
    for digit in range(10):
        score = (recall or {}).get(str(digit), 0.95)
        per_class[str(digit)] = {"precision": 0.95, "recall": score, "f1": score, "support": 100}
    return {
        "test_accuracy": accuracy,
        "test_loss": loss,
        "train_accuracy": 0.99,
        "train_loss": 0.02,
        "val_accuracy": 0.97,
        "val_loss": 0.09,
        "epochs": epochs,
        "params": 104938,
        "per_class": per_class,
    }


def write_run(repo: Path, params: dict | str, result: dict | None, figures: bool = True) -> None:
    """params.yaml (a mapping, or text as is: a broken file) and, unless `result` is None, the
    metrics/ files a run would leave."""
    text = params if isinstance(params, str) else yaml.safe_dump(params, sort_keys=False)
    (repo / "params.yaml").write_text(text)
    if result is None:
        return
    (repo / "metrics").mkdir(exist_ok=True)
    (repo / "metrics/metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    if figures:
        epochs = range(1, result["epochs"] + 1)
        lines = "".join(f"{e},{1 / e:.3f},{1 - 0.1 / e:.3f},{1.2 / e:.3f},{1 - 0.12 / e:.3f}\n" for e in epochs)
        (repo / "metrics/learning_curve.csv").write_text(LEARNING_CURVE_HEADER + lines)
        rows = "".join(f"{i},{i % 10},{(i + (i % 7 == 0)) % 10},0.9\n" for i in range(50))
        (repo / "metrics/predictions.csv").write_text("index,actual,predicted,confidence\n" + rows)


def commit(repo: Path, message: str) -> str:
    """Commit everything (`git init` first if needed); the new commit's sha."""
    repos.commit_all(repo, message)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
