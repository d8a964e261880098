"""The model answering, following its file on disk: `dvc repro`, `dvc checkout` and
`dvc exp apply` replace the file (or relink it to another cache file) under a running service.

Each request asks `ModelHolder.model()`, which stats the file (a few microseconds) and, when its
(device, inode, size, mtime) changed, loads and checks the new file in a worker thread, then
swaps one reference. A request keeps the `Loaded` it got, so requests in flight finish on the old
model. A file that does not load, or loads and answers nonsense, is refused in one log line and
the old model answers on; it is tried once per change, not per request. A file missing for a
moment (DVC removes before it links) changes nothing.
"""

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from starlette.concurrency import run_in_threadpool

from pipeline.core.datasets import IMAGE_SHAPE, NUM_CLASSES
from pipeline.core.errors import DataError, PipelineError, first_line
from pipeline.predict.predictor import LITERT, Predictor, model_format
from pipeline.predict.runners import LiteRTModel
from pipeline.serve import identity


@dataclass(frozen=True)
class Loaded:
    """A model as loaded: the Predictor, the hashes of the bytes it was made from, the file's stamp."""

    predictor: Predictor
    content: identity.Content | None
    stamp: identity.Stamp | None


def first_load(predictor: Predictor) -> Loaded:
    """The model the service starts with, hashed once here."""
    source = Path(predictor.source) if predictor.source else None
    seen = identity.stamp(source) if source is not None else None
    content = identity.digests(source.read_bytes()) if seen is not None else None
    return Loaded(predictor, content, seen)


def load(path: Path, seen: identity.Stamp) -> Loaded:
    """The model in `path` now, checked on a blank digit; PipelineError saying why not."""
    if model_format(path) == LITERT:
        content = path.read_bytes()  # one read: the hashes are of the very bytes that answer
        predictor = Predictor(LiteRTModel(content, str(path)), str(path))
    else:  # Keras reads the file itself
        predictor = Predictor.from_path(path)
        content = path.read_bytes()
    check(predictor, path)
    return Loaded(predictor, identity.digests(content), seen)


def check(predictor: Predictor, path: Path) -> None:
    """DataError unless the model gives ten finite probabilities for a blank digit: a file
    that loads can still hold NaN weights."""
    probabilities = np.asarray(predictor.probabilities(np.zeros((1, *IMAGE_SHAPE), np.float32)))
    if probabilities.shape != (1, NUM_CLASSES) or not np.isfinite(probabilities).all():
        raise DataError(f"{path}: the model gives no ten finite probabilities for a blank digit")


class ModelHolder:
    """The current Loaded, swapped for the file's new content when it changes and loads."""

    def __init__(self, predictor: Predictor) -> None:
        self.current = first_load(predictor)
        self.path = Path(predictor.source) if predictor.source else None
        self.tried = self.current.stamp  # the last stamp loaded or refused: a bad file is tried once
        self.refused: str | None = None  # why the file on disk is not the model answering
        self.lock = asyncio.Lock()  # one load at a time; requests meanwhile wait for its result

    async def model(self) -> Loaded:
        """The model to answer with: the file's new content if it changed and loads, else the current."""
        if self.path is None or identity.stamp(self.path) in (None, self.tried):
            return self.current
        async with self.lock:
            seen = identity.stamp(self.path)  # again: the request before may have loaded it
            if seen is not None and seen != self.tried:
                await run_in_threadpool(self.reload, seen)
                # only now: until the load ends, requests wait for it on the lock, not on the old model
                self.tried = seen
        return self.current

    def reload(self, seen: identity.Stamp) -> None:
        old = self.current
        try:
            new = load(self.path, seen)
        except Exception as error:  # noqa: BLE001 - whatever a bad file makes a loader raise, the old model answers on
            # The new file may be half-written: its next change is tried again.
            self.refused = refusal(self.path, error)
            print(
                f"not serving the new {self.path}: {self.refused}; still serving sha256 {short(old)}",
                file=sys.stderr,
                flush=True,
            )
            return
        self.current, self.refused = new, None  # one reference: a request sees the old model or the new
        print(
            f"now serving {self.path} ({new.predictor.format}, sha256 {short(new)}): the file changed on disk",
            flush=True,
        )


def refusal(path: Path, error: Exception) -> str:
    """The one line saying why a model file was refused: our errors name the file, others do not."""
    if isinstance(error, PipelineError):
        return first_line(error)
    return f"{path}: {type(error).__name__}: {first_line(error)}"


def short(loaded: Loaded) -> str:
    return loaded.content.sha256[:12] if loaded.content else "(no file)"
