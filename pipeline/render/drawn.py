"""A digit drawn again on the service's page, as the page sends it (pipeline/serve/static/page.js).

The page is a 280x280 canvas, black, on which a white pen 280/14 = 20 pixels wide with round
caps and joins draws segments between pointer positions; the browser anti-aliases the strokes
and the canvas is sent as a PNG. To stand for that, the test digit's ink is thinned to a
one-pixel skeleton (Zhang and Suen's thinning) and the skeleton drawn as the page draws a
stroke. People draw small in a corner, middling off-centre or large across the pad, and a
little slanted: the skeleton is scaled, turned and placed so, and the pen stays 20 pixels
wide whatever the digit's size, as on the page (a small digit is a bold one).
"""

import functools

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from pipeline.render import encode, resized

CANVAS = 280
PEN = CANVAS / 14  # page.js: ink.lineWidth = pad.width / 14
SUPERSAMPLE = 4  # drawn at 4x and box-filtered down: 16 levels of coverage, as a canvas blends edges
THINNING_SIDE = 56  # the skeleton is found at twice MNIST's resolution: at 28, thin joins break
SMOOTHING = 3  # passes that pull each skeleton point to its neighbours: a hand's line, not pixel steps
# The skeleton's height on the pad in pixels for each way of drawing it (the pen adds 20);
# a large one is held to what fits on the pad.
HEIGHTS = {"small": (60, 100), "medium": (100, 180), "large": (180, 260)}
EDGE = 2  # the ink stays this far inside the pad: a digit cut by the pad's edge is not what people draw
CORNER = 30  # a small digit is drawn within this of a corner's two edges
# Summed over a pixel's eight neighbours, these weights give a byte whose bit k is neighbour
# P(k+2) of Zhang and Suen's paper: P2 north (bit 0), then clockwise to P9 north-west (bit 7).
CODE_WEIGHTS = np.array([[128, 1, 2], [64, 0, 4], [32, 16, 8]], np.uint8)


def render(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The digit as the page's canvas sends it: a 280x280 opaque PNG, white strokes on black."""
    points, pairs = strokes(thin(_cropped(resized(digit, (THINNING_SIDE, THINNING_SIDE)) > 0.5)))
    pad = draw(place(smoothed(points, pairs), rng), pairs)
    return encode(Image.merge("RGB", (pad, pad, pad)), "PNG")  # opaque colour, as a canvas exports


def _cropped(mask: np.ndarray) -> np.ndarray:
    """`mask` cut to the box round its pixels: thinning the empty margin is wasted work."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] if len(rows) else mask


def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang and Suen's thinning (1984): `mask` worn down to a connected one-pixel-wide skeleton.

    Each pass removes, all at once, the boundary pixels whose removal keeps the shape connected
    and is not the end of a stroke. Which pixels those are depends only on the eight neighbours,
    so a pass is a table lookup on an 8-bit code of them.
    """
    image = mask.astype(np.uint8)
    tables = _removable()
    while True:
        changed = False
        for table in tables:
            remove = (image == 1) & table[ndimage.correlate(image, CODE_WEIGHTS, mode="constant")]
            if remove.any():
                image[remove] = 0
                changed = True
        if not changed:
            return image.astype(bool)


@functools.cache
def _removable() -> tuple[np.ndarray, np.ndarray]:
    """For each neighbour code, whether the first and the second sub-pass remove the pixel."""
    p = (np.arange(256)[:, None] >> np.arange(8)) & 1  # p[:, 0] is P2 (north), ..., p[:, 7] is P9
    count = p.sum(axis=1)
    transitions = ((p == 0) & (np.roll(p, -1, axis=1) == 1)).sum(axis=1)  # 0 -> 1 round P2..P9, P2
    common = (count >= 2) & (count <= 6) & (transitions == 1)
    n, e, s, w = p[:, 0], p[:, 2], p[:, 4], p[:, 6]
    first = common & (n * e * s == 0) & (e * s * w == 0)  # the south-east boundary, north-west corners
    second = common & (n * e * w == 0) & (n * s * w == 0)  # the north-west boundary, south-east corners
    return first, second


def strokes(skeleton: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The skeleton's pixels as points (row, col), and the pairs of them that touch (8-connected):
    the segments the pen is drawn along."""
    points = np.argwhere(skeleton)
    if len(points) == 0:  # no ink above half anywhere: a tap, which the page draws as a dot
        return np.array([[THINNING_SIDE / 2, THINNING_SIDE / 2]]), np.zeros((0, 2), np.int64)
    index = np.full((skeleton.shape[0] + 2, skeleton.shape[1] + 2), -1, np.int64)
    rows, cols = points[:, 0] + 1, points[:, 1] + 1
    index[rows, cols] = np.arange(len(points))
    pairs = []
    for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):  # each touching pair once: east, and the row below
        other = index[rows + dr, cols + dc]
        pairs.append(np.column_stack([np.flatnonzero(other >= 0), other[other >= 0]]))
    return points.astype(np.float64), np.concatenate(pairs)


def smoothed(points: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Each point pulled, a few times, to the mean of itself and the points it touches.

    A skeleton steps from pixel to pixel; drawn 5x larger with a 20-pixel pen, its steps and
    one-pixel spurs would show as knobs that no hand draws.
    """
    a, b = pairs[:, 0], pairs[:, 1]
    size = len(points)
    touching = 1 + np.bincount(a, minlength=size) + np.bincount(b, minlength=size)
    for _ in range(SMOOTHING):
        points = np.column_stack(
            [(axis + np.bincount(a, axis[b], size) + np.bincount(b, axis[a], size)) / touching for axis in points.T]
        )
    return points


def place(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The skeleton's points on the pad (row, col): slanted and turned a little, scaled to a
    height people draw at, and put where such a digit is drawn."""
    turn, slant = np.deg2rad(rng.uniform(-8, 8)), rng.uniform(-0.15, 0.15)
    cos, sin = np.cos(turn), np.sin(turn)
    shape = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, 0.0], [-slant, 1.0]])
    moved = (points - points.mean(axis=0)) @ shape.T
    way = str(rng.choice(list(HEIGHTS), p=[0.3, 0.4, 0.3]))
    extent = np.maximum(np.ptp(moved, axis=0), 1.0)
    room = CANVAS - 2 * EDGE - PEN
    scale = min(rng.uniform(*HEIGHTS[way]) / extent[0], room / extent[0], room / extent[1])
    moved = (moved - moved.min(axis=0)) * scale
    low = EDGE + PEN / 2
    high = np.maximum(CANVAS - low - moved.max(axis=0), low)  # the offsets that keep the ink on the pad
    if way == "small":  # near the two edges of one of the four corners
        far = rng.integers(0, 2, size=2).astype(bool)
        inset = rng.uniform(0, CORNER, size=2)
        return moved + np.where(far, np.maximum(high - inset, low), low + inset)
    return moved + rng.uniform(low, high)


def draw(points: np.ndarray, pairs: np.ndarray) -> Image.Image:
    """White round-capped strokes of the page's pen along `pairs` of `points`, on a black pad.

    Only the box round the strokes is drawn at 4x, then averaged down and pasted on the pad:
    the same pixels as drawing the whole pad at 4x, for a fraction of the work.
    """
    radius = PEN / 2
    top_left = np.floor(points.min(axis=0) - radius - 1).clip(0).astype(int)
    bottom_right = np.ceil(points.max(axis=0) + radius + 1).clip(max=CANVAS).astype(int)
    height, width = (bottom_right - top_left).tolist()
    large = Image.new("L", (width * SUPERSAMPLE, height * SUPERSAMPLE), 0)
    pen = ImageDraw.Draw(large)
    xy = ((points - top_left) * SUPERSAMPLE)[:, ::-1].tolist()  # (x, y), as Pillow takes them
    for a, b in pairs.tolist():
        pen.line((*xy[a], *xy[b]), fill=255, width=round(PEN * SUPERSAMPLE))
    r = radius * SUPERSAMPLE
    for x, y in xy:  # round caps and joins: a disk of the pen's width at every point
        pen.ellipse((x - r, y - r, x + r, y + r), fill=255)
    pad = Image.new("L", (CANVAS, CANVAS), 0)
    pad.paste(large.reduce(SUPERSAMPLE), (int(top_left[1]), int(top_left[0])))
    return pad
