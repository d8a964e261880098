"""What drawing apps and imaging tools export: the digit in forms a plain 8-bit reader loses.

- A transparent PNG whose colour is the same everywhere, with the shape only in its alpha
  channel: white ink on transparent (the usual export of a drawing app's layer) or black.
  Dropping alpha, or flattening it on one fixed colour, erases one of the two.
- A palette PNG whose palette runs backwards: the stored index of every pixel means the
  opposite of its luminance, so reading the indices as gray levels inverts the digit.
- 16-bit grayscale PNGs over the full 0-65535 range, and 12-bit data (0-4095, over a dark
  offset) in a 16-bit PNG, as scientific cameras and some scanners write it: divided by 65535
  it is nearly black.

Each either polarity where that makes sense, at sizes from 28 to 200 pixels.
"""

import numpy as np
from PIL import Image

from pipeline.render import encode, resized, to_uint8

SIDES = (28, 200)
PALETTE_LEVELS = (16, 64, 256)  # apps write small palettes as readily as full ones
TWELVE_BIT = 4095
DARK_OFFSET = (0, 200)  # a camera's black level, in 12-bit counts
WHITE_LEVEL = (2600, TWELVE_BIT)  # and its brightest pixel: rarely quite saturated


def render(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The digit as one of the four kinds of export, chosen at random, at a random size."""
    side = int(rng.integers(SIDES[0], SIDES[1] + 1))
    shape = resized(digit, (side, side)) if side != digit.shape[0] else np.clip(digit, 0, 1)
    kind = (alpha_only, inverted_palette, sixteen_bit, twelve_bit)[int(rng.integers(0, 4))]
    return kind(shape, rng)


def alpha_only(shape: np.ndarray, rng: np.random.Generator) -> bytes:
    """RGBA, every pixel white (or, for a third, black), the digit's ink as opacity."""
    colour = Image.new("L", (shape.shape[1], shape.shape[0]), 255 if rng.random() < 2 / 3 else 0)
    return encode(Image.merge("RGBA", (colour, colour, colour, Image.fromarray(to_uint8(shape)))), "PNG")


def inverted_palette(shape: np.ndarray, rng: np.random.Generator) -> bytes:
    """A palette PNG of 16, 64 or 256 grays running from white at index 0 to black at the last:
    the indices stored are the luminance turned over. The digit light on dark or dark on light."""
    luminance = shape if rng.random() < 0.5 else 1 - shape
    levels = int(rng.choice(PALETTE_LEVELS))
    grays = np.round(np.linspace(255, 0, levels)).astype(np.uint8)  # index 0 is white
    image = Image.fromarray(np.round((1 - luminance) * (levels - 1)).astype(np.uint8), mode="L")
    image.putpalette(np.repeat(grays, 3).tobytes(), rawmode="RGB")  # an L image given a palette is "P"
    return encode(image, "PNG")


def sixteen_bit(shape: np.ndarray, rng: np.random.Generator) -> bytes:
    """A 16-bit grayscale PNG from 0 to 65535 exactly, either polarity."""
    values = _stretched(shape if rng.random() < 0.5 else 1 - shape)
    # Pillow takes a uint16 array as mode "I;16" and writes that as a 16-bit grayscale PNG.
    return encode(Image.fromarray(np.round(values * 65535).astype(np.uint16)), "PNG")


def twelve_bit(shape: np.ndarray, rng: np.random.Generator) -> bytes:
    """12-bit counts (a dark offset to a white level at most 4095) in a 16-bit PNG, either polarity."""
    values = _stretched(shape if rng.random() < 0.5 else 1 - shape)
    black, white = rng.uniform(*DARK_OFFSET), rng.uniform(*WHITE_LEVEL)
    return encode(Image.fromarray(np.round(black + values * (white - black)).astype(np.uint16)), "PNG")


def _stretched(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    return (values - low) / max(high - low, 1e-6)
