"""The two kinds of model a prediction runs, behind one interface, and the checks every model
file gets before it runs.

A runner is called with MNIST-form digits, (N, 28, 28) float32 in [0, 1], and gives (N, 10)
probabilities; `format` says which kind it is and `source` the file it came from:

- LiteRTModel: an exported .tflite model (float32 or int8), without TensorFlow;
- KerasModel: a .keras model, loaded in Keras' safe mode (importing TensorFlow takes seconds).
"""

import os
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core import artifacts, datasets, paths
from pipeline.core.datasets import IMAGE_SHAPE, NUM_CLASSES
from pipeline.core.errors import DataError, first_line
from pipeline.core.tf import keras, quiet

INFERENCE_BATCH = 1024  # no gradient noise to keep small when only predicting: bigger is just faster
LITERT, KERAS = "litert", "keras"  # a runner's `format`, e.g. for a service to report
# What load_model accepts: a batch of 28x28 images, with or without a channel axis.
ACCEPTED_INPUTS = ((None, *IMAGE_SHAPE), (None, *IMAGE_SHAPE, 1))
# Errors from a zip archive whose members are damaged, or missing (KeyError: no config.json).
DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, KeyError)


def as_digits(digits: Any) -> np.ndarray:
    """Digits as a runner takes them: float32, (N, 28, 28)."""
    return np.asarray(digits, dtype=np.float32).reshape(-1, *IMAGE_SHAPE)


def in_batches(run: Callable[[np.ndarray], Any], digits: np.ndarray, batch: int = INFERENCE_BATCH) -> np.ndarray:
    """`run`'s probabilities for `digits`, `batch` at a time, as one (N, 10) array."""
    parts = [np.asarray(run(digits[i : i + batch])) for i in range(0, len(digits), batch)]
    return np.concatenate(parts) if parts else np.zeros((0, NUM_CLASSES), np.float32)


class KerasModel:
    """A Keras classifier of MNIST digits: call it with digits, get probabilities."""

    format = KERAS

    def __init__(self, model: Any, source: str | None = None) -> None:
        self.model = model
        self.source = source

    @classmethod
    def from_path(cls, path: Path) -> "KerasModel":
        return cls(load_model(Path(path)), str(path))

    def __call__(self, digits: np.ndarray) -> np.ndarray:
        # Calling the model directly: `model.predict` sets up a whole input pipeline per call.
        return in_batches(lambda batch: self.model(batch, training=False), as_digits(digits))


class LiteRTModel:
    """A .tflite classifier of MNIST digits: call it with digits, get probabilities.

    ai_edge_litert's interpreter imports in a fraction of a second where TensorFlow takes
    seconds. Both exported models take and give float32 (the int8 one quantizes inside).
    """

    format = LITERT

    def __init__(self, content: bytes, source: str, threads: int | None = None) -> None:
        """`threads`: the interpreter's, None for LiteRT's default (one). More split each batch's
        work and give the same bytes; worth it where nothing else runs, as in the export stage."""
        from ai_edge_litert.interpreter import Interpreter  # not at import: the module stays light

        if not content:  # the interpreter would say "`model_path` or `model_content` must be specified"
            raise artifacts.file_error(Path(source), "not a loadable LiteRT model (empty file)")
        try:
            with quiet(fds=(2,)):  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                self.interpreter = Interpreter(model_content=content, num_threads=threads)
        except (ValueError, RuntimeError) as error:
            # file_error: a damaged exported model is named with the `dvc checkout` that restores it
            problem = f"not a loadable LiteRT model ({first_line(error)})"
            raise artifacts.file_error(Path(source), problem) from None
        (self.input,) = self.interpreter.get_input_details()
        (self.output,) = self.interpreter.get_output_details()
        inputs, outputs = (tuple(int(n) for n in detail["shape"]) for detail in (self.input, self.output))
        if inputs[1:] != IMAGE_SHAPE or outputs[1:] != (NUM_CLASSES,):
            raise shape_error(Path(source), inputs, outputs)
        self.source = source
        self.batch = 0  # the batch size the interpreter's tensors are allocated for

    @classmethod
    def from_path(cls, path: Path) -> "LiteRTModel":
        path = model_file(Path(path))
        return cls(path.read_bytes(), str(path))

    def __call__(self, digits: np.ndarray) -> np.ndarray:
        """Probabilities (N, 10) for MNIST-form digits (N, 28, 28) in [0, 1]."""
        return in_batches(self._run, as_digits(digits))

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) != self.batch:  # re-plan the tensors only when the batch size changes
            self.interpreter.resize_tensor_input(self.input["index"], [len(batch), *IMAGE_SHAPE])
            with quiet(fds=(2,)):
                self.interpreter.allocate_tensors()
            self.batch = len(batch)
        self.interpreter.set_tensor(self.input["index"], batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"]).copy()


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
