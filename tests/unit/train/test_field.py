"""The field stage's score of the collected test part: the digits as stored (the 28x28s the
service fed the model), overall and per label, a digit filed under a wrong label counted wrong."""

import numpy as np

from pipeline.predict.predictor import Predictor
from pipeline.train import field
from testkit.glyphs import stored_digit


def test_collected_scores_per_label_count_a_wrong_label(template_litert):
    predictor = Predictor.from_path(template_litert)
    digits = np.stack([stored_digit(d) for d in (3, 3, 5, 8, 1)])
    labels = np.array([3, 3, 5, 1, 1])  # the 8 filed as a 1 by its user
    assert field.score_collected(predictor, digits, labels) == {
        "digits": 5,
        "accuracy": 0.8,
        "per_label": {
            "1": {"digits": 2, "accuracy": 0.5},
            "3": {"digits": 2, "accuracy": 1.0},
            "5": {"digits": 1, "accuracy": 1.0},
        },
    }
