"""Training options: augmentation, learning-rate schedule, device selection (imports TensorFlow)."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pipeline.core import config
from pipeline.core.tf import make_deterministic
from pipeline.train import training
from testkit.repos import ROOT

PARAMS = dataclasses.replace(config.load(ROOT / "params.yaml").train, epochs=3, batch_size=10)


def square_images(count: int) -> np.ndarray:
    images = np.zeros((count, 28, 28), dtype=np.float32)
    images[:, 10:18, 10:18] = 1.0
    return images


def augmented_epochs(seed: int, epochs: int = 2, **limits: float) -> list[np.ndarray]:
    make_deterministic(seed)  # as fit() does: TF's op-level random state restarts from the seed
    params = dataclasses.replace(PARAMS, augment=True, **{f"augment_{key}": value for key, value in limits.items()})
    dataset = training.batches(
        square_images(20), np.zeros(20, np.uint8), 10, seed=seed, augment=training.augmenter(params, seed)
    )
    return [np.concatenate([x.numpy() for x, _ in dataset]) for _ in range(epochs)]


def test_augmentation_moves_ink_differently_each_epoch_and_keeps_shapes():
    first, second = augmented_epochs(seed=5)
    assert first.shape == (20, 28, 28)
    original = square_images(20)
    assert not np.allclose(first, original)  # digits were shifted/rotated/zoomed
    assert not np.allclose(first, second)  # fresh randomness every epoch
    assert np.all(first >= -1e-6) and np.all(first <= 1 + 1e-6)  # fill stays background


ALONE = {"shift": 0, "rotation": 0, "zoom": 0, "stroke": 0, "elastic": 0}


@pytest.mark.parametrize(
    "limits",
    [{}, {**ALONE, "stroke": 2}, {**ALONE, "elastic": 2}, {"stroke": 2, "elastic": 2}],
    ids=["affine", "stroke", "elastic", "all"],  # each option's own randomness, then all of it
)
def test_augmentation_is_reproducible_from_the_seed(limits):
    again = augmented_epochs(seed=5, **limits)
    other = augmented_epochs(seed=6, **limits)
    first = augmented_epochs(seed=5, **limits)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.allclose(first[0], other[0])
    assert not np.allclose(first[0], first[1])  # fresh randomness every epoch


def augmented_once(**limits: float) -> np.ndarray:
    make_deterministic(2)
    params = dataclasses.replace(PARAMS, augment=True, **{f"augment_{key}": value for key, value in limits.items()})
    images = square_images(200)
    dataset = training.batches(images, np.zeros(200, np.uint8), 200, augment=training.augmenter(params, 2))
    return next(iter(dataset))[0].numpy()


def centres(images: np.ndarray) -> np.ndarray:
    """Each image's centre of ink, (row, column)."""
    rows, cols = np.indices((28, 28))
    mass = images.sum(axis=(1, 2))
    return np.stack([(images * rows).sum(axis=(1, 2)) / mass, (images * cols).sum(axis=(1, 2)) / mass], axis=1)


def test_augmentation_with_every_limit_zero_leaves_the_digits_as_they_are():
    unchanged = augmented_once(shift=0, rotation=0, zoom=0, stroke=0, elastic=0)
    np.testing.assert_allclose(unchanged, square_images(200), atol=1e-5)


def test_shift_moves_ink_up_to_its_limit_in_both_directions():
    moved = centres(augmented_once(shift=0.1, rotation=0, zoom=0)) - centres(square_images(200))
    assert np.abs(moved).max() <= 0.1 * 28 + 1e-3
    assert (moved < -1.5).any(axis=0).all() and (moved > 1.5).any(axis=0).all()  # both ways, both axes
    np.testing.assert_allclose(augmented_once(shift=0.1, rotation=0, zoom=0).sum(axis=(1, 2)), 64, rtol=1e-4)


def test_rotation_turns_about_the_centre_up_to_its_limit_both_ways():
    make_deterministic(2)
    params = dataclasses.replace(PARAMS, augment=True, augment_shift=0, augment_rotation=30, augment_zoom=0)
    bars = np.zeros((100, 28, 28, 1), np.float32)
    bars[:, 13:15, 4:24] = 1  # a horizontal bar through the centre
    turned = np.asarray(training.augmenter(params, 2)(bars))[..., 0]
    angles = []
    for image in turned:
        rows, cols = np.nonzero(image > 0.5)
        angles.append(np.degrees(np.arctan(np.polyfit(cols - cols.mean(), rows - rows.mean(), 1)[0])))
    assert max(np.abs(angles)) <= 30 + 2 and min(angles) < -15 and max(angles) > 15
    np.testing.assert_allclose(centres(turned), 13.5, atol=0.1)


def test_zoom_scales_about_the_centre_up_to_its_limit_both_ways():
    zoomed = augmented_once(shift=0, rotation=0, zoom=0.5)
    ink = zoomed.sum(axis=(1, 2))
    assert ink.min() < 64 * 0.6 and ink.max() > 64 * 1.6  # down to 1/1.5 of the size, up to 1/0.5
    assert ink.min() >= 64 / 1.5**2 * 0.95 and ink.max() <= 64 / 0.5**2 * 1.05
    np.testing.assert_allclose(centres(zoomed), 13.5, atol=0.05)


def test_stroke_change_thickens_and_thins_about_the_centre_up_to_its_limit():
    changed = augmented_once(shift=0, rotation=0, zoom=0, stroke=2)
    ink = changed.sum(axis=(1, 2))
    # The 8x8 square's side changes by up to 2 pixels: 6x6 (36) to 10x10 (100), softly in between.
    assert ink.min() < 64 * 0.8 and ink.max() > 64 * 1.2  # both ways across the batch
    assert ink.min() >= 36 - 1e-3 and ink.max() <= 100 + 1e-3
    np.testing.assert_allclose(centres(changed), 13.5, atol=1e-3)
    assert changed.min() >= 0 and changed.max() <= 1


def test_stroke_change_adds_its_width_to_the_ink_across_a_stroke():
    widths = np.array([-4, -3, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 3, 4], np.float32)
    bars = np.zeros((len(widths), 28, 28, 1), np.float32)
    bars[:, 12:16, 4:24] = 1  # a horizontal stroke 4 pixels wide
    changed = np.asarray(training.change_stroke(bars, widths, steps=2))[..., 0]
    np.testing.assert_allclose(changed[:, :, 14].sum(axis=1), 4 + widths, atol=1e-6)
    np.testing.assert_allclose(centres(changed[widths > -4]), 13.5, atol=1e-3)  # -4 leaves no ink


def ramps(count: int) -> np.ndarray:
    """Images whose value (x + 1) / 28 tells which column x of the input a pixel was read from."""
    return np.broadcast_to((np.arange(28, dtype=np.float32) + 1) / 28, (count, 28, 28))[..., None].copy()


def displacements(**limits: float) -> np.ndarray:
    """How far (in columns) each pixel of the middle of 200 augmented images was read from its own."""
    make_deterministic(2)
    params = dataclasses.replace(PARAMS, augment=True, **{f"augment_{key}": value for key, value in limits.items()})
    read = np.asarray(training.augmenter(params, 2)(ramps(200)))[..., 0] * 28 - 1
    # The middle 10x10: 9 pixels from the border, which no displacement this test draws reaches.
    return (read - np.arange(28))[:, 9:19, 9:19]


def affine_misfit(moved: np.ndarray) -> np.ndarray:
    """Per image, the RMS of what a least-squares affine map of (row, column) leaves of `moved`."""
    rows, cols = np.indices(moved.shape[1:])
    design = np.stack([rows.ravel(), cols.ravel(), np.ones(rows.size)], axis=1)
    targets = moved.reshape(len(moved), -1).T
    fitted = design @ np.linalg.lstsq(design, targets, rcond=None)[0]
    return np.sqrt(((targets - fitted) ** 2).mean(axis=0))


def test_elastic_distortion_moves_pixels_by_its_strength_smoothly_and_locally():
    moved = displacements(shift=0, rotation=0, zoom=0, elastic=2)
    assert np.sqrt((moved**2).mean()) == pytest.approx(2, rel=0.15)  # its RMS is the strength, in pixels
    # Smooth: neighbours move almost alike (a Gaussian of 4 pixels: correlation 0.98 a pixel apart).
    assert np.sqrt((np.diff(moved, axis=2) ** 2).mean()) < 0.3 * np.sqrt((moved**2).mean())
    # Local: no affine move explains it, as it explains the affine augmentation's.
    assert np.median(affine_misfit(moved)) > 0.3
    assert affine_misfit(displacements(shift=0.1, rotation=10, zoom=0.1)).max() < 1e-3


def test_elastic_distortion_keeps_the_ink_and_the_background():
    bent = augmented_once(shift=0, rotation=0, zoom=0, elastic=2)
    assert not np.allclose(bent, square_images(200), atol=0.05)
    ink = bent.sum(axis=(1, 2))
    # A smooth field stretches some places and squeezes others (at 2 pixels, this small square's
    # area by 0.6x to 1.5x between the 10th and 90th percentiles), but moves ink rather than
    # making or losing it.
    assert ink.mean() == pytest.approx(64, rel=0.05) and np.median(ink) == pytest.approx(64, rel=0.1)
    assert np.percentile(ink, 10) > 64 * 0.45 and np.percentile(ink, 90) < 64 * 1.75
    assert bent.min() >= 0 and bent.max() <= 1 + 1e-6
    carried = np.sqrt(((centres(bent) - 13.5) ** 2).mean())  # per axis: the field's mean over the square
    assert 0.5 < carried <= 2


def test_the_elastic_pass_maps_pixels_as_the_affine_one_does():
    # The same draws (the field's come after the affine ones), so a vanishing field leaves what
    # `affine_transform` gave: the combined pass reads rows and columns the same way.
    digits = np.zeros((50, 28, 28, 1), np.float32)
    digits[:, 6:22, 12:15] = 1  # a stroke off the middle, to show a swap of rows and columns
    digits[:, 6:9, 8:15] = 1
    digits[:, 20:23, :] = digits[:, :, 22:25] = 1  # and two to the borders, to show how the outside is read
    outputs = []
    for elastic in (0, 1e-5):
        make_deterministic(3)
        params = dataclasses.replace(
            PARAMS, augment=True, augment_shift=0.2, augment_rotation=30, augment_zoom=0.2, augment_elastic=elastic
        )
        outputs.append(np.asarray(training.augmenter(params, 3)(digits)))
    np.testing.assert_allclose(outputs[1], outputs[0], atol=1e-3)
    assert not np.allclose(outputs[0], digits, atol=0.1)


def test_stroke_and_elastic_limits_do_nothing_without_augment():
    images = np.random.default_rng(0).random((40, 28, 28), dtype=np.float32)
    labels = (np.arange(40) % 10).astype(np.uint8)
    weights = []
    for limit in (0.0, 3.0):
        params = dataclasses.replace(PARAMS, epochs=1, augment=False, augment_stroke=limit, augment_elastic=limit)
        model, _ = training.fit((images, labels), (images[:10], labels[:10]), params, 1, log=lambda line: None)
        weights.append(model.get_weights())
    for before, after in zip(*weights):
        np.testing.assert_array_equal(before, after)


def test_no_augmentation_without_the_option():
    dataset = training.batches(square_images(20), np.zeros(20, np.uint8), 10, seed=1)
    np.testing.assert_array_equal(np.concatenate([x.numpy() for x, _ in dataset]), square_images(20))


@pytest.mark.parametrize("augment", [False, True])
def test_batches_run_without_tf_data_autotuning(augment):
    # Its thread held `fit` idle for up to 20 s after the last epoch (docs/speed.md): deleting
    # the iterator waits for that thread's sleep between tuning rounds to end.
    params = dataclasses.replace(PARAMS, augment=augment)
    augmenter = training.augmenter(params, 1) if augment else None
    dataset = training.batches(square_images(20), np.zeros(20, np.uint8), 10, seed=1, augment=augmenter)
    assert dataset.options().autotune.enabled is False
    assert sum(len(x) for x, _ in dataset) == 20  # every image still comes through, once


def test_cosine_schedule_decays_to_zero_and_constant_does_not():
    cosine = training.learning_rate(dataclasses.replace(PARAMS, schedule="cosine", learning_rate=0.01), 100)
    total = PARAMS.epochs * 100
    assert float(cosine(0)) == pytest.approx(0.01)
    assert float(cosine(total // 2)) == pytest.approx(0.005, rel=1e-3)
    assert float(cosine(total)) == pytest.approx(0.0, abs=1e-9)
    assert training.learning_rate(dataclasses.replace(PARAMS, schedule="constant"), 100) == PARAMS.learning_rate


@pytest.mark.parametrize(("schedule", "end"), [("cosine", 0.0), ("constant", 0.01)])
def test_warmup_rises_linearly_from_zero_then_follows_the_schedule(schedule, end):
    params = dataclasses.replace(PARAMS, schedule=schedule, learning_rate=0.01, warmup=0.1)
    rate = training.learning_rate(params, 100)  # 3 epochs of 100 steps: 30 steps of warm-up
    assert float(rate(0)) == pytest.approx(0.0, abs=1e-9)
    assert float(rate(15)) == pytest.approx(0.005, rel=1e-3)
    assert float(rate(30)) == pytest.approx(0.01, rel=1e-3)  # the peak, where the warm-up ends
    assert float(rate(300)) == pytest.approx(end, abs=1e-9)
    halfway = float(rate(165))  # halfway through the rest
    assert halfway == pytest.approx(0.005 if schedule == "cosine" else 0.01, rel=1e-3)


def test_label_smoothing_trains_on_one_hot_targets_moved_toward_uniform():
    params = dataclasses.replace(PARAMS, label_smoothing=0.1)
    loss = training.loss(params)
    assert type(loss).__name__ == "CategoricalCrossentropy" and loss.label_smoothing == 0.1
    assert training.loss(PARAMS) == "sparse_categorical_crossentropy"
    images = square_images(4)
    ((_, targets),) = training.batches(images, np.array([0, 3, 9, 3], np.uint8), 4, one_hot=True).take(1)
    np.testing.assert_array_equal(targets.numpy().argmax(axis=1), [0, 3, 9, 3])
    assert targets.shape == (4, 10) and targets.numpy().sum() == 4


def test_fit_with_label_smoothing_and_warmup_reports_plain_accuracy():
    images = np.random.default_rng(0).random((60, 28, 28), dtype=np.float32)
    labels = (np.arange(60) % 10).astype(np.uint8)
    params = dataclasses.replace(PARAMS, epochs=2, label_smoothing=0.2, warmup=0.3)
    _, curve = training.fit((images[:40], labels[:40]), (images[40:], labels[40:]), params, 1, log=lambda line: None)
    assert [row["epoch"] for row in curve] == [1, 2]
    assert all(0 <= row["accuracy"] <= 1 and 0 <= row["val_accuracy"] <= 1 for row in curve)


@pytest.mark.parametrize(
    ("setting", "devices", "expected"),
    [
        ("auto", [], None),
        ("auto", ["/gpu:0"], None),
        ("auto", ["/gpu:0", "/gpu:1"], ["/gpu:0", "/gpu:1"]),
        ("off", ["/gpu:0", "/gpu:1"], None),
    ],
)
def test_choose_devices(setting, devices, expected):
    assert training.choose_devices(setting, devices) == expected


MIRRORED = """
import dataclasses, json, sys
import numpy as np
from pipeline.core import config
from pipeline.train import training
from pipeline.core.tf import make_deterministic
from pipeline.core.tf import tensorflow
tf = tensorflow()
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
params = dataclasses.replace(config.load().train, epochs=1, batch_size=20, distribute=sys.argv[1])
found = training.strategy(params.distribute, device_type="CPU")
used = []
original = training.strategy
training.strategy = lambda *args: used.append(original(*args)) or used[-1]
images = np.random.default_rng(0).random((60, 28, 28), dtype=np.float32)
labels = (np.arange(60) % 10).astype(np.uint8)
model, history = training.fit((images[:40], labels[:40]), (images[40:], labels[40:]), params, 1,
                              log=lambda s: None, device_type="CPU")
print(json.dumps({"strategy": type(used[0]).__name__, "replicas": used[0].num_replicas_in_sync,
                  "epochs": len(history), "same": type(found) is type(used[0])}))
"""


@pytest.mark.parametrize(
    ("setting", "strategy", "replicas"), [("auto", "MirroredStrategy", 2), ("off", "_DefaultDistributionStrategy", 1)]
)
def test_strategy_on_two_logical_devices(setting, strategy, replicas):
    # Logical devices must be set before TensorFlow starts, so this runs in its own process.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED, setting], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == {"strategy": strategy, "replicas": replicas, "epochs": 1, "same": True}


def test_collected_digits_join_the_training_split_repeated():
    mnist = (np.zeros((5, 28, 28), np.float32), np.arange(5, dtype=np.uint8))
    collected = (np.ones((2, 28, 28), np.float32), np.array([7, 9], np.uint8))
    images, labels = training.with_collected(mnist, collected, 3)
    assert images.shape == (11, 28, 28)
    np.testing.assert_array_equal(labels, [0, 1, 2, 3, 4, 7, 9, 7, 9, 7, 9])
    assert images[:5].sum() == 0 and (images[5:] == 1).all()


def test_no_collected_digits_or_repeat_0_leaves_the_training_split_itself():
    mnist = (np.zeros((5, 28, 28), np.float32), np.arange(5, dtype=np.uint8))
    empty = (np.zeros((0, 28, 28), np.float32), np.zeros(0, np.uint8))
    assert training.with_collected(mnist, empty, 10) is mnist
    assert training.with_collected(mnist, (np.ones((2, 28, 28)), np.array([1, 2])), 0) is mnist
