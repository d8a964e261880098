"""MNIST test digits as the encoded image files users really send: one renderer per source.

Each source stands for a family of real input (its module says which, and why):

- `mnist_png`: the digit itself as an 8-bit grayscale PNG; the normaliser must give it back;
- `photos` (photos.py): ink on paper photographed by a phone, on a desk, in poor light;
- `drawn` (drawn.py): the digit drawn again on the service's draw-a-digit page;
- `scans` (scans.py): low-resolution scans and thumbnails, thick and thin pens;
- `app_exports` (exports.py): what drawing apps and imaging tools write: shapes in alpha
  only, inverted palettes, 16- and 12-bit PNGs.

Only MNIST's test split is ever rendered (`pipeline.train.field` chooses the digits), so no digit
the model trained on can leak in. Every renderer draws its randomness from the generator it is
given and Pillow's encoders are deterministic: the same seed gives the same bytes, in any
process. Only numpy, scipy and Pillow: rendering never imports TensorFlow.
"""

import io
from collections.abc import Callable

import numpy as np
from PIL import Image

SOURCES = ("mnist_png", "photos", "drawn", "scans", "app_exports")

Renderer = Callable[[np.ndarray, np.random.Generator], bytes]


def render(source: str, digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """One MNIST digit (28x28 float32 in [0, 1], light on dark) as an encoded image file."""
    return renderer(source)(digit, rng)


def render_set(source: str, digits: np.ndarray, seed: int) -> list[bytes]:
    """Every digit of `digits` (N x 28 x 28) rendered by `source`, with one generator seeded
    from (seed, the source's index in SOURCES): the same seed gives the same bytes, and no
    source's images depend on another's."""
    draw = renderer(source)
    rng = np.random.default_rng([seed, SOURCES.index(source)])
    return [draw(digit, rng) for digit in digits]


def renderer(source: str) -> Renderer:
    """The function that renders `source`; ValueError naming the known ones if there is none."""
    # Imported here, not at the top: `from pipeline import render` only to name the sources
    # should not load scipy.
    from pipeline.render import drawn, exports, photos, scans

    renderers: dict[str, Renderer] = {
        "mnist_png": mnist_png,
        "photos": photos.render,
        "drawn": drawn.render,
        "scans": scans.render,
        "app_exports": exports.render,
    }
    if source not in renderers:
        raise ValueError(f"unknown field source {source!r}; known: {', '.join(SOURCES)}")
    return renderers[source]


def mnist_png(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The digit untouched, round(digit * 255), as an 8-bit grayscale 28x28 PNG: MNIST's own
    form, on which the normaliser must be idempotent. Draws nothing from `rng`."""
    return encode(Image.fromarray(to_uint8(digit), mode="L"), "PNG")


# Shared by the renderers.


def to_uint8(values: np.ndarray) -> np.ndarray:
    """[0, 1] floats as 8-bit levels: round(v * 255)."""
    return np.round(np.clip(values, 0, 1) * 255).astype(np.uint8)


def resized(
    values: np.ndarray, size: tuple[int, int], method: Image.Resampling = Image.Resampling.BICUBIC
) -> np.ndarray:
    """A float image resampled to `size` (width, height), clipped to [0, 1] (bicubic overshoots)."""
    image = Image.fromarray(np.asarray(values, np.float32), mode="F").resize(size, method)
    return np.clip(np.asarray(image), 0, 1)


def noise(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean sensor noise of standard deviation `sigma`, float32.

    Uniform rather than Gaussian: drawing bytes is over ten times faster than drawing normals,
    and at a few levels of gray the two look and normalise alike.
    """
    grain = rng.integers(0, 256, size=shape, dtype=np.uint8).astype(np.float32)
    grain -= 127.5
    grain *= np.float32(sigma * np.sqrt(12) / 256)
    return grain


def encode(image: Image.Image, kind: str, **options: object) -> bytes:
    """`image` as the bytes of a `kind` ("PNG", "JPEG") file.

    PNGs at zlib's fastest level: the same pixels in files a little larger, in half the time
    (the field stage encodes thousands).
    """
    if kind == "PNG":
        options = {"compress_level": 1, **options}
    buffer = io.BytesIO()
    image.save(buffer, format=kind, **options)
    return buffer.getvalue()
