"""Opening an image file someone hands us, safely, as grayscale in [0, 1] (1 is white).

Pillow decodes lazily: `Image.open` reads only the header, so the pixel count is checked
before a single pixel is decoded and a decompression bomb costs nothing.
"""
import io
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipeline.datasets import path_problem, scale
from pipeline.errors import ImageError

# Only these decoders are ever run on an input: fewer parsers exposed to untrusted bytes.
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")
# Suffixes taken from a directory; a file named on the command line is tried whatever its name.
SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# A 50-megapixel photo decodes to 200 MB of RGBA; beyond this, refuse rather than allocate.
MAX_PIXELS = 50_000_000
# No real picture of a digit packs more pixels per byte than this (deflate tops out near 1,000:1
# on a blank 8-bit page; photos and scans sit below 20). More means damaged, or a bomb.
MAX_PIXELS_PER_BYTE = 1000
MIN_SIDE = 8
# EXIF orientation -> the turn that shows the stored pixels upright (the table in Pillow's
# ImageOps.exif_transpose, which also rewrites the metadata, and fails on damaged tags doing so).
ORIENTATION_TAG = 0x0112
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def image_files(directory: Path) -> list[Path]:
    """The images in `directory` (not its subdirectories), in name order."""
    return sorted(p for p in Path(directory).iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def load_gray(path: Path) -> np.ndarray:
    """Decode an image file to a float32 grayscale array in [0, 1]; raise ImageError if unusable."""
    path = Path(path)
    # A symlink loop, a folder or a device named as such, not "no such file"; a named pipe would
    # block the decoder.
    problem = path_problem(path)
    if problem:
        raise ImageError(f"{path}: {problem}")
    file_bytes = path.stat().st_size
    if file_bytes == 0:
        raise ImageError(f"{path}: empty file")
    return decode(path, file_bytes, path)


def load_gray_bytes(content: bytes, name: Any) -> np.ndarray:
    """`load_gray` for an image file's bytes held in memory (an upload), named `name` in errors."""
    if not content:
        raise ImageError(f"{name}: empty file")
    return decode(io.BytesIO(content), len(content), name)


def pixel_count(content: bytes) -> int:
    """The pixels an image file's bytes claim (its header only: nothing is decoded); 0 if they
    are no image of ours, which is refused as fast as any small image is read."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(content), formats=FORMATS) as image:
                return image.width * image.height
    except Exception:  # noqa: BLE001 -- the reason is for decode() to tell; here it is only "not big"
        return 0


def decode(file: Path | BinaryIO, file_bytes: int, name: Any) -> np.ndarray:
    """The first frame of the image in `file` (`file_bytes` long), checked before decoding."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about damaged tags; the result is what counts
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file, formats=FORMATS) as image:
                check_size(image.size, name)
                check_density(image.size, file_bytes, name)
                image.seek(0)  # the first frame of a GIF or a multi-page TIFF
                image.load()
                return to_gray(upright(image), name)
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image (expected PNG, JPEG, BMP, GIF, TIFF or WebP)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name}: too many pixels to decode safely; refusing it (a decompression bomb?)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        # Pillow reports truncated and corrupt data as any of these.
        raise ImageError(f"{name}: truncated or corrupt image ({error})") from None


def check_size(size: tuple[int, int], name: Any) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{name}: {width}x{height} pixels is over the {MAX_PIXELS:,}-pixel limit; "
            "refusing it (a decompression bomb?)"
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"{name}: {width}x{height} pixels is too small to hold a digit (need {MIN_SIDE}x{MIN_SIDE})")


def check_density(size: tuple[int, int], file_bytes: int, name: Any) -> None:
    width, height = size
    if width * height > MAX_PIXELS_PER_BYTE * file_bytes + 1_000_000:
        raise ImageError(
            f"{name}: claims {width}x{height} pixels in only {file_bytes:,} bytes; "
            "refusing it (damaged, or a decompression bomb?)"
        )


def upright(image: Image.Image) -> Image.Image:
    """`image` turned as its EXIF orientation says; as stored if that cannot be read or applied.

    Phones store portrait photos sideways with an EXIF note to turn them upright. EXIF is often
    damaged, and the pixels are the picture whatever the note says: any failure here means
    "as stored", never a lost image.
    """
    try:
        turn = UPRIGHT.get(image.getexif().get(ORIENTATION_TAG))
        return image.transpose(turn) if turn is not None else image
    except Exception:  # noqa: BLE001 -- Pillow's EXIF parser raises struct.error, TypeError, ...
        return image


def to_gray(image: Image.Image, name: Any = "image") -> np.ndarray:
    """Luminance in [0, 1]; transparent parts count as white paper."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = finite(np.asarray(image, dtype=np.float32), name)
        top = 65535.0 if image.mode.startswith("I;16") else max(float(values.max()), 1.0)
        return np.clip(values / top, 0.0, 1.0)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, rgba)
    return scale(np.asarray(image.convert("L")))


def finite(values: np.ndarray, name: Any) -> np.ndarray:
    """`values`, or ImageError if any is NaN or infinite: no level of gray, and no digit."""
    if not np.isfinite(values).all():
        raise ImageError(f"{name}: the image holds NaN or infinite values")
    return values


def from_array(array: np.ndarray, name: str = "array") -> np.ndarray:
    """Accept a 2-D grayscale or 3-D RGB(A) array: uint8 in 0-255 or floats in [0, 1]."""
    array = np.asarray(array)
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ImageError(f"{name}: expected a 2-D grayscale or HxWx3/4 colour array, got shape {array.shape}")
    check_size((array.shape[1], array.shape[0]), name)
    if array.dtype == np.uint8:
        values = scale(array)
    else:
        values = np.clip(finite(array.astype(np.float32), name), 0.0, 1.0)
    if array.ndim == 2:
        return values
    mode = "RGBA" if array.shape[2] == 4 else "RGB"
    return to_gray(Image.fromarray(np.round(values * 255).astype(np.uint8), mode=mode), name)
