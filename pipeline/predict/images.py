"""Opening an image file someone hands us, safely, as grayscale in [0, 1] (1 is white).

Pillow decodes lazily: `Image.open` reads only the header, so the pixel count is checked
before a single pixel is decoded and a decompression bomb costs nothing.
"""

import io
import mmap
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, JpegImagePlugin, UnidentifiedImageError

from pipeline.core.datasets import path_problem, scale
from pipeline.core.errors import ImageError

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
# A progressive JPEG is decoded once per scan, and nothing in the format bounds their number: a
# small valid file padded with empty scans takes seconds to decode (testkit/crafted.py). Encoders write 6-10 (libjpeg's
# progression), mozjpeg's optimised scripts under 20, a scan per coefficient band per component
# under 70.
MAX_JPEG_SCANS = 100
SCAN_MARKER = b"\xff\xda"  # start of scan: in entropy-coded data 0xFF is followed by 0 or RSTn, never 0xDA
# Pillow reads a PNG's chunks and a JPEG's header (segments, fill and junk bytes before the first
# scan) one part at a time in Python, a few microseconds each, and nothing in either format
# bounds their number: 8 MB of empty chunks or segments take seconds to open. libpng writes 8 KB
# image-data chunks (1,000 in 8 MB) and a camera's JPEG header has under 50 parts; 10,000 open
# far within the decode deadline.
MAX_PARTS = 10_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8"
# JPEG markers with no length after them: RSTn, SOI, EOI and TEM.
STANDALONE = {*range(0xD0, 0xDA), 0x01}
# The depths that deep images are written with: 10-, 12- and 14-bit sensors store into 16 bits.
SAMPLE_BITS = (10, 12, 14, 16)
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
    # Mapped, read as an upload's bytes are: a part claiming more bytes than the file holds is
    # read short. A file object's read(n) allocates n bytes first, and a 43-byte PNG whose image
    # data claims 80 MB cost as much to refuse (the fuzz test's example).
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as view:
        return decode(view, file_bytes, path)


def load_gray_bytes(content: bytes, name: Any) -> np.ndarray:
    """`load_gray` for an image file's bytes held in memory (an upload), named `name` in errors."""
    if not content:
        raise ImageError(f"{name}: empty file")
    return decode(io.BytesIO(content), len(content), name)


def pixel_count(content: bytes) -> int:
    """The pixels an image file's bytes claim (its header only: nothing is decoded); 0 if they
    are no image of ours, which is refused as fast as any small image is read."""
    try:
        check_parts(io.BytesIO(content), "image")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(content), formats=FORMATS) as image:
                return image.width * image.height
    except Exception:  # noqa: BLE001 -- the reason is for decode() to tell; here it is only "not big"
        return 0


def decode(file: io.BytesIO | mmap.mmap, file_bytes: int, name: Any) -> np.ndarray:
    """The first frame of the image in `file` (`file_bytes` long), checked before decoding."""
    check_parts(file, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about damaged tags; the result is what counts
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file, formats=FORMATS) as image:
                check_size(image.size, name)
                check_density(image.size, file_bytes, name)
                if isinstance(image, JpegImagePlugin.JpegImageFile):  # an MPO is one too
                    check_scans(file, name)
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


def check_parts(stream: BinaryIO, name: Any) -> None:
    """Refuse a PNG of more chunks, or a JPEG header of more parts, than MAX_PARTS: counted by
    their length fields, before Pillow reads them one by one. Other formats pass."""
    start = stream.tell()
    stream.seek(0, io.SEEK_END)  # an mmap's seek returns None, not where it is
    end = stream.tell()
    stream.seek(start)
    try:
        head = stream.read(len(PNG_SIGNATURE))
        if head == PNG_SIGNATURE:
            kind, parts = "PNG", png_chunks(stream, end)
        elif head.startswith(JPEG_SOI):
            stream.seek(start + len(JPEG_SOI))
            kind, parts = "JPEG header", jpeg_header_parts(stream, end)
        else:
            return
    finally:
        stream.seek(start)
    if parts > MAX_PARTS:
        raise ImageError(
            f"{name}: a {kind} of more than {MAX_PARTS:,} parts; refusing it"
            " (encoders write far fewer: a decoding bomb?)"
        )


def png_chunks(stream: BinaryIO, end: int) -> int:
    """Chunks after the signature, up to IEND, the end of the data (at `end`) or MAX_PARTS + 1."""
    count = 0
    while count <= MAX_PARTS:
        head = stream.read(8)
        if len(head) < 8:
            break
        count += 1
        if head[4:] == b"IEND" or not skip(stream, int.from_bytes(head[:4], "big") + 4, end):  # data and CRC
            break
    return count


def jpeg_header_parts(stream: BinaryIO, end: int) -> int:
    """The steps Pillow's JPEG reader takes before the first scan (a segment, a fill or junk
    byte each), up to MAX_PARTS + 1; as its loop does, minus the segments' contents."""
    count, byte = 0, stream.read(1)
    while byte and count <= MAX_PARTS:
        count += 1
        if byte != b"\xff":  # junk, skipped a byte at a time
            byte = stream.read(1)
            continue
        marker = stream.read(1)
        if not marker or marker[0] in (0xDA, 0xD9):  # the first scan, or the end
            break
        if marker[0] == 0xFF:  # fill: this 0xFF may start the marker
            byte = marker
        elif marker[0] == 0x00 or marker[0] in STANDALONE:
            byte = stream.read(1)
        else:
            length = stream.read(2)
            if len(length) < 2 or not skip(stream, int.from_bytes(length, "big") - 2, end):
                break
            byte = stream.read(1)
    return count


def skip(stream: BinaryIO, size: int, end: int) -> bool:
    """Move `size` bytes on, if the data (`end` bytes) holds them: an mmap cannot seek past its end."""
    target = stream.tell() + size
    if size < 0 or target > end:
        return False
    stream.seek(target)
    return True


def check_scans(file: io.BytesIO | mmap.mmap, name: Any) -> None:
    """Refuse a JPEG of more scans than any encoder writes, before one is decoded."""
    content = file.getvalue() if isinstance(file, io.BytesIO) else file[:]
    scans = content.count(SCAN_MARKER)
    if scans > MAX_JPEG_SCANS:
        raise ImageError(
            f"{name}: a JPEG of {scans:,} scans; refusing it"
            f" (encoders write at most {MAX_JPEG_SCANS}: a decoding bomb?)"
        )


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
    """Luminance in [0, 1]; transparent parts as the background that the drawn parts stand on."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return unit_range(np.asarray(image), name)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        return flatten_alpha(image.convert("RGBA"))
    return scale(np.asarray(image.convert("L")))


def flatten_alpha(rgba: Image.Image) -> np.ndarray:
    """An RGBA image's luminance over a background that contrasts with what is opaque in it.

    Drawing apps export white ink on a transparent background as often as black ink: the shape
    is then only in the alpha channel, and compositing on white (or black) alone would erase
    one of the two. Transparent is whichever of black or white the opaque pixels are not.
    """
    values = scale(np.asarray(rgba))
    alpha = values[..., 3]
    luminance = scale(np.asarray(rgba.convert("RGB").convert("L")))
    coverage = float(alpha.sum())
    drawn = float((luminance * alpha).sum()) / coverage if coverage > 0 else 0.0
    background = 0.0 if drawn > 0.5 else 1.0
    return (alpha * luminance + (1 - alpha) * background).astype(np.float32)


def unit_range(values: np.ndarray, name: Any) -> np.ndarray:
    """Pixel values of any numeric type as float32 in [0, 1], by the range they are in.

    [0, 1] is taken as it is and [0, 255] as 8-bit; 16-bit data is scaled by the bits it uses
    (a 12-bit camera or scanner writes 0-4095 into 16-bit files, and dividing by 65535 would
    leave it nearly black). Any other range is no image this can read, and is said so.
    """
    values = finite(np.asarray(values, dtype=np.float64), name)
    if values.size == 0:
        return values.astype(np.float32)
    low, high = float(values.min()), float(values.max())
    if low >= 0 and high <= 1:
        top = 1.0
    elif low >= 0 and high <= 255:
        top = 255.0
    elif low >= 0 and high <= 65535:
        top = float(2 ** next(bits for bits in SAMPLE_BITS if high < 2**bits) - 1)
    else:
        raise ImageError(
            f"{name}: pixel values span {low:g} to {high:g}; expected 0 to 1, 0 to 255, or 16-bit data (0 to 65535)"
        )
    return (values / top).astype(np.float32)


def finite(values: np.ndarray, name: Any) -> np.ndarray:
    """`values`, or ImageError if any is NaN or infinite: no level of gray, and no digit."""
    if not np.isfinite(values).all():
        raise ImageError(f"{name}: the image holds NaN or infinite values")
    return values


def from_array(array: np.ndarray, name: str = "array") -> np.ndarray:
    """Accept a 2-D grayscale or 3-D RGB(A) array of any numeric type, its values in [0, 1],
    [0, 255] or 16-bit (`unit_range`)."""
    array = np.asarray(array)
    if array.dtype == np.bool_:  # a mask: True is ink or paper as any two-level image
        array = array.astype(np.uint8) * 255
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ImageError(f"{name}: expected a 2-D grayscale or HxWx3/4 colour array, got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.number) and not np.issubdtype(array.dtype, np.complexfloating)):
        raise ImageError(f"{name}: expected an array of numbers, got dtype {array.dtype}")
    check_size((array.shape[1], array.shape[0]), name)
    values = scale(array) if array.dtype == np.uint8 else unit_range(array, name)
    if array.ndim == 2:
        return values
    mode = "RGBA" if array.shape[2] == 4 else "RGB"
    return to_gray(Image.fromarray(np.round(values * 255).astype(np.uint8), mode=mode), name)
