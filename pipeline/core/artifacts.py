"""Reading and writing the pipeline's files: atomically, and byte-stable for the same content.

DVC identifies an output by the MD5 of its bytes, so every writer here gives the same bytes for
the same content (no timestamps), and writes to a temporary file renamed into place only when
complete: a failed or killed stage never leaves a file that looks finished.
"""

import contextlib
import csv
import glob
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core import datasets, paths
from pipeline.core.config import parse_yaml
from pipeline.core.errors import DataError

# Columns of metrics/learning_curve.csv, one row per epoch.
LEARNING_CURVE_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")


def restore_hint(path: Path) -> str:
    """How to get back a stage output that is damaged or gone; "" for a file that is no output.

    git holds the outputs in paths.GIT_TRACKED (`dvc checkout` skips them) and DVC's cache the
    rest. --force: DVC will not overwrite a modified file without it, and a damaged file is one.
    """
    output = paths.stage_output(path)
    if output is None:
        return ""
    restore = f"git checkout -- {output}" if paths.tracked_by_git(output) else f"dvc checkout --force {output}"
    return f"restore it with `{restore}` or rebuild it with `dvc repro`"


def file_error(path: Path, problem: str) -> DataError:
    """The one line for a file that cannot be read: the path, the problem, and how to restore it."""
    hint = restore_hint(path)
    return DataError(f"{path}: {problem}; {hint}" if hint else f"{path}: {problem}")


def output_folder(directory: Path) -> Path:
    """Create `directory` (and its parents) for writing; DataError if it or a parent is a file.

    Called once before a command writes many files into one folder, so a bad folder costs one
    line, not one per file.
    """
    directory = Path(directory)
    for folder in (directory, *directory.parents):
        if folder.exists() and not folder.is_dir():
            raise DataError(f"{folder}: is a file, not a folder")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"{directory}: cannot create the folder: {error.strerror or error}") from None
    return directory


@contextlib.contextmanager
def atomic_path(path: Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the block succeeds.

    With `overwrite=False` an existing `path` is never replaced: FileExistsError instead.
    """
    path = Path(path)
    output_folder(path.parent)
    try:
        remove_stale_temporaries(path)
        handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(handle)
    except OSError as error:
        raise DataError(f"{path}: cannot write: {error.strerror}") from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes files private; outputs are ordinary files
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    except FileExistsError:
        raise  # only without overwrite: the caller says what it was about to write
    except OSError as error:
        raise DataError(f"{path}: cannot write: {error.strerror or error}") from None
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """Yield a scratch folder beside `path`; it replaces `path` only if the block succeeds.

    The folder form of `atomic_path`, for outputs that are folders (a SavedModel). A killed
    writer's scratch folder is removed by the next write of the same output.
    """
    path = Path(path)
    output_folder(path.parent)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    try:
        scratch = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    except OSError as error:
        raise DataError(f"{path}: cannot write: {error.strerror}") from None
    try:
        yield scratch
        os.chmod(scratch, 0o755)  # mkdtemp makes folders private; outputs are ordinary folders
        shutil.rmtree(path, ignore_errors=True)  # a folder cannot be renamed over a full one
        os.replace(scratch, path)
    except OSError as error:
        raise DataError(f"{path}: cannot write: {error.strerror or error}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _link_new(tmp: Path, path: Path) -> None:
    """Give the complete file `tmp` the name `path`; FileExistsError if that exists already."""
    try:
        os.link(tmp, path)  # a rename would replace an existing `path`; a link refuses to
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links (FAT, some shares): create exclusively
        with open(path, "xb") as out:
            out.write(tmp.read_bytes())


def remove_stale_temporaries(path: Path) -> None:
    """Delete temporary files a killed writer of `path` left behind (SIGKILL skips `finally`).

    Each output has one writer at a time (DVC locks the repo while a stage runs), so a temporary
    file of the same output found before writing is an earlier run's. Until then it is harmless:
    git ignores `.*.tmp`, and DVC tracks only the final name.
    """
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)


def write_bytes(path: Path, raw: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(raw)


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Uncompressed .npz: fast to read, and numpy writes it byte-stably."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes(path, buffer.getvalue())


def load_arrays(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    return datasets.read_npz(path, keys, hint=restore_hint(path))


def save_split(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """One prepared split: uint8 pixels (N, 28, 28), as MNIST has them, and N labels."""
    save_arrays(path, {"images": images, "labels": labels})


def load_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A prepared split's images, scaled to float32 in [0, 1], and its labels."""
    data = load_arrays(path, ("images", "labels"))
    images, labels = data["images"], data["labels"]
    if images.dtype != np.uint8 or images.shape[1:] != datasets.IMAGE_SHAPE or len(images) != len(labels):
        rows, cols = datasets.IMAGE_SHAPE
        expected = f"expected uint8 images (N, {rows}, {cols}) and N labels"
        raise file_error(path, f"{expected}, got {images.dtype} {images.shape} and {labels.shape}")
    return datasets.scale(images), labels


def lock_entry(text: str | None, path: Path, source: str) -> tuple[str, dict] | None:
    """(the stage, its dvc.lock entry) of the output at `path` in dvc.lock's `text`; None if the
    lock (None: there is none) records no such output. ConfigError if `text` is not YAML."""
    stages = (parse_yaml(text or "", source) or {}) if text is not None else {}
    stages = stages.get("stages") if isinstance(stages, dict) else None
    for stage, locked in (stages if isinstance(stages, dict) else {}).items():
        outs = locked.get("outs") if isinstance(locked, dict) else None
        for out in outs if isinstance(outs, list) else []:
            if isinstance(out, dict) and out.get("path") == Path(path).as_posix():
                return stage, out
    return None


def save_json(path: Path, obj: Any) -> None:
    write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def load_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise file_error(path, f"cannot read JSON ({error})") from None


def save_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes(path, buffer.getvalue().encode())


def load_csv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise file_error(path, f"missing columns {', '.join(missing)}")
            return list(reader)
    except OSError as error:
        raise file_error(path, f"cannot read ({error.strerror})") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise file_error(path, f"not a CSV file ({error})") from None


def load_predictions(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """metrics/predictions.csv as arrays: actual digit, predicted digit, confidence."""
    rows = load_csv(path, ("actual", "predicted", "confidence"))
    try:
        return (
            np.array([int(row["actual"]) for row in rows]),
            np.array([int(row["predicted"]) for row in rows]),
            np.array([float(row["confidence"]) for row in rows]),
        )
    except (TypeError, ValueError) as error:
        raise file_error(path, f"not a number ({error})") from None


def save_learning_curve(path: Path, curve: list[dict[str, float]]) -> None:
    save_csv(path, curve)


def load_learning_curve(path: Path) -> list[dict[str, float]]:
    rows = load_csv(path, LEARNING_CURVE_COLUMNS)
    if not rows:
        raise file_error(path, "no epochs recorded")
    try:
        return [{key: (int if key == "epoch" else float)(row[key]) for key in LEARNING_CURVE_COLUMNS} for row in rows]
    except (TypeError, ValueError) as error:
        raise file_error(path, f"not a number ({error})") from None
