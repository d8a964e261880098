"""train.augment_rendered: training digits swapped for the served path's reading of their renderings."""

import numpy as np
import pytest

from pipeline.predict.normalise import to_mnist
from pipeline.train import rendered
from tests.unit.core.test_config import changed as changed_params
from tests.unit.core.test_config import error_for
from tests.unit.train.test_render import STROKES, digit


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """MNIST-form digits drawn from the render tests' strokes, eight of each."""
    shapes = [to_mnist(digit(strokes)) for strokes in STROKES.values()]
    return np.stack(shapes * 8).astype(np.float32)


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b).reshape(len(a), -1).max(axis=1) > 0.05


def test_off_leaves_the_training_digits_as_they_are(digits):
    assert rendered.swap_in(digits, 0.0, seed=42) is digits  # the default model's bytes cannot move


def test_a_share_chosen_by_the_seed_is_read_back_through_the_served_path(digits):
    swapped = rendered.swap_in(digits, 0.5, seed=42)
    assert swapped.shape == digits.shape and swapped.dtype == digits.dtype
    assert changed(swapped, digits).sum() == pytest.approx(
        len(digits) / 2, abs=2
    )  # a few renderings change nothing visible
    assert not np.shares_memory(swapped, digits)  # the caller's array is not edited
    # Each swapped digit is still the digit, in MNIST's form: the normaliser's output.
    for before, after in zip(digits[changed(swapped, digits)], swapped[changed(swapped, digits)]):
        assert after.max() == pytest.approx(1.0)
        assert ((before > 0.3) & (after > 0.3)).sum() / ((before > 0.3) | (after > 0.3)).sum() > 0.3


def test_the_same_seed_gives_the_same_digits_another_seed_others(digits):
    first = rendered.swap_in(digits, 0.3, seed=1)
    assert np.array_equal(first, rendered.swap_in(digits, 0.3, seed=1))
    assert not np.array_equal(first, rendered.swap_in(digits, 0.3, seed=2))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (-0.1, "a fraction in [0, 1], got -0.1"),
        (1.5, "a fraction in [0, 1], got 1.5"),
        ("half", "a number, got str 'half'"),
    ],
)
def test_a_bad_fraction_is_one_line_naming_its_key(value, expected):
    assert (
        error_for(changed_params({"train.augment_rendered": value}))
        == f"params.yaml: train.augment_rendered: expected {expected}"
    )
