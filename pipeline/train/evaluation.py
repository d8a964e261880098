"""Metrics from predicted probabilities: pure functions of arrays, no model and no disk."""

from typing import Any

import numpy as np

from pipeline.core.datasets import NUM_CLASSES

EPSILON = 1e-7  # Keras clips probabilities the same way before taking the log
DIGITS = 6  # decimals kept in metrics files: beyond float32 noise, and diffs stay readable


def cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean sparse categorical cross-entropy, as Keras computes it."""
    picked = probabilities[np.arange(len(labels)), labels.astype(np.int64)]
    return float(-np.mean(np.log(np.clip(picked, EPSILON, 1.0))))


def confusion(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """10x10 counts: row = true digit, column = predicted digit."""
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(matrix, (actual.astype(np.int64), predicted.astype(np.int64)), 1)
    return matrix


def per_class_scores(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 and support of each digit from a confusion matrix; 0 where a
    denominator is 0 (a digit never predicted, or absent), as scikit-learn's `zero_division=0`."""
    hits = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    precision = _ratio(hits, matrix.sum(axis=0))
    recall = _ratio(hits, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return precision, recall, f1, support


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros(len(numerator)), where=denominator > 0)


def summarize(
    probabilities: np.ndarray,
    labels: np.ndarray,
    curve: list[dict[str, float]],
    param_count: int,
) -> dict[str, Any]:
    """The metrics file: test figures, the final epoch's train/val figures, per-class scores."""
    predicted = probabilities.argmax(axis=1)
    precision, recall, f1, support = per_class_scores(confusion(labels, predicted))
    last = curve[-1]
    per_class = {
        str(digit): {
            "precision": round(float(precision[digit]), DIGITS),
            "recall": round(float(recall[digit]), DIGITS),
            "f1": round(float(f1[digit]), DIGITS),
            "support": int(support[digit]),
        }
        for digit in range(NUM_CLASSES)
    }
    return {
        "test_accuracy": round(float(np.mean(predicted == labels)), DIGITS),
        "test_loss": round(cross_entropy(probabilities, labels), DIGITS),
        "train_accuracy": round(float(last["accuracy"]), DIGITS),
        "train_loss": round(float(last["loss"]), DIGITS),
        "val_accuracy": round(float(last["val_accuracy"]), DIGITS),
        "val_loss": round(float(last["val_loss"]), DIGITS),
        "epochs": len(curve),
        "params": int(param_count),
        "per_class": per_class,
    }


def prediction_rows(probabilities: np.ndarray, labels: np.ndarray) -> list[dict[str, Any]]:
    """One row per test image, in the columns DVC's `confusion` template reads."""
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    return [
        {"index": i, "actual": int(a), "predicted": int(p), "confidence": round(float(c), 4)}
        for i, (a, p, c) in enumerate(zip(labels, predicted, confidence))
    ]
