"""The field stage's score of the collected test part: the files read as uploads, through the
decoder and the normaliser, overall and per label; a file with no digit counts as wrong."""

import io

import numpy as np
from PIL import Image

from pipeline.predict.predictor import Predictor, Upload
from pipeline.train import field
from testkit.glyphs import glyph


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_collected_scores_per_label_count_a_wrong_label_and_a_blank(template_litert):
    predictor = Predictor.from_path(template_litert)
    uploads = [Upload(f"{d}.png", png(glyph(d))) for d in (3, 3, 5, 8)]
    uploads.append(Upload("blank.png", png(Image.new("L", (60, 60), 255))))
    labels = np.array([3, 3, 5, 1, 1])  # the 8 labelled 1 by its user; the blank too
    scores = field.score_collected(predictor, uploads, labels)
    assert scores == {
        "digits": 5,
        "accuracy": 0.6,
        "no_digit_found": 1,
        "per_label": {
            "1": {"digits": 2, "accuracy": 0.0},
            "3": {"digits": 2, "accuracy": 1.0},
            "5": {"digits": 1, "accuracy": 1.0},
        },
    }
