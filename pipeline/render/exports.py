"""What drawing apps and imaging tools export: the digit in forms a plain 8-bit reader loses.

- the shape in the alpha channel only, every pixel one colour (white ink on transparent, as
  drawing apps export it, or black);
- a palette PNG whose palette runs backwards: the stored indices mean the opposite of their
  luminance;
- 16-bit grayscale PNGs over the full range, and 12-bit data (0-4095) in a 16-bit PNG, as
  scientific cameras and some scanners write.
"""
import numpy as np
from PIL import Image

from pipeline.render import encode, resized, to_uint8

SIDES = (28, 64, 120, 200)


def render(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    side = int(rng.choice(SIDES))
    shape = resized(digit, (side, side))
    kind = int(rng.integers(0, 4))
    return (_alpha_only, _inverted_palette, _sixteen_bit, _twelve_bit)[kind](shape, rng)


def _alpha_only(shape: np.ndarray, rng: np.random.Generator) -> bytes:
    colour = 255 if rng.random() < 0.7 else 0
    flat = np.full(shape.shape, colour, np.uint8)
    return encode(Image.merge("RGBA", [Image.fromarray(flat)] * 3 + [Image.fromarray(to_uint8(shape))]), "PNG")


def _inverted_palette(shape: np.ndarray, rng: np.random.Generator) -> bytes:
    dark_on_light = rng.random() < 0.5
    levels = to_uint8(1 - shape if dark_on_light else shape)
    image = Image.fromarray(255 - levels, mode="L").convert("P")  # index i is stored for level 255 - i
    image.putpalette([value for level in range(255, -1, -1) for value in (level, level, level)])
    return encode(image, "PNG")


def _sixteen_bit(shape: np.ndarray, rng: np.random.Generator) -> bytes:
    values = shape if rng.random() < 0.5 else 1 - shape
    return encode(Image.fromarray(np.round(values * 65535).astype(np.uint16)), "PNG")


def _twelve_bit(shape: np.ndarray, rng: np.random.Generator) -> bytes:
    values = shape if rng.random() < 0.5 else 1 - shape
    return encode(Image.fromarray(np.round(values * 4095).astype(np.uint16)), "PNG")
