"""The command line: predict the digit in each image.

    python -m pipeline.predict IMAGE_OR_DIR... [--model PATH] [--top K] [--json]
                               [--save-preprocessed DIR]

The model is the exported LiteRT one when there is one (a fast start: no TensorFlow import),
else the Keras one; `--model` takes either kind of file. Every input is brought to MNIST's form
first (see `pipeline.predict.normalise`). Inputs are read, normalised and classified in chunks,
so any number of images runs in bounded memory. A bad input costs one line naming it; the
others are still classified, and the exit code says that one failed. `--save-preprocessed DIR`
writes `DIR/<stem>.28x28.png` for each input, and refuses up front, writing nothing, if any of
those files exists: it never overwrites an input or anything else.
"""
import argparse
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline import paths
from pipeline.datasets import NUM_CLASSES
from pipeline.artifacts import atomic_path, output_folder
from pipeline.errors import DataError, PipelineError
from pipeline.predict.images import SUFFIXES, image_files
from pipeline.predict.predictor import Prediction, Predictor, one_line

UNSURE = 0.8  # below this confidence the runner-up is shown too
# --save-preprocessed names: `pen-4.png` -> `pen-4.28x28.png`, never the input's own name.
SAVED_SUFFIX = ".28x28.png"


def expand(inputs: list[str | Path]) -> tuple[list[Path], list[Prediction]]:
    """Files as given; a directory stands for the images in it. Also: errors for empty or
    unreadable directories."""
    expanded: list[Path] = []
    failed: list[Prediction] = []
    for name in inputs:
        path = Path(name)
        if not os.path.isdir(path):  # unlike Path.is_dir, False for a name too long, not an error
            expanded.append(path)
            continue
        try:
            found = image_files(path)
        except OSError as error:  # a directory we may not read
            problem = f"{path}: cannot list this directory ({error.strerror or error})"
            failed.append(Prediction(str(path), error=problem))
            continue
        expanded.extend(found)
        if not found:
            looked_for = ", ".join(SUFFIXES)
            failed.append(Prediction(str(path), error=f"{path}: no images in this directory ({looked_for})"))
    return expanded, failed


def describe(prediction: Prediction, top: int) -> str:
    """One human-readable line: path, digit, confidence, and the runner-up when unsure."""
    ranked = prediction.ranked
    shown = max(top, 2 if prediction.confidence < UNSURE else 1)
    guesses = ", or ".join(f"{digit} ({p:.1%})" for digit, p in ranked[:shown])
    return f"{prediction.source}: {guesses}"


def as_json(prediction: Prediction, top: int) -> str:
    """The `--json` line: `as_record` as JSON (never NaN)."""
    return json.dumps(as_record(prediction, top), allow_nan=False)


def as_record(prediction: Prediction, top: int) -> dict:
    """path, digit, confidence, probabilities (and the `top` K when K > 1); or path and error."""
    if prediction.error:
        return {"path": prediction.source, "error": prediction.error}
    record = {
        "path": prediction.source,
        "digit": prediction.digit,
        "confidence": round(prediction.confidence, 6),
        "probabilities": [round(float(p), 6) for p in prediction.probabilities],
    }
    if top > 1:
        record["top"] = [{"digit": d, "probability": round(p, 6)} for d, p in prediction.ranked[:top]]
    return record


def output_names(files: list[Path]) -> list[str]:
    """One distinct file name per input for --save-preprocessed: `<stem>.28x28.png`."""
    used: set[str] = set()  # lower case: A.png and a.png are one file on macOS and Windows
    names = []
    for file in files:
        stem = file.stem.replace(" ", "-") or "image"
        name, count = stem, 1
        while name.lower() in used:  # two inputs with one stem: a.png and a.jpg, or two folders
            name, count = f"{stem}-{count}", count + 1
        used.add(name.lower())
        names.append(name + SAVED_SUFFIX)
    return names


def plan_outputs(files: list[Path], directory: Path) -> list[Path]:
    """The path each input's 28x28 image will be saved to; DataError if any exists already.

    Checked before any work, so a clash costs one line and nothing is written: whatever is in
    the folder (the inputs themselves, or an earlier run's output) is never overwritten.
    """
    directory = output_folder(directory)
    planned = [directory / name for name in output_names(files)]
    existing = [path for path in planned if os.path.lexists(path)]
    if existing:
        others = f" (and {len(existing) - 1} more of the files to save)" if len(existing) > 1 else ""
        raise DataError(
            f"{existing[0]}: already exists{others}; --save-preprocessed never overwrites a file, "
            "so nothing was done: remove them or save into another folder"
        )
    return planned


def save_preprocessed(prediction: Prediction, path: Path) -> None:
    """Write the 28x28 digit the model saw to `path`, a PNG, light on black like MNIST."""
    buffer = io.BytesIO()
    Image.fromarray(np.round(prediction.digit28 * 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
    write_new(path, buffer.getvalue())


def write_new(path: Path, raw: bytes) -> None:
    """Create `path` holding `raw`, complete or not at all, and never over an existing file."""
    try:
        with atomic_path(path, overwrite=False) as tmp:
            tmp.write_bytes(raw)
    except FileExistsError:
        raise DataError(f"{path}: appeared while predicting; not overwriting it") from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.predict", description="Predict the handwritten digit in each image."
    )
    # type=path_argument: an empty argument is an error, not the current directory
    inputs_help = "image files, or directories of images"
    parser.add_argument("inputs", nargs="+", type=path_argument, metavar="IMAGE_OR_DIR", help=inputs_help)
    model_help = (
        f"a .tflite (LiteRT) or .keras model (default: {paths.LITERT_FLOAT32} if the export stage "
        f"has made it, else {paths.MODEL})"
    )
    # No default here: Predictor.from_path(None) chooses, so the command and the API choose alike.
    parser.add_argument("--model", type=path_argument, metavar="PATH", help=model_help)
    parser.add_argument("--top", type=int, default=1, metavar="K", help="show the K most likely digits")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    saved_help = f"write the 28x28 image the model saw as DIR/<name>{SAVED_SUFFIX}; never overwrites"
    parser.add_argument("--save-preprocessed", type=path_argument, metavar="DIR", help=saved_help)
    args = parser.parse_args(argv)
    if not 1 <= args.top <= NUM_CLASSES:
        parser.error(f"--top must be between 1 and {NUM_CLASSES}, got {args.top}")
    return args


def path_argument(text: str) -> Path:
    """A path from the command line; an empty one is a mistake (a variable that expanded to
    nothing?), not the current directory, which is what Path("") means."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path (a variable that expanded to nothing?)")
    return Path(text)


def main(argv: list[str] | None = None) -> int:
    """Classify every input; return 1 if any input (or the model) failed, else 0."""
    args = parse_args(argv)
    files, folder_errors = expand(args.inputs)
    # A clash or a bad model stops everything (cli.run prints the one line); one bad input does not.
    targets = plan_outputs(files, args.save_preprocessed) if args.save_preprocessed else [None] * len(files)
    predictor = Predictor.from_path(args.model)
    failed = False
    for prediction in folder_errors:
        failed |= report(prediction, args)
    planned = iter(targets)  # in the order of `files`, as the predictions come
    # One chunk at a time is printed and dropped, whatever the number of files.
    for chunk in predictor.stream(files):
        for prediction in chunk:
            target = next(planned)
            failed |= report(prediction, args)
            if target is not None and prediction.error is None:
                failed |= not save(prediction, target)
        sys.stdout.flush()
    return 1 if failed else 0


def report(prediction: Prediction, args: argparse.Namespace) -> bool:
    """Print one input's line (stdout, or stderr for an error); True if it is an error."""
    if args.json:
        print(as_json(prediction, args.top))
    elif prediction.error:
        print(f"error: {prediction.error}", file=sys.stderr)
    else:
        print(describe(prediction, args.top))
    return prediction.error is not None


def save(prediction: Prediction, path: Path) -> bool:
    """`save_preprocessed`, reporting a failure as one line; True if saved."""
    try:
        save_preprocessed(prediction, path)
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        return False
    except Exception as error:  # noqa: BLE001 -- one input's bug must not lose the others
        print(f"error: {path}: could not save ({one_line(error)})", file=sys.stderr)
        return False
    return True

