"""Split a stratified, seeded validation set off the training data.

The notebook used Keras' `validation_split=0.2`, which holds out the *last* 20% of the training
arrays unshuffled; here every digit is held out in proportion, chosen by the seed. Pixels stay
uint8, a quarter of float32's bytes to write, hash, cache and read (55 MB, not 220); every
stage scales them to [0, 1] as it loads them (`artifacts.load_split`).
"""

import numpy as np

from pipeline.core.errors import DataError


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): `fraction` of each class goes to val, chosen by `seed`.

    Both index arrays are sorted, disjoint and together cover every position once.
    """
    rng = np.random.default_rng(seed)
    val = []
    for digit in np.unique(labels):
        members = np.flatnonzero(labels == digit)
        count = int(round(len(members) * fraction))
        val.append(rng.permutation(members)[:count])
    val_index = np.sort(np.concatenate(val))
    train_index = np.setdiff1d(np.arange(len(labels)), val_index)
    if len(val_index) == 0 or len(train_index) == 0:
        raise DataError(f"preprocess.val_fraction={fraction} leaves an empty split of {len(labels)} images")
    return train_index, val_index


def prepare(raw: dict[str, np.ndarray], val_fraction: float, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Raw Keras-layout arrays to uint8 (images, labels) for train, val and test."""
    train_index, val_index = stratified_split(raw["y_train"], val_fraction, seed)
    images, labels = raw["x_train"], raw["y_train"]
    return {
        "train": (images[train_index], labels[train_index]),
        "val": (images[val_index], labels[val_index]),
        "test": (raw["x_test"], raw["y_test"]),
    }
