"""benchmarks/writer.py: seeded bytes, page drawings the normaliser reads, loops that stay open."""

import io

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from benchmarks import writer
from pipeline.predict.predictor import Upload, prepare

# The closed loops each digit's template draws, in every style (2's and 4's depend on the style).
HOLES = {0: 1, 1: 0, 3: 0, 5: 0, 6: 1, 7: 0, 8: 2, 9: 1}
LEAST_HOLE = 80  # pixels of the page: a smaller pocket of paper is an acute join's, not a loop


def holes(content: bytes) -> int:
    """Areas of paper the ink encloses, at least LEAST_HOLE pixels."""
    paper = np.asarray(Image.open(io.BytesIO(content)).convert("L")) > 128
    labels, count = ndimage.label(paper)
    sizes = np.bincount(labels.ravel())
    edge = set(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]).tolist())
    return sum(1 for part in range(1, count + 1) if part not in edge and sizes[part] >= LEAST_HOLE)


def test_the_same_seed_gives_the_same_bytes_another_seed_other_digits():
    images, labels = writer.digits(8, seed=5)
    again, labels_again = writer.digits(8, seed=5)
    other, _ = writer.digits(8, seed=6)
    assert images == again and labels.tolist() == labels_again.tolist()
    assert not set(images) & set(other)
    assert len(set(images)) == len(images)  # no two digits alike, even of the same label


def test_each_digit_is_drawn_about_as_often():
    _, labels = writer.digits(25, seed=1)
    assert set(np.bincount(labels, minlength=10).tolist()) == {2, 3}


@pytest.mark.parametrize("style", writer.STYLES)
def test_every_style_draws_dark_ink_on_a_white_page_with_the_digits_loops(style):
    images, labels = writer.digits(10, seed=3, style=style)
    for content, label in zip(images, labels.tolist()):
        page = np.asarray(Image.open(io.BytesIO(content)).convert("L"))
        assert page.shape == (writer.CANVAS, writer.CANVAS)
        assert page.min() == writer.INK and np.median(page) == writer.PAPER
        edge = np.concatenate([page[0], page[-1], page[:, 0], page[:, -1]])
        assert (edge == writer.PAPER).all(), "the digit runs off the page"
        if label in HOLES:
            assert holes(content) == HOLES[label], f"{style} {label}"


def test_the_normaliser_finds_one_digit_in_every_image_of_the_writer():
    images, _ = writer.digits(10, seed=4)
    prepared = prepare([Upload(f"{i}.png", content) for i, content in enumerate(images)])
    assert [p.error for p in prepared] == [None] * len(images)
    for p in prepared:
        assert p.digit28.shape == (28, 28) and 0.05 < (p.digit28 > 0.5).mean() < 0.4
