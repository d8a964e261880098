"""The field evaluation: the model users get, scored on the kinds of image users send.

`dvc metrics diff` used to track accuracy on the prepared arrays only, and users never send
those: they send PNGs, photos, drawings on the page, scans and app exports, through the
decoder and the normaliser. Here each source of `pipeline.render` turns the same seeded
choice of *test* digits (never a training digit) into encoded image files, and the exported
model is scored on them through `Predictor`, exactly as `python -m pipeline.predict` and the
service read an upload. A file in which no digit is found counts as wrong. Beside the sources
stands `arrays`: the same model on the same digits as prepared arrays, the number the
normaliser must not lose on `mnist_png`.
"""

from typing import Any

import numpy as np

from pipeline import render
from pipeline.core.errors import DataError
from pipeline.predict.predictor import Predictor, Upload
from pipeline.train.evaluation import DIGITS


def choose(count: int, total: int, seed: int) -> np.ndarray:
    """`count` of `total` test digits, chosen by `seed`, in their test-set order."""
    if count > total:
        raise DataError(f"field.images: {count} is more than the {total} test images")
    return np.sort(np.random.default_rng(seed).choice(total, size=count, replace=False))


def score(predictor: Predictor, images: np.ndarray, labels: np.ndarray, seed: int) -> dict[str, Any]:
    """Accuracy per source of `render.SOURCES` (and on the arrays), and the files per source in
    which no digit was found."""
    arrays = predictor.probabilities(images).argmax(axis=1)
    scores: dict[str, Any] = {"images_per_source": len(labels), "arrays": _accuracy(arrays == labels)}
    refused = {}
    for source in render.SOURCES:
        files = render.render_set(source, images, seed)
        uploads = (Upload(f"{source}/{index}", content) for index, content in enumerate(files))
        predictions = predictor.predict(uploads)
        scores[source] = _accuracy([p.error is None and p.digit == label for p, label in zip(predictions, labels)])
        refused[source] = sum(p.error is not None for p in predictions)
    scores["no_digit_found"] = refused
    return scores


def score_collected(predictor: Predictor, images: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Accuracy on the collected test part, overall and per label (the labels it has).

    The digits are as the store keeps them, the 28x28s the service fed the model when people sent
    them: that reading of their upload is the served path's, and is scored as it was.
    """
    correct = predictor.probabilities(images).argmax(axis=1) == labels
    per_label = {
        str(label): {"digits": int((labels == label).sum()), "accuracy": _accuracy(correct[labels == label])}
        for label in np.unique(labels)
    }
    return {"digits": len(labels), "accuracy": _accuracy(correct), "per_label": per_label}


def _accuracy(correct: Any) -> float:
    return round(float(np.mean(correct)), DIGITS)
