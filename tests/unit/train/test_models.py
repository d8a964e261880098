"""The network, its byte-stable model file, and seeded training (imports TensorFlow: a few seconds)."""

import dataclasses
import os
import re
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from pipeline.core import artifacts, config, paths
from pipeline.core.errors import DataError
from pipeline.core.tf import keras
from pipeline.predict import runners
from pipeline.train import models, training
from testkit.repos import ROOT

DEFAULTS = config.load(ROOT / "params.yaml").train
PARAMS = dataclasses.replace(DEFAULTS, model="mlp", epochs=1, batch_size=32, dropout=0.0, augment=False)


def random_digits(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.random((count, 28, 28), dtype=np.float32)
    labels = (np.arange(count) % 10).astype(np.uint8)
    return images, labels


@pytest.fixture(scope="module")
def model():
    keras().utils.set_random_seed(0)
    return models.build_model(PARAMS)


def weights_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights(), strict=True))


def quiet(message: str) -> None:
    pass


def test_mlp_is_the_notebooks_network(model):
    assert model.count_params() == 104_938
    assert model.output_shape == (None, 10)
    assert model.input_shape == (None, 28, 28)
    dense = [layer for layer in model.layers if hasattr(layer, "units")]
    assert [layer.units for layer in dense] == [128, 32, 10]
    assert [layer.activation.__name__ for layer in dense] == ["relu", "relu", "softmax"]


def test_saving_twice_gives_identical_bytes(model, tmp_path):
    models.save_model(model, tmp_path / "first.keras")
    time.sleep(1.1)  # Keras stamps the time (to the second) into the file
    models.save_model(model, tmp_path / "second.keras")
    assert (tmp_path / "first.keras").read_bytes() == (tmp_path / "second.keras").read_bytes()
    with zipfile.ZipFile(tmp_path / "first.keras") as archive:
        assert b"date_saved" not in archive.read("metadata.json")


def test_load_model_predicts_like_the_original(model, tmp_path):
    models.save_model(model, tmp_path / "model.keras")
    loaded = runners.load_model(tmp_path / "model.keras")
    images, _ = random_digits(8)
    assert weights_equal(model, loaded)
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), model.predict(images, verbose=0))


def test_load_model_of_a_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"absent.keras: no such model$"):  # no dvc hint: not the pipeline's
        runners.load_model(tmp_path / "absent.keras")


def test_load_model_of_the_pipelines_missing_model_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"^models/model.keras: no such model; build it with `dvc repro`"):
        runners.load_model(paths.MODEL)


def cut_in_half(path):
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def flip_middle_bytes(path):
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2  # inside the weights, the largest member
    raw[middle : middle + 64] = bytes(b ^ 0xFF for b in raw[middle : middle + 64])
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    ("damage", "detail"),
    [
        (cut_in_half, "not a zip archive"),
        (lambda path: path.write_text("not a model\n"), "not a zip archive"),
        (flip_middle_bytes, "BadZipFile: Bad CRC-32 for file 'model.weights.h5'"),
    ],
    ids=["truncated", "text", "flipped-bytes"],
)
def test_load_model_of_a_damaged_file_says_so_in_one_line(model, tmp_path, damage, detail):
    path = tmp_path / "model.keras"  # outside the repository's outputs: no restore hint
    models.save_model(model, path)
    damage(path)
    with pytest.raises(DataError) as error:
        runners.load_model(path)
    assert str(error.value) == f"{path}: not a loadable Keras model (damaged or not a Keras file: {detail})"


def test_load_model_of_the_repos_damaged_model_says_how_to_restore_it(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    models.save_model(model, paths.MODEL)
    cut_in_half(paths.MODEL)
    with pytest.raises(DataError) as error:
        runners.load_model(paths.MODEL)
    assert str(error.value) == (
        "models/model.keras: not a loadable Keras model (damaged or not a Keras file: not a zip archive); "
        "restore it with `dvc checkout --force models/model.keras` or rebuild it with `dvc repro`"
    )


def test_load_model_of_a_path_that_is_no_file_names_what_it_is(tmp_path):
    with pytest.raises(DataError, match=r"^/dev/null: not a regular file \(a device\)$"):
        runners.load_model("/dev/null")
    with pytest.raises(DataError, match=f"^{re.escape(str(tmp_path))}: is a folder, not a file$"):
        runners.load_model(tmp_path)


def wrong_model(inputs: tuple[int, ...], outputs: int):
    layers = keras().layers
    return keras().Sequential(
        [keras().Input(shape=inputs), layers.Flatten(), layers.Dense(outputs, activation="softmax")]
    )


WRONG_SHAPES = {  # (input shape, classes) -> what the one line says the model has
    "3-classes": ((28, 28), 3, "input (None, 28, 28) and output (None, 3)"),
    "12-classes": ((28, 28), 12, "input (None, 28, 28) and output (None, 12)"),
    "flat-input": ((784,), 10, "input (None, 784) and output (None, 10)"),
    "both": ((784,), 3, "input (None, 784) and output (None, 3)"),
}


@pytest.mark.parametrize("name", WRONG_SHAPES)
def test_load_model_refuses_a_model_of_the_wrong_shape(tmp_path, name):
    inputs, outputs, has = WRONG_SHAPES[name]
    path = tmp_path / "bad.keras"
    models.save_model(wrong_model(inputs, outputs), path)
    with pytest.raises(DataError) as error:
        runners.load_model(path)
    assert str(error.value) == f"{path}: expected a model from 28x28 images to 10 digit probabilities, got {has}"


def test_load_model_accepts_images_with_a_channel_axis(tmp_path):
    models.save_model(wrong_model((28, 28, 1), 10), tmp_path / "channel.keras")
    assert runners.load_model(tmp_path / "channel.keras").input_shape == (None, 28, 28, 1)


def test_evaluate_refuses_a_model_of_the_wrong_shape_before_predicting(tmp_path, monkeypatch):
    from stages import evaluate

    monkeypatch.chdir(tmp_path)
    images, labels = random_digits(20)
    artifacts.save_split(paths.prepared("test"), (images * 255).astype(np.uint8), labels)
    artifacts.save_learning_curve(
        paths.LEARNING_CURVE, [{"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.0, "val_accuracy": 0.5}]
    )
    models.save_model(wrong_model((28, 28), 3), paths.MODEL)  # scored, this would die of an IndexError
    with pytest.raises(DataError) as error:
        evaluate.main()
    assert str(error.value) == (
        "models/model.keras: expected a model from 28x28 images to 10 digit probabilities, got input (None, 28, 28) "
        "and output (None, 3); restore it with `dvc checkout --force models/model.keras` or rebuild it with `dvc repro`"
    )
    assert not paths.METRICS.exists() and not paths.PREDICTIONS.exists()


def test_predict_refuses_a_model_of_the_wrong_shape_in_one_line(tmp_path):
    path = tmp_path / "bad.keras"
    models.save_model(wrong_model((784,), 3), path)
    command = [sys.executable, "-m", "pipeline.predict", "examples/pen-4.png", "--model", str(path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (
        f"error: {path}: expected a model from 28x28 images to 10 digit probabilities, "
        "got input (None, 784) and output (None, 3)\n"
    )


def test_load_model_refuses_code(tmp_path):
    layers = keras().layers
    unsafe = keras().Sequential([keras().Input(shape=(2,)), layers.Lambda(lambda x: x * 2)])
    unsafe.save(tmp_path / "unsafe.keras")
    with pytest.raises(DataError, match="not a loadable Keras model .*Lambda"):
        runners.load_model(tmp_path / "unsafe.keras")


def test_fit_returns_one_history_row_per_epoch():
    images, labels = random_digits(200)
    messages = []
    _, history = training.fit(
        (images[:160], labels[:160]), (images[160:], labels[160:]), PARAMS, seed=1, log=messages.append
    )
    assert len(history) == 1
    assert list(history[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert history[0]["epoch"] == 1
    assert all(type(value) is float and np.isfinite(value) for key, value in history[0].items() if key != "epoch")
    assert 0 <= history[0]["accuracy"] <= 1 and 0 <= history[0]["val_accuracy"] <= 1
    assert len(messages) == 1 and messages[0].startswith("epoch 1/1")


def test_fit_is_deterministic_for_a_seed():
    images, labels = random_digits(200)
    train, val = (images[:160], labels[:160]), (images[160:], labels[160:])
    first, first_history = training.fit(train, val, PARAMS, seed=3, log=quiet)
    again, again_history = training.fit(train, val, PARAMS, seed=3, log=quiet)
    other, _ = training.fit(train, val, PARAMS, seed=4, log=quiet)
    assert weights_equal(first, again)
    assert first_history == again_history
    assert not weights_equal(first, other)


def test_dropout_adds_layers_but_no_parameters():
    with_dropout = models.build_model(dataclasses.replace(PARAMS, dropout=0.3))
    rates = [layer.rate for layer in with_dropout.layers if isinstance(layer, keras().layers.Dropout)]
    assert rates == [0.3, 0.3]
    assert with_dropout.count_params() == 104_938


def test_cnn_shape_and_size():
    model = models.build_model(dataclasses.replace(PARAMS, model="cnn", dropout=0.4))
    assert model.input_shape == (None, 28, 28)
    assert model.output_shape == (None, 10)
    assert model.count_params() == 225_034
    assert [type(layer).__name__ for layer in model.layers].count("Conv2D") == 2


def test_deep_cnn_shape_and_size():
    model = models.build_model(dataclasses.replace(PARAMS, model="deep_cnn", dropout=0.3))
    assert model.output_shape == (None, 10)
    assert model.count_params() == 198_442
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Conv2D") == 4 and kinds.count("BatchNormalization") == 5


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("mlp", 784 * 128 + 128 * 32 + 32 * 10),
        # 26x26 outputs of a 3x3x1 kernel x 32, 11x11 of 3x3x32 x 64, then 1600 -> 128 -> 10
        ("cnn", 26 * 26 * 9 * 32 + 11 * 11 * 9 * 32 * 64 + 1600 * 128 + 128 * 10),
    ],
)
def test_multiply_adds_count_every_conv_pixel_and_dense_weight(name, count):
    assert models.multiply_adds(models.build_model(dataclasses.replace(PARAMS, model=name))) == count


def test_multiply_adds_grow_with_width_as_the_square_of_the_inner_layers():
    one, two = (
        models.multiply_adds(models.build_model(dataclasses.replace(PARAMS, model="cnn", width=w))) for w in (1, 2)
    )
    assert 3.5 * one < two < 4 * one  # the first conv and the last dense grow only twofold


SAVE_IN_A_NEW_PROCESS = """
import dataclasses, sys
from pipeline.core import config
from pipeline.train import models
from pipeline.core.tf import make_deterministic
make_deterministic(7)
params = dataclasses.replace(config.load().train, model=sys.argv[1], ensemble=int(sys.argv[2]))
models.save_model(models.build_model(params), sys.argv[3])
"""


@pytest.mark.parametrize(("name", "ensemble"), [("mlp", 1), ("cnn", 1), ("deep_cnn", 1), ("cnn", 3)])
def test_same_weights_give_the_same_bytes_in_separate_processes(name, ensemble, tmp_path):
    # Keras writes id() values into config.json; two processes lay out memory differently.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for output in ("first.keras", "second.keras"):
        command = [sys.executable, "-c", SAVE_IN_A_NEW_PROCESS, name, str(ensemble), str(tmp_path / output)]
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    assert (tmp_path / "first.keras").read_bytes() == (tmp_path / "second.keras").read_bytes()
    assert runners.load_model(tmp_path / "first.keras").count_params() > 0


@pytest.mark.parametrize("name", ["cnn", "deep_cnn"])
def test_conv_nets_train_with_every_option_and_reload(tmp_path, name):
    images, labels = random_digits(100)
    params = dataclasses.replace(
        PARAMS, model=name, augment=True, schedule="cosine", dropout=0.2, warmup=0.2, label_smoothing=0.1
    )
    model, history = training.fit((images[:80], labels[:80]), (images[80:], labels[80:]), params, seed=1, log=quiet)
    assert len(history) == 1
    models.save_model(model, tmp_path / f"{name}.keras")
    models.save_model(model, tmp_path / "again.keras")
    assert (tmp_path / f"{name}.keras").read_bytes() == (tmp_path / "again.keras").read_bytes()
    # Compiled as saved: the smoothed loss and the warm-up schedule come back in safe mode.
    reloaded = runners.load_model(tmp_path / f"{name}.keras")
    assert reloaded.loss.label_smoothing == 0.1
    assert reloaded.optimizer.learning_rate is not None
    np.testing.assert_array_equal(reloaded.predict(images, verbose=0), model.predict(images, verbose=0))


@pytest.mark.parametrize(("name", "count"), [("mlp", 218_058), ("cnn", 896_522), ("deep_cnn", 788_042)])
def test_width_multiplies_every_layer(name, count):
    model = models.build_model(dataclasses.replace(PARAMS, model=name, width=2))
    assert model.count_params() == count


def test_full_disk_during_the_scratch_save_is_one_line_naming_the_model(model, tmp_path, monkeypatch):
    def full_disk(path, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model, "save", full_disk)
    with pytest.raises(DataError, match=r"model.keras: cannot write \(scratch copy in .*\): No space left on device"):
        models.save_model(model, tmp_path / "model.keras")
    assert not (tmp_path / "model.keras").exists()


@pytest.mark.parametrize(("name", "single"), [("mlp", 104_938), ("cnn", 225_034)])
def test_an_ensemble_is_one_model_of_its_members_averaged(name, single):
    params = dataclasses.replace(PARAMS, model=name, ensemble=3)
    ensemble = models.build_model(params)
    assert ensemble.input_shape == (None, 28, 28) and ensemble.output_shape == (None, 10)
    members = [layer for layer in ensemble.layers if isinstance(layer, keras().Model)]
    assert [member.name for member in members] == [f"{name}_1", f"{name}_2", f"{name}_3"]
    assert ensemble.count_params() == 3 * single
    one = models.multiply_adds(models.build_model(dataclasses.replace(params, ensemble=1)))
    assert models.multiply_adds(ensemble) == 3 * one
    images, _ = random_digits(8)
    expected = np.mean([member.predict(images, verbose=0) for member in members], axis=0)
    np.testing.assert_allclose(ensemble.predict(images, verbose=0), expected, atol=1e-6)


def test_an_ensembles_members_are_the_networks_single_runs_of_their_seeds_train(tmp_path):
    images, labels = random_digits(200)
    train, val = (images[:160], labels[:160]), (images[160:], labels[160:])
    params = dataclasses.replace(PARAMS, epochs=2, ensemble=2)
    messages = []
    ensemble, history = training.fit(train, val, params, seed=3, log=messages.append)
    singles = [training.fit(train, val, dataclasses.replace(params, ensemble=1), seed=s, log=quiet) for s in (3, 1003)]
    members = [layer for layer in ensemble.layers if isinstance(layer, keras().Model)]
    for member, (single, _) in zip(members, singles, strict=True):
        assert weights_equal(member, single)
    assert [re.match(r"member \d/\d  epoch \d/\d", message).group() for message in messages] == [
        "member 1/2  epoch 1/2",
        "member 1/2  epoch 2/2",
        "member 2/2  epoch 1/2",
        "member 2/2  epoch 2/2",
    ]
    # The curve is the members' mean, epoch by epoch.
    for row, first, second in zip(history, singles[0][1], singles[1][1], strict=True):
        assert row["epoch"] == first["epoch"]
        assert row["val_loss"] == pytest.approx((first["val_loss"] + second["val_loss"]) / 2)
    # Saved and reloaded as one compiled model that evaluates, byte-stably, predicting the same.
    models.save_model(ensemble, tmp_path / "ensemble.keras")
    models.save_model(ensemble, tmp_path / "again.keras")
    assert (tmp_path / "ensemble.keras").read_bytes() == (tmp_path / "again.keras").read_bytes()
    # The members' weights, not their optimizers' state too: no bigger than the single runs' files.
    for number, (single, _) in enumerate(singles):
        models.save_model(single, tmp_path / f"single{number}.keras")
    singles_size = sum((tmp_path / f"single{number}.keras").stat().st_size for number in range(2))
    assert (tmp_path / "ensemble.keras").stat().st_size < 1.05 * singles_size
    reloaded = runners.load_model(tmp_path / "ensemble.keras")
    np.testing.assert_array_equal(reloaded.predict(images, verbose=0), ensemble.predict(images, verbose=0))
    assert type(reloaded.optimizer).__name__ == "Adam"
    loss, accuracy = reloaded.evaluate(images, labels, verbose=0)
    assert np.isfinite(loss) and 0 <= accuracy <= 1


def test_member_seeds_differ_across_the_benchmark_seeds_and_stay_in_range():
    seeds = {training.member_seed(seed, k) for seed in (1, 2, 3) for k in range(10)}
    assert len(seeds) == 30
    assert training.member_seed(5, 0) == 5
    assert 0 <= training.member_seed(2**32 - 1, 9) < 2**32


IMPORT_KERAS = """
import sys
from pipeline.core.tf import keras
keras()
print(sorted({"sklearn", "matplotlib"} & set(sys.modules)))
import matplotlib.pyplot, sklearn.metrics
print("importable after")
"""


def test_keras_loads_neither_scikit_learn_nor_matplotlib_and_both_stay_importable():
    # Keras imports both eagerly for features nothing here uses: 1.6 s of each TensorFlow stage.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-c", IMPORT_KERAS], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    assert run.stdout.split("\n")[:2] == ["[]", "importable after"]
