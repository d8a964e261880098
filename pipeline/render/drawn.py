"""A digit drawn again the way the service's page draws it (pipeline/serve/static/page.js).

The test digit's ink is thinned to a one-pixel skeleton, and the skeleton drawn as the page
draws a stroke: on its 280x280 canvas, black, with a white pen 280/14 = 20 pixels wide, round
caps and joins, anti-aliased as a browser's canvas is, sent as a PNG. People draw small in a
corner, large, off-centre, a little slanted: the skeleton is scaled and placed so; the pen's
width stays 20 whatever the digit's size, as on the page.
"""
import numpy as np
from PIL import Image, ImageDraw

from pipeline.render import encode, resized

CANVAS = 280
PEN = CANVAS / 14  # page.js: ink.lineWidth = pad.width / 14
SUPERSAMPLE = 3  # drawn at 3x and box-filtered down: the canvas's anti-aliasing
THINNING_SIDE = 56  # the skeleton is found at twice MNIST's resolution


def render(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    skeleton = thin(resized(digit, (THINNING_SIDE, THINNING_SIDE)) > 0.5)
    points = np.argwhere(skeleton).astype(np.float32)  # (row, col)
    if len(points) == 0:  # a digit with no ink above half: a dot in the middle
        points = np.array([[THINNING_SIDE / 2, THINNING_SIDE / 2]], np.float32)
    size = CANVAS * SUPERSAMPLE
    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    placed = _placed(points, rng) * SUPERSAMPLE
    pen = PEN * SUPERSAMPLE
    for a, b in _segments(skeleton):
        draw.line([tuple(placed[a][::-1]), tuple(placed[b][::-1])], fill=255, width=int(round(pen)))
    radius = pen / 2
    for row, col in placed:  # round caps and joins: a disk at every point of the stroke
        draw.ellipse([col - radius, row - radius, col + radius, row + radius], fill=255)
    canvas = image.resize((CANVAS, CANVAS), Image.Resampling.BOX)
    return encode(Image.merge("RGBA", (canvas, canvas, canvas, Image.new("L", canvas.size, 255))), "PNG")


def _placed(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The skeleton's points on the canvas: slanted, scaled to a drawn height, put somewhere."""
    centred = points - (points.min(axis=0) + points.max(axis=0)) / 2
    slant = np.deg2rad(rng.uniform(-12, 12))
    turn = np.array([[np.cos(slant), -np.sin(slant)], [np.sin(slant), np.cos(slant)]], np.float32)
    centred = centred @ turn.T
    extent = max(float(np.ptp(centred[:, 0])), float(np.ptp(centred[:, 1])), 1.0)
    height = rng.choice([rng.uniform(60, 100), rng.uniform(110, 190), rng.uniform(200, 250)], p=[0.3, 0.4, 0.3])
    scaled = centred * (height / extent)
    margin = PEN / 2 + 2
    low, high = -scaled.min(axis=0) + margin, CANVAS - scaled.max(axis=0) - margin
    return scaled + rng.uniform(low, np.maximum(low, high))  # anywhere the whole digit fits


def _segments(skeleton: np.ndarray) -> list[tuple[int, int]]:
    """Pairs of indices (into np.argwhere(skeleton)) of 8-connected skeleton pixels."""
    index = -np.ones(skeleton.shape, np.int64)
    points = np.argwhere(skeleton)
    index[tuple(points.T)] = np.arange(len(points))
    pairs = []
    for step in ((0, 1), (1, 0), (1, 1), (1, -1)):  # each neighbour pair once
        shifted = np.roll(index, (-step[0], -step[1]), axis=(0, 1))
        valid = (index >= 0) & (shifted >= 0)
        if step[0]:
            valid[-step[0] :] = False
        if step[1] == 1:
            valid[:, -1] = False
        elif step[1] == -1:
            valid[:, 0] = False
        pairs += list(zip(index[valid].tolist(), shifted[valid].tolist()))
    return pairs


def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang and Suen's thinning (1984): `mask` worn down to a one-pixel-wide skeleton."""
    image = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for first in (True, False):
            p = _neighbours(image)  # P2..P9, clockwise from north
            count = sum(p)
            transitions = sum(((p[k] == 0) & (p[(k + 1) % 8] == 1)).astype(np.uint8) for k in range(8))
            if first:
                clear = (p[0] * p[2] * p[4] == 0) & (p[2] * p[4] * p[6] == 0)
            else:
                clear = (p[0] * p[2] * p[6] == 0) & (p[0] * p[4] * p[6] == 0)
            remove = (image == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & clear
            if remove.any():
                image[remove] = 0
                changed = True
        if not changed:
            return image[1:-1, 1:-1].astype(bool)


def _neighbours(image: np.ndarray) -> list[np.ndarray]:
    """The eight neighbours of every pixel: north, north-east, east, ... north-west."""
    offsets = [(-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)]
    return [np.roll(image, (-dr, -dc), axis=(0, 1)) for dr, dc in offsets]
