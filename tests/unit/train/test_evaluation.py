"""Metrics from predicted probabilities, checked against hand computations."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import precision_recall_fscore_support

from pipeline.train import evaluation

# Ten test images of digits 0-3; two are wrong (an image of 0 read as 1, one of 2 read as 0).
LABELS = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 3], dtype=np.uint8)
PREDICTED = np.array([0, 0, 1, 1, 1, 2, 2, 0, 3, 3])
LEARNING_CURVE = [
    {"epoch": 1, "loss": 0.9, "accuracy": 0.7, "val_loss": 1.0, "val_accuracy": 0.65},
    {"epoch": 2, "loss": 0.25, "accuracy": 0.93, "val_loss": 0.3125, "val_accuracy": 0.9},
]


def confident(predicted: np.ndarray, top: float = 0.91) -> np.ndarray:
    """Probabilities with `top` on the predicted digit and the rest spread evenly."""
    probabilities = np.full((len(predicted), 10), (1 - top) / 9)
    probabilities[np.arange(len(predicted)), predicted] = top
    return probabilities


def test_cross_entropy_by_hand():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]])
    expected = -(math.log(0.7) + math.log(0.5)) / 2
    assert evaluation.cross_entropy(probabilities, np.array([0, 2])) == pytest.approx(expected)


def test_cross_entropy_clips_zero_probability():
    probabilities = np.array([[1.0, 0.0], [0.0, 1.0]])
    loss = evaluation.cross_entropy(probabilities, np.array([1, 1], dtype=np.uint8))
    assert math.isfinite(loss)
    assert loss == pytest.approx(-math.log(evaluation.EPSILON) / 2)


def test_confusion_counts():
    matrix = evaluation.confusion(LABELS, PREDICTED)
    assert matrix.shape == (10, 10)
    assert matrix.sum() == 10
    assert matrix[0, 0] == 2 and matrix[0, 1] == 1  # rows are the true digit
    assert matrix[2, 0] == 1 and matrix[2, 2] == 2
    assert matrix[1, 1] == 2 and matrix[3, 3] == 2
    assert np.trace(matrix) == 8


def test_summarize_test_figures():
    summary = evaluation.summarize(confident(PREDICTED), LABELS, LEARNING_CURVE, param_count=104_938)
    assert summary["test_accuracy"] == 0.8
    expected_loss = -(8 * math.log(0.91) + 2 * math.log(0.01)) / 10  # wrong ones got 0.09/9
    assert summary["test_loss"] == pytest.approx(expected_loss, abs=1e-6)
    assert summary["params"] == 104_938


def test_summarize_per_class_scores():
    per_class = evaluation.summarize(confident(PREDICTED), LABELS, LEARNING_CURVE, 1)["per_class"]
    assert sorted(per_class, key=int) == [str(digit) for digit in range(10)]
    # digit 0: predicted for images 0, 1, 7 (two right); three true zeros, two found
    assert per_class["0"] == {"precision": 0.666667, "recall": 0.666667, "f1": 0.666667, "support": 3}
    # digit 1: predicted for images 2, 3, 4 (two right); both true ones found
    assert per_class["1"] == {"precision": 0.666667, "recall": 1.0, "f1": 0.8, "support": 2}
    # digit 2: every prediction right, one of three missed
    assert per_class["2"] == {"precision": 1.0, "recall": 0.666667, "f1": 0.8, "support": 3}
    assert per_class["3"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert per_class["7"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=1, max_size=60))
def test_per_class_scores_are_scikit_learns(pairs):
    # The pipeline computed these with scikit-learn before; the figures in metrics.json must not move.
    actual, predicted = (np.array(column) for column in zip(*pairs))
    expected = precision_recall_fscore_support(actual, predicted, labels=list(range(10)), zero_division=0)
    for ours, theirs in zip(evaluation.per_class_scores(evaluation.confusion(actual, predicted)), expected):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_summarize_takes_train_and_val_figures_from_the_last_epoch():
    summary = evaluation.summarize(confident(PREDICTED), LABELS, LEARNING_CURVE, 1)
    assert summary["epochs"] == 2
    assert summary["train_loss"] == 0.25 and summary["train_accuracy"] == 0.93
    assert summary["val_loss"] == 0.3125 and summary["val_accuracy"] == 0.9


def test_summarize_is_plain_json():
    summary = evaluation.summarize(confident(PREDICTED).astype(np.float32), LABELS, LEARNING_CURVE, np.int64(5))
    assert json.loads(json.dumps(summary)) == summary


def test_prediction_rows():
    probabilities = confident(PREDICTED)
    probabilities[7] = confident(np.array([0]), top=0.55557)[0]
    rows = evaluation.prediction_rows(probabilities, LABELS)
    assert len(rows) == 10
    assert rows[0] == {"index": 0, "actual": 0, "predicted": 0, "confidence": 0.91}
    assert rows[7] == {"index": 7, "actual": 2, "predicted": 0, "confidence": 0.5556}
    assert [row["predicted"] for row in rows] == PREDICTED.tolist()
    assert all(type(row["actual"]) is int and type(row["predicted"]) is int for row in rows)
