"""Predict the digit in new images: a Python API and the command line that uses it.

    python -m pipeline.predict IMAGE_OR_DIR... [--model PATH] [--top K] [--json]
                               [--save-preprocessed DIR]

Every input is brought to MNIST's form first (see `pipeline.normalise`). Inputs are read,
normalised and classified in chunks, so any number of images runs in bounded memory. A bad input
costs one line naming it; the others are still classified, and the exit code says that one failed.
"""
import argparse
import dataclasses
import io
import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
from PIL import Image

from pipeline import paths
from pipeline.artifacts import write_bytes
from pipeline.errors import PipelineError
from pipeline.images import SUFFIXES, from_array, image_files, load_gray, to_gray
from pipeline.normalise import to_mnist

CHUNK = 256  # images read and classified together
UNSURE = 0.8  # below this confidence the runner-up is shown too


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


class Predictor:
    """A trained model plus MNIST's normalisation: images in, digits out."""

    def __init__(self, model: Any) -> None:
        self.model = model

    @classmethod
    def from_path(cls, path: Path = paths.MODEL) -> "Predictor":
        from pipeline.models import load_model  # imports TensorFlow: only when a model is needed

        return cls(load_model(Path(path)))

    def probabilities(self, digits: np.ndarray) -> np.ndarray:
        """Class probabilities for MNIST-form digits (N x 28 x 28 in [0, 1])."""
        digits = np.asarray(digits, dtype=np.float32).reshape(-1, 28, 28)
        # Calling the model directly: `model.predict` sets up a whole input pipeline per call.
        parts = [self.model(digits[i : i + 1024], training=False) for i in range(0, len(digits), 1024)]
        return np.concatenate([np.asarray(p) for p in parts]) if parts else np.zeros((0, 10), np.float32)

    def predict(self, images: Iterable[Any]) -> list[Prediction]:
        """Predict file paths, PIL images or arrays; a bad input gets a Prediction with `error`."""
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
        prepared = [_prepare(image, index) for index, image in enumerate(images)]
        ready = [p for p in prepared if p.error is None]
        probabilities = self.probabilities(np.stack([p.digit28 for p in ready])) if ready else []
        found = iter(probabilities)
        return [p if p.error else dataclasses.replace(p, probabilities=next(found)) for p in prepared]


def _prepare(image: Any, index: int) -> Prediction:
    source = str(image) if isinstance(image, (str, Path)) else f"<{type(image).__name__} {index}>"
    try:
        if isinstance(image, (str, Path)):
            gray = load_gray(Path(image))
        elif isinstance(image, np.ndarray):
            gray = from_array(image, source)
        elif hasattr(image, "mode") and hasattr(image, "size"):  # a PIL image
            gray = to_gray(image)
        else:
            raise PipelineError(f"{source}: expected a file path, a PIL image or an array")
        return Prediction(source, digit28=to_mnist(gray, source))
    except PipelineError as error:
        return Prediction(source, error=str(error))


def expand(inputs: list[str]) -> tuple[list[Path], list[Prediction]]:
    """Files as given; a directory stands for the images in it. Also: errors for empty ones."""
    expanded: list[Path] = []
    empty: list[Prediction] = []
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            found = image_files(path)
            expanded.extend(found)
            if not found:
                looked_for = ", ".join(SUFFIXES)
                empty.append(Prediction(str(path), error=f"{path}: no images in this directory ({looked_for})"))
        else:
            expanded.append(path)
    return expanded, empty


def describe(prediction: Prediction, top: int) -> str:
    """One human-readable line: path, digit, confidence, and the runner-up when unsure."""
    ranked = prediction.ranked
    shown = max(top, 2 if prediction.confidence < UNSURE else 1)
    guesses = ", or ".join(f"{digit} ({p:.1%})" for digit, p in ranked[:shown])
    return f"{prediction.source}: {guesses}"


def as_json(prediction: Prediction, top: int) -> str:
    if prediction.error:
        return json.dumps({"path": prediction.source, "error": prediction.error})
    record = {
        "path": prediction.source,
        "digit": prediction.digit,
        "confidence": round(prediction.confidence, 6),
        "probabilities": [round(float(p), 6) for p in prediction.probabilities],
    }
    if top > 1:
        record["top"] = [{"digit": d, "probability": round(p, 6)} for d, p in prediction.ranked[:top]]
    return json.dumps(record)


def save_preprocessed(prediction: Prediction, directory: Path, used: set[str]) -> None:
    """Write the 28x28 digit the model saw as `DIR/<input name>.png`."""
    stem = Path(prediction.source).stem.strip("<>").replace(" ", "-") or "image"
    name, count = stem, 1
    while name in used:  # two inputs with one name, from different directories
        name, count = f"{stem}-{count}", count + 1
    used.add(name)
    buffer = io.BytesIO()
    Image.fromarray(np.round(prediction.digit28 * 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
    write_bytes(directory / f"{name}.png", buffer.getvalue())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.predict", description="Predict the handwritten digit in each image."
    )
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files, or directories of images")
    parser.add_argument("--model", type=Path, default=paths.MODEL, help=f"a .keras model (default: {paths.MODEL})")
    parser.add_argument("--top", type=int, default=1, metavar="K", help="show the K most likely digits")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--save-preprocessed", type=Path, metavar="DIR", help="write the 28x28 image the model saw")
    args = parser.parse_args(argv)
    if not 1 <= args.top <= 10:
        parser.error(f"--top must be between 1 and 10, got {args.top}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Classify every input; return 1 if any input (or the model) failed, else 0."""
    args = parse_args(argv)
    try:
        predictor = Predictor.from_path(args.model)
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    files, empty_dirs = expand(args.inputs)
    failed = False
    used_names: set[str] = set()
    # chain, not a list: one chunk at a time is printed and dropped, whatever the number of files
    for chunk in itertools.chain([empty_dirs], predictor.stream(files)):
        for prediction in chunk:
            failed |= prediction.error is not None
            if args.json:
                print(as_json(prediction, args.top))
            elif prediction.error:
                print(f"error: {prediction.error}", file=sys.stderr)
            else:
                print(describe(prediction, args.top))
            if args.save_preprocessed and prediction.error is None:
                try:
                    save_preprocessed(prediction, args.save_preprocessed, used_names)
                except PipelineError as error:
                    print(f"error: {error}", file=sys.stderr)
                    failed = True
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
