"""The stratified, seeded validation split."""

import numpy as np
import pytest

from pipeline.core.errors import DataError
from pipeline.train import preprocessing
from testkit.builders import small_mnist

CLASS_COUNTS = {0: 100, 1: 50, 2: 200, 3: 7, 4: 13}


def shuffled_labels(seed: int = 0) -> np.ndarray:
    labels = np.concatenate([np.full(count, digit) for digit, count in CLASS_COUNTS.items()])
    return np.random.default_rng(seed).permutation(labels).astype(np.uint8)


def test_stratified_split_holds_out_each_class_in_proportion():
    labels = shuffled_labels()
    train, val = preprocessing.stratified_split(labels, 0.2, seed=1)
    # round(count * 0.2): 100 -> 20, 50 -> 10, 200 -> 40, 7 -> 1 (1.4), 13 -> 3 (2.6)
    expected = {0: 20, 1: 10, 2: 40, 3: 1, 4: 3}
    assert {digit: int(np.sum(labels[val] == digit)) for digit in CLASS_COUNTS} == expected


def test_stratified_split_is_a_sorted_partition():
    labels = shuffled_labels()
    train, val = preprocessing.stratified_split(labels, 0.2, seed=1)
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    assert len(np.intersect1d(train, val)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(len(labels)))


def test_stratified_split_depends_only_on_the_seed():
    labels = shuffled_labels()
    first = preprocessing.stratified_split(labels, 0.2, seed=7)
    again = preprocessing.stratified_split(labels, 0.2, seed=7)
    other = preprocessing.stratified_split(labels, 0.2, seed=8)
    np.testing.assert_array_equal(first[1], again[1])
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[1], other[1])


@pytest.mark.parametrize(
    "labels, fraction",
    [
        (np.array([0, 1, 2]), 0.01),  # nothing rounds up into val
        (np.array([0, 1, 2]), 0.9),  # everything rounds up into val
    ],
)
def test_stratified_split_refuses_an_empty_split(labels, fraction):
    with pytest.raises(DataError, match=f"val_fraction={fraction}"):
        preprocessing.stratified_split(labels, fraction, seed=0)


def test_prepare():
    raw = small_mnist(train=50, test=7)
    raw["y_train"] = (np.arange(50) % 5).astype(np.uint8)  # 10 of each of five digits
    splits = preprocessing.prepare(raw, val_fraction=0.2, seed=3)
    assert sorted(splits) == ["test", "train", "val"]
    assert [len(splits[name][1]) for name in ("train", "val", "test")] == [40, 10, 7]
    for images, labels in splits.values():
        assert images.dtype == np.uint8 and images.shape[1:] == (28, 28)  # scaled when loaded
        assert len(images) == len(labels)
        assert labels.dtype == np.uint8
    test_images, test_labels = splits["test"]
    np.testing.assert_array_equal(test_images, raw["x_test"])
    np.testing.assert_array_equal(test_labels, raw["y_test"])


def test_prepare_keeps_images_with_their_labels():
    raw = small_mnist(train=50, test=7)
    raw["y_train"] = (np.arange(50) % 5).astype(np.uint8)
    raw["x_train"][:] = raw["y_train"][:, None, None] * 50  # each image's pixels encode its label
    splits = preprocessing.prepare(raw, val_fraction=0.2, seed=3)
    for name in ("train", "val"):
        images, labels = splits[name]
        np.testing.assert_array_equal(images[:, 0, 0] / 50, labels)
