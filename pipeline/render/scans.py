"""Low-resolution scans and thumbnails, and pens thicker or thinner than MNIST's.

A scanner at low resolution or a thumbnail keeps 8-16 pixels of a digit's height, and an
upload enlarges it again; a marker draws strokes twice MNIST's width, a fine pen half of it.
Both are dark ink on light paper, lightly noisy, as PNG or good JPEG.
"""
import numpy as np
from PIL import Image
from scipy import ndimage

from pipeline.render import encode, resized, to_uint8

WORK_SIDE = 112  # pens are thickened or thinned at 4x MNIST's resolution


def render(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    darkness = _low_resolution(digit, rng) if rng.random() < 0.5 else _other_pen(digit, rng)
    paper, ink = rng.uniform(0.75, 0.97), rng.uniform(0.0, 0.3)
    gray = paper - (paper - ink) * darkness + rng.normal(0, 0.01, darkness.shape)
    image = Image.fromarray(to_uint8(gray), mode="L")
    if rng.random() < 0.5:
        return encode(image, "PNG")
    return encode(image, "JPEG", quality=int(rng.integers(80, 96)))


def _low_resolution(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The digit (20 of MNIST's 28 rows) kept in 8-16 rows, then enlarged 4-8 times."""
    rows = int(rng.integers(8, 17))
    small = resized(digit, (round(rows * 28 / 20),) * 2, Image.Resampling.BOX)
    side = int(small.shape[0] * rng.integers(4, 9))
    method = Image.Resampling.NEAREST if rng.random() < 0.5 else Image.Resampling.BILINEAR
    return resized(small, (side, side), method)


def _other_pen(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The strokes widened (a marker) or narrowed (a fine pen) by a disk of 2-5 pixels at 4x."""
    large = resized(digit, (WORK_SIDE, WORK_SIDE))
    radius = int(rng.integers(2, 6))
    span = np.arange(-radius, radius + 1)
    disk = span[:, None] ** 2 + span[None, :] ** 2 <= radius**2
    if rng.random() < 0.5:
        return ndimage.grey_dilation(large, footprint=disk)
    thinner = ndimage.grey_erosion(large, footprint=disk[1:-1, 1:-1] if radius > 2 else disk)
    return thinner if thinner.max() > 0.5 else large  # a digit too thin to thin stays as it is
