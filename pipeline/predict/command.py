"""The command line: predict the digit in each image.

    python -m pipeline.predict IMAGE_OR_DIR... [--model PATH] [--top K] [--json]
                               [--save-preprocessed DIR]

The model is the exported LiteRT one when there is one (a fast start: no TensorFlow import),
else the Keras one; `--model` takes either kind of file. Every input is brought to MNIST's form
first (see `pipeline.predict.normalise`). Inputs are read, normalised and classified in chunks,
so any number of images runs in bounded memory. A bad input costs one line naming it; the
others are still classified, and the exit code says that one failed. Results and errors come
in the order of the arguments. `--save-preprocessed DIR` writes `DIR/<stem>-<hash>.28x28.png`
for each input, named from that input's own path, and says on its line which file holds it; it
refuses up front, writing nothing, if any of those files exists: it never overwrites an input or
anything else.
"""

import argparse
import hashlib
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.core import cli, paths
from pipeline.core.artifacts import atomic_path, output_folder
from pipeline.core.datasets import NUM_CLASSES
from pipeline.core.errors import DataError, PipelineError
from pipeline.predict.images import SUFFIXES, image_files
from pipeline.predict.predictor import Prediction, Predictor, one_line

UNSURE = 0.8  # below this confidence the runner-up is shown too
# --save-preprocessed names: `pen-4.png` -> `pen-4-<hash>.28x28.png`, never the input's own name.
SAVED_SUFFIX = ".28x28.png"
# Hex digits of the hash of a source's path in its saved name: 48 bits, so that a million inputs
# share one with odds of about 2 in a million (and plan_outputs refuses, never overwrites, if so).
NAME_HASH = 12
STEM_CHARS = 64  # of the input's stem kept in the name, for a reader: the hash tells inputs apart


def expand(inputs: list[str | Path]) -> list[Path | Prediction]:
    """The inputs in the order given: a file as itself, a directory as the images in it, and an
    error (a Prediction) in its place for an empty or unreadable directory."""
    expanded: list[Path | Prediction] = []
    for name in inputs:
        path = Path(name)
        if not os.path.isdir(path):  # unlike Path.is_dir, False for a name too long, not an error
            expanded.append(path)
            continue
        try:
            found = image_files(path)
        except OSError as error:  # a directory we may not read
            problem = f"{path}: cannot list this directory ({error.strerror or error})"
            expanded.append(Prediction(str(path), error=problem))
            continue
        expanded.extend(found)
        if not found:
            looked_for = ", ".join(SUFFIXES)
            expanded.append(Prediction(str(path), error=f"{path}: no images in this directory ({looked_for})"))
    return expanded


def describe(prediction: Prediction, top: int) -> str:
    """One human-readable line: path, digit, confidence, and the runner-up when unsure."""
    ranked = prediction.ranked
    shown = max(top, 2 if prediction.confidence < UNSURE else 1)
    guesses = ", or ".join(f"{digit} ({p:.1%})" for digit, p in ranked[:shown])
    return f"{prediction.source}: {guesses}"


def as_json(prediction: Prediction, top: int, saved: Path | None = None) -> str:
    """The `--json` line: `Prediction.record` as JSON (never NaN), and `saved`, the 28x28 file, if any."""
    record = prediction.record(top)
    if saved is not None:
        record["saved"] = str(saved)
    return json.dumps(record, allow_nan=False)


def output_name(file: Path) -> str:
    """The --save-preprocessed name of `file`, from its own path alone: `<stem>-<hash>.28x28.png`.

    Numbering clashing stems in the order given made `a b.png` and `a-b.png` take each other's
    names when given the other way round. The hash of the absolute path tells apart what the stem
    cannot (`a b` and `a-b`, `x.png` and `x.jpg`, two folders' `x.png`, `X` and `x` on a
    case-insensitive disk) and gives one file the same name however it is spelled or ordered.
    """
    stem = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "-" for c in file.stem)
    digest = hashlib.sha256(os.path.abspath(file).encode("utf-8", "surrogateescape")).hexdigest()[:NAME_HASH]
    return f"{stem[:STEM_CHARS] or 'image'}-{digest}{SAVED_SUFFIX}"


def output_names(files: list[Path]) -> list[str]:
    """`output_name` of each input, in order."""
    return [output_name(file) for file in files]


def plan_outputs(files: list[Path], directory: Path) -> list[Path]:
    """The path each input's 28x28 image will be saved to; DataError if any exists already, or if
    two different inputs would share one (a hash collision: refused, never overwritten).

    Checked before any work, so a clash costs one line and nothing is written: whatever is in
    the folder (the inputs themselves, or an earlier run's output) is never overwritten.
    """
    directory = output_folder(directory)
    planned = [directory / name for name in output_names(files)]
    sources: dict[str, str] = {}  # lower case: A.png and a.png are one file on macOS and Windows
    for file, path in zip(files, planned):
        source = sources.setdefault(path.name.lower(), os.path.abspath(file))
        if source != os.path.abspath(file):
            raise DataError(f"{path}: the name of both {source} and {file}; nothing was done: save them apart")
    existing = list(dict.fromkeys(path for path in planned if os.path.lexists(path)))
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
    # type=cli.path_argument: an empty argument is an error, not the current directory
    inputs_help = "image files, or directories of images"
    parser.add_argument("inputs", nargs="+", type=cli.path_argument, metavar="IMAGE_OR_DIR", help=inputs_help)
    model_help = (
        f"a .tflite (LiteRT) or .keras model (default: {paths.LITERT_FLOAT32} if the export stage "
        f"has made it, else {paths.MODEL})"
    )
    # No default here: Predictor.from_path(None) chooses, so the command and the API choose alike.
    parser.add_argument("--model", type=cli.path_argument, metavar="PATH", help=model_help)
    parser.add_argument("--top", type=int, default=1, metavar="K", help="show the K most likely digits")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    saved_help = f"write the 28x28 image the model saw as DIR/<name>-<hash>{SAVED_SUFFIX}; never overwrites"
    parser.add_argument("--save-preprocessed", type=cli.path_argument, metavar="DIR", help=saved_help)
    args = parser.parse_args(argv)
    if not 1 <= args.top <= NUM_CLASSES:
        parser.error(f"--top must be between 1 and {NUM_CLASSES}, got {args.top}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Classify every input; return 1 if any input (or the model) failed, else 0."""
    args = parse_args(argv)
    entries = expand(args.inputs)
    files = [entry for entry in entries if isinstance(entry, Path)]
    # A clash or a bad model stops everything (cli.run prints the one line); one bad input does not.
    targets = plan_outputs(files, args.save_preprocessed) if args.save_preprocessed else [None] * len(files)
    predictor = Predictor.from_path(args.model)
    # One chunk at a time is read, printed and dropped, whatever the number of files.
    answers = zip((p for chunk in predictor.stream(files) for p in chunk), targets)
    saved: set[Path] = set()  # a file given twice is saved once
    failed = False
    for entry in entries:  # a folder's error in its place among the answers
        prediction, target = (entry, None) if isinstance(entry, Prediction) else next(answers)
        problem = None
        if target is not None and prediction.error is None and target not in saved:
            problem = save(prediction, target)
            if problem is None:
                saved.add(target)
        failed |= report(prediction, args, target if target in saved else None)
        if problem:  # after its input's answer, which stands
            print(f"error: {problem}", file=sys.stderr, flush=True)
            failed = True
    return 1 if failed else 0


def report(prediction: Prediction, args: argparse.Namespace, saved: Path | None = None) -> bool:
    """Print one input's line (stdout, or stderr for an error), with the file its 28x28 went to;
    True if it is an error. Flushed: stdout and stderr, read together, must keep the order."""
    if args.json:
        print(as_json(prediction, args.top, saved), flush=True)
    elif prediction.error:
        print(f"error: {prediction.error}", file=sys.stderr, flush=True)
    else:
        print(describe(prediction, args.top) + (f"; saved as {saved}" if saved else ""), flush=True)
    return prediction.error is not None


def save(prediction: Prediction, path: Path) -> str | None:
    """`save_preprocessed`; None if saved, else the one line that says why not."""
    try:
        save_preprocessed(prediction, path)
    except PipelineError as error:
        return str(error)
    except Exception as error:  # noqa: BLE001 -- one input's bug must not lose the others
        return f"{path}: could not save ({one_line(error)})"
    return None
