"""Crafted image files that make a decoder slow or memory-hungry while staying within the
service's upload limit: progressive JPEGs padded with scans, PNGs of very many chunks, GIF and
WebP animations and TIFFs of very many frames, TIFF page chains that loop.

Each generator returns the file's bytes, built at run time (the big ones are megabytes; the small
seeds they start from are in testkit/data/crafted/). Shared by tests/system/test_crafted_images.py and the
benchmarks.
"""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# The service's limit on a request body (pipeline.serve.app.MAX_BODY_BYTES); a crafted file is
# kept to BUDGET, which leaves room for the multipart form around it.
UPLOAD_BYTES = 8 * 1024 * 1024
BUDGET = 8_000_000
SEEDS = Path(__file__).resolve().parent / "data" / "crafted"


def seed(name: str) -> bytes:
    """A committed seed file from testkit/data/crafted/ (its README says how each was made)."""
    return (SEEDS / name).read_bytes()


def digit(side: int = 64) -> Image.Image:
    """A dark "7" on white paper, `side` pixels square (mode L)."""
    image = Image.new("L", (side, side), 255)
    s = side / 64
    stroke = [(16 * s, 12 * s), (48 * s, 12 * s), (28 * s, 54 * s)]
    ImageDraw.Draw(image).line(stroke, fill=0, width=max(1, round(6 * s)))
    return image


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


# --- JPEG ------------------------------------------------------------------------------------
SOI, EOI, SOS, COM = b"\xff\xd8", b"\xff\xd9", b"\xff\xda", b"\xff\xfe"
# A scan with a valid header and no data: a refinement of the lowest DC bit of component 1. The
# decoder still visits every block of the image for it (libjpeg's DC refinement does not skip).
EMPTY_SCAN = SOS + struct.pack(">H", 8) + bytes([1, 1, 0x00, 0, 0, 0x10])


def scan_count(jpeg: bytes) -> int:
    return jpeg.count(SOS)


def with_empty_scans(jpeg: bytes, extra: int) -> bytes:
    """`jpeg` (progressive) with `extra` empty scans before its end-of-image marker."""
    assert jpeg.endswith(EOI)
    return jpeg[:-2] + EMPTY_SCAN * extra + EOI


def scan_bomb(extra: int, side: int = 256) -> bytes:
    """Issue 25's JPEG at 650,000: a valid progressive 7, `side` pixels square, then `extra`
    empty scans (8.6 s to decode, on the service's event loop then)."""
    return with_empty_scans(encoded(digit(side), "JPEG", progressive=True, quality=90), extra)


def comment_padding(size: int) -> bytes:
    """COM segments of zeros, `size` bytes in all (at least 4 if any): filler that a decoder skips."""
    out = []
    while size > 0:
        body = min(max(size - 4, 0), 65533)
        out.append(COM + struct.pack(">H", body + 2) + bytes(body))
        size -= body + 4
    return b"".join(out)


def padded_to(jpeg: bytes, size: int) -> bytes:
    """`jpeg` grown to at least `size` bytes by COM segments after its start-of-image marker."""
    return jpeg[:2] + comment_padding(size - len(jpeg)) + jpeg[2:] if len(jpeg) < size else jpeg


def many_scan_jpeg(side: int, scans: int, pixels_per_byte: int = 1000) -> bytes:
    """A progressive grayscale JPEG `side` pixels square, blank but for a "7" in one corner, of
    exactly `scans` scans (libjpeg writes 6 for gray; the rest are EMPTY_SCANs), padded with COM
    segments to `pixels_per_byte` so that it passes images.check_density.

    At 7000 a side it is 49 MP, just under images.MAX_PIXELS, and ~300 KB (no padding needed):
    every scan makes the decoder walk all 765,625 blocks, and the whole image is decoded at the end.
    """
    page = Image.new("L", (side, side), 255)
    page.paste(digit(min(side, 1024)), (0, 0))
    jpeg = encoded(page, "JPEG", progressive=True, quality=90)
    extra = scans - scan_count(jpeg)
    assert extra >= 0, f"libjpeg already wrote {scan_count(jpeg)} scans"
    jpeg = with_empty_scans(jpeg, extra)
    return padded_to(jpeg, -(-(side * side - 1_000_000) // pixels_per_byte))


def mpf_segment(frames: int = 2) -> bytes:
    """An APP2 "MPF" segment (CIPA DC-007 multi-picture index) claiming `frames` pictures.

    Pillow opens a JPEG carrying one as format "MPO" (MpoImageFile, a JpegImageFile subclass),
    whatever follows: ~100 bytes turn any JPEG into an "MPO".
    """
    entries = b"".join(
        struct.pack(">IIIHH", 0x20030000 if i == 0 else 0, 0, 0, 0, 0) for i in range(frames)
    )  # the first: a representative "Baseline MP Primary Image" at offset 0
    ifd_entries = 3
    data_offset = 8 + 2 + 12 * ifd_entries + 4
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", ifd_entries)
    tiff += struct.pack(">HHI", 0xB000, 7, 4) + b"0100"  # MPFVersion
    tiff += struct.pack(">HHII", 0xB001, 4, 1, frames)  # NumberOfImages
    tiff += struct.pack(">HHII", 0xB002, 7, len(entries), data_offset)  # MPEntry
    tiff += struct.pack(">I", 0) + entries
    body = b"MPF\x00" + tiff
    return b"\xff\xe2" + struct.pack(">H", len(body) + 2) + body


def mpo_wrapped(jpeg: bytes, frames: int = 2) -> bytes:
    """`jpeg` with an MPF segment after its start-of-image marker: Pillow's format "MPO"."""
    assert jpeg.startswith(SOI)
    return SOI + mpf_segment(frames) + jpeg[2:]


def many_segment_jpeg(marker: int = 0xE1, count: int | None = None, jpeg: bytes | None = None) -> bytes:
    """`jpeg` (by default the seed digit-progressive.jpg) with `count` empty marker segments
    (4 bytes each: the marker and a length of 2) after its start-of-image marker, by default as
    many as fit in BUDGET (~2,000,000). 0xE1 is APP1 (where EXIF lives), 0xFE a comment.

    Nothing in the format bounds them; Pillow reads the header one segment at a time in Python
    (JpegImagePlugin's _open) before libjpeg reads it all again.
    """
    jpeg = seed("digit-progressive.jpg") if jpeg is None else jpeg
    segment = bytes([0xFF, marker]) + struct.pack(">H", 2)
    count = (BUDGET - len(jpeg)) // len(segment) if count is None else count
    return jpeg[:2] + segment * count + jpeg[2:]


# --- PNG -------------------------------------------------------------------------------------
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, data: bytes = b"") -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of each chunk of a well-formed PNG, in order."""
    assert png.startswith(PNG_SIGNATURE)
    chunks, at = [], len(PNG_SIGNATURE)
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        chunks.append((png[at + 4 : at + 8], png[at + 8 : at + 8 + length]))
        at += 12 + length
    return chunks


def png_of(chunks) -> bytes:
    return PNG_SIGNATURE + b"".join(png_chunk(kind, data) for kind, data in chunks)


def idat_data(png: bytes) -> bytes:
    """The zlib stream of a PNG: its IDAT chunks' data joined."""
    return b"".join(data for kind, data in png_chunks(png) if kind == b"IDAT")


def with_chunks(png: bytes, extra: list[bytes], after_idat: bool = False) -> bytes:
    """`png` with the encoded chunks `extra` inserted before its first IDAT (or before IEND)."""
    chunks = png_chunks(png)
    kinds = [kind for kind, _ in chunks]
    at = kinds.index(b"IEND") if after_idat else kinds.index(b"IDAT")
    return png_of(chunks[:at]) + b"".join(extra) + png_of(chunks[at:])[len(PNG_SIGNATURE) :]


def text_chunk(kind: bytes, number: int) -> bytes:
    """A small tEXt, zTXt or iTXt chunk whose keyword is "k<number>" (so each is kept apart)."""
    key = b"k%d\x00" % number
    data = {
        b"tEXt": key + b"v",
        b"zTXt": key + b"\x00" + zlib.compress(b"v"),
        b"iTXt": key + b"\x00\x00en\x00k\x00v",  # uncompressed, language "en", translated key "k"
    }[kind]
    return png_chunk(kind, data)


def many_chunk_png(
    count: int | None = None, kind: bytes = b"prVt", after_idat: bool = False, png: bytes | None = None
) -> bytes:
    """`png` (by default the seed digit.png) with `count` empty chunks of type `kind` before its
    IDAT (or after it), by default as many as fit in BUDGET: 12 bytes each, ~660,000.

    "prVt" is ancillary, private and safe to copy: a decoder must skip it, and Pillow does so in
    Python, one chunk at a time, raising and catching an AttributeError for each.
    """
    png = seed("digit.png") if png is None else png
    chunk = png_chunk(kind)
    count = (BUDGET - len(png)) // len(chunk) if count is None else count
    return with_chunks(png, [chunk] * count, after_idat)


def many_text_png(kind: bytes, count: int | None = None, png: bytes | None = None) -> bytes:
    """`png` with `count` text chunks of type `kind` (distinct keywords) before its IDAT, by
    default as many as fit in BUDGET."""
    png = seed("digit.png") if png is None else png
    if count is None:
        count = (BUDGET - len(png)) // len(text_chunk(kind, 999_999))
    return with_chunks(png, [text_chunk(kind, number) for number in range(count)])


def split_idat(png: bytes, size: int) -> bytes:
    """`png` with its image data re-cut into IDAT chunks of `size` bytes (13+ bytes per chunk)."""
    chunks = png_chunks(png)
    data = idat_data(png)
    kinds = [kind for kind, _ in chunks]
    first = kinds.index(b"IDAT")
    pieces = [(b"IDAT", data[at : at + size]) for at in range(0, len(data), size)]
    rest = [(kind, body) for kind, body in chunks[first:] if kind != b"IDAT"]
    return png_of(chunks[:first] + pieces + rest)


def noise_png(side: int, seed_value: int = 0) -> bytes:
    """A `side`-square grayscale PNG of random pixels, stored without compression: its IDAT is
    about side * (side + 1) bytes."""
    noise = np.random.default_rng(seed_value).integers(0, 256, (side, side), dtype=np.uint8)
    return encoded(Image.fromarray(noise), "PNG", compress_level=0)


# --- GIF -------------------------------------------------------------------------------------
def gif_first_frame() -> bytes:
    """The seed digit as a one-frame GIF: a two-colour palette, white (0) and black (1)."""
    return seed("digit.gif")


def gif_dot(x: int, y: int) -> bytes:
    """A GIF frame of one black pixel (palette index 1) at (x, y), no local palette: 15 bytes.

    LZW with minimum code size 2 and 3-bit codes: clear (4), 1, end (5), packed LSB first.
    """
    return b"\x2c" + struct.pack("<HHHHB", x, y, 1, 1, 0) + b"\x02" + b"\x02\x4c\x01" + b"\x00"


def many_frame_gif(frames: int | None = None, first: bytes | None = None) -> bytes:
    """The one-frame GIF `first` (by default gif_first_frame()) followed by frames - 1 frames of
    one black dot each, all over the picture; by default as many as fit in BUDGET (~530,000)."""
    first = gif_first_frame() if first is None else first
    assert first.endswith(b"\x3b")  # the trailer
    width, height = struct.unpack("<HH", first[6:10])
    dot = len(gif_dot(0, 0))
    frames = (BUDGET - len(first)) // dot + 1 if frames is None else frames
    dots = [gif_dot((7 * n) % width, (3 * n) % height) for n in range(min(frames - 1, width * height))]
    body = b"".join(dots[n % len(dots)] for n in range(frames - 1)) if dots else b""
    return first[:-1] + body + b"\x3b"


# --- WebP ------------------------------------------------------------------------------------
def riff_chunks(webp: bytes) -> list[tuple[bytes, bytes]]:
    """(fourcc, payload) of each chunk of a WebP file's RIFF body."""
    assert webp[:4] == b"RIFF" and webp[8:12] == b"WEBP"
    chunks, at = [], 12
    while at + 8 <= len(webp):
        fourcc, (size,) = webp[at : at + 4], struct.unpack("<I", webp[at + 4 : at + 8])
        chunks.append((fourcc, webp[at + 8 : at + 8 + size]))
        at += 8 + size + (size & 1)
    return chunks


def riff_chunk(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)


def webp_file(chunks: list[bytes]) -> bytes:
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def uint24(value: int) -> bytes:
    return struct.pack("<I", value)[:3]


def anmf(bitstream: bytes, x: int, y: int, width: int, height: int) -> bytes:
    """An animation frame chunk: at (x, y) (even), `width` x `height`, 100 ms, no blending, the
    VP8L chunk `bitstream`."""
    header = uint24(x // 2) + uint24(y // 2) + uint24(width - 1) + uint24(height - 1) + uint24(100)
    return riff_chunk(b"ANMF", header + b"\x02" + bitstream)  # flags: do not blend, do not dispose


def vp8l_chunk(image: Image.Image) -> bytes:
    """`image` losslessly encoded, as the VP8L chunk of a simple-format WebP."""
    ((fourcc, payload),) = riff_chunks(encoded(image, "WEBP", lossless=True))
    assert fourcc == b"VP8L"
    return riff_chunk(fourcc, payload)


def many_frame_webp(frames: int | None = None, first: Image.Image | None = None) -> bytes:
    """An animated lossless WebP: `first` (by default the seed digit.webp's picture) on the whole
    canvas, then frames - 1 frames of a 2x2 black square each, all over the picture; by default
    as many as fit in BUDGET (~180,000)."""
    first = Image.open(io.BytesIO(seed("digit.webp"))).convert("RGB") if first is None else first
    width, height = first.size
    vp8x = riff_chunk(b"VP8X", b"\x02\x00\x00\x00" + uint24(width - 1) + uint24(height - 1))  # animation
    anim = riff_chunk(b"ANIM", b"\xff\xff\xff\xff" + struct.pack("<H", 0))  # white background, loop forever
    head = [vp8x, anim, anmf(vp8l_chunk(first.convert("RGB")), 0, 0, width, height)]
    square = vp8l_chunk(Image.new("RGB", (2, 2), 0))
    frame = len(anmf(square, 0, 0, 2, 2))
    frames = (BUDGET - len(webp_file(head))) // frame + 1 if frames is None else frames
    spots = [(2 * ((7 * n) % (width // 2)), 2 * ((3 * n) % (height // 2))) for n in range(min(frames - 1, 997))]
    squares = [anmf(square, x, y, 2, 2) for x, y in spots]
    return webp_file(head + [squares[n % len(squares)] for n in range(frames - 1)])


# --- TIFF ------------------------------------------------------------------------------------
TIFF_SHORT, TIFF_LONG = 3, 4


def tiff_ifd(entries: list[tuple[int, int, int]], next_offset: int) -> bytes:
    """A little-endian IFD of (tag, type, value) entries, one value each, sorted by tag."""
    body = struct.pack("<H", len(entries))
    for tag, kind, value in sorted(entries):
        packed = struct.pack("<HH", value, 0) if kind == TIFF_SHORT else struct.pack("<I", value)
        body += struct.pack("<HHI", tag, kind, 1) + packed
    return body + struct.pack("<I", next_offset)


def page_entries(
    width: int, height: int, strip_offset: int, strip_bytes: int, compression: int = 1
) -> list[tuple[int, int, int]]:
    """The tags of an 8-bit grayscale page held in one strip, uncompressed (1) or deflated (8)."""
    return [
        (256, TIFF_LONG, width),  # ImageWidth
        (257, TIFF_LONG, height),  # ImageLength
        (258, TIFF_SHORT, 8),  # BitsPerSample
        (259, TIFF_SHORT, compression),  # Compression
        (262, TIFF_SHORT, 1),  # PhotometricInterpretation: black is zero
        (273, TIFF_LONG, strip_offset),  # StripOffsets
        (277, TIFF_SHORT, 1),  # SamplesPerPixel
        (278, TIFF_LONG, height),  # RowsPerStrip
        (279, TIFF_LONG, strip_bytes),  # StripByteCounts
    ]


IFD_BYTES = len(tiff_ifd(page_entries(1, 1, 0, 0), 0))  # 114


def many_page_tiff(
    pages: int | None = None, first: Image.Image | None = None, loop_to: int | None = None, deflate: bool = False
) -> bytes:
    """A grayscale TIFF: `first` (by default digit()) as page 1, then pages - 1 uncompressed
    pages of black (one shared strip, each page a 114-byte IFD); by default as many as fit in
    BUDGET (~70,000). With `deflate`, page 1 is deflate-compressed, which Pillow hands to libtiff
    (an uncompressed page it reads itself). With `loop_to`, the last page's next-IFD offset
    points back to page `loop_to` (0 for the first) instead of ending the chain: a reader that
    follows it without checking never stops."""
    first = digit() if first is None else first.convert("L")
    width, height = first.size
    pixels = first.tobytes()
    strip = zlib.compress(pixels) if deflate else pixels
    black = bytes(width * height)
    pages = (BUDGET - 8 - len(strip) - len(black)) // IFD_BYTES if pages is None else pages
    ifds_at = 8 + len(strip) + len(black)  # header, page 1's strip, the black strip, then the IFDs
    ifds_at += ifds_at & 1  # IFDs start on a word boundary
    out = [b"II*\x00" + struct.pack("<I", ifds_at), strip, black, bytes(ifds_at - 8 - len(strip) - len(black))]
    for page in range(pages):
        at = ifds_at + page * IFD_BYTES
        last = page == pages - 1
        following = (ifds_at + loop_to * IFD_BYTES if loop_to is not None else 0) if last else at + IFD_BYTES
        if page == 0:
            entries = page_entries(width, height, 8, len(strip), 8 if deflate else 1)
        else:
            entries = page_entries(width, height, 8 + len(strip), len(black))
        out.append(tiff_ifd(entries, following))
    return b"".join(out)


# --- where the structure is, for mutations that keep it -------------------------------------
def png_spans(png: bytes) -> list[tuple[int, int]]:
    """(start, end) of each chunk of a PNG, as far as its lengths can be followed."""
    spans, at = [], len(PNG_SIGNATURE)
    while at + 12 <= len(png):
        end = at + 12 + struct.unpack(">I", png[at : at + 4])[0]
        spans.append((at, min(end, len(png))))
        at = end
    return spans


def jpeg_spans(jpeg: bytes) -> list[tuple[int, int]]:
    """(start, end) from each JPEG marker to the next: a header segment, or a scan with its data.

    A marker is 0xFF and a byte other than 0 (stuffing), 0xFF (fill) or RST0-7 (inside a scan).
    """
    markers = set(range(0x01, 0xFF)) - set(range(0xD0, 0xD8))
    starts = [at for at in range(len(jpeg) - 1) if jpeg[at] == 0xFF and jpeg[at + 1] in markers]
    return list(zip(starts, starts[1:] + [len(jpeg)]))


def riff_spans(webp: bytes) -> list[tuple[int, int]]:
    """(start, end) of each top-level chunk of a WebP file."""
    spans, at = [], 12
    while at + 8 <= len(webp):
        size = struct.unpack("<I", webp[at + 4 : at + 8])[0]
        end = at + 8 + size + (size & 1)
        spans.append((at, min(end, len(webp))))
        at = end
    return spans


def tiff_ifd_offsets(tiff: bytes, limit: int = 1000) -> list[int]:
    """The offsets of a little-endian TIFF's IFDs, in chain order, up to `limit` of them and
    stopping at the first that repeats or lies outside the file."""
    offsets, seen, at = [], set(), struct.unpack("<I", tiff[4:8])[0]
    while 8 <= at and at + 2 <= len(tiff) and at not in seen and len(offsets) < limit:
        offsets.append(at)
        seen.add(at)
        entries = struct.unpack("<H", tiff[at : at + 2])[0]
        pointer = at + 2 + 12 * entries
        if pointer + 4 > len(tiff):
            break
        at = struct.unpack("<I", tiff[pointer : pointer + 4])[0]
    return offsets


def next_ifd_pointer(tiff: bytes, ifd: int) -> int:
    """Where the next-IFD offset of the IFD at `ifd` is stored."""
    return ifd + 2 + 12 * struct.unpack("<H", tiff[ifd : ifd + 2])[0]


# --- the seeds -------------------------------------------------------------------------------
def two_colour(image: Image.Image) -> Image.Image:
    """`image` as a palette image of white (index 0) and black (index 1)."""
    ink = image.convert("L").point(lambda value: 1 if value < 128 else 0)
    palette = ink.convert("P") if ink.mode != "P" else ink
    palette.putpalette([255, 255, 255, 0, 0, 0])
    return palette


def write_seeds(folder: Path = SEEDS) -> None:
    """Write the seed files that Pillow and these generators make (`python -m testkit.crafted`);
    the arithmetic-coded JPEGs are made by cjpeg from digit.pgm (see the folder's README.md)."""
    folder.mkdir(parents=True, exist_ok=True)
    picture = digit()
    picture.save(folder / "digit.pgm")
    files = {
        "digit.png": encoded(picture, "PNG"),
        "digit-progressive.jpg": encoded(picture, "JPEG", progressive=True, quality=90),
        "digit.gif": encoded(two_colour(picture), "GIF"),
        "digit.webp": encoded(picture.convert("RGB"), "WEBP", lossless=True),
    }
    texts = [text_chunk(kind, n) for n in range(4) for kind in (b"tEXt", b"zTXt", b"iTXt")]
    files["digit-chunks.png"] = split_idat(with_chunks(files["digit.png"], [png_chunk(b"prVt")] * 8 + texts), 16)
    files["digit-mpo.jpg"] = mpo_wrapped(files["digit-progressive.jpg"])
    files["digit-20-frames.gif"] = many_frame_gif(20, files["digit.gif"])
    files["digit-20-frames.webp"] = many_frame_webp(20, picture.convert("RGB"))
    files["digit-3-pages.tif"] = many_page_tiff(3, picture)
    files["digit-3-pages-loop.tif"] = many_page_tiff(3, picture, loop_to=0)
    files["digit-3-pages-deflate.tif"] = many_page_tiff(3, picture, deflate=True)
    lzw = io.BytesIO()
    negative = picture.point(lambda value: 255 - value)
    picture.save(lzw, format="TIFF", compression="tiff_lzw", save_all=True, append_images=[negative] * 2)
    files["digit-3-pages-lzw.tif"] = lzw.getvalue()
    for name, content in files.items():
        (folder / name).write_bytes(content)


if __name__ == "__main__":
    write_seeds()
