"""The networks `train.model` can name, and their files.

Each network is one readable Sequential block. Model files are written byte-stably (same
weights, same bytes, so DVC sees no change) and loaded only in Keras' safe mode.
"""

import io
import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import artifacts, datasets, paths
from pipeline.config import MODELS, TrainConfig
from pipeline.datasets import IMAGE_SHAPE, NUM_CLASSES
from pipeline.errors import DataError, first_line
from pipeline.tf import keras

INFERENCE_BATCH = 1024  # no gradient noise to keep small when only predicting: bigger is just faster
# What load_model accepts: a batch of 28x28 images, with or without a channel axis.
ACCEPTED_INPUTS = ((None, *IMAGE_SHAPE), (None, *IMAGE_SHAPE, 1))
# Errors from a zip archive whose members are damaged, or missing (KeyError: no config.json).
DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, KeyError)
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


def model_file(path: Path) -> Path:
    """`path` if a model file (Keras or LiteRT) is there to read; else DataError naming why."""
    if not os.path.lexists(path):
        # Only the pipeline's own models can be built or pulled; a --model elsewhere is a typo.
        how = "; build it with `dvc repro` or fetch it with `dvc pull`" if paths.stage_output(path) else ""
        raise DataError(f"{path}: no such model{how}")
    problem = datasets.path_problem(path)
    if problem:
        raise artifacts.file_error(path, problem)
    return path


def load_model(path: Path, compile: bool = True) -> Any:
    """Load a .keras model in safe mode (a file that would run code on load is refused) and
    check that it reads MNIST digits: every caller can then rely on its shape.

    `compile=False` leaves out the optimizer and its state: the weights alone, for export."""
    model_file(path)
    # Keras reports a file that is no zip archive (a cut-short copy, a text file) as "File not found".
    if not zipfile.is_zipfile(path):
        raise _damaged(path, "not a zip archive")
    try:
        model = keras().saving.load_model(path, compile=compile, safe_mode=True)
    except DAMAGED as error:  # a bad member in a sound archive: a flipped byte, a missing config.json
        raise _damaged(path, f"{type(error).__name__}: {first_line(error)}") from None
    except Exception as error:  # noqa: BLE001 -- Keras raises many types for a model it refuses; its words say why
        raise artifacts.file_error(path, f"not a loadable Keras model ({first_line(error)})") from None
    check_shape(model, path)
    return model


def check_shape(model: Any, path: Path) -> None:
    """DataError unless `model` takes 28x28 images (with or without a channel axis) to 10 outputs.

    Keras loads a model of any shape; a wrong one would fail only later, deep in predict or
    evaluate (an IndexError, a traceback printing the whole input), or name a digit 11.
    """
    inputs, outputs = _shape(model, "input_shape"), _shape(model, "output_shape")
    if inputs not in ACCEPTED_INPUTS or outputs != (None, NUM_CLASSES):
        raise shape_error(path, inputs, outputs)


def shape_error(path: Path, inputs: Any, outputs: Any) -> DataError:
    """The one-line error for a model file (Keras or LiteRT) that does not read MNIST digits."""
    rows, cols = IMAGE_SHAPE
    expected = f"expected a model from {rows}x{cols} images to {NUM_CLASSES} digit probabilities"
    return artifacts.file_error(Path(path), f"{expected}, got input {inputs} and output {outputs}")


def _shape(model: Any, attribute: str) -> Any:
    """A model's input or output shape: a tuple, a list of tuples for several, or "unknown"."""
    try:
        return getattr(model, attribute)
    except (AttributeError, ValueError, RuntimeError):  # e.g. a model that was never built
        return "unknown"


def _damaged(path: Path, detail: str) -> DataError:
    return artifacts.file_error(path, f"not a loadable Keras model (damaged or not a Keras file: {detail})")
