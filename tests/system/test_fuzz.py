"""Random bytes and random mutations of valid files thrown at every parser of untrusted input,
and random pictures (two-tone drawings in every form, non-finite pixels, damaged EXIF) thrown at
the image reader and the normaliser.

The promise: the documented error type (DataError for data files, ImageError for images) or a
valid result; never another exception, a hang, or an allocation far beyond the input's size.
"""

import io
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, TiffTags

from pipeline.core import datasets
from pipeline.core.errors import DataError
from pipeline.predict import images, normalise
from pipeline.predict.images import ImageError
from testkit.builders import idx_bytes
from testkit.memory import peak_allocation
from testkit.mutations import BYTE_EDITS, edit_bytes

# Timing is checked in assert_only, outside tracemalloc, which slows some decoders 100-fold.
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
HANG_SECONDS = 2.0
ALLOWED_GROWTH = 64 * 1024 * 1024  # bytes a parser may allocate beyond 10x its input


@st.composite
def mutated(draw, original: bytes) -> bytes:
    """A valid file with a few bytes overwritten, a piece cut out or appended, or truncated."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(BYTE_EDITS))
        edit_bytes(draw, data, kind, draw(st.integers(0, max(len(data) - 1, 0))))
    return bytes(data)


def assert_only(error_type, call, size: int) -> None:
    def guarded():
        try:
            call()
        except error_type as error:
            assert "\n" not in str(error)

    started = time.perf_counter()
    guarded()
    assert time.perf_counter() - started < HANG_SECONDS
    assert peak_allocation(guarded) < 10 * size + ALLOWED_GROWTH


VALID_IDX = idx_bytes(np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28))


@FUZZ
@given(st.one_of(st.binary(max_size=4096), mutated(VALID_IDX)))
def test_idx_parser(raw):
    assert_only(DataError, lambda: datasets.parse_idx(raw, "fuzz-idx"), len(raw))


def valid_npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, images=np.zeros((4, 28, 28), np.float32), labels=np.arange(4, dtype=np.uint8))
    return buffer.getvalue()


VALID_NPZ = valid_npz()


@FUZZ
@given(raw=st.one_of(st.binary(max_size=4096), mutated(VALID_NPZ)))
def test_npz_loader(tmp_path, raw):
    path = tmp_path / "split.npz"
    path.write_bytes(raw)
    assert_only(DataError, lambda: datasets.read_npz(path, ("images", "labels")), len(raw))


def valid_image(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (24, 32), dtype=np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


Image.init()  # Pillow imports its decoders on first use; keep that out of the timed examples
VALID_IMAGES = [valid_image(fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")]


# A 43-byte PNG whose image data claims 80 MB: read from a file object it cost 84 MB to refuse.
CLAIMS_80_MB = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00 \x00\x00\x00\x18\x08\x00\x00\x00\x00\xbe8\xa0\xe8"
    b"\x05\x00\x00\x00IDAT\x00\x00"
)


@FUZZ
@given(raw=st.one_of(st.binary(max_size=4096), *[mutated(image) for image in VALID_IMAGES]))
@example(raw=CLAIMS_80_MB)
def test_image_loader(tmp_path, raw):
    path = tmp_path / "input.img"
    path.write_bytes(raw)
    assert_only(ImageError, lambda: images.load_gray(path), len(raw))


def test_npz_header_claiming_a_huge_array_is_refused_before_allocating(tmp_path):
    raw = bytearray(VALID_NPZ)
    # Rewrite the shape in the first array's header; the zip's CRC no longer matters to numpy.
    at = raw.index(b"(4, 28, 28)")
    raw[at : at + 11] = b"(99999999,)"  # same length: 400 MB of float32 claimed in 10 kB
    path = tmp_path / "huge.npz"
    path.write_bytes(bytes(raw))

    def load():
        with pytest.raises(DataError, match="images: header claims 399,999,996 bytes"):
            datasets.read_npz(path, ("images", "labels"))

    assert peak_allocation(load) < 10_000_000


# --- two-tone drawings, non-finite pixels and damaged EXIF, through to the 28x28 digit ----------
# The promise for every picture: a finite 28x28 float32 digit in [0, 1] with some ink, or
# ImageError; for a picture with a clear stroke, always the digit.
DRAWINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Every way a picture can hold exactly two levels: files, and arrays handed to the Python API.
TWO_TONE_KINDS = ("L.png", "1.png", "P.png", "P.gif", "RGBA.png", "group4.tif", "uint8", "bool", "bool-uint8", "float")


@st.composite
def levels(draw) -> tuple[int, int]:
    """(ink, paper): gray levels at least 64 apart, the ink darker or lighter than the paper,
    on paper of any level: `normalise` finds which is which from the picture."""
    dark = draw(st.integers(0, 191))
    light = draw(st.integers(dark + 64, 255))
    return (dark, light) if draw(st.booleans()) else (light, dark)


@st.composite
def drawings(draw) -> np.ndarray:
    """A mask of 1-3 random lines and ellipse outlines of random width, on a canvas of 8-300 a side."""
    width, height = draw(st.integers(8, 300)), draw(st.integers(8, 300))
    canvas = Image.new("1", (width, height), 0)
    pen = ImageDraw.Draw(canvas)
    point = st.tuples(st.integers(0, width - 1), st.integers(0, height - 1))
    for _ in range(draw(st.integers(1, 3))):
        (x0, y0), (x1, y1) = draw(point), draw(point)
        stroke = draw(st.integers(1, max(1, min(width, height) // 4)))
        if draw(st.booleans()):
            pen.line([(x0, y0), (x1, y1)], fill=1, width=stroke)
        else:
            pen.ellipse([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=1, width=stroke)
    return np.asarray(canvas)


@st.composite
def clear_strokes(draw) -> np.ndarray:
    """A mask of one line at least 3 px wide and 20 px long, at most a quarter of the canvas wide."""
    long_side, short_side = draw(st.integers(24, 300)), draw(st.integers(24, 300))
    x0 = draw(st.integers(0, long_side // 2 - 10))
    x1 = draw(st.integers(long_side // 2 + 10, long_side - 1))  # 20 px or more from x0
    y0, y1 = draw(st.integers(0, short_side - 1)), draw(st.integers(0, short_side - 1))
    canvas = Image.new("1", (long_side, short_side), 0)
    stroke = draw(st.integers(3, min(long_side, short_side) // 4))
    ImageDraw.Draw(canvas).line([(x0, y0), (x1, y1)], fill=1, width=stroke)
    mask = np.asarray(canvas)
    mask = mask.T if draw(st.booleans()) else mask  # upright strokes as well as level ones
    return mask[::-1] if draw(st.booleans()) else mask


def two_tone(mask: np.ndarray, ink: int, paper: int, kind: str, folder) -> np.ndarray:
    """`mask` drawn in `ink` on `paper` as `kind` (a file, or an array), read back as grayscale."""
    gray = np.where(mask, ink, paper).astype(np.uint8)
    arrays = {"uint8": gray, "bool": mask, "bool-uint8": mask.astype(np.uint8) * 255, "float": gray / 255.0}
    if kind in arrays:
        return images.from_array(arrays[kind], "fuzz")
    white = mask if ink > paper else ~mask  # what mode "1" can keep of the picture: its polarity
    palette = Image.fromarray(mask.astype(np.uint8))
    palette.putpalette([paper] * 3 + [ink] * 3)  # makes it a two-colour "P" image
    glass = np.zeros((*mask.shape, 4), np.uint8)  # ink on transparent: the colour is not the cue
    glass[..., :3], glass[..., 3] = min(ink, paper), np.where(mask, 255, 0)
    picture = {
        "L.png": Image.fromarray(gray),
        "1.png": Image.fromarray(white),
        "group4.tif": Image.fromarray(white),
        "P.png": palette,
        "P.gif": palette,
        "RGBA.png": Image.fromarray(glass),
    }[kind]
    path = folder / f"drawing.{kind}"
    picture.save(path, **({"compression": "group4"} if kind == "group4.tif" else {}))
    return images.load_gray(path)


def assert_digit_or_image_error(read, must_find: bool) -> None:
    try:
        digit = normalise.to_mnist(read(), "fuzz")
    except ImageError as error:
        assert not must_find, error
        assert "\n" not in str(error)
        return
    assert digit.shape == (28, 28) and digit.dtype == np.float32
    assert np.isfinite(digit).all() and digit.min() >= 0 and 0 < digit.max() <= 1


@DRAWINGS
@given(mask=drawings(), colours=levels(), kind=st.sampled_from(TWO_TONE_KINDS))
def test_two_tone_drawings(tmp_path, mask, colours, kind):
    assert_digit_or_image_error(lambda: two_tone(mask, *colours, kind, tmp_path), must_find=False)


@DRAWINGS
@given(mask=clear_strokes(), colours=levels(), kind=st.sampled_from(TWO_TONE_KINDS))
def test_two_tone_clear_strokes_always_give_a_digit(tmp_path, mask, colours, kind):
    assert_digit_or_image_error(lambda: two_tone(mask, *colours, kind, tmp_path), must_find=True)


@st.composite
def non_finite_pictures(draw) -> np.ndarray:
    """Float pixels in [0, 1], some of them NaN or infinite."""
    height, width = draw(st.integers(8, 64)), draw(st.integers(8, 64))
    values = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).random((height, width), dtype=np.float32)
    for _ in range(draw(st.integers(1, 5))):
        row, col = draw(st.integers(0, height - 1)), draw(st.integers(0, width - 1))
        values[row, col] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return values


@DRAWINGS
@given(values=non_finite_pictures(), kind=st.sampled_from(["F.tif", "gray", "rgb"]))
def test_non_finite_pixels_are_an_image_error(tmp_path, values, kind):
    with pytest.raises(ImageError, match="NaN or infinite"):
        if kind == "F.tif":
            Image.fromarray(values, mode="F").save(tmp_path / "float.tif")
            images.load_gray(tmp_path / "float.tif")
        else:
            images.from_array(values if kind == "gray" else np.dstack([values] * 3), "fuzz")


def phone_jpeg() -> tuple[bytes, int, int]:
    """A clear "7" stored sideways in a JPEG with EXIF orientation 6 and text tags; the span of
    the EXIF payload (after its segment header and "Exif\\0\\0")."""
    picture = Image.new("L", (64, 48), 230)
    ImageDraw.Draw(picture).line([(10, 8), (54, 8), (30, 40)], fill=20, width=5)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    exif[0x010F], exif[0x0110], exif[0x0132] = "PhoneMaker", "Phone 1", "2024:01:01 12:00:00"
    buffer = io.BytesIO()
    picture.transpose(Image.Transpose.ROTATE_90).save(buffer, format="JPEG", exif=exif)
    raw = buffer.getvalue()
    start = raw.index(b"Exif\0\0") + 6
    return raw, start, start - 10 + int.from_bytes(raw[start - 8 : start - 6], "big")


PHONE_JPEG, EXIF_START, EXIF_END = phone_jpeg()
# The EXIF's first directory: its entry count after the 8-byte TIFF header, then 12-byte entries.
EXIF_ENTRIES = int.from_bytes(PHONE_JPEG[EXIF_START + 8 : EXIF_START + 10], "big")
# Tags Pillow knows the type of. An entry retagged as one of them holds a value of the wrong
# type: the damage that made ImageOps.exif_transpose raise struct.error; random bytes seldom do.
KNOWN_TAGS = sorted(TiffTags.TAGS_V2)


@st.composite
def damaged_exif(draw) -> bytes:
    """The phone JPEG with 1-4 of its EXIF's bytes overwritten or entries retagged: the pixels
    are untouched."""
    data = bytearray(PHONE_JPEG)
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            entry = EXIF_START + 10 + 12 * draw(st.integers(0, EXIF_ENTRIES - 1))
            data[entry : entry + 2] = draw(st.sampled_from(KNOWN_TAGS)).to_bytes(2, "big")  # "MM": big-endian
        else:
            data[draw(st.integers(EXIF_START, EXIF_END - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@DRAWINGS
@given(raw=damaged_exif())
def test_damaged_exif_never_loses_the_picture(tmp_path, raw):
    path = tmp_path / "phone.jpg"
    path.write_bytes(raw)
    assert_digit_or_image_error(lambda: images.load_gray(path), must_find=True)
