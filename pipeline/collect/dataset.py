"""The collected store as data for the pipeline: its digits, their labels, and their part.

Each digit belongs to the train or the test part by a hash of its file's bytes alone, never by
its place in a listing: a digit added later cannot move an earlier one from one part to the
other, so a test digit is never trained on in a later run. Digits are read through the decoder
and the normaliser that `predict` and the service use, so training sees what serving sees.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.collect.store import LABELS
from pipeline.core import paths
from pipeline.core.config import parse_yaml
from pipeline.core.datasets import IMAGE_SHAPE
from pipeline.core.errors import DataError
from pipeline.predict.images import load_gray
from pipeline.predict.normalise import to_mnist
from pipeline.predict.predictor import Upload

PARTS = ("train", "test")
IMPORT_HINT = "add images with python -m pipeline.collect ROOT, or the service's --collect"


@dataclass(frozen=True)
class Digit:
    path: Path  # under the store's root: <label>/<name>.png
    label: int
    sha256: str  # of the file's bytes


def recorded(lock: Path, root: Path) -> int:
    """How many files dvc.lock records in the store `root` (0 without a lock or a record of it)."""
    try:
        text = Path(lock).read_text()
    except FileNotFoundError:
        return 0
    stages = (parse_yaml(text, str(lock)) or {}).get("stages", {})
    outs = [out for stage in stages.values() for out in stage.get("outs", [])]
    return sum(out.get("nfiles", 0) for out in outs if out.get("path") == Path(root).as_posix())


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
            sha256 = hashlib.sha256(file.read_bytes()).hexdigest()
            found.append(Digit(file.relative_to(root), int(entry.name), sha256))
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
    """The digits as a prepared split has them: uint8 (N, 28, 28) from the normaliser, uint8 labels.

    A file the decoder or the normaliser refuses stops the stage with its error line: the store
    holds what the service and the import command wrote, so a bad file is someone's mistake.
    """
    images = np.zeros((len(found), *IMAGE_SHAPE), np.uint8)
    for index, digit in enumerate(found):
        normalised = to_mnist(load_gray(Path(root) / digit.path), str(Path(root) / digit.path))
        images[index] = np.clip(np.rint(normalised * 255), 0, 255).astype(np.uint8)
    return images, np.array([digit.label for digit in found], np.uint8)


def uploads(root: Path, found: list[Digit]) -> list[Upload]:
    """The digits' files as the service receives an upload: their bytes, named by their path."""
    return [Upload(str(Path(root) / digit.path), (Path(root) / digit.path).read_bytes()) for digit in found]
