"""Turn any picture of one digit into what the model was trained on: an MNIST-style 28x28.

MNIST digits are light ink on a black background, scaled to fit a 20x20 box with their aspect
ratio kept, and placed in a 28x28 field so that their centre of mass is at the centre. A photo
or scan is none of these; feeding it to the model as-is scores near chance. `to_mnist` does to
every input what was done to MNIST.
"""
import numpy as np
from PIL import Image
from scipy import ndimage

from pipeline.datasets import IMAGE_SHAPE
from pipeline.errors import ImageError

BOX = 20
# Work at most at this size: enough for a digit, and bounded time for any photo.
WORKING_SIDE = 256
# Less than this difference between ink and paper (on a 0-1 scale) is no ink at all.
MIN_CONTRAST = 0.15
# Thinner strokes are widened to this, in pixels of the 20 box. MNIST's median by `stroke_width`
# is 2.6 (quartiles 2.3-3.1); 3.0 scored best on the realistic set (2.5: -0.7 points, 4: -1.3).
STROKE_WIDTH = 3.0
# Specks smaller than this fraction of the largest stroke are noise, not part of the digit.
SPECK_FRACTION = 0.05
# Ink levels closer than this are one level (a two-tone image, give or take float rounding):
# well under one step of an 8-bit image, well over the rounding of averaging equal pixels.
ONE_LEVEL = 1 / 1024


def to_mnist(gray: np.ndarray, name: str = "image") -> np.ndarray:
    """A grayscale image in [0, 1] (either polarity, any size) as a 28x28 float32 MNIST digit."""
    ink = _ink(_shrink(gray), name)
    digit = _crop_digit(ink, name)
    scale = BOX / max(digit.shape)
    digit = _thicken(digit, scale)
    digit = _resize(digit, scale)
    return _centre_by_mass(digit / digit.max())


def _shrink(gray: np.ndarray) -> np.ndarray:
    height, width = gray.shape
    factor = WORKING_SIDE / max(height, width)
    if factor >= 1:
        return gray
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(Image.fromarray(gray, mode="F").resize(size, Image.Resampling.BOX))


def _ink(gray: np.ndarray, name: str) -> np.ndarray:
    """Ink as light-on-dark in [0, 1], the paper at exactly 0."""
    band = max(1, min(gray.shape) // 16)
    border = np.concatenate([gray[:band].ravel(), gray[-band:].ravel(), gray[:, :band].ravel(), gray[:, -band:].ravel()])
    paper = float(np.median(border))
    # The border is mostly paper: light paper means dark ink, as on a page or a whiteboard.
    ink = paper - gray if paper > 0.5 else gray - paper
    # Averaging 2x2 blocks keeps a lone noisy pixel from passing for ink (a median filter would
    # too, at 30 times the cost).
    strongest = float(ndimage.uniform_filter(ink, size=2).max())
    if strongest < MIN_CONTRAST:
        raise ImageError(f"{name}: no digit found (the image is blank or has too little contrast)")
    # Both terms lie below the brightest ink pixel (Otsu's level always does, and `strongest` is
    # an average of ink), so some ink is above the threshold and so is `typical`: the stretch
    # below cannot divide by zero or leave nothing, even when all the ink is one level.
    threshold = max(_otsu(ink[ink > 0]), strongest * 0.25)
    # Below the threshold is paper, noise or shadow. Stretching from there to the typical ink
    # level gives back the steep edges of MNIST's strokes even when the photo is blurred.
    typical = float(np.median(ink[ink > threshold]))
    return np.clip((ink - threshold) / (typical - threshold), 0.0, 1.0)


def _otsu(values: np.ndarray) -> float:
    """The level that best separates `values` into two classes (Otsu's method); always below
    the largest value, and below all of them when they are one level (nothing to separate)."""
    low, high = float(values.min()), float(values.max())
    if high - low < ONE_LEVEL:  # a two-tone image: every ink pixel is equally ink
        return low - ONE_LEVEL
    counts, edges = np.histogram(values, bins=128)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(counts)
    mean = np.cumsum(counts * centres)
    total, total_mean = weight[-1], mean[-1]
    below, above = weight[:-1], total - weight[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_mean * below / total - mean[:-1]) ** 2 / (below * above)
    between = np.nan_to_num(between)
    # An inner edge: above the lowest value and below the highest (the bins are wider than
    # ONE_LEVEL / 128, far above float rounding).
    return float(edges[1:-1][np.argmax(between)])


def _crop_digit(ink: np.ndarray, name: str) -> np.ndarray:
    """The digit's strokes cut to their bounding box, specks of noise removed."""
    labels, count = ndimage.label(ink > 0)
    if count == 0:  # `_ink` keeps some ink; this is the guard if that ever stops being so
        raise ImageError(f"{name}: no digit found (no ink left after separating it from the paper)")
    sizes = ndimage.sum_labels(np.ones_like(ink), labels, index=np.arange(1, count + 1))
    keep = np.flatnonzero(sizes >= SPECK_FRACTION * sizes.max()) + 1
    mask = np.isin(labels, keep)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return (ink * mask)[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def stroke_width(ink: np.ndarray) -> float:
    """Mean stroke width in pixels: ink area over half the outline's length."""
    mask = ink > 0.5
    outline = mask & ~ndimage.binary_erosion(mask)
    return 2 * mask.sum() / max(outline.sum(), 1)


def _thicken(digit: np.ndarray, scale: float) -> np.ndarray:
    """Widen strokes that would be thinner than MNIST's once scaled (a fine pen on a big page)."""
    # Dilating by a disk of radius r widens every stroke by 2r.
    radius = int(round((STROKE_WIDTH / scale - stroke_width(digit)) / 2))
    if radius < 1:
        return digit
    span = np.arange(-radius, radius + 1)
    disk = span[:, None] ** 2 + span[None, :] ** 2 <= radius**2
    return ndimage.grey_dilation(np.pad(digit, radius), footprint=disk)


def _resize(digit: np.ndarray, scale: float) -> np.ndarray:
    height, width = digit.shape
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # BOX averages when shrinking (MNIST's anti-aliasing); bilinear when enlarging a tiny digit.
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    return np.clip(np.asarray(Image.fromarray(digit.astype(np.float32), mode="F").resize(size, method)), 0, 1)


def _centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Place `digit` in the 28x28 field with its centre of mass at the centre, all ink kept."""
    height, width = digit.shape
    com_row, com_col = ndimage.center_of_mass(digit)
    rows, cols = IMAGE_SHAPE
    # The field's centre, where MNIST's centres of mass are, in pixel-index coordinates.
    top = int(np.clip(round(rows / 2 - com_row), 0, rows - height))
    left = int(np.clip(round(cols / 2 - com_col), 0, cols - width))
    field = np.zeros(IMAGE_SHAPE, dtype=np.float32)
    field[top : top + height, left : left + width] = digit
    return field
