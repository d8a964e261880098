"""The field set's renderers: seeded bytes, files the reader opens, each source what it claims."""
import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipeline import render
from pipeline.predict import images
from pipeline.render import drawn


def seven() -> np.ndarray:
    """A 28x28 light-on-black 7, MNIST's form."""
    big = Image.new("L", (112, 112), 0)
    ImageDraw.Draw(big).line([(24, 20), (88, 20), (48, 92)], fill=255, width=10)
    return np.asarray(big.resize((28, 28), Image.Resampling.BOX), np.float32) / 255


DIGITS = np.stack([seven(), seven()[:, ::-1], seven().T])


@pytest.mark.parametrize("source", render.SOURCES)
def test_the_same_seed_gives_the_same_bytes_and_another_seed_others(source):
    first, again, other = (render.render_set(source, DIGITS, seed) for seed in (3, 3, 4))
    assert first == again
    if source != "mnist_png":  # the digit untouched: no randomness to differ
        assert first != other


@pytest.mark.parametrize("source", render.SOURCES)
def test_every_file_opens_as_a_picture_of_the_digit(source):
    for index, content in enumerate(render.render_set(source, DIGITS, 0)):
        gray = images.load_gray_bytes(content, f"{source}/{index}")
        assert gray.ndim == 2 and gray.dtype == np.float32 and 0 <= gray.min() < gray.max() <= 1
        assert gray.max() - gray.min() > 0.3, source  # ink and paper, told apart


def test_mnist_png_is_the_digits_own_bytes():
    image = Image.open(io.BytesIO(render.render_set("mnist_png", DIGITS[:1], 0)[0]))
    assert image.mode == "L" and image.size == (28, 28)
    np.testing.assert_array_equal(np.asarray(image), np.round(DIGITS[0] * 255).astype(np.uint8))


def test_drawn_digits_are_the_page_s_canvas_and_pen():
    for content in render.render_set("drawn", DIGITS, 1):
        image = Image.open(io.BytesIO(content))
        assert image.size == (280, 280)
        ink = np.asarray(image.convert("L")) > 127
        one_side = ink & ~np.roll(ink, 1, 0) | ink & ~np.roll(ink, 1, 1)  # top and left edges: half the outline
        width = ink.sum() / one_side.sum()  # area over half the outline: a stroke's width
        assert 12 < width < 26, width  # the page's 20-pixel pen (joins and caps add area)


def test_thinning_leaves_a_connected_line_one_pixel_wide():
    bar = np.zeros((20, 40), bool)
    bar[6:14, 4:36] = True
    skeleton = drawn.thin(bar)
    assert skeleton.sum() > 20 and skeleton.sum(axis=0).max() == 1  # one pixel across the bar
    from scipy import ndimage

    assert ndimage.label(skeleton, structure=np.ones((3, 3)))[1] == 1


def test_app_exports_include_alpha_only_and_12_bit_files():
    kinds = set()
    for content in render.render_set("app_exports", np.repeat(DIGITS, 8, axis=0), 2):
        image = Image.open(io.BytesIO(content))
        if image.mode == "RGBA":
            rgb = np.asarray(image)[..., :3]
            assert (rgb == rgb.flat[0]).all()  # one colour: the shape is in the alpha channel alone
            kinds.add("alpha")
        elif image.mode.startswith("I"):
            kinds.add("12-bit" if np.asarray(image).max() <= 4095 else "16-bit")
        elif image.mode == "P":
            kinds.add("palette")
    assert kinds == {"alpha", "12-bit", "16-bit", "palette"}


def test_an_unknown_source_is_named():
    with pytest.raises(ValueError, match="unknown field source 'faxes'; known: mnist_png"):
        render.render_set("faxes", DIGITS, 0)


def test_rendering_imports_no_tensorflow():
    code = "import sys, numpy as np; from pipeline import render; render.render_set('photos', np.zeros((1, 28, 28)), 0); print('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
