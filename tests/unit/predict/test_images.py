"""Opening whatever image a user hands to predict: formats, modes, and every kind of bad file."""

import io
import struct

import numpy as np
import pytest
from PIL import Image

from pipeline.predict import images
from pipeline.predict.images import ImageError
from testkit.builders import png_claiming
from testkit.faults import special_path
from testkit.memory import peak_allocation


def saved(tmp_path, image: Image.Image, name: str, **options) -> str:
    path = tmp_path / name
    image.save(path, **options)
    return path


def gradient(mode: str = "L") -> Image.Image:
    values = np.tile(np.linspace(0, 255, 40, dtype=np.uint8), (30, 1))
    return Image.fromarray(values, mode="L").convert(mode)


@pytest.mark.parametrize("name", ["a.png", "a.jpg", "a.bmp", "a.gif", "a.tiff", "a.webp"])
@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_every_format_and_mode_decodes_to_gray_in_unit_range(tmp_path, name, mode):
    gray = images.load_gray(saved(tmp_path, gradient(mode), name))
    assert gray.shape == (30, 40) and gray.dtype == np.float32
    assert gray[:, 0].max() < 0.05 and gray[:, -1].min() > 0.9  # dark left, light right (JPEG blurs a little)


def test_gif_first_frame_is_used(tmp_path):
    frames = [Image.new("L", (20, 20), 0), Image.new("L", (20, 20), 255)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert images.load_gray(path).max() == 0


def test_transparency_is_white_paper(tmp_path):
    rgba = Image.new("RGBA", (20, 20), (0, 0, 0, 0))  # fully transparent black
    rgba.putpixel((5, 5), (0, 0, 0, 255))  # one opaque black pixel
    gray = images.load_gray(saved(tmp_path, rgba, "t.png"))
    assert gray[0, 0] == 1.0 and gray[5, 5] == 0.0


def test_sixteen_bit_tiff_keeps_its_range(tmp_path):
    values = np.tile(np.linspace(0, 65535, 16, dtype=np.uint16), (16, 1))
    gray = images.load_gray(saved(tmp_path, Image.fromarray(values), "deep.tif"))
    assert gray.min() == 0.0 and gray.max() == 1.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"", "empty file"),
        (b"digits: 3 1 4 1 5\n", "not an image"),
    ],
)
def test_unusable_files_get_one_line_naming_them(tmp_path, content, message):
    path = tmp_path / "input.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as caught:
        images.load_gray(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "message"),
    [("loop", "symlink loop"), ("broken", "broken symlink"), ("fifo", "named pipe"), ("device", "a device")],
)
def test_a_path_that_is_no_image_file_says_what_it_is(tmp_path, kind, message):
    path = special_path(kind, tmp_path)  # a named pipe would block the decoder: refused before opening
    with pytest.raises(ImageError, match=message) as caught:
        images.load_gray(path)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)


def test_a_folder_named_as_an_image_says_so(tmp_path):
    with pytest.raises(ImageError, match="is a folder, not a file"):
        images.load_gray(tmp_path)


@pytest.mark.parametrize("name", ["cut.png", "cut.jpg"])
def test_truncated_image_is_refused(tmp_path, name):
    whole = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(whole, format="PNG" if name.endswith("png") else "JPEG")
    path = tmp_path / name
    path.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        images.load_gray(path)


def test_one_pixel_image_is_too_small(tmp_path):
    with pytest.raises(ImageError, match="1x1 pixels is too small"):
        images.load_gray(saved(tmp_path, Image.new("L", (1, 1)), "dot.png"))


@pytest.mark.parametrize("side", [100_000, 8_000])  # 10 gigapixels (Pillow's own check), 64 megapixels (ours)
def test_decompression_bomb_is_refused_before_allocating(tmp_path, side):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(side, side))

    def load():
        with pytest.raises(ImageError, match="refusing it .a decompression bomb"):
            images.load_gray(path)

    assert peak_allocation(load) < 10_000_000


def test_arrays_in_either_range_and_colour():
    uint8 = np.full((10, 12), 255, dtype=np.uint8)
    assert images.from_array(uint8).max() == 1.0
    rgb = np.zeros((10, 12, 3), dtype=np.float32)
    assert images.from_array(rgb).shape == (10, 12)
    with pytest.raises(ImageError, match=r"shape \(2, 3, 4, 5\)"):
        images.from_array(np.zeros((2, 3, 4, 5)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("source", ["float-tiff", "gray-array", "rgb-array"])
def test_nan_or_infinite_pixels_are_one_line_naming_the_input(tmp_path, source, bad):
    values = np.tile(np.linspace(0, 1, 40, dtype=np.float32), (30, 1))
    values[10:20, 10:20] = bad  # a patch of it, among ordinary pixels
    with pytest.raises(ImageError, match="holds NaN or infinite values") as caught:
        if source == "float-tiff":
            images.load_gray(saved(tmp_path, Image.fromarray(values, mode="F"), "scan.tif"))
        else:
            images.from_array(values if source == "gray-array" else np.dstack([values] * 3), "scan")
    name = tmp_path / "scan.tif" if source == "float-tiff" else "scan"
    assert str(caught.value).startswith(f"{name}: ") and "\n" not in str(caught.value)


def test_a_directory_means_its_images_in_name_order(tmp_path):
    for name in ["b.PNG", "a.jpg", "notes.txt", "c.webp"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in images.image_files(tmp_path)] == ["a.jpg", "b.PNG", "c.webp"]


def test_exif_orientation_is_applied_as_a_phone_means_it(tmp_path):
    upright = gradient()  # 40 wide, 30 high: dark left, light right
    sideways = upright.transpose(Image.Transpose.ROTATE_90)  # as the sensor stored it
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "phone.jpg"
    sideways.save(path, exif=exif)
    gray = images.load_gray(path)
    assert gray.shape == (30, 40)
    assert gray[:, 0].max() < 0.05 and gray[:, -1].min() > 0.9


def phone_photo(tmp_path, damaged: bool = False) -> str:
    """`gradient()` stored sideways, with EXIF orientation 6 and a Make tag."""
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    exif[0x010F] = "PhoneMaker"  # Make, a text tag
    buffer = io.BytesIO()
    gradient().transpose(Image.Transpose.ROTATE_90).save(buffer, format="JPEG", exif=exif)
    raw = buffer.getvalue()
    make_entry = b"\x01\x0f\x00\x02"  # tag 0x010F (Make), type 2 (text)
    assert raw.count(make_entry) == 1
    if damaged:  # retagged 0x0118, MinSampleValue: a number tag whose value is now text
        raw = raw.replace(make_entry, b"\x01\x18\x00\x02")
    path = tmp_path / "phone.jpg"
    path.write_bytes(raw)
    return path


def test_damaged_exif_tags_do_not_stop_the_orientation_being_applied(tmp_path):
    # Pillow reads this orientation, then fails (struct.error) writing the damaged tags back.
    gray = images.load_gray(phone_photo(tmp_path, damaged=True))
    assert gray.shape == (30, 40)
    assert gray[:, 0].max() < 0.05 and gray[:, -1].min() > 0.9


def test_unreadable_exif_means_the_image_as_stored(tmp_path, monkeypatch):
    def unreadable(self):
        raise struct.error("required argument is not an integer")

    monkeypatch.setattr(Image.Image, "getexif", unreadable)
    gray = images.load_gray(phone_photo(tmp_path))
    assert gray.shape == (40, 30)  # sideways, as the sensor stored it


def test_pixel_count_reads_the_header_only_and_is_zero_for_no_image():
    buffer = io.BytesIO()
    Image.new("L", (30, 20)).save(buffer, format="PNG")
    assert images.pixel_count(buffer.getvalue()) == 600
    assert images.pixel_count(png_claiming(5000, 5000)) == 25_000_000  # claimed, never decoded
    # refused as soon as its header is read, like any bytes that are no image
    assert images.pixel_count(png_claiming(100_000, 100_000)) == 0
    assert images.pixel_count(b"not an image") == images.pixel_count(b"") == 0


def alpha_only_seven(ink: int) -> Image.Image:
    """A drawing app's export: every pixel the colour `ink`, the "7" only in the alpha channel."""
    shape = Image.new("L", (60, 60), 0)
    from PIL import ImageDraw

    ImageDraw.Draw(shape).line([(15, 12), (45, 12), (25, 50)], fill=255, width=5)
    image = Image.new("RGBA", (60, 60), (ink, ink, ink, 0))
    image.putalpha(shape)
    return image


@pytest.mark.parametrize("ink", [255, 0], ids=["white-ink", "black-ink"])
def test_a_shape_only_in_the_alpha_channel_is_kept(tmp_path, ink):
    gray = images.load_gray(saved(tmp_path, alpha_only_seven(ink), "export.png"))
    stroke, around = gray[12, 30], gray[30, 5]  # on the 7's bar, and far from it
    assert abs(stroke - around) == pytest.approx(1.0)
    assert stroke == ink / 255


@pytest.mark.parametrize("bits", [10, 12, 16])
def test_deep_pngs_are_read_by_the_bits_they_use(tmp_path, bits):
    top = 2**bits - 1
    values = np.zeros((20, 20), np.uint16)
    values[5:15, 9:11] = top  # a "1" at full scale of its depth
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")  # really a 16-bit file
    gray = images.load_gray(path)
    assert gray.max() == 1.0 and gray.min() == 0.0


@pytest.mark.parametrize(
    "array",
    [
        np.array([[0, 128, 255]] * 8 * 3).reshape(8 * 3, 3).repeat(4, axis=1),
        np.array([[0.0, 128.0, 255.0]] * 24).repeat(4, axis=1),
        np.array([[0, 128, 255]] * 24, dtype=np.int16).repeat(4, axis=1),
    ],
    ids=["int64-0-255", "float-0-255", "int16-0-255"],
)
def test_arrays_of_the_8_bit_range_are_scaled_not_clipped(array):
    unit = array.astype(np.float32) / 255
    np.testing.assert_allclose(images.from_array(array), unit, atol=1e-6)
    np.testing.assert_allclose(images.from_array(unit), unit, atol=1e-6)  # the same digit either way


@pytest.mark.parametrize(("low", "high"), [(-1.0, 1.0), (0.0, 70000.0), (-255.0, 0.0)])
def test_an_array_in_no_known_range_is_one_line_naming_the_range(low, high):
    array = np.linspace(low, high, 24 * 24).reshape(24, 24)
    with pytest.raises(ImageError) as caught:
        images.from_array(array, "scan")
    message = str(caught.value)
    assert message.startswith("scan: pixel values span ") and f"{low:g} to {high:g}" in message
    assert "\n" not in message


def progressive_jpeg(extra_scans: int = 0) -> bytes:
    """A progressive JPEG of a 256x256 gradient, and `extra_scans` empty scans before its end: each
    a valid SOS header refining the first component's DC bit, with no data (12 bytes)."""
    buffer = io.BytesIO()
    gradient = np.tile(np.arange(256, dtype=np.uint8), (256, 1))
    Image.fromarray(gradient, mode="L").save(buffer, format="JPEG", progressive=True, quality=90)
    data = buffer.getvalue()
    assert data.endswith(b"\xff\xd9")
    empty_scan = b"\xff\xda" + struct.pack(">H", 8) + bytes([1, 1, 0x00, 0, 0, 0x10]) + b"\x00\x00"
    return data[:-2] + empty_scan * extra_scans + b"\xff\xd9"


def test_a_progressive_jpeg_as_encoders_write_it_decodes():
    gray = images.load_gray_bytes(progressive_jpeg(), "photo.jpg")
    assert gray.shape == (256, 256) and gray[:, -1].mean() > 0.9 > 0.1 > gray[:, 0].mean()


def test_a_jpeg_padded_with_empty_scans_is_refused_before_any_is_decoded(tmp_path):
    bomb = progressive_jpeg(extra_scans=200_000)  # 2.4 MB: under the service's 8 MB upload limit
    with pytest.raises(ImageError, match=r"^upload.jpg: a JPEG of 200,\d{3} scans; refusing it"):
        images.load_gray_bytes(bomb, "upload.jpg")
    path = tmp_path / "scan-bomb.jpg"
    path.write_bytes(bomb)
    with pytest.raises(ImageError, match="scan-bomb.jpg: a JPEG of"):
        images.load_gray(path)


@pytest.mark.parametrize("extra", [0, 50, images.MAX_JPEG_SCANS + 1])
def test_the_scan_limit_counts_every_scan(extra):
    data = progressive_jpeg(extra)
    scans = data.count(images.SCAN_MARKER)
    if scans > images.MAX_JPEG_SCANS:
        with pytest.raises(ImageError, match=f"a JPEG of {scans:,} scans"):
            images.load_gray_bytes(data, "x.jpg")
    else:
        images.load_gray_bytes(data, "x.jpg")  # what encoders write, and some slack, still reads
