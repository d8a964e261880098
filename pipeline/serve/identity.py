"""Which model a file is, by its content, and the metrics that measured that content.

A served model is named by its bytes: sha256 for clients, md5 because that is what dvc.lock
records for every stage's deps and outs. metrics/ speaks for a model only where dvc.lock says so:
the stage that wrote the metrics file recorded the model's md5 (as a dep or an out) and the
metrics file's md5, and both are the files' here. Matching by path instead gave the last run's
accuracy to whatever sat at models/..., e.g. an experiment's model after `dvc exp run` and
`git checkout -- metrics/ dvc.lock`. Reads JSON and YAML only: no TensorFlow.
"""

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core import artifacts, config, paths
from pipeline.core.errors import PipelineError

# The metrics files measuring each model file: (model, metrics file, the model's key in it or None
# for the top level). The stage is the one writing the metrics file (paths.STAGE_OUTPUTS).
MEASUREMENTS = (
    (paths.LITERT_FLOAT32, paths.EXPORT_METRICS, "litert_float32"),
    (paths.LITERT_INT8, paths.EXPORT_METRICS, "litert_int8"),
    (paths.MODEL, paths.METRICS, None),
    (paths.LITERT_FLOAT32, paths.FIELD_METRICS, None),  # field scores, no test_accuracy
)
MODEL_FILES = (paths.LITERT_FLOAT32, paths.LITERT_INT8, paths.MODEL)

Stamp = tuple[int, int, int, int]  # (device, inode, size, mtime_ns): changes when a file is replaced or rewritten


@dataclass(frozen=True)
class Content:
    """The hashes of a model file's bytes."""

    sha256: str
    md5: str


def digests(content: bytes) -> Content:
    return Content(hashlib.sha256(content).hexdigest(), hashlib.md5(content).hexdigest())


def stamp(path: Path) -> Stamp | None:
    """What `os.stat` says of the file `path` names (following a link, as DVC's cache links are
    followed), or None if there is none: cheap enough to ask per request."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def producer(output: Path) -> str:
    """The stage writing `output`."""
    return next(stage for stage, outputs in paths.STAGE_OUTPUTS.items() if output in outputs)


def lock_hashes() -> dict[str, dict[str, str]] | None:
    """{stage: {path: md5}} for each stage's deps and outs in dvc.lock; None if there is no
    readable dvc.lock. Parsed again only when the file changes: it takes ~50 ms."""
    return _parsed_lock(stamp(paths.DVC_LOCK))


@functools.lru_cache(maxsize=2)
def _parsed_lock(seen: Stamp | None) -> dict[str, dict[str, str]] | None:
    if seen is None:
        return None
    try:
        stages = config.parse_yaml(paths.DVC_LOCK.read_text(), str(paths.DVC_LOCK))["stages"]
        return {
            name: {
                entry["path"]: entry["md5"]
                for key in ("deps", "outs")
                for entry in stage.get(key, [])
                if "md5" in entry
            }
            for name, stage in stages.items()
        }
    except (OSError, PipelineError, KeyError, TypeError, AttributeError):
        return None  # not a dvc.lock we can read: nothing vouches for any model


def file_md5(path: Path) -> str | None:
    try:
        with open(path, "rb") as file:
            return hashlib.file_digest(file, "md5").hexdigest()
    except OSError:
        return None


def describe(file: str | None, model_format: str, content: Content | None) -> dict[str, Any]:
    """What GET /model says of a loaded model: file, format, hashes, which pipeline output it is,
    the metrics entries that measured it, its test accuracy, and a note saying which case it is."""
    info: dict[str, Any] = {"file": file, "format": model_format, "sha256": None, "md5": None}
    measured, output, note = [], None, "no model file to identify: no accuracy is given"
    if content is not None:
        info.update(sha256=content.sha256, md5=content.md5)
        output, measured, note = matched(content.md5)
    accuracy, source = first_accuracy(measured)
    return {
        **info,
        "pipeline_output": output,
        "test_accuracy": accuracy,
        "metrics": source,
        "measured_by": measured,
        "note": note,
    }


def first_accuracy(entries: list[str]) -> tuple[float | None, str | None]:
    """The first entry's test_accuracy that has one, and that entry; field.json has none."""
    for entry in entries:
        accuracy = test_accuracy(entry)
        if accuracy is not None:
            return accuracy, entry
    return None, None


def matched(md5: str) -> tuple[str | None, list[str], str]:
    """(the pipeline output "stage: path" dvc.lock records with this md5, the metrics entries that
    measured it, a one-line note)."""
    lock = lock_hashes()
    if lock is None:
        return None, [], "no dvc.lock here: nothing says which run made this file, so no accuracy is given"
    model = next((m for m in MODEL_FILES if lock.get(producer(m), {}).get(str(m)) == md5), None)
    if model is None:
        return (
            None,
            [],
            (
                f"not the pipeline's last output: dvc.lock records no model file with md5 {md5}, "
                "so metrics/ did not measure it and no accuracy is given"
            ),
        )
    output = f"{producer(model)}: {model}"
    entries = [(metrics, key) for m, metrics, key in MEASUREMENTS if m == model]
    measured = [entry_name(metrics, key) for metrics, key in entries if measures(lock, model, md5, metrics)]
    stray = [str(metrics) for metrics, key in entries if entry_name(metrics, key) not in measured]
    if stray:
        return (
            output,
            measured,
            (
                f"dvc.lock's {model}, but {', '.join(stray)} is not the file dvc.lock records "
                "for it (edited, or another run's): no accuracy from it"
            ),
        )
    return output, measured, f"dvc.lock's {model}, measured by {', '.join(measured)}"


def measures(lock: dict[str, dict[str, str]], model: Path, md5: str, metrics: Path) -> bool:
    """Whether the run dvc.lock records for `metrics`' stage read or wrote this model and wrote the
    metrics file that is here."""
    stage = lock.get(producer(metrics), {})
    here = file_md5(metrics)
    return stage.get(str(model)) == md5 and here is not None and stage.get(str(metrics)) == here


def entry_name(metrics: Path, key: str | None) -> str:
    return f"{metrics}:{key}" if key else str(metrics)


def test_accuracy(entry: str) -> float | None:
    """The test_accuracy of a metrics entry ("file" or "file:key"), None if it holds none."""
    metrics, _, key = entry.partition(":")
    try:
        record = artifacts.load_json(Path(metrics))
        value = (record[key] if key else record)["test_accuracy"]
    except (PipelineError, KeyError, TypeError):
        return None
    return float(value) if config.is_number(value) else None
