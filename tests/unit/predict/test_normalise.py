"""MNIST's normalisation applied to any picture: the model must see what it was trained on."""

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw
from scipy import ndimage

from pipeline import render
from pipeline.predict import images, normalise
from pipeline.predict.images import ImageError
from testkit.glyphs import glyph

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def gray(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float32) / 255


def photos(digits: np.ndarray, seed: int) -> list[Image.Image]:
    return [Image.open(io.BytesIO(content)) for content in render.render_set("photos", digits, seed)]


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def similarity_within_a_pixel(a: np.ndarray, b: np.ndarray) -> float:
    """`similarity` at the best shift of up to a pixel: centring by mass rounds to whole pixels,
    so resampling a picture at another phase can move the same digit by one."""
    shifts = [(r, c) for r in (-1, 0, 1) for c in (-1, 0, 1)]
    return max(similarity(np.roll(a, shift, axis=(0, 1)), b) for shift in shifts)


@pytest.mark.parametrize("digit", range(10))
def test_output_has_mnist_geometry(digit):
    out = normalise.to_mnist(gray(glyph(digit, offset=(70, -40))))
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out.max() == pytest.approx(1.0) and out.min() == 0.0
    rows, cols = np.flatnonzero(out.any(axis=1)), np.flatnonzero(out.any(axis=0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (20, 21)  # fits the 20x20 box
    # Centred by mass, as MNIST is, unless that would push ink out of the field (a top-heavy 7).
    assert np.allclose(ndimage.center_of_mass(out), (14, 14), atol=1.0)


def test_polarity_size_and_position_do_not_matter():
    reference = normalise.to_mnist(gray(glyph(4)))
    for variant in [glyph(4, dark_on_light=False), glyph(4, size=60, offset=(30, 90)), glyph(4, size=300)]:
        assert similarity(normalise.to_mnist(gray(variant)), reference) > 0.9


def test_mnist_digits_pass_through_nearly_unchanged():
    digit = normalise.to_mnist(gray(glyph(2)))  # already MNIST-form: light on black, centred
    assert similarity(normalise.to_mnist(digit), digit) > 0.95


def test_a_fine_pen_on_a_big_page_gets_mnist_thick_strokes():
    page = Image.new("L", (1200, 1200), 240)
    ImageDraw.Draw(page).line([(400, 200), (800, 200), (500, 1000)], fill=20, width=3)  # a thin "7"
    out = normalise.to_mnist(gray(page))
    assert normalise.stroke_width(out) >= 2.0


def test_specks_of_dirt_do_not_move_the_digit():
    clean = gray(glyph(1))
    dirty = clean.copy()
    dirty[3:5, 3:5] = 0  # a speck far from the digit
    assert similarity(normalise.to_mnist(dirty), normalise.to_mnist(clean)) > 0.95


@pytest.mark.parametrize(
    "blank",
    [
        np.ones((100, 100), np.float32),
        np.zeros((100, 100), np.float32),
        np.clip(0.8 + np.random.default_rng(0).normal(0, 0.02, (100, 100)), 0, 1).astype(np.float32),
    ],
    ids=["white", "black", "noisy-paper"],
)
def test_no_ink_means_no_digit_not_a_guess(blank):
    with pytest.raises(ImageError, match="scan.png: no digit found"):
        normalise.to_mnist(blank, "scan.png")


def test_huge_input_is_shrunk_first():
    page = np.ones((4000, 3000), np.float32)
    page[1000:3000, 1400:1600] = 0  # a "1"
    assert normalise.to_mnist(page).shape == (28, 28)


def test_realistic_renderings_normalise_back_to_the_digit():
    digits = np.stack([normalise.to_mnist(gray(glyph(d))) for d in range(10)])
    rendered = photos(digits, seed=0)
    assert len({image.size for image in rendered}) > 3  # several sizes and margins
    scores = [
        similarity_within_a_pixel(normalise.to_mnist(gray(image)), digit) for image, digit in zip(rendered, digits)
    ]
    assert np.median(scores) > 0.8, scores


def test_realistic_set_is_seeded():
    digits = np.stack([normalise.to_mnist(gray(glyph(d))) for d in range(3)])
    first, again, other = (photos(digits, seed) for seed in (1, 1, 2))
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, again))
    assert not all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, other))


def painted_seven(dark_on_light: bool = True) -> np.ndarray:
    """A "7" as a paint program draws it: pure ink on pure paper, no level in between."""
    paper, ink = (255, 0) if dark_on_light else (0, 255)
    image = Image.new("L", (200, 200), paper)
    ImageDraw.Draw(image).line([(50, 40), (150, 40), (90, 170)], fill=ink, width=12)
    return gray(image)


@pytest.mark.parametrize("dark_on_light", [True, False], ids=["dark-on-light", "light-on-dark"])
def test_a_two_tone_digit_normalises_like_its_blurred_copy(dark_on_light):
    two_tone = painted_seven(dark_on_light)
    assert set(np.unique(two_tone)) == {0.0, 1.0}
    out = normalise.to_mnist(two_tone)
    blurred = normalise.to_mnist(ndimage.gaussian_filter(two_tone, 2))
    assert out.max() == 1.0 and (out > 0.5).sum() > 50  # a whole digit, not a dot
    assert np.allclose(ndimage.center_of_mass(out), ndimage.center_of_mass(blurred), atol=1.0)
    assert similarity(out, blurred) > 0.95


def test_nothing_left_to_crop_is_an_image_error_not_a_crash():
    with pytest.raises(ImageError, match="scan.png: no digit found"):
        normalise._crop_digit(np.zeros((30, 30), np.float32), "scan.png")


# --- the families of input users send, each from the image alone ---------------------------------
def mnist_like_seven() -> np.ndarray:
    """A 7 made as MNIST's digits were: drawn large, box-filtered into the 20x20 box (so its
    edges are gray), placed in the 28x28 field by its centre of mass."""
    big = Image.new("L", (200, 200), 0)
    ImageDraw.Draw(big).line([(30, 25), (170, 25), (80, 190)], fill=255, width=22)
    box = big.crop(big.getbbox())
    width, height = box.size
    small = box.resize((round(20 * width / height), 20), Image.Resampling.BOX)
    return normalise._centre_by_mass(np.asarray(small, np.float32) / 255)


def seven_on(paper: float, ink: float, side: int = 160, at: tuple[int, int] = (0, 0), canvas: int = 0) -> np.ndarray:
    """mnist_like_seven's shape, `side` pixels tall, as `ink` on `paper`, `at` an offset in a
    canvas of `canvas` pixels a side (default: a margin of half the side all round)."""
    shape = np.asarray(Image.fromarray(mnist_like_seven()).resize((side, side), Image.Resampling.BILINEAR))
    size = canvas or 2 * side
    page = np.zeros((size, size), np.float32)
    top, left = (size - side) // 2 + at[0], (size - side) // 2 + at[1]
    page[top : top + side, left : left + side] = np.clip(shape, 0, 1)
    return (paper + (ink - paper) * page).astype(np.float32)


def test_an_mnist_form_digit_keeps_its_gray_edges():
    digit = mnist_like_seven()
    edges = (digit > 0.05) & (digit < 0.95)
    out = normalise.to_mnist(digit)
    assert np.abs(out - digit).max() < 0.1  # Otsu's threshold made the edges paper: 0.6 off
    assert ((out > 0.05) & (out < 0.95)).sum() >= 0.9 * edges.sum()


def test_a_sheet_on_a_dark_desk_is_paper_not_the_digit():
    reference = normalise.to_mnist(mnist_like_seven())
    photo = np.full((400, 400), 0.12, np.float32)  # the desk, most of the frame
    photo += np.random.default_rng(1).normal(0, 0.02, photo.shape).astype(np.float32)  # its grain
    photo[120:330, 110:290] = seven_on(paper=0.9, ink=0.15, side=120, canvas=210)[:, 15:195]
    out = normalise.to_mnist(np.clip(photo, 0, 1))
    assert similarity(out, reference) > 0.9  # the old border rule read a filled square


@pytest.mark.parametrize(("paper", "ink"), [(0.45, 0.05), (0.3, 0.02), (0.55, 0.95), (0.2, 0.6)])
def test_dim_or_any_paper_level_gives_the_digit(paper, ink):
    reference = normalise.to_mnist(seven_on(paper=0.0, ink=1.0))  # the same picture, MNIST's levels
    assert similarity(normalise.to_mnist(seven_on(paper, ink)), reference) > 0.95


@pytest.mark.parametrize("name", ["pen-4.png", "marker-7.png", "test53-label5.jpg"])
def test_the_examples_darkened_to_60_percent_read_alike(name):
    gray = images.load_gray(EXAMPLES / name)
    assert similarity(normalise.to_mnist(gray * 0.6), normalise.to_mnist(gray)) > 0.95


def test_a_ruled_page_loses_its_lines_and_keeps_the_digit():
    reference = normalise.to_mnist(mnist_like_seven())
    page = seven_on(paper=0.9, ink=0.1, side=150)
    page[::24][:, :] -= 0.3  # faint lines, one pixel, every 24 rows: through the digit too
    page[1::24][:, :] -= 0.3
    assert similarity(normalise.to_mnist(np.clip(page, 0, 1)), reference) > 0.9


def test_uneven_light_on_a_blank_page_is_still_blank():
    rows, cols = np.mgrid[0:300, 0:400] / 400
    page = 0.6 + 0.2 * rows + 0.1 * cols + np.random.default_rng(2).normal(0, 0.01, rows.shape)
    with pytest.raises(ImageError, match="^page.jpg: no digit found"):
        normalise.to_mnist(np.clip(page, 0, 1).astype(np.float32), "page.jpg")


PICTURES = settings(max_examples=40, deadline=None)


@PICTURES
@given(
    paper=st.floats(0.0, 1.0),
    contrast=st.floats(0.3, 1.0),
    dark_ink=st.booleans(),
    side=st.integers(24, 200),
    offset=st.tuples(st.floats(-0.4, 0.4), st.floats(-0.4, 0.4)),
)
def test_the_digit_survives_paper_level_polarity_contrast_size_and_place(paper, contrast, dark_ink, side, offset):
    ink = paper - contrast if dark_ink else paper + contrast
    assume(0.0 <= ink <= 1.0)
    at = (int(offset[0] * side * 2), int(offset[1] * side * 2))  # anywhere, the digit whole in the frame
    picture = seven_on(paper, ink, side=side, at=at, canvas=3 * side)
    # Against the same size at MNIST's levels: only resampling a smaller or larger copy differs.
    reference = normalise.to_mnist(seven_on(paper=0.0, ink=1.0, side=side, canvas=3 * side))
    assert similarity_within_a_pixel(normalise.to_mnist(picture), reference) > 0.95
    assert similarity_within_a_pixel(normalise.to_mnist(picture), normalise.to_mnist(mnist_like_seven())) > 0.8


def lit(picture: np.ndarray, vignette: float, shadow: float, angle: float, where: float) -> np.ndarray:
    """`picture` under uneven light: darker towards the corners by `vignette`, and beyond a soft
    edge (at `where`, across the frame at `angle`) in a shadow taking `shadow` of the light."""
    rows, cols = np.mgrid[-0.5 : 0.5 : picture.shape[0] * 1j, -0.5 : 0.5 : picture.shape[1] * 1j]
    across = np.cos(angle) * rows + np.sin(angle) * cols - where
    light = (1 - vignette * 2 * (rows**2 + cols**2)) * (1 - shadow / (1 + np.exp(-across / 0.08)))
    return (picture * light).astype(np.float32)


def sheet_on_desk(page: np.ndarray, desk: float = 0.1) -> np.ndarray:
    """`page` lying on a dark desk with a margin of a fifth of its side all round."""
    margin = page.shape[0] // 5
    photo = np.full((page.shape[0] + 2 * margin, page.shape[1] + 2 * margin), desk, np.float32)
    photo[margin:-margin, margin:-margin] = page
    return photo


def test_a_shadow_over_the_sheets_edge_is_not_a_stroke():
    reference = normalise.to_mnist(mnist_like_seven())
    photo = lit(sheet_on_desk(seven_on(paper=0.9, ink=0.15, side=100)), vignette=0.0, shadow=0.5, angle=2.0, where=0.1)
    # A constant fill beyond the sheet made the shadowed rim a dark stroke beside light paper.
    assert similarity(normalise.to_mnist(photo), reference) > 0.9


@PICTURES
@given(
    vignette=st.floats(0.0, 0.5),
    shadow=st.floats(0.0, 0.5),
    angle=st.floats(0, 2 * np.pi),
    where=st.floats(0.0, 0.3),  # up to half the frame in shadow (the ink is then the minority)
    on_desk=st.booleans(),
    offset=st.tuples(st.floats(-0.25, 0.25), st.floats(-0.25, 0.25)),
)
def test_the_digit_survives_uneven_light_and_shadows(vignette, shadow, angle, where, on_desk, offset):
    side = 60
    page = seven_on(
        paper=0.9, ink=0.1, side=side, at=(int(offset[0] * side * 3), int(offset[1] * side * 3)), canvas=4 * side
    )
    photo = lit(sheet_on_desk(page) if on_desk else page, vignette, shadow, angle, where)
    reference = normalise.to_mnist(seven_on(paper=0.0, ink=1.0, side=side, canvas=4 * side))
    assert similarity_within_a_pixel(normalise.to_mnist(photo), reference) > 0.9
