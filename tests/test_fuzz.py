"""Random bytes and random mutations of valid files thrown at every parser of untrusted input.

The promise: the documented error type (DataError for data files, ImageError for images) or a
valid result; never another exception, a hang, or an allocation far beyond the input's size.
"""
import io
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pipeline import datasets, images
from pipeline.errors import DataError
from pipeline.images import ImageError
from tests.builders import idx_bytes
from tests.conftest import peak_allocation

# Timing is checked in assert_only, outside tracemalloc, which slows some decoders 100-fold.
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
HANG_SECONDS = 2.0
ALLOWED_GROWTH = 64 * 1024 * 1024  # bytes a parser may allocate beyond 10x its input


@st.composite
def mutated(draw, original: bytes) -> bytes:
    """A valid file with a few bytes overwritten, a piece cut out or appended, or truncated."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["overwrite", "truncate", "delete", "insert"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "overwrite" and data:
            data[position] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[position:]
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 64))]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
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


@FUZZ
@given(raw=st.one_of(st.binary(max_size=4096), *[mutated(image) for image in VALID_IMAGES]))
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
