"""MNIST test digits as the encoded image files users really send: one renderer per source.

Each source stands for a family of real input: `mnist_png` the digits themselves as PNGs (the
normaliser must give them back unchanged), `photos` ink on paper photographed by a phone,
`drawn` the service's draw-a-digit page, `scans` low-resolution scans and thick or thin
pens, `app_exports` what drawing apps and scientific tools write (alpha-only shapes, inverted
palettes, 16- and 12-bit PNGs). Every renderer is seeded: the same seed gives the same bytes.
Only the test split is ever rendered (`pipeline.field`), so no training digit leaks in.
"""
import io

import numpy as np
from PIL import Image

SOURCES = ("mnist_png", "photos", "drawn", "scans", "app_exports")


def render(source: str, digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """One MNIST digit (28x28 float32 in [0, 1], light on dark) as an encoded image file."""
    from pipeline.render import drawn, exports, photos, scans  # each only when asked for

    renderers = {
        "mnist_png": mnist_png,
        "photos": photos.render,
        "drawn": drawn.render,
        "scans": scans.render,
        "app_exports": exports.render,
    }
    if source not in renderers:
        raise ValueError(f"unknown field source {source!r}; known: {', '.join(SOURCES)}")
    return renderers[source](digit, rng)


def render_set(source: str, digits: np.ndarray, seed: int) -> list[bytes]:
    """Every digit of `digits` (N x 28 x 28) rendered by `source`, with one generator seeded
    from (seed, the source's place in SOURCES): the same seed gives the same bytes, and each
    source draws its own random numbers."""
    if source not in SOURCES:
        raise ValueError(f"unknown field source {source!r}; known: {', '.join(SOURCES)}")
    rng = np.random.default_rng([seed, SOURCES.index(source)])
    return [render(source, digit, rng) for digit in digits]


def mnist_png(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The digit untouched, as the 8-bit grayscale PNG MNIST's bytes make."""
    return encode(Image.fromarray(to_uint8(digit), mode="L"), "PNG")


def to_uint8(values: np.ndarray) -> np.ndarray:
    return np.round(np.clip(values, 0, 1) * 255).astype(np.uint8)


def encode(image: Image.Image, kind: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=kind, **options)
    return buffer.getvalue()


def resized(values: np.ndarray, size: tuple[int, int], method: Image.Resampling = Image.Resampling.BICUBIC) -> np.ndarray:
    """A float image resampled to `size` (width, height), clipped to [0, 1]."""
    image = Image.fromarray(np.asarray(values, np.float32), mode="F").resize(size, method)
    return np.clip(np.asarray(image), 0, 1)
