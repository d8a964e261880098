"""A digit written in ink on paper and photographed by a phone.

Paper of some shade, the digit at some size and off-centre; then what phones and rooms do: the
sheet smaller than the frame on a dark or busy desk, dim and uneven light, a soft shadow, a
ruled or squared page, black, blue or red pens, blur, sensor noise, JPEG compression. The
digit stays whole on the sheet and legible: a person would read every one.
"""
import numpy as np
from PIL import Image
from scipy import ndimage

from pipeline.render import encode, resized, to_uint8

SIDES = (28, 48, 96, 160)  # the digit's height in pixels
PENS = {"black": (0.1, 0.1, 0.12), "blue": (0.15, 0.2, 0.6), "red": (0.7, 0.12, 0.12)}


def render(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    side = int(rng.choice(SIDES))
    darkness = _placed(resized(digit, (side, side)), side, rng)
    height, width = darkness.shape
    paper = rng.uniform(0.35, 0.6) if rng.random() < 0.25 else rng.uniform(0.7, 0.95)  # dim light, or not
    pen = np.array(PENS[str(rng.choice(list(PENS), p=[0.5, 0.3, 0.2]))]) * paper / 0.9
    page = np.full((height, width, 3), paper, np.float32)
    if rng.random() < 0.3:
        _rule(page, side, rng)
    blur = rng.uniform(0.2, 0.8) * side / 28  # up to 0.8 MNIST pixels
    darkness = ndimage.gaussian_filter(darkness, blur)[..., None]
    colour = page * (1 - darkness) + pen * darkness
    colour = colour * _light(height, width, rng)[..., None]
    if rng.random() < 0.35:
        colour = _on_desk(colour, rng)
    colour = colour + rng.normal(0, rng.uniform(0.005, 0.03), size=colour.shape)
    image = Image.fromarray(to_uint8(colour), mode="RGB")
    return encode(image, "JPEG", quality=int(rng.integers(50, 91)))


def _placed(stroke: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    margins = (rng.uniform(0.15, 1.0, size=4) * side).astype(int)  # top, bottom, left, right
    darkness = np.zeros((side + margins[0] + margins[1], side + margins[2] + margins[3]), np.float32)
    darkness[margins[0] : margins[0] + side, margins[2] : margins[2] + side] = stroke
    return darkness


def _rule(page: np.ndarray, side: int, rng: np.random.Generator) -> None:
    """Faint lines in light blue or gray, every 0.6-1 digit heights; a squared page both ways."""
    spacing = max(6, int(side * rng.uniform(0.6, 1.0)))
    width = max(1, side // 60)
    tint = np.array((0.55, 0.7, 0.95)) if rng.random() < 0.6 else np.array((0.65, 0.65, 0.65))
    line = page[0, 0] * (0.6 + 0.4 * tint)  # fainter than any pen
    offset = int(rng.integers(0, spacing))
    for start in range(offset, page.shape[0], spacing):
        page[start : start + width] = line
    if rng.random() < 0.4:
        for start in range(offset, page.shape[1], spacing):
            page[:, start : start + width] = line


def _light(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Uneven light: a gradient across the page, vignetting, sometimes a soft shadow."""
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    rows, cols = rows / height - 0.5, cols / width - 0.5
    slope = rng.uniform(-0.3, 0.3, size=2)
    light = 1 + slope[0] * rows + slope[1] * cols - rng.uniform(0, 0.4) * (rows**2 + cols**2)
    if rng.random() < 0.3:  # a hand's or a phone's shadow over part of the page
        angle = rng.uniform(0, 2 * np.pi)
        across = np.cos(angle) * rows + np.sin(angle) * cols - rng.uniform(-0.3, 0.3)
        light = light * (1 - rng.uniform(0.2, 0.45) / (1 + np.exp(-across / 0.06)))
    return np.clip(light, 0.2, 1.2)


def _on_desk(sheet: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The sheet smaller than the frame: on a dark desk, wood grain, or beside a second sheet."""
    height, width, _ = sheet.shape
    frame = (int(height * rng.uniform(1.2, 1.7)), int(width * rng.uniform(1.2, 1.7)))
    rows, cols = np.mgrid[0 : frame[0], 0 : frame[1]].astype(np.float32)
    base = rng.uniform(0.05, 0.3)
    if rng.random() < 0.5:  # wood: stripes along one direction
        grain = 0.06 * np.sin(cols / frame[1] * rng.uniform(20, 60) + 3 * np.sin(rows / frame[0] * 4))
    else:
        grain = ndimage.gaussian_filter(rng.normal(0, 0.08, frame), 3)
    desk = np.clip(base + grain, 0, 1)[..., None] * np.array(rng.uniform(0.7, 1.0, size=3), np.float32)
    top, left = int(rng.integers(0, frame[0] - height + 1)), int(rng.integers(0, frame[1] - width + 1))
    if rng.random() < 0.3:  # a second sheet, partly in view, in a corner
        other = (slice(0, frame[0] // 3), slice(frame[1] - frame[1] // 4, frame[1]))
        desk[other] = sheet[5, 5]
    desk[top : top + height, left : left + width] = sheet
    return desk
