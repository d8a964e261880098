"""Scans and thumbnails at low resolution, and pens thicker or thinner than MNIST's.

A flatbed scan at low resolution, a fax, or a thumbnail keeps only 8-16 pixels of a digit's
height; the upload enlarges it again, blocky (nearest neighbour) or soft (bilinear). And people
write with markers and with fine pens: the same digit with strokes twice MNIST's width or half
of it, which the model never saw. Both are dark ink on light paper, as a scanner sees it, with
a scanner's light noise, saved as PNG or as a good JPEG.
"""

from collections.abc import Callable

import numpy as np
from PIL import Image
from scipy import ndimage

from pipeline.render import encode, noise, resized, to_uint8

DIGIT_ROWS = 20  # of MNIST's 28 rows, the digit's: its box without the margin
LOW_ROWS = (8, 16)  # the digit's height in a low-resolution scan
ENLARGED = (64, 128)  # and the image's side once enlarged again for the upload
PEN_SIDE = 112  # pens are widened or narrowed at 4x MNIST's resolution, where a stroke is ~10 px
# A marker's stroke at PEN_SIDE, in pixels: 1.5-2.1 times MNIST's median (2.6 of the 20-pixel box).
MARKER = (16, 22)
NARROWER = (0.4, 0.6)  # a fine pen: strokes this fraction of the digit's own width


def render(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The digit as a low-resolution scan, enlarged, or in a pen thicker or thinner than MNIST's."""
    paper, ink = rng.uniform(0.8, 0.98), rng.uniform(0.0, 0.25)
    grain = rng.uniform(0.003, 0.015)
    if rng.random() < 0.5:
        gray = low_resolution(digit, paper, ink, grain, rng)
    else:
        darkness = marker(digit, rng) if rng.random() < 0.5 else fine_pen(digit, rng)
        gray = paper - (paper - ink) * darkness + noise(darkness.shape, grain, rng)
    image = Image.fromarray(to_uint8(gray), mode="L")
    if rng.random() < 0.5:
        return encode(image, "PNG")
    return encode(image, "JPEG", quality=int(rng.integers(85, 96)))


def low_resolution(digit: np.ndarray, paper: float, ink: float, grain: float, rng: np.random.Generator) -> np.ndarray:
    """Scanned with the digit 8-16 pixels high (each pixel the mean of what it covers, as a
    sensor's is), noise and all, then enlarged to 64-128 pixels."""
    small_side = round(int(rng.integers(LOW_ROWS[0], LOW_ROWS[1] + 1)) * 28 / DIGIT_ROWS)
    small = resized(digit, (small_side, small_side), Image.Resampling.BOX)
    scan = paper - (paper - ink) * small + noise(small.shape, grain, rng)
    side = int(rng.integers(ENLARGED[0], ENLARGED[1] + 1))
    method = Image.Resampling.NEAREST if rng.random() < 0.5 else Image.Resampling.BILINEAR
    return resized(scan, (side, side), method)


def marker(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A marker: the strokes grown by grey dilation to 16-22 pixels (MNIST's are about 10 at
    this size), by at least 2 pixels a side however bold the digit already is."""
    large = resized(digit, (PEN_SIDE, PEN_SIDE))
    radius = max(2, round((rng.uniform(*MARKER) - stroke_width(large > 0.5)) / 2))
    return _grown(large, radius, ndimage.maximum_filter)


def fine_pen(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A fine pen: the strokes worn down by grey erosion to 0.4-0.6 of their width, less where
    that would break a stroke (a digit in pieces is no longer the digit)."""
    large = resized(digit, (PEN_SIDE, PEN_SIDE))
    mask = large > 0.5
    width = stroke_width(mask)
    steps = max(1, round(width * (1 - rng.uniform(*NARROWER)) / 2))
    pieces = _pieces(mask)
    for radius in range(steps, 0, -1):
        thinner = _grown(large, radius, ndimage.minimum_filter)
        if thinner.max() > 0.5 and _pieces(thinner > 0.5) <= pieces:
            return thinner
    return large


def _grown(values: np.ndarray, radius: int, extreme: Callable[..., np.ndarray]) -> np.ndarray:
    """Grey dilation (`maximum_filter`) or erosion (`minimum_filter`) by an octagon of `radius`,
    about a disk: 3x3 squares and crosses in turn, each a fast separable or tiny filter."""
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)
    for step in range(radius):
        values = extreme(values, size=3) if step % 2 == 0 else extreme(values, footprint=cross)
    return values


def stroke_width(mask: np.ndarray) -> float:
    """A mask's mean stroke width in pixels: its area over half its perimeter (a stroke of
    length L and width w has area L*w and perimeter about 2L)."""
    edge = mask & ~ndimage.binary_erosion(mask)
    return float(mask.sum()) / max(float(edge.sum()) / 2, 1.0)


def _pieces(mask: np.ndarray) -> int:
    return int(ndimage.label(mask, structure=np.ones((3, 3)))[1])
