"""Reading and writing the pipeline's files: atomically, and byte-stable for the same content.

DVC identifies an output by the MD5 of its bytes, so every writer here gives the same bytes for
the same content (no timestamps), and writes to a temporary file renamed into place only when
complete: a failed or killed stage never leaves a file that looks finished.
"""
import contextlib
import csv
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from pipeline import datasets
from pipeline.errors import DataError

# Columns of metrics/history.csv, one row per epoch.
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")
RESTORE_HINT = "restore it with `dvc checkout` or rebuild it with `dvc repro`"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(handle)
    except OSError as error:
        raise DataError(f"{path}: cannot write: {error.strerror}") from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes files private; outputs are ordinary files
        os.replace(tmp, path)
    except OSError as error:
        raise DataError(f"{path}: cannot write: {error.strerror or error}") from None
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: Path, raw: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(raw)


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Uncompressed .npz: fast to read, and numpy writes it byte-stably."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes(path, buffer.getvalue())


def load_arrays(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    return datasets.read_npz(path, keys, hint=RESTORE_HINT)


def save_split(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    save_arrays(path, {"images": images, "labels": labels})


def load_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = load_arrays(path, ("images", "labels"))
    images, labels = data["images"], data["labels"]
    if len(images) != len(labels) or images.ndim != 3:
        raise DataError(
            f"{path}: expected images (N, 28, 28) and N labels, got {images.shape} and "
            f"{labels.shape}; {RESTORE_HINT}"
        )
    return images, labels


def save_json(path: Path, obj: Any) -> None:
    write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def load_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read JSON ({error}); {RESTORE_HINT}") from None


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
                raise DataError(f"{path}: missing columns {', '.join(missing)}; {RESTORE_HINT}")
            return list(reader)
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror}); {RESTORE_HINT}") from None


def save_model(model: Any, path: Path) -> None:
    """Save a Keras model so that the same weights always give the same bytes.

    Keras stamps `date_saved` into metadata.json and the current time into the zip entry of the
    weights; both are fixed here, and the archive is rewritten in a fixed order.
    """
    with tempfile.TemporaryDirectory() as tmp:
        raw_path = Path(tmp) / "model.keras"
        model.save(raw_path)
        with zipfile.ZipFile(raw_path) as source:
            entries = [(info, source.read(info)) for info in source.infolist()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for info, content in sorted(entries, key=lambda entry: entry[0].filename):
            if info.filename == "metadata.json":
                metadata = json.loads(content)
                metadata.pop("date_saved", None)
                content = json.dumps(metadata, sort_keys=True).encode()
            entry = zipfile.ZipInfo(info.filename, date_time=_ZIP_EPOCH)
            entry.compress_type = info.compress_type
            entry.external_attr = 0o644 << 16
            target.writestr(entry, content)
    write_bytes(path, buffer.getvalue())


def load_model(path: Path) -> Any:
    """Load a .keras model in safe mode: a file that would run code on load is refused."""
    if not Path(path).is_file():
        raise DataError(f"{path}: no such model; train one with `dvc repro` or fetch it with `dvc pull`")
    from pipeline.tf import keras

    try:
        return keras().saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many types for a bad archive; all mean the same
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DataError(f"{path}: not a loadable Keras model ({first_line}); {RESTORE_HINT}") from None


def save_history(path: Path, history: list[dict[str, float]]) -> None:
    save_csv(path, history)


def load_history(path: Path) -> list[dict[str, float]]:
    rows = load_csv(path, HISTORY_COLUMNS)
    try:
        return [
            {key: (int if key == "epoch" else float)(row[key]) for key in HISTORY_COLUMNS}
            for row in rows
        ]
    except (TypeError, ValueError) as error:
        raise DataError(f"{path}: not a number ({error}); {RESTORE_HINT}") from None
