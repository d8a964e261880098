"""MNIST test digits dressed up as the pictures people actually have: a realistic test set.

Each digit is drawn dark-on-light on paper of some shade, at some size and off-centre with
margins, then blurred, lit unevenly, given sensor noise and saved as a JPEG. Only the test split
is ever rendered, so no image the model trained on can leak in. Seeded: the same seed gives the
same images.
"""
import io

import numpy as np
from PIL import Image
from scipy import ndimage

SIDES = (28, 48, 96, 160, 320)  # rendered digit heights in pixels


def render(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """One MNIST digit (28x28, light-on-dark, [0, 1]) as a JPEG-compressed photo of ink on paper."""
    side = int(rng.choice(SIDES))
    stroke = np.asarray(
        Image.fromarray(digit.astype(np.float32), mode="F").resize((side, side), Image.Resampling.BICUBIC)
    ).clip(0, 1)
    margins = (rng.uniform(0.1, 1.0, size=4) * side).astype(int)  # top, bottom, left, right
    height, width = side + margins[0] + margins[1], side + margins[2] + margins[3]
    darkness = np.zeros((height, width), dtype=np.float32)
    darkness[margins[0] : margins[0] + side, margins[2] : margins[2] + side] = stroke

    paper, ink = rng.uniform(0.7, 0.95), rng.uniform(0.05, 0.35)
    gray = paper - (paper - ink) * darkness
    blur = rng.uniform(0.2, 0.8) * side / 28  # Gaussian sigma: up to 0.8 MNIST pixels
    gray = ndimage.gaussian_filter(gray, blur)
    # Uneven light: a gentle linear gradient across the page.
    slope = rng.uniform(-0.1, 0.1, size=2)
    rows, cols = np.mgrid[0:height, 0:width]
    gray = gray + slope[0] * (rows / height - 0.5) + slope[1] * (cols / width - 0.5)
    gray = gray + rng.normal(0, rng.uniform(0.005, 0.03), size=gray.shape)
    pixels = np.round(np.clip(gray, 0, 1) * 255).astype(np.uint8)

    image = Image.fromarray(pixels, mode="L")
    if rng.random() < 0.3:  # a blue pen, photographed in colour
        image = Image.merge("RGB", (image, image, image.point(lambda v: 255 - (255 - v) * 0.4)))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(rng.integers(50, 91)))
    buffer.seek(0)
    return Image.open(buffer)


def render_set(digits: np.ndarray, seed: int) -> list[Image.Image]:
    """Render every digit in `digits` (N x 28 x 28) with one seeded generator."""
    rng = np.random.default_rng(seed)
    return [render(digit, rng) for digit in digits]
