"""The field set's renderers: seeded bytes, files the reader opens, each source what it claims.

Synthetic digits only (strokes drawn with Pillow at 4x, averaged down to MNIST's 28x28): no
MNIST needed, and each test knows exactly what it drew.
"""

import hashlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from pipeline import render
from pipeline.predict import images
from pipeline.render import drawn, exports, scans
from testkit.repos import ROOT

STROKES = {  # digit -> polylines on a 112x112 canvas, MNIST's 20-pixel box at 4x
    7: [[(24, 20), (88, 20), (48, 92)]],
    4: [[(70, 92), (70, 20), (24, 70), (90, 70)]],
    1: [[(60, 18), (52, 94)]],
}


def digit(strokes: list, width: int = 10) -> np.ndarray:
    """A 28x28 light-on-black digit in MNIST's form: a pen about MNIST's width, soft edges."""
    big = Image.new("L", (112, 112), 0)
    pen = ImageDraw.Draw(big)
    for line in strokes:
        pen.line(line, fill=255, width=width, joint="curve")
    return np.asarray(big.resize((28, 28), Image.Resampling.BOX), np.float32) / 255


def zero() -> np.ndarray:
    big = Image.new("L", (112, 112), 0)
    ImageDraw.Draw(big).ellipse((30, 16, 82, 96), outline=255, width=10)
    return np.asarray(big.resize((28, 28), Image.Resampling.BOX), np.float32) / 255


DIGITS = np.stack([digit(STROKES[7]), digit(STROKES[4]), zero(), digit(STROKES[1])])
MANY = np.repeat(DIGITS, 6, axis=0)  # enough renderings for every variant of a source to turn up


def opened(content: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(content))
    image.load()
    return image


def gray(content: bytes) -> np.ndarray:
    return images.load_gray_bytes(content, "test")


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


# Every source


@pytest.mark.parametrize("source", render.SOURCES)
def test_the_same_seed_gives_the_same_bytes_and_another_seed_others(source):
    first, again, other = (render.render_set(source, DIGITS, seed) for seed in (3, 3, 4))
    assert first == again
    if source == "mnist_png":  # the digit untouched: nothing random in it
        assert first == other
    else:
        assert all(a != b for a, b in zip(first, other))


@pytest.mark.parametrize("source", render.SOURCES)
def test_a_set_is_one_generator_seeded_by_the_seed_and_the_source(source):
    rng = np.random.default_rng([5, render.SOURCES.index(source)])
    assert render.render_set(source, DIGITS, 5) == [render.render(source, d, rng) for d in DIGITS]


def test_the_bytes_are_the_same_in_another_process_and_tensorflow_is_never_imported(tmp_path):
    code = (
        "import hashlib, json, sys; import numpy as np; from pipeline import render; "
        "digits = np.load(sys.argv[1]); "
        "hashes = {s: hashlib.sha256(b''.join(render.render_set(s, digits, 9))).hexdigest() for s in render.SOURCES}; "
        "print(json.dumps({'hashes': hashes, 'tensorflow': any(m.startswith('tensorflow') for m in sys.modules)}))"
    )
    here = {s: hashlib.sha256(b"".join(render.render_set(s, DIGITS, 9))).hexdigest() for s in render.SOURCES}
    path = tmp_path / "digits.npy"
    np.save(path, DIGITS)
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # another hash seed: no set or str-hash order leaks in
    run = subprocess.run(
        [sys.executable, "-c", code, str(path)], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    there = json.loads(run.stdout)
    assert there["hashes"] == here
    assert there["tensorflow"] is False


@pytest.mark.parametrize("source", render.SOURCES)
def test_every_file_decodes_to_a_grayscale_picture_of_ink_and_paper(source):
    for content in render.render_set(source, MANY, 0):
        picture = gray(content)
        assert picture.ndim == 2 and picture.dtype == np.float32
        assert 0 <= picture.min() and picture.max() <= 1
        assert picture.max() - picture.min() > 0.2  # ink and paper told apart, even in dim light


def test_an_unknown_source_is_a_value_error_naming_it_and_the_known_ones():
    known = "unknown field source 'faxes'; known: mnist_png, photos, drawn, scans, app_exports$"
    with pytest.raises(ValueError, match=known):
        render.render("faxes", DIGITS[0], np.random.default_rng(0))
    with pytest.raises(ValueError, match=known):
        render.render_set("faxes", DIGITS, 0)


# mnist_png


def test_mnist_png_is_the_digit_as_an_8_bit_png():
    digits = np.concatenate([DIGITS, ndimage.gaussian_filter(DIGITS, (0, 0.7, 0.7))])  # levels off 255's grid too
    for content, original in zip(render.render_set("mnist_png", digits, 0), digits):
        image = opened(content)
        assert image.format == "PNG" and image.mode == "L" and image.size == (28, 28)
        np.testing.assert_array_equal(np.asarray(image), np.round(original * 255).astype(np.uint8))


# photos


def test_photos_are_colour_jpegs_of_modest_size():
    shapes = set()
    for content in render.render_set("photos", MANY, 0):
        image = opened(content)
        assert image.format == "JPEG" and image.mode == "RGB"
        assert max(image.size) <= 400
        shapes.add(image.size)
    assert len(shapes) > len(MANY) // 2  # sizes and margins vary


def test_photos_are_sometimes_of_a_sheet_on_a_darker_desk():
    darker = 0
    for content in render.render_set("photos", MANY, 0):
        picture = gray(content)
        border = np.concatenate([picture[0], picture[-1], picture[:, 0], picture[:, -1]])
        paper = np.percentile(picture, 90)  # most of a photo of a digit is paper
        darker += np.median(border) < 0.5 * paper  # a desk: vignetting and shadows darken less
    assert 0 < darker < len(MANY)


def test_photos_are_written_in_black_blue_and_red():
    pens = set()
    for content in render.render_set("photos", MANY, 1):
        rgb = np.asarray(opened(content), np.float32) / 255
        luminance = rgb @ [0.299, 0.587, 0.114]
        ink = rgb[luminance <= np.percentile(luminance, 1)].mean(axis=0)  # the darkest: the strokes' cores
        pens.add("blue" if ink[2] - ink[0] > 0.08 else "red" if ink[0] - ink[2] > 0.08 else "black")
    assert pens == {"black", "blue", "red"}


# drawn


def test_drawn_digits_are_the_page_s_opaque_280x280_png():
    for content in render.render_set("drawn", MANY, 1):
        image = opened(content)
        assert image.format == "PNG" and image.size == (280, 280)
        assert image.mode == "RGB" or (image.mode == "RGBA" and np.asarray(image)[..., 3].min() == 255)
        pad = np.asarray(image.convert("L"))
        assert pad[[0, -1]].max() < 128 and pad[:, [0, -1]].max() < 128  # the whole digit on the pad


def test_drawn_strokes_are_the_page_s_20_pixel_pen_at_every_size():
    heights = []
    for content in render.render_set("drawn", np.repeat(DIGITS[3:], 12, axis=0), 2):  # a "1": one straight stroke
        ink = np.asarray(opened(content).convert("L")) > 127
        heights.append(np.ptp(np.flatnonzero(ink.any(axis=1))))
        # Across a band n pixels wide, the middle pixel is (n + 1) / 2 from the nearest outside one.
        assert 2 * ndimage.distance_transform_edt(ink).max() - 1 == pytest.approx(20, abs=1.5)
    assert min(heights) < 120 and max(heights) > 180  # small and large, the same pen


def test_drawn_digits_have_about_the_pen_s_width_throughout():
    for content in render.render_set("drawn", MANY, 3):
        ink = np.asarray(opened(content).convert("L")) > 127
        outline = (ink & ~ndimage.binary_erosion(ink)).sum()
        assert 14 < ink.sum() / (outline / 2) < 24  # area over half the outline: a stroke's width


def test_drawn_digits_are_drawn_small_in_corners_and_large_across_the_pad():
    boxes = []
    for content in render.render_set("drawn", MANY, 4):
        ink = np.asarray(opened(content).convert("L")) > 127
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        boxes.append((rows[0], rows[-1], cols[0], cols[-1]))
    boxes = np.array(boxes)
    heights = boxes[:, 1] - boxes[:, 0]
    assert heights.min() < 120 and heights.max() > 200
    centres = (boxes[:, [0, 2]] + boxes[:, [1, 3]]) / 2
    assert np.abs(centres - 140).max() > 70  # some far off-centre


def test_thinning_leaves_a_bar_one_pixel_wide():
    bar = np.zeros((30, 60), bool)
    bar[10:20, 5:55] = True
    skeleton = drawn.thin(bar)
    assert (skeleton[:, 12:48].sum(axis=0) == 1).all()  # one pixel across the bar, all along it
    assert ndimage.label(skeleton, structure=np.ones((3, 3)))[1] == 1


def test_thinning_keeps_a_slanted_stroke_connected_and_a_ring_a_ring():
    rows, cols = np.mgrid[0:60, 0:60]
    skeleton = drawn.thin(np.abs(rows - cols) < 5)  # a diagonal stroke 9 pixels wide
    assert not (skeleton[:-1, :-1] & skeleton[1:, :-1] & skeleton[:-1, 1:] & skeleton[1:, 1:]).any()  # no 2x2 block
    assert ndimage.label(skeleton, structure=np.ones((3, 3)))[1] == 1
    distance = np.hypot(rows - 30, cols - 30)
    ring = drawn.thin((distance > 12) & (distance < 22))
    assert 0 < ring.sum() < 2 * np.pi * 22  # thinner than the ring's outer edge
    assert ndimage.label(ring, structure=np.ones((3, 3)))[1] == 1
    assert ndimage.label(~ring)[1] == 2  # the hole stays: inside and outside


# scans


def test_scans_are_dark_ink_on_light_paper():
    for content in render.render_set("scans", MANY, 0):
        image = opened(content)
        assert image.format in ("PNG", "JPEG") and image.mode == "L"
        picture = gray(content)
        assert np.median(picture) > 0.7 and picture.min() < 0.4


def test_a_low_resolution_scan_keeps_a_few_pixels_of_the_digit_enlarged():
    rng = np.random.default_rng(0)
    for _ in range(8):
        scan = scans.low_resolution(DIGITS[0], paper=0.9, ink=0.1, grain=0.0, rng=rng)
        assert 64 <= scan.shape[0] <= 128
        # Enlarged from at most 22x22 pixels: shrunk back that far, it comes back nearly unchanged.
        small = np.asarray(Image.fromarray(scan).resize((22, 22), Image.Resampling.BOX))
        again = np.asarray(Image.fromarray(small).resize(scan.shape[::-1], Image.Resampling.BILINEAR))
        assert correlation(again, scan) > 0.9


def test_markers_and_fine_pens_are_clearly_thicker_and_thinner_than_mnist():
    rng = np.random.default_rng(0)
    for original in DIGITS:
        width = scans.stroke_width(render.resized(original, (scans.PEN_SIDE,) * 2) > 0.5)
        pieces = ndimage.label(render.resized(original, (scans.PEN_SIDE,) * 2) > 0.5, structure=np.ones((3, 3)))[1]
        for _ in range(3):
            assert scans.stroke_width(scans.marker(original, rng) > 0.5) > 1.5 * width
            fine = scans.fine_pen(original, rng) > 0.5
            assert scans.stroke_width(fine) < 0.75 * width
            assert ndimage.label(fine, structure=np.ones((3, 3)))[1] == pieces  # thinner, not broken


# app_exports


def shape() -> np.ndarray:
    return render.resized(DIGITS[1], (90, 90))


def test_app_exports_are_alpha_only_inverted_palette_16_and_12_bit_pngs():
    kinds = set()
    for content in render.render_set("app_exports", MANY, 2):
        image = opened(content)
        assert image.format == "PNG" and 28 <= min(image.size) and max(image.size) <= 200
        if image.mode == "I;16":
            values = np.asarray(image)
            full = values.min() == 0 and values.max() == 65535
            assert full or values.max() <= 4095  # 16 bits all used, or 12 at most
            kinds.add("16-bit" if full else "12-bit")
        else:
            kinds.add(image.mode)
    assert kinds == {"RGBA", "P", "16-bit", "12-bit"}


@pytest.mark.parametrize("seed", range(4))
def test_an_alpha_only_export_has_one_colour_and_the_shape_in_alpha(seed):
    image = opened(exports.alpha_only(shape(), np.random.default_rng(seed)))
    assert image.mode == "RGBA"
    pixels = np.asarray(image)
    assert (pixels[..., :3] == pixels[0, 0, :3]).all() and pixels[0, 0, 0] in (0, 255)
    assert correlation(pixels[..., 3], shape()) > 0.99
    assert abs(correlation(gray(exports.alpha_only(shape(), np.random.default_rng(seed))), shape())) > 0.99  # read back


@pytest.mark.parametrize("seed", range(6))
def test_an_inverted_palette_decodes_to_the_digit_s_luminance(seed):
    content = exports.inverted_palette(shape(), np.random.default_rng(seed))
    image = opened(content)
    assert image.mode == "P"
    indices, decoded = np.asarray(image).astype(float), gray(content)
    palette = np.frombuffer(image.palette.tobytes(), np.uint8).reshape(-1, 3)[: int(indices.max()) + 1, 0]
    assert (np.diff(palette.astype(int)) < 0).all()  # the palette runs from white down to black
    assert correlation(indices, decoded) < -0.99  # stored indices mean the opposite of the luminance
    assert abs(correlation(decoded, shape())) > 0.99  # which is the digit, light or dark


@pytest.mark.parametrize("seed", range(4))
def test_16_bit_exports_use_the_full_range(seed):
    content = exports.sixteen_bit(shape(), np.random.default_rng(seed))
    values = np.asarray(opened(content))
    assert opened(content).mode == "I;16" and content[24] == 16  # the PNG header's bit depth
    assert values.min() == 0 and values.max() == 65535
    assert abs(correlation(values, shape())) > 0.99


@pytest.mark.parametrize("seed", range(16))
def test_12_bit_exports_hold_12_bit_values_in_a_16_bit_png(seed):
    content = exports.twelve_bit(shape(), np.random.default_rng(seed))
    values = np.asarray(opened(content))
    assert opened(content).mode == "I;16" and content[24] == 16
    assert values.max() <= 4095 and values.max() > 2047  # 12 bits used, none beyond
    assert abs(correlation(values, shape())) > 0.99
