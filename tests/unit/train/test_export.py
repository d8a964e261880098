"""The export stage's library: SavedModel and LiteRT conversions, byte-stable, scored against Keras.

Uses the glyph-reading model of testkit/glyphs.py: a real classifier, no training.
"""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from pipeline.core import paths
from pipeline.core.errors import DataError
from pipeline.core.tf import keras, quiet
from pipeline.predict.normalise import to_mnist
from pipeline.predict.runners import LiteRTModel
from pipeline.train import export, models
from testkit.glyphs import glyph, template_model
from testkit.repos import ROOT


@pytest.fixture(scope="module")
def model():
    return template_model()


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """The ten glyphs in MNIST's form, 0 to 9, with shifted copies: 40 digits."""
    base = [
        to_mnist(np.asarray(glyph(d, offset=(6 * k, 0)), dtype=np.float32) / 255) for k in range(4) for d in range(10)
    ]
    return np.stack(base).astype(np.float32)


@pytest.fixture(scope="module")
def float32(template_litert) -> bytes:
    return template_litert.read_bytes()  # the session's conversion of template_model(), which `model` is


@pytest.fixture(scope="module")
def int8(model, digits) -> bytes:
    return export.to_litert(model, digits)


def test_litert_float32_gives_the_keras_probabilities(model, digits, float32):
    expected = model(digits, training=False).numpy()
    probabilities = LiteRTModel(float32, "model.tflite")(digits)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    assert list(probabilities.argmax(axis=1)) == list(range(10)) * 4


def test_litert_int8_is_quantized_smaller_and_reads_the_same_digits(float32, int8, digits):
    interpreter = LiteRTModel(int8, "model_int8.tflite").interpreter
    dtypes = {detail["dtype"].__name__ for detail in interpreter.get_tensor_details()}
    assert "int8" in dtypes  # weights and activations, not just a float copy
    assert len(int8) < 0.5 * len(float32)
    assert list(LiteRTModel(int8, "model_int8.tflite")(digits).argmax(axis=1)) == list(range(10)) * 4


@pytest.mark.parametrize("model_bytes", ["float32", "int8"])
def test_litert_on_several_threads_gives_the_same_bytes(model_bytes, digits, request):
    content = request.getfixturevalue(model_bytes)
    many = np.concatenate([digits] * 30)
    one = LiteRTModel(content, "model.tflite")(many)
    assert LiteRTModel(content, "model.tflite", threads=1)(many).tobytes() == one.tobytes()
    assert LiteRTModel(content, "model.tflite", threads=4)(many).tobytes() == one.tobytes()


def test_litert_batches_across_the_inference_batch_give_the_same_answers(float32, digits):
    many = np.concatenate([digits] * 60)  # 2,400 digits: three calls of up to 1,024
    litert = LiteRTModel(float32, "model.tflite")
    np.testing.assert_array_equal(litert(many), np.concatenate([litert(digits)] * 60))
    assert litert(many[:0]).shape == (0, 10)


def test_saved_model_is_tf_serving_layout_and_serves_the_keras_probabilities(model, digits, tmp_path):
    version_dir = export.save_saved_model(model, tmp_path / "saved_model")
    assert version_dir == tmp_path / "saved_model" / "1"
    assert (version_dir / "saved_model.pb").is_file() and (version_dir / "variables").is_dir()
    probabilities = export.saved_model_probabilities(version_dir, digits, batch=16)
    np.testing.assert_allclose(probabilities, model(digits, training=False).numpy(), atol=1e-6)


def test_saved_model_replaces_an_earlier_export_and_leaves_no_temporaries(model, tmp_path):
    target = tmp_path / "saved_model"
    (target / "7").mkdir(parents=True)  # an earlier export's version folder
    (tmp_path / ".saved_model.abc.tmp").mkdir()  # a killed run's scratch folder
    export.save_saved_model(model, target)
    assert sorted(p.name for p in target.iterdir()) == ["1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved_model"]


EXPORT_TWICE = """
import sys
from pathlib import Path
from pipeline.predict import runners
from pipeline.train import export
model = runners.load_model(Path(sys.argv[1]), compile=False)
out = Path(sys.argv[2])
export.save_saved_model(model, out / "saved_model")
(out / "float32.tflite").write_bytes(export.to_litert(model))
(out / "int8.tflite").write_bytes(export.to_litert(model, export.representative_sample(
    __import__("numpy").random.default_rng(0).random((50, 28, 28)), 20, seed=3)))
"""


def test_every_export_is_byte_identical_from_one_process_to_the_next(model, tmp_path):
    # Keras' own model.export() writes the variables in a different order in each process and
    # TensorFlow stamps a random uuid into fingerprint.pb: DVC would see a new output each run.
    models.save_model(model, tmp_path / "model.keras")
    trees = []
    for run in ("a", "b"):
        subprocess.run(
            [sys.executable, "-c", EXPORT_TWICE, str(tmp_path / "model.keras"), str(tmp_path / run)],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        files = sorted(p for p in (tmp_path / run).rglob("*") if p.is_file())
        trees.append({p.relative_to(tmp_path / run).as_posix(): p.read_bytes() for p in files})
    assert "saved_model/1/fingerprint.pb" in trees[0] and "saved_model/1/saved_model.pb" in trees[0]
    assert trees[0].keys() == trees[1].keys()
    assert [name for name in trees[0] if trees[0][name] != trees[1][name]] == []


def test_representative_sample_is_seeded_and_bounded():
    images = np.random.default_rng(0).random((100, 28, 28)).astype(np.float32)
    first, again, other = (export.representative_sample(images, 20, seed) for seed in (1, 1, 2))
    assert first.shape == (20, 28, 28) and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    with pytest.raises(DataError, match=r"^export.representative_images: 101 is more than the 100 training images$"):
        export.representative_sample(images, 101, seed=1)


def test_scores_are_accuracy_agreement_and_size():
    probabilities = np.eye(10, dtype=np.float32)[[1, 2, 3, 4]]
    score = export.scores(
        probabilities, labels=np.array([1, 2, 3, 5]), keras_predicted=np.array([1, 2, 0, 0]), size=123
    )
    assert score == {"test_accuracy": 0.75, "agreement": 0.5, "size_bytes": 123}


def test_a_damaged_or_wrong_litert_model_is_one_line(float32, tmp_path, monkeypatch):
    with pytest.raises(DataError, match=r"^x.tflite: not a loadable LiteRT model \(.+\)$"):
        LiteRTModel(float32[: len(float32) // 2], "x.tflite")
    three = keras().Sequential([keras().Input(shape=(28, 28)), keras().layers.Flatten(), keras().layers.Dense(3)])
    with pytest.raises(
        DataError,
        match=r"^y.tflite: expected a model from 28x28 images to 10 digit probabilities, "
        r"got input \(1, 28, 28\) and output \(1, 3\)$",
    ):
        LiteRTModel(export.to_litert(three), "y.tflite")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        DataError,
        match=rf"^{paths.LITERT_FLOAT32}: no such model; build it with `dvc repro` or fetch it with `dvc pull`",
    ):
        LiteRTModel.from_path(paths.LITERT_FLOAT32)


def test_quiet_hides_native_output_unless_the_block_fails(capfd):
    with quiet():
        os.write(1, b"a converter's note\n")
        os.write(2, b"INFO: a delegate\n")
        print("Saved artifact at ...")
        warnings.warn("Statistics for quantized inputs were expected", stacklevel=1)
    assert capfd.readouterr() == ("", "")
    with pytest.raises(ValueError), quiet():
        os.write(2, b"why it failed\n")
        warnings.warn("a hint", stacklevel=1)
        raise ValueError("conversion failed")
    held = capfd.readouterr().err
    assert "why it failed" in held and "UserWarning: a hint" in held


def test_export_metrics_are_listed_for_dvc_metrics_diff():
    import yaml

    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["export"]
    assert stage["metrics"] == [{paths.EXPORT_METRICS.as_posix(): {"cache": False}}]
    assert {paths.SAVED_MODEL.as_posix(), paths.LITERT_FLOAT32.as_posix(), paths.LITERT_INT8.as_posix()} <= set(
        stage["outs"]
    )


def test_an_ensemble_exports_like_one_network(model, digits, tmp_path):
    sharper = template_model()
    kernel, bias = sharper.layers[-1].get_weights()
    sharper.layers[-1].set_weights([2 * kernel, bias])  # a member that differs from the first
    ensemble = models.average([template_model(), sharper])
    expected = ensemble(digits, training=False).numpy()
    assert not np.allclose(expected, model(digits, training=False).numpy())
    np.testing.assert_allclose(LiteRTModel(export.to_litert(ensemble), "model.tflite")(digits), expected, atol=1e-5)
    int8 = LiteRTModel(export.to_litert(ensemble, digits), "model_int8.tflite")(digits)
    assert list(int8.argmax(axis=1)) == list(range(10)) * 4
    version_dir = export.save_saved_model(ensemble, tmp_path / "saved_model")
    np.testing.assert_allclose(export.saved_model_probabilities(version_dir, digits, batch=16), expected, atol=1e-6)
