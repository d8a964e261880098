"""A digit written in ink on paper and photographed with a phone: what most uploads are.

Grown from the first "realistic" test set (ink on paper of some shade, at some size and
off-centre, blurred, lit unevenly, noisy, JPEG-compressed) with what phone photos of a written
digit do, each in some of the images: the sheet smaller than the frame, on a dark desk, a wooden
one or a busy one, sometimes beside a second sheet; dim light (paper at 0.35-0.6 of white, ink
near black); strong gradients, vignetting, and the soft shadow of a hand or a phone across the
page; ruled or squared paper, its lines fainter and thinner than the pen; black, blue and red
pens. The digit always lies whole on the sheet with a margin, and stands out from the paper by
more than the light takes away: a person would read every one, so the set is a fair test.
"""

import numpy as np
from PIL import Image
from scipy import ndimage

from pipeline.render import encode, noise, resized

SIDES = (28, 40, 56, 80, 112, 160)  # the digit's box (MNIST's 28 with its margin) in pixels
MAX_SIDE = 400  # the frame's longer side at most: a phone photo as shrunk for an upload
DESK_CHANCE = 0.4
DIM_CHANCE = 0.25
# Desk round the sheet, at least, as a fraction of the frame's longer side: between the sheet and
# the frame's edge or a second sheet. (A sliver of desk between two light parts is a dark line,
# as a stroke is; people photographing a digit frame the sheet with room round it.)
DESK_MARGIN = 0.04
# Ink's reflectance in RGB; a black pen's gray is drawn, from fresh ink to a worn one or a pencil.
BLACK = (0.05, 0.3)
PENS = {"black": None, "blue": (0.14, 0.22, 0.6), "red": (0.72, 0.14, 0.16)}
PEN_CHANCES = (0.45, 0.35, 0.2)
# Ruling as reflectance, light blue or gray; a line takes this much of the paper's light at most,
# and is this fraction of the digit's box wide (a pen's stroke is about 1/8 of it).
RULE_TINTS = ((0.55, 0.75, 1.0), (0.7, 0.7, 0.7))
RULE_DEPTH = (0.15, 0.4)
RULE_WIDTH = 1 / 60
# Below this contrast between paper and full ink (on the 0-1 scale, after the light) a digit is
# hard to see: uneven light is held so that the page's darkest part keeps it.
MIN_CONTRAST = 0.2
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601, as Pillow and the decoder weigh RGB
SHADOW_CHANCE = 0.35
LIGHT_GRID = 8  # light varies slowly: it is worked out on a grid this many times coarser


def render(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """One MNIST digit as the JPEG of a phone's photo of it, written on paper."""
    side, margins, desk = _layout(rng)
    paper = rng.uniform((0.95, 0.93, 0.86), 1.0).astype(np.float32)  # white, cool or warm
    pen = _pen(rng)
    frame = _sheet(_ink(digit, side, rng), margins, paper, pen, rng)
    if desk is not None:
        frame = _on_desk(frame, desk, rng)
    dim = rng.random() < DIM_CHANCE
    level = rng.uniform(0.35, 0.6) if dim else rng.uniform(0.7, 0.95)  # the paper's level in full light
    contrast = level * float(LUMA @ (paper - pen))
    light = _light(frame.shape[1:], min(0.95, MIN_CONTRAST / contrast), rng)
    sigma = rng.uniform(0.005, 0.03) * (1.5 if dim else 1.0)  # a phone in dim light amplifies its sensor
    # Noise in luminance only, as a phone's processing leaves it; +0.5 so that truncating rounds.
    grain = noise(light.shape, 255 * sigma, rng) + 0.5
    frame *= 255 * level * light
    frame += grain
    channels = [Image.fromarray(c) for c in np.clip(frame, 0, 255, out=frame).astype(np.uint8)]
    return encode(Image.merge("RGB", channels), "JPEG", quality=int(rng.integers(50, 91)))


def _layout(rng: np.random.Generator) -> tuple[int, np.ndarray, np.ndarray | None]:
    """The digit's box side, the sheet's margins round it (top, bottom, left, right) and, for a
    sheet on a desk, how much larger the frame is (rows, columns); all kept under MAX_SIDE."""
    margins = rng.uniform(0.15, 0.9, size=4)  # in digit boxes: the digit off-centre, never at the edge
    desk = rng.uniform(1.15, 1.6, size=2) if rng.random() < DESK_CHANCE else None
    spread = np.array([1 + margins[0] + margins[1], 1 + margins[2] + margins[3]]) * (1 if desk is None else desk)
    side = min(int(rng.choice(SIDES)), int(MAX_SIDE / spread.max()))
    return side, np.round(margins * side).astype(int), desk


def _pen(rng: np.random.Generator) -> np.ndarray:
    colour = PENS[str(rng.choice(list(PENS), p=PEN_CHANCES))]
    if colour is None:
        return np.full(3, rng.uniform(*BLACK), np.float32)
    return (np.array(colour) * rng.uniform(0.8, 1.1)).astype(np.float32)


def _ink(digit: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """The digit's ink at `side` pixels, out of focus by 0.2-0.8 of MNIST's pixels (blurred at
    MNIST's size, where it costs nothing)."""
    return resized(ndimage.gaussian_filter(digit, rng.uniform(0.2, 0.8)), (side, side))


def _sheet(
    ink: np.ndarray, margins: np.ndarray, paper: np.ndarray, pen: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The sheet's reflectance, colour by colour (3 x rows x columns: each colour's plane
    whole, which numpy runs through many times faster than pixels of three values): the ink
    with `margins` of paper round it, ruled or not."""
    side = ink.shape[0]
    top, bottom, left, right = margins.tolist()
    darkness = np.zeros((side + top + bottom, side + left + right), np.float32)
    darkness[top : top + side, left : left + side] = ink
    page = paper[:, None, None] * _ruling(darkness.shape, side, rng)
    sheet = darkness * (pen[:, None, None] - page)
    sheet += page  # ink over the paper and over its lines
    return sheet


def _ruling(shape: tuple[int, int], side: int, rng: np.random.Generator) -> np.ndarray:
    """The share of the paper's light its printed lines leave, per colour: 1 on a plain sheet;
    faint lines across it on a ruled one (a quarter of sheets), both ways on a squared one."""
    kind = rng.choice(["plain", "ruled", "squared"], p=[0.6, 0.25, 0.15])
    if kind == "plain":
        return np.ones((3, 1, 1), np.float32)
    spacing, width = side * rng.uniform(0.45, 1.0), max(1, round(side * RULE_WIDTH))
    offset, blur = rng.uniform(0, spacing), rng.uniform(0.3, 0.8) * side / 28
    rows = _lines(shape[0], spacing, offset, width, blur)[:, None]
    lines = np.maximum(rows, _lines(shape[1], spacing, offset, width, blur)[None, :]) if kind == "squared" else rows
    tint = 1 - rng.uniform(*RULE_DEPTH) * (1 - np.array(RULE_TINTS[int(rng.integers(0, len(RULE_TINTS)))]))
    return (1 - lines * (1 - tint)[:, None, None]).astype(np.float32)


def _lines(length: int, spacing: float, offset: float, width: int, blur: float) -> np.ndarray:
    profile = np.zeros(length, np.float32)
    for start in np.arange(offset, length, spacing).astype(int):
        profile[start : start + width] = 1
    return ndimage.gaussian_filter1d(profile, blur)


def _on_desk(sheet: np.ndarray, spread: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The sheet, all of it, in a frame `spread` times larger, on a dark desk, plain, wooden or
    cluttered, sometimes with a second sheet at the frame's edge (never touching this one)."""
    height, width = sheet.shape[1:]
    frame = (round(height * spread[0]), round(width * spread[1]))
    desk = _desk(frame, rng)
    gap = max(1, round(DESK_MARGIN * max(frame)))
    top, left = (int(rng.integers(gap, max(gap, room - gap) + 1)) for room in (frame[0] - height, frame[1] - width))
    if rng.random() < 0.3:
        _second_sheet(desk, (top, left, top + height, left + width), gap, rng)
    desk[:, top : top + height, left : left + width] = sheet
    return desk


def _desk(frame: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A desk's reflectance (3 x rows x columns), darker than any paper."""
    height, width = frame
    base = rng.uniform(0.04, 0.3)
    kind = rng.choice(["plain", "wood", "busy"])
    if kind == "wood":  # grain: stripes along one direction, of a few widths
        along = width if rng.random() < 0.5 else height
        x = np.arange(along, dtype=np.float32) / along
        grain = sum(np.sin(2 * np.pi * (rng.uniform(3, 40) * x + rng.uniform())) for _ in range(3)) / 3
        grain = grain[None, :] if along == width else grain[:, None]
        shade = 1 + 0.25 * grain
    else:  # blotches: cloth, clutter, a patterned desk
        coarse = rng.random((max(2, height // 12), max(2, width // 12)), dtype=np.float32)
        shade = 1 + (0.3 if kind == "plain" else 0.9) * (resized(coarse, (width, height)) - 0.5)
    tint = rng.uniform(0.6, 1.0, size=3).astype(np.float32)  # brown wood, gray, blue cloth...
    return tint[:, None, None] * np.broadcast_to(np.clip(base * shade, 0.0, 0.5), frame)  # grain: to full size


def _second_sheet(desk: np.ndarray, box: tuple[int, int, int, int], gap: int, rng: np.random.Generator) -> None:
    """Another sheet coming into view from the frame's edge, in the widest strip of desk beside
    `box` (top, left, bottom, right) and `gap` pixels away from it: less of it shows than of the
    sheet with the digit, which stays the page the photo is of."""
    height, width = desk.shape[1:]
    top, left, bottom, right = box
    strips = {"above": top, "below": height - bottom, "left": left, "right": width - right}
    where = max(strips, key=strips.get)
    if strips[where] <= 3 * gap:
        return
    depth = int(rng.integers(gap, strips[where] - gap + 1))  # how far in from the frame's edge it reaches
    along = width if where in ("above", "below") else height
    start, length = int(rng.integers(0, along // 2)), int(along * rng.uniform(0.3, 0.6))
    span = slice(start, start + length)
    region = {
        "above": np.s_[:, :depth, span],
        "below": np.s_[:, height - depth :, span],
        "left": np.s_[:, span, :depth],
        "right": np.s_[:, span, width - depth :],
    }[where]
    desk[region] = (rng.uniform(0.75, 0.95) * rng.uniform((0.95, 0.93, 0.86), 1.0))[:, None, None]


def _light(shape: tuple[int, int], floor: float, rng: np.random.Generator) -> np.ndarray:
    """The light on each pixel, 1 at the brightest and no less than `floor`: a gradient across
    the frame, vignetting, and in some photos the soft-edged shadow of a hand or a phone over
    part of the page."""
    height, width = shape
    rows = np.linspace(-0.5, 0.5, max(2, height // LIGHT_GRID))[:, None]
    cols = np.linspace(-0.5, 0.5, max(2, width // LIGHT_GRID))[None, :]
    angle = rng.uniform(0, 2 * np.pi)
    dark = rng.uniform(0, 0.45) * np.clip(0.5 + np.cos(angle) * rows + np.sin(angle) * cols, 0, None)
    dark = dark + rng.uniform(0, 0.5) * 2 * (rows**2 + cols**2)  # vignetting: 0 at the centre
    if rng.random() < SHADOW_CHANCE:  # beyond a soft edge, up to 45% of the frame in shadow
        turn = rng.uniform(0, 2 * np.pi)
        across = np.cos(turn) * rows + np.sin(turn) * cols - rng.uniform(0.05, 0.3)
        # A hand or a phone a hand's length above the page, under a room's lights: a wide penumbra.
        dark = dark + rng.uniform(0.25, 0.55) / (1 + np.exp(-across / rng.uniform(0.05, 0.15)))
    light = 1 - dark * min(1.0, (1 - floor) / max(float(dark.max()), 1e-6))
    return resized(light, (width, height), Image.Resampling.BILINEAR)
