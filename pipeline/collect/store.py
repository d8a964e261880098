"""The collected store: digits users corrected, as the server decoded them, under DIR/<label>/.

Each digit is the 28x28 the model saw, written as an 8-bit grayscale PNG named by the sha256 of
its bytes: the server makes every name (nothing a client sends reaches a path), the same digit
is stored once however often it is sent, and a file is written beside its place and linked in,
so it is whole or absent and never replaces another. The store holds at most `max_files`
digits and `max_bytes` bytes, counted on disk under a lock that every process writing there
takes (each worker of the service); past either it refuses more (`Full`).
"""

import contextlib
import fcntl
import hashlib
import io
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.core.datasets import IMAGE_SHAPE, NUM_CLASSES

MAX_FILES = 10_000  # a thousand corrections a digit: far more than a person gives, small on disk
MAX_BYTES = 64 * 1024 * 1024  # a 28x28 PNG is under 1 KB: the count binds first
LABELS = tuple(str(digit) for digit in range(NUM_CLASSES))


class Full(Exception):
    """The store holds its limit of digits or bytes."""


@dataclass(frozen=True)
class Stored:
    path: Path  # relative to the store's root: <label>/<sha256>.png
    created: bool  # False: that digit was already stored under that label


def png_of(digit28: np.ndarray) -> bytes:
    """The 28x28 in [0, 1] as the 8-bit PNG the store keeps: the same digit, the same bytes."""
    pixels = np.clip(np.rint(np.asarray(digit28, np.float32).reshape(IMAGE_SHAPE) * 255), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def label_of(text: str) -> str:
    """`text` if it names a digit 0-9 (one character, nothing else); ValueError naming it otherwise."""
    if text not in LABELS:
        raise ValueError(f"label {text[:20]!r}: expected one digit, 0 to 9")
    return text


class Store:
    """DIR/<label>/<sha256>.png, bounded; safe to call from several threads and processes at once."""

    def __init__(self, root: Path, max_files: int = MAX_FILES, max_bytes: int = MAX_BYTES) -> None:
        self.root, self.max_files, self.max_bytes = Path(root), max_files, max_bytes
        self.lock = threading.Lock()
        self.files, self.bytes = self._count()

    def _count(self) -> tuple[int, int]:
        found = [path for label in LABELS for path in (self.root / label).glob("*.png") if path.is_file()]
        return len(found), sum(path.stat().st_size for path in found)

    def save(self, digit28: np.ndarray, label: str) -> Stored:
        """Store `digit28` under `label` (checked); Full past the limits; OSError if the disk refuses."""
        content = png_of(digit28)
        relative = Path(label_of(label)) / f"{hashlib.sha256(content).hexdigest()}.png"
        path = self.root / relative
        # One writer at a time across this process's threads and every other process (a worker)
        # storing here, so the count checked is the count written to.
        with self.lock, _locked(self.root):
            if path.exists():
                return Stored(relative, created=False)
            self.files, self.bytes = self._count()
            if self.files + 1 > self.max_files or self.bytes + len(content) > self.max_bytes:
                raise Full(f"the collection holds {self.files:,} digits ({self.bytes:,} bytes), its limit")
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_new(path, content)
            self.files, self.bytes = self.files + 1, self.bytes + len(content)
        return Stored(relative, created=True)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """An exclusive flock on the store's folder itself: no lock file inside the data."""
    root.mkdir(parents=True, exist_ok=True)
    handle = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _write_new(path: Path, content: bytes) -> None:
    """`content` at `path`, whole or not at all, and never over a file already there."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)  # FileExistsError rather than replace: the lock makes it not happen
    finally:
        Path(temporary).unlink(missing_ok=True)
