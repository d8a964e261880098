"""The networks `train.model` can name, and their files.

Each network is one readable Sequential block. Model files are written byte-stably (same
weights, same bytes, so DVC sees no change) and loaded only in Keras' safe mode.
"""
import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from pipeline import artifacts
from pipeline.config import TrainConfig
from pipeline.errors import DataError
from pipeline.tf import keras

INPUT_SHAPE = (28, 28)
NUM_CLASSES = 10
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def build_model(params: TrainConfig) -> Any:
    """Build (uncompiled) the network named by `params.model`."""
    builders = {"mlp": mlp}
    return builders[params.model](params)


def mlp(params: TrainConfig) -> Any:
    """The notebook's network: 784 -> 128 relu -> 32 relu -> 10 softmax, 104,938 parameters."""
    layers = keras().layers
    return keras().Sequential(
        [
            keras().Input(shape=INPUT_SHAPE),
            layers.Flatten(),  # flattening lives in the model, so inputs stay 28x28 images
            layers.Dense(128, activation="relu"),
            layers.Dense(32, activation="relu"),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="mlp",
    )


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
    artifacts.write_bytes(path, buffer.getvalue())


def load_model(path: Path) -> Any:
    """Load a .keras model in safe mode: a file that would run code on load is refused."""
    if not Path(path).is_file():
        raise DataError(f"{path}: no such model; train one with `dvc repro` or fetch it with `dvc pull`")
    try:
        return keras().saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many types for a bad archive; all mean the same
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DataError(f"{path}: not a loadable Keras model ({first_line}); {artifacts.RESTORE_HINT}") from None
