"""Turn any picture of one digit into what the model was trained on: an MNIST-style 28x28.

MNIST digits are light ink on a black background, scaled to fit a 20x20 box with their aspect
ratio kept, and placed in a 28x28 field so that their centre of mass is at the centre. A photo
or scan is none of these; feeding it to the model as-is scores near chance. `to_mnist` does to
every input what was done to MNIST.
"""

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.spatial import ConvexHull

from pipeline.core.datasets import IMAGE_SHAPE
from pipeline.core.errors import ImageError

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
# The paper around a pixel is measured over a window of this fraction of the image's short
# side: wider than any stroke (a 20-px pen on the page's 280-px canvas is 1/14), narrower than
# a shadow or the sheet's edge.
BACKGROUND_WINDOW = 1 / 3
# A sheet of paper in a photo is convex: its area over its convex hull's (perimeter pixels
# included) is above this; a bold digit's outline has bays. It fills this much of the frame.
SHEET_SOLIDITY = 0.95
SHEET_AREA = (0.1, 0.9)
# Pixels of a sheet's rim, blurred into what is beside it.
SHEET_RIM = 2
# A part at least this many times its half-width squared in area is a stroke (a disk is 3.1,
# a square 4; a stroke of length L and width w is 4L/w).
THIN = 8.0
# The ink that a pixel's noise amounts to, in medians of the whole image's top-hat.
NOISE_MARGIN = 3.0
# Full ink: this percentile of the clearly inked pixels, so a stroke's core is 1 as in MNIST.
FULL_INK_PERCENTILE = 90
# Ink under this fraction of the strongest is paper: a blurred photo's faint fringe would
# otherwise widen the crop and shrink the digit. On MNIST's own digits it moves a pixel by
# 0.003 on average (1,000 test digits normalised again).
FAINTEST = 0.04
# A ruled page's lines run across most of the image and are fainter than the pen.
LINE_LENGTH = 0.75
FAINT_LINE = 0.6
# The paper beside a stroke is looked for this many stroke widths around it.
STROKE_WINDOW = 4.0


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
    """Ink as light-on-dark in [0, 1], the paper at 0, found from the image itself.

    The paper's level is measured around every pixel (a morphological top-hat), not taken from
    the border or a fixed level: a dark desk, a shadow or dim light moves the background, and
    the strokes stay what stands out from it. The ink's side is the picture's minority
    (`_dark_ink`); the edges' anti-aliasing is kept, as MNIST has it. A sheet of paper
    photographed on a desk is taken out of its surroundings first (`_sheet`).
    """
    sheet = _sheet(gray)
    if sheet is not None:
        gray = _only(gray, sheet)
    ink = _stand_out(gray, sheet is not None or _dark_ink(gray))
    strongest = _strongest(ink)
    if strongest < MIN_CONTRAST:
        raise ImageError(f"{name}: no digit found (the image is blank or has too little contrast)")
    ink = _without_faint_lines(ink)
    strongest = _strongest(ink)  # of what is left once the lines are out
    # Noise and JPEG ringing stand out from the paper by a little everywhere; the digit stands
    # out by much in few places. The median over the whole image is that little.
    floor = max(NOISE_MARGIN * float(np.median(ink)), FAINTEST * strongest)
    full = float(np.percentile(ink[ink > max(floor, strongest * 0.5)], FULL_INK_PERCENTILE))
    return np.clip((ink - floor) / (full - floor), 0.0, 1.0)


def _dark_ink(gray: np.ndarray) -> bool:
    """Whether the ink is darker than the paper: the paper is most of a picture of a digit."""
    return bool(_light(gray).mean() > 0.5)


def _light(gray: np.ndarray) -> np.ndarray:
    smooth = ndimage.uniform_filter(gray, size=2)  # a lone noisy pixel is not the darkest ink
    return smooth > (float(smooth.min()) + float(smooth.max())) / 2


def _sheet(gray: np.ndarray) -> np.ndarray | None:
    """The sheet of paper a photo shows on a desk or beside another sheet, or None.

    A sheet is the largest light part, convex (a page, even in perspective), with pen strokes
    (long thin parts) inside it, and smaller than the frame. A light digit on a dark ground is
    none of these: a bold digit has bays (a 2, a 9, the waist of an 8), and a bold 0, convex,
    encloses a round hole.
    """
    light = _light(gray)
    edge = np.concatenate([light[0], light[-1], light[:, 0], light[:, -1]])
    if edge.mean() > 0.5:
        return None  # the frame's edge is mostly light: paper to the edge, or a light ground
    # Eroded first, so that a light patch of desk touching the sheet's edge stays apart from it.
    labels, count = ndimage.label(ndimage.binary_erosion(light, iterations=2))
    if count == 0:
        return None
    largest = np.argmax(ndimage.sum_labels(np.ones_like(gray), labels, np.arange(1, count + 1))) + 1
    part = ndimage.binary_dilation(labels == largest, iterations=2) & light
    outline = ndimage.binary_fill_holes(part)
    if not SHEET_AREA[0] <= outline.mean() <= SHEET_AREA[1]:
        return None
    if _solidity(outline) < SHEET_SOLIDITY or not _mostly_strokes(outline & ~light):
        return None
    return outline


def _only(gray: np.ndarray, sheet: np.ndarray) -> np.ndarray:
    """`gray` cut to `sheet`'s bounding box, everything off the sheet made the paper at the
    sheet's nearest point: a shadow reaching the sheet's edge goes on beyond it, with no step
    that would stand out as a stroke. The sheet's rim, blurred into the desk, counts as off."""
    rows, cols = np.flatnonzero(sheet.any(axis=1)), np.flatnonzero(sheet.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    inside = ndimage.binary_erosion(sheet[box], iterations=SHEET_RIM)
    if not inside.any():
        inside = sheet[box]
    nearest = ndimage.distance_transform_edt(~inside, return_distances=False, return_indices=True)
    return gray[box][tuple(nearest)].astype(np.float32)


def _solidity(mask: np.ndarray) -> float:
    """`mask`'s area over its convex hull's: 1 for a convex shape."""
    points = np.argwhere(mask & ~ndimage.binary_erosion(mask))  # the outline is enough for the hull
    if len(points) < 3 or np.linalg.matrix_rank(points - points[0]) < 2:
        return 0.0
    return float(mask.sum() / ConvexHull(points).volume)  # a 2-D hull's "volume" is its area


def _mostly_strokes(mask: np.ndarray) -> bool:
    """Whether most of `mask`'s area is in long thin parts."""
    labels, count = ndimage.label(mask)
    if count == 0:
        return False
    index = np.arange(1, count + 1)
    areas = ndimage.sum_labels(mask, labels, index)
    half_widths = np.maximum(ndimage.maximum(ndimage.distance_transform_edt(mask), labels, index), 1.0)
    return bool(areas[areas / half_widths**2 > THIN].sum() > 0.5 * areas.sum())


def _stand_out(gray: np.ndarray, dark_ink: bool) -> np.ndarray:
    """How far each pixel stands out from the paper around it, reading dark (or light) as ink.

    A top-hat over a window wider than any stroke finds the strokes and their width; a second
    over a window a few strokes wide measures them against the paper right beside them, so
    that what light does over a wider span (vignetting, a shadow's edge, the rim of a sheet)
    is no longer ink."""
    wide = max(3, int(min(gray.shape) * BACKGROUND_WINDOW))
    ink = _top_hat(gray, dark_ink, wide)
    side = int(round(STROKE_WINDOW * stroke_width(ink > 0.5 * _strongest(ink))))
    if not 3 <= side < wide:
        return ink
    return _top_hat(gray, dark_ink, side)


def _top_hat(gray: np.ndarray, dark_ink: bool, side: int) -> np.ndarray:
    """A black (dark ink) or white top-hat over a `side` x `side` window."""
    # Outside the frame is paper, as light (or dark) as the frame's edge gets: a stroke along
    # the edge is still a stroke (mirroring the image there would double its width).
    edge = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if dark_ink:
        return ndimage.grey_closing(gray, size=side, mode="constant", cval=float(np.percentile(edge, 90))) - gray
    return gray - ndimage.grey_opening(gray, size=side, mode="constant", cval=float(np.percentile(edge, 10)))


def _strongest(ink: np.ndarray) -> float:
    # Averaging 2x2 blocks keeps a lone noisy pixel from passing for ink.
    return float(ndimage.uniform_filter(ink, size=2).max())


def _along_edge(labels: np.ndarray, count: int) -> np.ndarray:
    """Per component: does it lie along the image's edge, touching it over half its length?
    A band of desk beside the sheet does; a digit cut by the frame touches it at stroke ends."""
    edge = np.zeros(count + 1)
    for line in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        edge += np.bincount(line, minlength=count + 1)[: count + 1]
    objects = ndimage.find_objects(labels)
    extent = np.array([max(s[0].stop - s[0].start, s[1].stop - s[1].start) for s in objects])
    return edge[1:] >= 0.5 * extent


def _without_faint_lines(ink: np.ndarray) -> np.ndarray:
    """`ink` without the faint straight lines of a ruled or squared page: runs across most of
    the image, weaker than the pen. A strong long stroke (the bar of a large 7) stays."""
    height, width = ink.shape
    inked = ink > FAINTEST * _strongest(ink)
    if max(inked.mean(axis=1).max(), inked.mean(axis=0).max()) < LINE_LENGTH:
        return ink  # no row or column is inked along most of its length: no line to take out
    lines = np.maximum(
        ndimage.grey_opening(ink, size=(1, max(2, int(width * LINE_LENGTH)))),
        ndimage.grey_opening(ink, size=(max(2, int(height * LINE_LENGTH)), 1)),
    )
    faint = lines < FAINT_LINE * _strongest(ink)
    return np.clip(ink - np.where(faint, lines, 0.0), 0.0, None)


def _crop_digit(ink: np.ndarray, name: str) -> np.ndarray:
    """The digit's strokes cut to their bounding box; specks of noise, and bands of desk along
    the edge (unless they are all there is), removed."""
    labels, count = ndimage.label(ink > 0)
    if count == 0:  # `_ink` keeps some ink; this is the guard if that ever stops being so
        raise ImageError(f"{name}: no digit found (no ink left after separating it from the paper)")
    masses = ndimage.sum_labels(ink, labels, index=np.arange(1, count + 1))
    banded = _along_edge(labels, count)
    if not banded.all():
        masses[banded] = 0
    keep = np.flatnonzero(masses >= SPECK_FRACTION * masses.max()) + 1
    mask = np.isin(labels, keep)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return (ink * mask)[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def stroke_width(ink: np.ndarray) -> float:
    """Mean stroke width in pixels: ink area over half the outline's length."""
    mask = ink > 0.5  # a boolean mask passes as it is
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
