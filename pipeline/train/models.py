"""The networks `train.model` can name, and how their files are written.

Each network is one readable Sequential block. Model files are written byte-stably (same
weights, same bytes, so DVC sees no change); they are loaded, in Keras' safe mode only, by
pipeline/predict/runners.py, which every reader of a model file shares.
"""

import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core import artifacts
from pipeline.core.config import MODELS, TrainConfig
from pipeline.core.datasets import IMAGE_SHAPE, NUM_CLASSES
from pipeline.core.errors import DataError
from pipeline.core.tf import keras

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def build_model(params: TrainConfig) -> Any:
    """Build (uncompiled) what `train` trains: the network named by `params.model`, or with
    `params.ensemble` > 1, that many of them averaged into one model."""
    if params.ensemble == 1:
        return build_network(params)
    return average([build_network(params) for _ in range(params.ensemble)])


def build_network(params: TrainConfig) -> Any:
    """Build (uncompiled) one network named by `params.model`: the function of that name here."""
    return BUILDERS[params.model](params)


def average(members: list[Any]) -> Any:
    """One model whose output is the mean of the members' digit probabilities.

    An ensemble as a single Keras model saves, loads, exports and serves like one network, so no
    stage after `train` needs to know. It holds copies of the members' weights only: a trained
    member's optimizer state would otherwise be saved, and exported, with it. The copies are
    named `cnn_1`, `cnn_2`, ...: a model's layer names must be unique.
    """
    inputs = keras().Input(shape=IMAGE_SHAPE)
    copies = []
    for number, member in enumerate(members, start=1):
        copy = type(member).from_config(member.get_config())  # uncompiled, where clone_model compiles
        copy.set_weights(member.get_weights())
        copy.name = f"{member.name}_{number}"
        copies.append(copy)
    outputs = keras().layers.Average(name="average")([copy(inputs) for copy in copies])
    return keras().Model(inputs, outputs, name=f"ensemble_of_{len(members)}")


def _dropout(rate: float) -> list[Any]:
    return [keras().layers.Dropout(rate)] if rate > 0 else []


def mlp(params: TrainConfig) -> Any:
    """The notebook's network: 784 -> 128 relu -> 32 relu -> 10 softmax, 104,938 parameters.

    With `dropout` > 0, a dropout layer follows each hidden layer (no extra parameters);
    `width` multiplies the hidden units.
    """
    layers = keras().layers
    width = params.width
    return keras().Sequential(
        [
            keras().Input(shape=IMAGE_SHAPE),
            layers.Flatten(),  # flattening lives in the model, so inputs stay 28x28 images
            layers.Dense(128 * width, activation="relu"),
            *_dropout(params.dropout),
            layers.Dense(32 * width, activation="relu"),
            *_dropout(params.dropout),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="mlp",
    )


def cnn(params: TrainConfig) -> Any:
    """Two 3x3 conv + max-pool blocks, then a 128-unit dense layer: 225,034 parameters.

    `width` multiplies the filters (32, 64) and the dense units (128).

    keras-io's mnist_convnet goes straight from the conv blocks to the softmax (34,826
    parameters, 99.22% after 15 epochs); the dense layer costs little compute on a CPU (the
    convolutions dominate) and reaches the same accuracy in fewer epochs.
    """
    layers = keras().layers
    width = params.width
    return keras().Sequential(
        [
            keras().Input(shape=IMAGE_SHAPE),
            layers.Reshape((*IMAGE_SHAPE, 1)),  # one grayscale channel
            layers.Conv2D(32 * width, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64 * width, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            *_dropout(params.dropout),
            layers.Dense(128 * width, activation="relu"),
            *_dropout(params.dropout),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="cnn",
    )


def deep_cnn(params: TrainConfig) -> Any:
    """Two blocks of two 3x3 convs with batch norm, then a 128-unit dense layer: 198,442 parameters.

    `width` multiplies the filters (32, 64) and the dense units. Four convolutions see more
    shapes than two; batch norm keeps them trainable at a high rate. Costs about what `cnn` at
    width 2 costs per epoch (the convs on the full 28x28 field dominate) and learns more from
    augmented digits.
    """
    layers = keras().layers
    width = params.width

    def conv(filters: int) -> list[Any]:
        # No bias: batch norm's shift replaces it.
        return [layers.Conv2D(filters * width, 3, use_bias=False), layers.BatchNormalization(), layers.ReLU()]

    return keras().Sequential(
        [
            keras().Input(shape=IMAGE_SHAPE),
            layers.Reshape((*IMAGE_SHAPE, 1)),
            *conv(32),
            *conv(32),
            layers.MaxPooling2D(),
            *conv(64),
            *conv(64),
            layers.MaxPooling2D(),
            layers.Flatten(),
            *_dropout(params.dropout),
            layers.Dense(128 * width, use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            *_dropout(params.dropout),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="deep_cnn",
    )


def multiply_adds(model: Any) -> int:
    """Multiply-adds in one image's forward pass through the model's convolutions and dense layers.

    The rest (pooling, batch norm, activations) costs a few per value, against hundreds per value
    for a convolution. Training one image costs about three forward passes (the forward pass, and
    the gradients with respect to inputs and weights), each multiply-add two floating-point operations.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras().Model):  # an ensemble's member: its own layers
            total += multiply_adds(layer)
            continue
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        if isinstance(layer, keras().layers.Conv2D):  # (rows, cols, inputs, filters), per output pixel
            _, rows, cols, _ = layer.output.shape
            total += rows * cols * int(np.prod(kernel.shape))
        elif isinstance(layer, keras().layers.Dense):
            total += int(np.prod(kernel.shape))
    return total


def save_model(model: Any, path: Path) -> None:
    """Save a Keras model so that the same weights always give the same bytes.

    Keras stamps `date_saved` into metadata.json, the current time into the zip entry of the
    weights, and memory addresses (`shared_object_id`) into config.json; all are fixed here, and
    the archive is rewritten in a fixed order.
    """
    with tempfile.TemporaryDirectory() as tmp:
        raw_path = Path(tmp) / "model.keras"
        try:
            model.save(raw_path)
        except OSError as error:  # the scratch copy: a full or read-only temporary directory
            raise DataError(f"{path}: cannot write (scratch copy in {tmp}): {error.strerror or error}") from None
        with zipfile.ZipFile(raw_path) as source:
            entries = [(info, source.read(info)) for info in source.infolist()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for info, content in sorted(entries, key=lambda entry: entry[0].filename):
            if info.filename == "metadata.json":
                metadata = json.loads(content)
                metadata.pop("date_saved", None)
                content = json.dumps(metadata, sort_keys=True).encode()
            if info.filename == "config.json":
                content = json.dumps(_renumber_shared_objects(json.loads(content), {})).encode()
            entry = zipfile.ZipInfo(info.filename, date_time=_ZIP_EPOCH)
            entry.compress_type = info.compress_type
            entry.external_attr = 0o644 << 16
            target.writestr(entry, content)
    artifacts.write_bytes(path, buffer.getvalue())


def _renumber_shared_objects(node: Any, numbers: dict[int, int]) -> Any:
    """Replace each `shared_object_id` (an id() of a Python object) by its order of appearance.

    Equal ids stay equal, so objects that Keras shares on load are still shared.
    """
    if isinstance(node, dict):
        renumbered = {}
        for key, value in node.items():
            if key == "shared_object_id":
                renumbered[key] = numbers.setdefault(value, len(numbers) + 1)
            else:
                renumbered[key] = _renumber_shared_objects(value, numbers)
        return renumbered
    if isinstance(node, list):
        return [_renumber_shared_objects(value, numbers) for value in node]
    return node


# One function per network name in config.MODELS, the list params.yaml is checked against
# without importing TensorFlow; a name without its function fails here, at import.
BUILDERS = {name: globals()[name] for name in MODELS}
