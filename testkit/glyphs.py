"""Typeset digits as test images, and a model that reads them: no MNIST, no training needed."""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.predict.normalise import to_mnist


def glyph(digit: int, size: int = 120, offset: tuple[int, int] = (0, 0), dark_on_light: bool = True) -> Image.Image:
    """One digit in Pillow's built-in font on a canvas about twice its size, off-centre by `offset`."""
    paper, ink = (235, 30) if dark_on_light else (20, 220)
    canvas = Image.new("L", (2 * size + abs(offset[0]), 2 * size + abs(offset[1])), paper)
    ImageDraw.Draw(canvas).text(
        (size // 2 + max(offset[0], 0), size // 4 + max(offset[1], 0)),
        str(digit),
        font=ImageFont.load_default(size=size),
        fill=ink,
    )
    return canvas


def stored_digit(digit: int, variant: int = 0) -> np.ndarray:
    """A glyph as the collected store keeps it (normalised); each variant a distinct digit: the
    normaliser would centre a shifted glyph back, so a variant is a little ink at a pixel of its own."""
    digit28 = to_mnist(np.asarray(glyph(digit), np.float32) / 255)
    if variant:
        digit28.flat[variant % 784] = min(1.0, digit28.flat[variant % 784] + 0.5)
    return digit28


def fill_store(store, digits: range, variants: range) -> None:
    """`store` (a pipeline.collect.store.Store) given each digit in `digits`, in each variant."""
    for digit in digits:
        for variant in variants:
            store.save(stored_digit(digit, variant), str(digit))


def template_model():
    """A Keras model whose one dense layer holds the normalised glyphs: it names a glyph's digit."""
    from pipeline.core.tf import keras

    templates = np.stack([to_mnist(np.asarray(glyph(d), dtype=np.float32) / 255).ravel() for d in range(10)])
    templates -= templates.mean(axis=1, keepdims=True)
    model = keras().Sequential(
        [keras().Input(shape=(28, 28)), keras().layers.Flatten(), keras().layers.Dense(10, activation="softmax")]
    )
    model.layers[-1].set_weights([templates.T.astype(np.float32) / 2, np.zeros(10, np.float32)])
    return model


def shifted_model(by: int = 1):
    """The template model reading each glyph d as (d + by) % 10: another model, told apart by its answers."""
    model = template_model()
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([np.roll(kernel, by, axis=1), bias])  # column d + by holds digit d's template
    return model
