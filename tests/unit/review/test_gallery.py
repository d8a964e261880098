"""The gallery of collected digits: its layout, the "+N more" of a long row, and stable bytes."""

import io

import numpy as np
from PIL import Image

from pipeline.collect.store import png_of
from pipeline.review import gallery

SIDE = 28 * gallery.SCALE
STEP = SIDE + gallery.GAP
LEFT = gallery.MARGIN + gallery.LABEL_WIDTH  # where a row's first digit starts


def digit(seed: int) -> bytes:
    """A 28x28 stored as the collected store writes it: a random stroke, light on black."""
    pixels = np.zeros((28, 28), np.float32)
    pixels[4:24, 10 + seed % 8 : 14 + seed % 8] = np.random.default_rng(seed).random((20, 4))
    return png_of(pixels)


def opened(raw: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(raw))
    image.load()
    return image


def test_a_row_per_label_each_digit_at_scale_where_it_belongs():
    rows = [
        gallery.Row("3", tuple(gallery.Digit(digit(seed)) for seed in range(4))),
        gallery.Row("8", (gallery.Digit(digit(9), framed=True),)),
    ]
    image = opened(gallery.draw(rows, legend="framed: relabelled"))
    assert image.mode == "RGB"
    assert image.size == (
        LEFT + 4 * STEP + gallery.MARGIN,  # the widest row; no "+N more" column
        gallery.MARGIN + 2 * (SIDE + gallery.MARGIN) + gallery.MORE_SIZE + gallery.MARGIN,  # two rows, a legend
    )
    for row, seeds in enumerate([range(4), [9]]):
        top = gallery.MARGIN + row * (SIDE + gallery.MARGIN)
        for column, seed in enumerate(seeds):
            left = LEFT + column * STEP
            drawn = np.asarray(image.crop((left, top, left + SIDE, top + SIDE)).convert("L"))
            expected = np.asarray(opened(digit(seed)).resize((SIDE, SIDE), Image.Resampling.NEAREST))
            assert np.array_equal(drawn, expected), (row, column)
    framed_top = gallery.MARGIN + SIDE + gallery.MARGIN
    assert image.getpixel((LEFT - 1, framed_top + SIDE // 2)) == gallery.FRAME  # the relabelled digit's frame
    assert image.getpixel((LEFT - 1, gallery.MARGIN + SIDE // 2)) == gallery.BACKGROUND  # the others have none
    label_column = np.asarray(image.crop((gallery.MARGIN, gallery.MARGIN, LEFT, gallery.MARGIN + SIDE)))
    assert (label_column == 255).all(axis=2).any()  # the label is written in white


def test_a_long_row_stops_at_per_row_and_says_how_many_more():
    many = tuple(gallery.Digit(digit(seed)) for seed in range(gallery.PER_ROW + 3))
    image = opened(gallery.draw([gallery.Row("5", many, more=10)]))
    assert image.size == (
        LEFT + gallery.PER_ROW * STEP + gallery.MORE_WIDTH + gallery.MARGIN,
        gallery.MARGIN + SIDE + gallery.MARGIN,
    )
    text = np.asarray(image.crop((LEFT + gallery.PER_ROW * STEP, 0, image.width, image.height)))
    assert (text == 255).all(axis=2).any()  # "+13 more": the 3 past PER_ROW and the 10 never read


def test_same_rows_same_bytes_and_a_broken_file_is_drawn_not_raised():
    rows = [gallery.Row("1", (gallery.Digit(digit(1)), gallery.Digit(b"not a png")))]
    first = gallery.draw(rows)
    assert first == gallery.draw(rows)
    assert first != gallery.draw([gallery.Row("1", (gallery.Digit(digit(2)), gallery.Digit(b"not a png")))])
    cross = opened(first).crop((LEFT + STEP, gallery.MARGIN, LEFT + STEP + SIDE, gallery.MARGIN + SIDE))
    assert cross.getpixel((SIDE // 2, SIDE // 2)) == gallery.BROKEN
