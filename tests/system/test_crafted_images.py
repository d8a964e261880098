"""Crafted image files that try to make decoding slow or memory-hungry within the 8 MB upload
limit: progressive JPEGs of many scans (also arithmetic-coded, also disguised as MPO), JPEG
headers of very many segments, PNGs of very many chunks, animations of hundreds of thousands of
frames, TIFF page chains of tens of thousands of pages or that loop back on themselves.

The promise is the one of test_fuzz.py: a float32 grayscale array in [0, 1] or ImageError, one
line; and here, in well under SLOW_SECONDS for anything but a picture that really is big. The
generators live in testkit/crafted.py (the benchmarks use them too); the small seeds they
start from are in testkit/data/crafted/ (its README says how each was made).

"""

import functools
import io
import struct
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pipeline.predict import images
from pipeline.predict.images import ImageError
from testkit import crafted
from testkit.crafted import BUDGET, UPLOAD_BYTES, seed
from testkit.mutations import BYTE_EDITS, edit_bytes

# A crafted input handled well is read (or refused) in milliseconds; over this it is a defect.
SLOW_SECONDS = 1.0
# A mutated seed is a 64x64 picture: anything near this is a hang.
HANG_SECONDS = 2.0
MUTATIONS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Image.init()  # Pillow imports its decoders on first use; keep that out of the timed calls


def timed(call) -> tuple[np.ndarray | ImageError, float]:
    """What `call` returned, or the ImageError it raised, and the seconds it took; anything
    else it raises is a failure of the test."""
    started = time.perf_counter()
    try:
        outcome = call()
    except ImageError as error:
        outcome = error
    return outcome, time.perf_counter() - started


def assert_image_or_image_error(outcome) -> None:
    if isinstance(outcome, ImageError):
        assert "\n" not in str(outcome)
        return
    assert isinstance(outcome, np.ndarray) and outcome.dtype == np.float32 and outcome.ndim == 2
    assert np.isfinite(outcome).all() and outcome.min() >= 0 and outcome.max() <= 1


def load(content: bytes, name: str = "crafted"):
    return lambda: images.load_gray_bytes(content, name)


@functools.cache
def digit_pixels() -> np.ndarray:
    """The seed picture, read from its lossless PNG."""
    return images.load_gray_bytes(seed("digit.png"), "digit.png")


def assert_is_the_digit(gray, tolerance: float = 0.0) -> None:
    """`gray` is the seed picture: exactly, or (JPEG) within `tolerance` on average."""
    assert isinstance(gray, np.ndarray), gray
    assert gray.shape == digit_pixels().shape
    if tolerance:
        assert np.abs(gray - digit_pixels()).mean() < tolerance
    else:
        np.testing.assert_array_equal(gray, digit_pixels())


# --- progressive JPEG: many scans ------------------------------------------------------------
PROGRESSIVE_SEEDS = ["digit-progressive.jpg", "digit-arithmetic-progressive.jpg"]


@pytest.mark.parametrize("name", PROGRESSIVE_SEEDS)
def test_a_progressive_jpeg_of_as_many_scans_as_allowed_decodes(name):
    """Up to MAX_JPEG_SCANS is what encoders write, with slack: it must still read."""
    jpeg = crafted.with_empty_scans(seed(name), images.MAX_JPEG_SCANS - crafted.scan_count(seed(name)))
    assert crafted.scan_count(jpeg) == images.MAX_JPEG_SCANS
    gray, seconds = timed(load(jpeg))
    assert_is_the_digit(gray, tolerance=0.02)  # empty refinement scans change no pixel
    assert seconds < SLOW_SECONDS


@pytest.mark.parametrize("name", PROGRESSIVE_SEEDS)
@pytest.mark.parametrize("extra", ["one-too-many", "budget"])
def test_a_jpeg_of_more_scans_than_allowed_is_refused_before_decoding(name, extra):
    """Each scan makes libjpeg walk every block again: 800,000 empty ones fit in 8 MB."""
    original = seed(name)
    count = images.MAX_JPEG_SCANS + 1 - crafted.scan_count(original)
    if extra == "budget":
        count = (BUDGET - len(original)) // len(crafted.EMPTY_SCAN)
    bomb = crafted.with_empty_scans(original, count)
    scans = crafted.scan_count(bomb)
    refused, seconds = timed(load(bomb, "bomb.jpg"))
    assert isinstance(refused, ImageError)
    assert str(refused).startswith(f"bomb.jpg: a JPEG of {scans:,} scans; refusing it")
    assert seconds < SLOW_SECONDS


@pytest.mark.slow
def test_a_49_megapixel_progressive_jpeg_of_99_scans_passes_every_check():
    """The worst progressive JPEG the checks let through: 7000x7000 (just under MAX_PIXELS),
    99 scans (just under MAX_JPEG_SCANS), ~300 KB (the density check asks for 48 KB). It is slow
    within the limits (~1.5 s here, ~0.6 s of it the 93 empty scans), which the service bounds
    with a deadline in its decoder process: so only the outcome's type is asserted."""
    jpeg = crafted.many_scan_jpeg(7000, 99)
    assert crafted.scan_count(jpeg) == 99 <= images.MAX_JPEG_SCANS
    assert 7000 * 7000 <= images.MAX_PIXELS and len(jpeg) < BUDGET
    assert 7000 * 7000 <= images.MAX_PIXELS_PER_BYTE * len(jpeg) + 1_000_000  # passes check_density
    outcome, seconds = timed(load(jpeg, "big.jpg"))
    assert_image_or_image_error(outcome)
    if isinstance(outcome, np.ndarray):
        assert outcome.shape == (7000, 7000) and outcome[0:1024, 0:1024].min() < 0.1  # the 7 in its corner
    print(f"7000x7000 progressive JPEG of 99 scans, {len(jpeg):,} bytes: {seconds:.2f} s")


# --- arithmetic-coded JPEG -------------------------------------------------------------------
SOF_ARITHMETIC = {"digit-arithmetic.jpg": b"\xff\xc9", "digit-arithmetic-progressive.jpg": b"\xff\xca"}


@pytest.mark.parametrize("name", sorted(SOF_ARITHMETIC))
def test_arithmetic_coded_jpegs_decode(name):
    """Pillow cannot write arithmetic coding, and libjpeg builds may lack its decoder; this
    Pillow's libjpeg-turbo (3.2 in the Pillow 13 wheel) has it, so these are read, not refused."""
    content = seed(name)
    assert SOF_ARITHMETIC[name] in content  # SOF9 (sequential) or SOF10 (progressive): arithmetic
    gray, seconds = timed(load(content, name))
    assert_is_the_digit(gray, tolerance=0.02)
    assert seconds < SLOW_SECONDS


# --- MPO: a JPEG that Pillow opens under another name ----------------------------------------
def test_the_mpo_seed_is_a_jpeg_that_pillow_calls_mpo():
    """An APP2 "MPF" segment of ~100 bytes makes Pillow open any JPEG as format MPO."""
    with Image.open(crafted.SEEDS / "digit-mpo.jpg", formats=images.FORMATS) as opened:
        assert opened.format == "MPO" and opened.n_frames == 2
    assert_is_the_digit(images.load_gray_bytes(seed("digit-mpo.jpg"), "mpo.jpg"), tolerance=0.02)


def test_an_mpo_is_held_to_the_jpeg_scan_limit():
    """The same JPEG scan bomb, with an MPF segment in front: it must be refused as the JPEG is."""
    jpeg = seed("digit-progressive.jpg")
    bomb = crafted.mpo_wrapped(crafted.with_empty_scans(jpeg, images.MAX_JPEG_SCANS + 1 - crafted.scan_count(jpeg)))
    refused, _ = timed(load(bomb, "bomb.jpg"))
    assert isinstance(refused, ImageError) and "scans; refusing it" in str(refused)


@pytest.mark.slow
def test_an_mpo_scan_bomb_is_no_slower_than_a_refusal():
    """A 256x256 progressive JPEG, 800,000 empty scans and an MPF segment: 8 MB, decoded."""
    jpeg = crafted.encoded(crafted.digit(256), "JPEG", progressive=True, quality=90)
    bomb = crafted.mpo_wrapped(crafted.with_empty_scans(jpeg, (BUDGET - len(jpeg) - 200) // len(crafted.EMPTY_SCAN)))
    assert len(bomb) < BUDGET
    outcome, seconds = timed(load(bomb))
    assert_image_or_image_error(outcome)
    assert seconds < SLOW_SECONDS


# --- JPEG and PNG headers of very many segments or chunks ------------------------------------
# Pillow walks a JPEG's header segments and a PNG's chunks in Python, one at a time; nothing
# bounds their number but the upload limit. Each of these is a valid 64x64 file of ~8 MB. (Empty
# comments are cheaper than APP1: 1.6-2.8 s; they are left out as too close to the line.)
HEADER_BOMBS = {
    "jpeg-APP1": lambda: crafted.many_segment_jpeg(0xE1),  # ~2,000,000 empty APP1 segments
    "png-private-before-IDAT": lambda: crafted.many_chunk_png(),  # ~660,000 empty prVt chunks
    "png-private-after-IDAT": lambda: crafted.many_chunk_png(after_idat=True),
    "png-iTXt": lambda: crafted.many_text_png(b"iTXt"),  # ~250,000 iTXt chunks before IDAT
}


@functools.cache
def header_bomb(kind: str) -> bytes:
    return HEADER_BOMBS[kind]()


def header_case(kind: str, reader: str, slow: bool = True):
    return pytest.param(kind, reader, id=f"{kind}-{reader}", marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize(
    ("kind", "reader"),
    [
        header_case("jpeg-APP1", "load_gray_bytes", slow=False),
        header_case("png-private-before-IDAT", "load_gray_bytes", slow=False),
        header_case("jpeg-APP1", "pixel_count"),
        header_case("png-private-before-IDAT", "pixel_count"),
        header_case("png-private-after-IDAT", "load_gray_bytes"),
        header_case("png-iTXt", "load_gray_bytes"),
    ],
)
def test_a_header_of_very_many_segments_is_refused_fast(kind, reader):
    """Refused from the parts' length fields in under SLOW_SECONDS, by load_gray_bytes or by
    pixel_count (which the service asks first of a form's images): these took 2-4.5 s to open."""
    content = header_bomb(kind)
    assert len(content) <= BUDGET
    if reader == "pixel_count":
        count, seconds = timed(lambda: images.pixel_count(content))
        assert count == 0  # no image of ours: decode says why
    else:
        refused, seconds = timed(load(content))
        assert isinstance(refused, ImageError)
        assert f"of more than {images.MAX_PARTS:,} parts; refusing it" in str(refused)
    assert seconds < SLOW_SECONDS


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_a_file_of_as_many_parts_as_allowed_is_read_and_one_more_is_refused(fmt):
    """MAX_PARTS counts every PNG chunk (IHDR to IEND), and every step Pillow's JPEG reader takes
    before the first scan (SOI excluded, as it is read before the loop)."""
    if fmt == "png":
        png = seed("digit.png")
        extra = images.MAX_PARTS - len(crafted.png_chunks(png))
        allowed = crafted.with_chunks(png, [crafted.png_chunk(b"prVt")] * extra)
        over = crafted.with_chunks(png, [crafted.png_chunk(b"prVt")] * (extra + 1))
    else:
        jpeg = seed("digit-progressive.jpg")
        steps = images.jpeg_header_parts(io.BytesIO(jpeg[2:]), len(jpeg) - 2)
        comment = b"\xff\xfe\x00\x02"  # an empty COM segment: one step
        allowed = jpeg[:2] + comment * (images.MAX_PARTS - steps) + jpeg[2:]
        over = jpeg[:2] + comment * (images.MAX_PARTS - steps + 1) + jpeg[2:]
    assert_is_the_digit(images.load_gray_bytes(allowed, "allowed"), tolerance=0.02)
    with pytest.raises(ImageError, match="parts; refusing it"):
        images.load_gray_bytes(over, "over")


@pytest.mark.parametrize("kind", [b"tEXt", b"zTXt", b"iTXt"])
def test_text_chunks_leave_the_picture_as_it_is(kind):
    """Thousands of text chunks (each Pillow decodes and keeps in image.info) before the image
    data: the picture is the seed's. (At the full 8 MB, 250-570 thousand of them, they take
    1.3-2.2 s: see the header-bomb defect above.)"""
    png = crafted.many_text_png(kind, count=5_000)
    assert sum(1 for chunk, _ in crafted.png_chunks(png) if chunk == kind) == 5_000
    gray, seconds = timed(load(png))
    assert_is_the_digit(gray)
    assert seconds < SLOW_SECONDS


def test_image_data_cut_into_one_byte_idat_chunks_is_the_same_picture():
    """IDAT may be split anywhere, into any number of chunks: 13 bytes of file per byte of data.
    (A 760x760 picture cut so fills 7.5 MB and takes ~1.4 s here: the same per-chunk cost.)"""
    whole = crafted.noise_png(60)  # 3,660 bytes of image data: as many chunks, within MAX_PARTS
    split = crafted.split_idat(whole, 1)
    assert sum(1 for chunk, _ in crafted.png_chunks(split) if chunk == b"IDAT") == len(crafted.idat_data(whole))
    gray, seconds = timed(load(split))
    np.testing.assert_array_equal(gray, images.load_gray_bytes(whole, "whole.png"))
    assert seconds < SLOW_SECONDS


# --- animations: only the first frame is decoded ---------------------------------------------
ANIMATIONS = {
    "gif": (crafted.many_frame_gif, lambda: seed("digit.gif")),
    "webp": (crafted.many_frame_webp, lambda: seed("digit.webp")),
}


@pytest.mark.parametrize("frames", [5_000, None], ids=["5000-frames", "budget-frames"])
@pytest.mark.parametrize("fmt", sorted(ANIMATIONS))
def test_only_the_first_frame_of_a_long_animation_is_decoded(fmt, frames):
    """A dot or square per frame costs 15 (GIF) or 46 (WebP) bytes: ~530,000 or ~180,000 frames
    fit in 8 MB. Decoding them all would be slow; the first is the picture."""
    many, one = ANIMATIONS[fmt]
    animation = many(frames)
    assert len(animation) <= BUDGET
    with Image.open(io.BytesIO(animation), formats=images.FORMATS) as opened:
        opened.seek(1)  # the second frame adds a black dot or square to the white corner
        assert np.asarray(opened.convert("L"))[0, 0] == 0
    gray, seconds = timed(load(animation))
    np.testing.assert_array_equal(gray, images.load_gray_bytes(one(), f"one-frame.{fmt}"))
    assert seconds < SLOW_SECONDS


# --- TIFF: many pages, and page chains that loop ---------------------------------------------
@pytest.mark.parametrize("deflate", [False, True], ids=["uncompressed", "deflate-libtiff"])
def test_only_the_first_page_of_a_tiff_of_70000_pages_is_read(deflate):
    """~70,000 114-byte IFDs fit in 8 MB. Pillow counts pages by walking them (n_frames took
    46 s here on this file): reading the first must not."""
    tiff = crafted.many_page_tiff(deflate=deflate)
    assert len(tiff) <= BUDGET and len(crafted.tiff_ifd_offsets(tiff, limit=100_000)) > 60_000
    gray, seconds = timed(load(tiff))
    assert_is_the_digit(gray)
    assert seconds < SLOW_SECONDS


@pytest.mark.parametrize("pages", [3, None], ids=["3-pages", "budget-pages"])
@pytest.mark.parametrize("loop_to", [0, 1], ids=["to-first", "to-second"])
@pytest.mark.parametrize("deflate", [False, True], ids=["uncompressed", "deflate-libtiff"])
def test_a_tiff_page_chain_that_loops_is_no_hang(pages, loop_to, deflate):
    """The last IFD's next offset points back into the chain: a reader that follows it without
    remembering where it has been never stops. The first page is the picture."""
    tiff = crafted.many_page_tiff(pages, loop_to=loop_to, deflate=deflate)
    offsets = crafted.tiff_ifd_offsets(tiff, limit=100_000)
    last = struct.unpack("<I", tiff[crafted.next_ifd_pointer(tiff, offsets[-1]) :][:4])[0]
    assert last == offsets[loop_to]  # really a loop
    outcome, seconds = timed(load(tiff))
    assert_image_or_image_error(outcome)
    if isinstance(outcome, np.ndarray):
        assert_is_the_digit(outcome)
    assert seconds < SLOW_SECONDS


# --- mutations of the seeds ------------------------------------------------------------------
SEEDS_BY_FORMAT = {
    "jpeg": ["digit-progressive.jpg", "digit-mpo.jpg"],
    "jpeg-arithmetic": ["digit-arithmetic.jpg", "digit-arithmetic-progressive.jpg"],
    "png": ["digit.png", "digit-chunks.png"],
    "gif": ["digit.gif", "digit-20-frames.gif"],
    "webp": ["digit.webp", "digit-20-frames.webp"],
    "tiff": ["digit-3-pages.tif", "digit-3-pages-deflate.tif", "digit-3-pages-loop.tif", "digit-3-pages-lzw.tif"],
}
SPANS = {
    "jpeg": crafted.jpeg_spans,
    "jpeg-arithmetic": crafted.jpeg_spans,
    "png": crafted.png_spans,
    "webp": crafted.riff_spans,
}


@st.composite
def mutated(draw, fmt: str) -> bytes:
    """A seed of `fmt` with 1-6 changes: bytes overwritten, a piece cut out, inserted or
    duplicated, the file truncated; whole chunks or segments duplicated, dropped or swapped
    (which keeps their lengths and CRCs valid); empty scans appended (JPEG); a next-page offset
    pointed back at an earlier page (TIFF)."""
    data = bytearray(seed(draw(st.sampled_from(SEEDS_BY_FORMAT[fmt]))))
    structural = ["duplicate-unit", "drop-unit", "swap-units"] if fmt in SPANS else []
    special = {"jpeg": ["append-scans"], "jpeg-arithmetic": ["append-scans"], "tiff": ["loop-pages"]}.get(fmt, [])
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from([*BYTE_EDITS, "duplicate", *structural, *special]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        units = SPANS[fmt](bytes(data)) if kind.endswith(("unit", "units")) else []
        if kind in BYTE_EDITS:
            edit_bytes(draw, data, kind, at)
        elif kind == "duplicate":
            piece = bytes(data[at : at + draw(st.integers(1, 256))])
            data[at:at] = piece * draw(st.integers(1, 8))
        elif kind == "duplicate-unit" and units:
            start, end = draw(st.sampled_from(units))
            data[start:start] = bytes(data[start:end]) * draw(st.integers(1, 50))
        elif kind == "drop-unit" and units:
            start, end = draw(st.sampled_from(units))
            del data[start:end]
        elif kind == "swap-units" and len(units) > 1:
            (a, b), (c, d) = sorted(draw(st.lists(st.sampled_from(units), min_size=2, max_size=2, unique=True)))
            data[:] = data[:a] + data[c:d] + data[b:c] + data[a:b] + data[d:]
        elif kind == "append-scans" and data.endswith(crafted.EOI):
            data[-2:-2] = crafted.EMPTY_SCAN * draw(st.integers(1, 2 * images.MAX_JPEG_SCANS))
        elif kind == "loop-pages" and len(data) >= 8:
            offsets = crafted.tiff_ifd_offsets(bytes(data))
            if offsets:
                pointer = crafted.next_ifd_pointer(bytes(data), draw(st.sampled_from(offsets)))
                data[pointer : pointer + 4] = struct.pack("<I", draw(st.sampled_from(offsets)))
    return bytes(data)


@MUTATIONS
@given(data=st.data())
@pytest.mark.parametrize("fmt", sorted(SEEDS_BY_FORMAT))
def test_mutated_seeds_are_a_picture_or_an_image_error(fmt, data):
    """Whatever the damage: a grayscale array in [0, 1] or one line of ImageError, never another
    exception, and never a hang."""
    content = data.draw(mutated(fmt), label="content")
    outcome, seconds = timed(load(content, f"mutated.{fmt}"))
    assert_image_or_image_error(outcome)
    assert seconds < HANG_SECONDS


def test_every_crafted_input_fits_the_upload_limit():
    """The crafted inputs are only a threat if the service takes them: under its 8 MB limit,
    and each fills most of it."""
    assert BUDGET < UPLOAD_BYTES
    for make in [crafted.many_frame_gif, crafted.many_frame_webp, crafted.many_page_tiff]:
        assert 0.99 * BUDGET < len(make()) <= BUDGET, make
    for kind in HEADER_BOMBS:
        assert 0.98 * BUDGET < len(header_bomb(kind)) <= BUDGET, kind
