"""The collected store as data for the pipeline: its digits, their labels, and their part.

Each digit belongs to the train or the test part by a hash of its file's bytes alone, never by
its place in a listing: a digit added later cannot move an earlier one from one part to the
other, so a test digit is never trained on in a later run.

A stored digit is already the serving normaliser's output: the 28x28 the model saw when the
service (or the import command) read the upload. It is used as it is stored. Normalising it again
would train and score on another image than the one served: the normaliser is not idempotent
(re-normalised, a fine-penned writer's digits lost ink: benchmarks/collected.py's writer).
"""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.collect.store import LABELS
from pipeline.core import artifacts, paths
from pipeline.core.datasets import IMAGE_SHAPE
from pipeline.core.errors import DataError
from pipeline.predict.images import load_gray_bytes

PARTS = ("train", "test")
IMPORT_HINT = "add images with python -m pipeline.collect ROOT, or the service's --collect"


@dataclass(frozen=True)
class Digit:
    path: Path  # under the store's root: <label>/<name>.png
    label: int
    sha256: str  # of the file's bytes
    content: bytes = field(repr=False)  # the file, read once for its hash and its pixels


def recorded(lock: Path, root: Path) -> int:
    """How many files dvc.lock records in the store `root` (0 without a lock or a record of it)."""
    try:
        text = Path(lock).read_text()
    except FileNotFoundError:
        return 0
    entry = artifacts.lock_entry(text, root, str(lock))
    return entry[1].get("nfiles", 0) if entry else 0


def ensure(root: Path, lock: Path = paths.DVC_LOCK) -> None:
    """Make the empty store a fresh clone lacks; DataError if dvc.lock says it holds digits.

    DVC keeps the store in its cache and remote, not in git: a clone has it after `dvc pull`.
    Starting it empty there would record an empty store in dvc.lock and lose every digit.
    """
    if Path(root).exists():
        return
    count = recorded(lock, root)
    if count:
        raise DataError(f"{root}: missing, and {lock} records {count:,} collected digits in it: run `dvc pull {root}`")
    Path(root).mkdir(parents=True)


def digits(root: Path) -> list[Digit]:
    """Every digit in `root`/<label>/*.png, in label and name order; DataError naming anything else.

    Hidden files (a writer's `.*.tmp` left by a killed process) are no digit and are skipped, as
    the store skips them when counting and .dvcignore does when tracking.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no collected store (expected a folder, empty or of <label>/<sha256>.png)")
    found = []
    for entry in sorted(visible(root)):
        if not entry.is_dir() or entry.name not in LABELS:
            raise DataError(f"{entry}: expected only folders named 0 to 9 in {root}; {IMPORT_HINT}")
        for file in sorted(visible(entry)):
            if not file.is_file() or file.suffix != ".png":
                raise DataError(f"{file}: expected only .png digits in {entry}; {IMPORT_HINT}")
            content = file.read_bytes()
            found.append(Digit(file.relative_to(root), int(entry.name), hashlib.sha256(content).hexdigest(), content))
    return found


def visible(folder: Path) -> list[Path]:
    return [entry for entry in folder.iterdir() if not entry.name.startswith(".")]


def part(sha256: str, test_fraction: float) -> str:
    """ "test" for a share `test_fraction` of all hashes, else "train": the first 64 bits as a fraction."""
    return "test" if int(sha256[:16], 16) / 2**64 < test_fraction else "train"


def split(found: list[Digit], test_fraction: float) -> dict[str, list[Digit]]:
    """The digits of each part, in their listing order."""
    parts: dict[str, list[Digit]] = {name: [] for name in PARTS}
    for digit in found:
        parts[part(digit.sha256, test_fraction)].append(digit)
    return parts


def arrays(root: Path, found: list[Digit]) -> tuple[np.ndarray, np.ndarray]:
    """The digits as a prepared split has them: uint8 (N, 28, 28) as stored, and uint8 labels.

    Each file goes through the decoder's checks (a hand-placed file is untrusted too); one that is
    not a 28x28 grayscale image stops the stage with a line naming it: the store holds what the
    service and the import command wrote, and a picture of any other shape is for the import.
    """
    images = np.zeros((len(found), *IMAGE_SHAPE), np.uint8)
    for index, digit in enumerate(found):
        path = Path(root) / digit.path
        gray = load_gray_bytes(digit.content, path)
        if gray.shape != IMAGE_SHAPE:
            rows, cols = IMAGE_SHAPE
            raise DataError(
                f"{path}: {gray.shape[1]}x{gray.shape[0]} pixels, expected a stored {cols}x{rows} digit; {IMPORT_HINT}"
            )
        images[index] = np.rint(gray * 255).astype(np.uint8)
    return images, np.array([digit.label for digit in found], np.uint8)
