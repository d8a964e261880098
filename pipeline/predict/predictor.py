"""Images in, digits out: a trained model plus MNIST's normalisation, for Python callers.

    from pipeline.predict import Predictor
    predictions = Predictor.from_path().predict(["examples/pen-4.png"])

`Predictor.from_path()` takes the LiteRT float32 model when the export stage has made one, else
the Keras model; a path picks either (`.tflite` is LiteRT, `.keras` Keras; nothing else is taken). LiteRT starts in
well under a second with no TensorFlow import; TensorFlow alone takes seconds to import.

Any number of inputs runs in bounded memory (`stream` goes one chunk at a time), and a bad input
gets a Prediction with `error` instead of stopping the others.
"""

import dataclasses
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core import paths
from pipeline.core.errors import DataError, PipelineError
from pipeline.predict.images import from_array, load_gray, load_gray_bytes, to_gray
from pipeline.predict.normalise import to_mnist
from pipeline.predict.runners import KERAS, LITERT, KerasModel, LiteRTModel, as_digits

CHUNK = 256  # images read and classified together
NON_FINITE = "the model gave non-finite probabilities (NaN weights?)"
LITERT_SUFFIX, KERAS_SUFFIX = ".tflite", ".keras"
# Said with every refused format: what to give instead. The SavedModel is TF Serving's, not ours.
FORMATS = f"--model takes a {KERAS_SUFFIX} or {LITERT_SUFFIX} file, e.g. {paths.LITERT_FLOAT32}"


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one input, or why there is none."""

    source: str
    probabilities: np.ndarray | None = None
    error: str | None = None
    digit28: np.ndarray | None = None  # what the model saw

    @property
    def ranked(self) -> list[tuple[int, float]]:
        order = np.argsort(-self.probabilities, kind="stable")
        return [(int(d), float(self.probabilities[d])) for d in order]

    @property
    def digit(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def confidence(self) -> float:
        return float(np.max(self.probabilities))

    def record(self, top: int = 1) -> dict:
        """As JSON (`predict --json`, the service): path, digit, confidence, probabilities (and
        the `top` K when K > 1); or path and error."""
        if self.error:
            return {"path": self.source, "error": self.error}
        record = {
            "path": self.source,
            "digit": self.digit,
            "confidence": round(self.confidence, 6),
            "probabilities": [round(float(p), 6) for p in self.probabilities],
        }
        if top > 1:
            record["top"] = [{"digit": d, "probability": round(p, 6)} for d, p in self.ranked[:top]]
        return record


@dataclass(frozen=True)
class Upload:
    """An image file's bytes as received (by the service, say) and the name it came under."""

    name: str
    content: bytes


class Predictor:
    """A trained model plus MNIST's normalisation: images in, digits out."""

    def __init__(self, model: Any, source: str | None = None) -> None:
        """`model`: a runner (runners.py), or a Keras model to run in one; `source`: its file, if any."""
        self.model = model if isinstance(model, (LiteRTModel, KerasModel)) else KerasModel(model)
        self.format = self.model.format  # LITERT or KERAS
        self.source = source if source is not None else self.model.source

    @classmethod
    def from_path(cls, path: str | Path | None = None) -> "Predictor":
        """The model at `path` (`.tflite`: LiteRT, `.keras`: Keras); with none, `default_model()`."""
        path = Path(path) if path is not None else default_model()
        runner = LiteRTModel if model_format(path) == LITERT else KerasModel  # Keras imports TensorFlow
        return cls(runner.from_path(path), str(path))

    def probabilities(self, digits: np.ndarray) -> np.ndarray:
        """Class probabilities for MNIST-form digits (N x 28 x 28 in [0, 1])."""
        return self.model(as_digits(digits))

    def predict(self, images: Iterable[Any]) -> list[Prediction]:
        """Predict file paths, Uploads (bytes), PIL images or arrays; a bad input gets a Prediction with `error`."""
        return [p for chunk in self.stream(images) for p in chunk]

    def stream(self, images: Iterable[Any], chunk: int = CHUNK) -> Iterator[list[Prediction]]:
        """Like `predict`, one chunk at a time, for inputs too many to hold at once."""
        batch: list[Any] = []
        for image in images:
            batch.append(image)
            if len(batch) == chunk:
                yield self._predict_chunk(batch)
                batch = []
        if batch:
            yield self._predict_chunk(batch)

    def _predict_chunk(self, images: list[Any]) -> list[Prediction]:
        return self.answer(prepare(images))

    def answer(self, prepared: list[Prediction]) -> list[Prediction]:
        """`prepare`'s results with the model's probabilities: one model call for all of them."""
        ready = [p for p in prepared if p.error is None]
        probabilities = self.probabilities(np.stack([p.digit28 for p in ready])) if ready else []
        found = iter(probabilities)
        return [p if p.error else _answer(p, next(found)) for p in prepared]


def model_format(path: Path) -> str:
    """LITERT or KERAS, by the file's suffix; DataError naming what else `path` is.

    Asked before reading anything: a SavedModel folder (or its saved_model.pb) is an export the
    service does not run, and telling its user the folder is damaged and to restore it would
    send them after a fault that is not there.
    """
    suffix = path.suffix.lower()
    if suffix in (LITERT_SUFFIX, KERAS_SUFFIX) and not os.path.isdir(path):
        return LITERT if suffix == LITERT_SUFFIX else KERAS
    if _saved_model(path):
        raise DataError(f"{path}: a TF Serving SavedModel, not a --model format; {FORMATS}")
    if os.path.isdir(path):
        raise DataError(f"{path}: a folder, not a --model format; {FORMATS}")
    raise DataError(f"{path}: not a --model format; {FORMATS}")


def _saved_model(path: Path) -> bool:
    """Whether `path` is a SavedModel's folder, its version folder's parent, its saved_model.pb, or
    the export stage's SavedModel path (so also in a clone that has not built or pulled it)."""
    output = paths.stage_output(path)
    if path.name == "saved_model.pb" or (output is not None and paths.SAVED_MODEL in (output, *output.parents)):
        return True
    return os.path.isdir(path) and (os.path.isfile(path / "saved_model.pb") or any(path.glob("*/saved_model.pb")))


def default_model() -> Path:
    """The LiteRT float32 model if the export stage has made it, else the Keras model.

    float32, not int8: float32 gives the Keras model's digit where int8 now and then does not
    (how often, on the test set: metrics/export.json's `agreement`; on realistic photos: the
    record of benchmarks/predict.py, docs/predicting.md); int8 is a `--model` away. A LiteRT
    file that is there but broken (a dangling DVC link, a damaged copy) is reported, not
    skipped: a silent fall back to Keras would hide it behind a slow start.
    """
    return paths.LITERT_FLOAT32 if os.path.lexists(paths.LITERT_FLOAT32) else paths.MODEL


def prepare(images: list[Any]) -> list[Prediction]:
    """Each input decoded and normalised (`digit28`), or its error: no model involved, so a
    service can do this for many requests at once and hold the model only for `answer`."""
    return [_prepare(image, index) for index, image in enumerate(images)]


def _answer(prepared: Prediction, probabilities: np.ndarray) -> Prediction:
    """`prepared` with the model's probabilities, or an error for it if they are not numbers."""
    if not np.isfinite(probabilities).all():  # NaN is no digit, and not valid JSON
        return Prediction(prepared.source, error=f"{prepared.source}: {NON_FINITE}")
    return dataclasses.replace(prepared, probabilities=probabilities)


def _prepare(image: Any, index: int) -> Prediction:
    if isinstance(image, (str, Path)):
        source = str(image)
    else:
        source = image.name if isinstance(image, Upload) else f"<{type(image).__name__} {index}>"
    try:
        return _prepared(image, source)
    except PipelineError as error:
        return Prediction(source, error=str(error))
    except MemoryError:  # a service's decoder has a memory limit; an image within ours can exceed it
        return Prediction(source, error=f"{source}: needs more memory to decode than there is; refusing it")
    except Exception as error:  # noqa: BLE001 -- a bug met by one input must not lose the others
        return Prediction(source, error=f"{source}: could not read this image ({one_line(error)})")


def one_line(error: Exception) -> str:
    """`Type: message` with its newlines collapsed: one input, one line."""
    return " ".join(f"{type(error).__name__}: {error}".split())


def _prepared(image: Any, source: str) -> Prediction:
    if isinstance(image, (str, Path)):
        gray = load_gray(Path(image))
    elif isinstance(image, Upload):
        gray = load_gray_bytes(image.content, source)
    elif isinstance(image, np.ndarray):
        gray = from_array(image, source)
    elif hasattr(image, "mode") and hasattr(image, "size"):  # a PIL image
        gray = to_gray(image, source)
    else:
        raise PipelineError(f"{source}: expected a file path, an Upload, a PIL image or an array")
    return Prediction(source, digit28=to_mnist(gray, source))
