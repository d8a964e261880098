"""Training digits as the served path gives them to the model: rendered, then normalised.

The field set shows what users send (photos, page drawings, scans) and what the normaliser makes
of them; `train.augment_rendered` lets training see the same: a share of the training digits,
chosen by the seed, is drawn by one of the renderers and read back through the service's decoder
and normaliser, once, before training. Only training digits are rendered (the field set renders
the test split), so no field digit is learned.
"""

import numpy as np

from pipeline import render
from pipeline.core.errors import ImageError
from pipeline.predict.images import load_gray_bytes
from pipeline.predict.normalise import to_mnist

SOURCES = ("photos", "drawn", "scans")  # the families unlike MNIST's own; mnist_png is the digit itself
STREAM = 7  # the generator's second seed word: its draws are apart from every other use of the seed


def swap_in(images: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """`images` (N x 28 x 28 in [0, 1]) with `fraction` of them, chosen by `seed`, replaced by
    their rendering through one of SOURCES, decoded and normalised as the service does. A
    rendering in which the normaliser finds no digit keeps the original. 0 returns `images`."""
    count = round(fraction * len(images))
    if count == 0:
        return images
    rng = np.random.default_rng([seed, STREAM])
    chosen = np.sort(rng.choice(len(images), size=count, replace=False))
    sources = rng.integers(0, len(SOURCES), size=count)
    swapped = images.copy()
    for index, source in zip(chosen.tolist(), sources.tolist()):
        data = render.render(SOURCES[source], images[index], rng)
        try:
            swapped[index] = to_mnist(load_gray_bytes(data, f"training digit {index}"))
        except ImageError:
            pass  # a renderer's worst draw can lose a faint digit; the original stands in
    return swapped
