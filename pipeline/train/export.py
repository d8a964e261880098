"""The trained model in the forms it is deployed in, and how each scores against the Keras model.

- A TensorFlow SavedModel in TF Serving's layout (`<dir>/1/`), with one signature,
  `serving_default`: `images` (N, 28, 28) float32 in [0, 1] -> `probabilities` (N, 10).
- LiteRT float32, and LiteRT int8: post-training quantization of weights and activations,
  calibrated on a seeded sample of training images. Both keep float32 input and output, so a
  caller treats them alike.

Every output is byte-stable: the same model gives the same bytes, in any process. The TFLite
converter is so as it is; a SavedModel differs only in the random `uuid` of fingerprint.pb,
which is set here from the model's own checksums.
"""

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core import artifacts, datasets
from pipeline.core.errors import DataError
from pipeline.core.tf import quiet, tensorflow
from pipeline.predict.runners import in_batches
from pipeline.train.evaluation import DIGITS

VERSION = "1"  # TF Serving serves the highest numbered folder under its model_base_path


def representative_sample(images: np.ndarray, size: int, seed: int) -> np.ndarray:
    """`size` training images, chosen by `seed`, that calibrate the int8 model's value ranges."""
    if size > len(images):
        raise DataError(f"export.representative_images: {size} is more than the {len(images)} training images")
    chosen = np.random.default_rng(seed).choice(len(images), size=size, replace=False)
    return images[np.sort(chosen)].astype(np.float32)


def to_litert(model: Any, representative: np.ndarray | None = None) -> bytes:
    """The model as a LiteRT flatbuffer: float32, or int8 when given calibration images."""
    tf = tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if representative is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[None]] for image in representative)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]  # all int8, or fail
    with quiet():  # the converter prints its settings and Keras' trace of the model
        return converter.convert()


def save_saved_model(model: Any, directory: Path) -> Path:
    """Write `directory/1/` for TF Serving; the version folder's path.

    Written beside `directory` and renamed into place, so a killed run leaves no half model
    under the output's name.
    """
    with artifacts.atomic_folder(directory) as scratch:
        _save(model, scratch / VERSION)
    return Path(directory) / VERSION


def _save(model: Any, version_dir: Path) -> None:
    tf = tensorflow()
    rows, cols = datasets.IMAGE_SHAPE
    spec = tf.TensorSpec([None, rows, cols], tf.float32, name="images")

    # A plain tf.Module, not model.export(): Keras' export orders the variables differently
    # in every process, this one writes them in the same order each time.
    class Serving(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        @tf.function(input_signature=[spec])
        def serve(self, images: Any) -> dict[str, Any]:
            return {"probabilities": self.model(images, training=False)}

    serving = Serving()
    with quiet():
        tf.saved_model.save(serving, str(version_dir), signatures={"serving_default": serving.serve})
    _fix_fingerprint_uuid(version_dir / "fingerprint.pb")


def _fix_fingerprint_uuid(path: Path) -> None:
    """Replace the random `uuid` in a SavedModel's fingerprint with one derived from its checksums."""
    from tensorflow.core.protobuf import fingerprint_pb2  # TensorFlow is loaded by now

    fingerprint = fingerprint_pb2.FingerprintDef()
    fingerprint.ParseFromString(path.read_bytes())
    fingerprint.uuid = ""
    digest = hashlib.sha256(fingerprint.SerializeToString(deterministic=True)).digest()
    fingerprint.uuid = str(int.from_bytes(digest[:16], "big"))  # a 128-bit number, as TF writes it
    path.write_bytes(fingerprint.SerializeToString(deterministic=True))


def saved_model_probabilities(version_dir: Path, images: np.ndarray, batch: int) -> np.ndarray:
    """Probabilities from a SavedModel's serving signature, as TF Serving would compute them."""
    tf = tensorflow()
    serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    return in_batches(lambda part: serve(images=tf.constant(part, tf.float32))["probabilities"].numpy(), images, batch)


def folder_size(directory: Path) -> int:
    """Bytes in every file under `directory`: what deploying it copies."""
    return sum(path.stat().st_size for path in Path(directory).rglob("*") if path.is_file())


def scores(probabilities: np.ndarray, labels: np.ndarray, keras_predicted: np.ndarray, size: int) -> dict[str, Any]:
    """One format's line in metrics/export.json."""
    predicted = probabilities.argmax(axis=1)
    return {
        "test_accuracy": round(float(np.mean(predicted == labels)), DIGITS),
        "agreement": round(float(np.mean(predicted == keras_predicted)), DIGITS),
        "size_bytes": int(size),
    }
