"""params.yaml loaded into frozen, validated dataclasses.

params.yaml is the only home of hyperparameters: every key is required here and has no default
in code. Loading imports nothing heavy, so a typo stops a stage before TensorFlow starts.
"""
import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline import paths
from pipeline.errors import ConfigError

MODELS = ("mlp", "cnn", "deep_cnn")
SCHEDULES = ("constant", "cosine")
DISTRIBUTE = ("auto", "off")


@dataclass(frozen=True)
class FetchConfig:
    source: str  # auto | url | package | a path to an .npz or a directory of IDX files


@dataclass(frozen=True)
class PreprocessConfig:
    val_fraction: float


@dataclass(frozen=True)
class TrainConfig:
    model: str  # mlp | cnn | deep_cnn
    width: int  # multiplies every layer's units or filters; 1 is the reference size
    epochs: int
    batch_size: int  # the global batch, split across GPUs when there are several
    learning_rate: float  # Adam's initial rate
    schedule: str  # constant | cosine (decays to 0 over the run)
    dropout: float  # rate for the model's dropout layers; 0 removes them
    augment: bool  # random shifts, rotations and zoom of training batches
    augment_shift: float  # largest shift, as a fraction of the image side
    augment_rotation: float  # largest rotation, in degrees
    augment_zoom: float  # largest zoom in or out, as a fraction
    distribute: str  # auto (all GPUs when more than one) | off


@dataclass(frozen=True)
class PlotConfig:
    samples: int
    misclassified: int


@dataclass(frozen=True)
class Params:
    seed: int
    fetch: FetchConfig
    preprocess: PreprocessConfig
    train: TrainConfig
    plot: PlotConfig


# Range checks, by dotted key: (test, what was expected).
CHECKS: dict[str, tuple[typing.Callable[[Any], bool], str]] = {
    "seed": (lambda v: 0 <= v < 2**32, "an integer in [0, 2**32)"),
    "fetch.source": (lambda v: v.strip() != "", "'auto', 'url', 'package' or a path"),
    "preprocess.val_fraction": (lambda v: 0 < v < 1, "a number in (0, 1)"),
    "train.model": (lambda v: v in MODELS, f"one of {', '.join(MODELS)}"),
    "train.width": (lambda v: 1 <= v <= 8, "an integer in [1, 8]"),
    "train.epochs": (lambda v: v >= 1, "an integer >= 1"),
    "train.batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "train.learning_rate": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "train.schedule": (lambda v: v in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
    "train.dropout": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "train.augment_shift": (lambda v: 0 <= v <= 0.5, "a number in [0, 0.5]"),
    "train.augment_rotation": (lambda v: 0 <= v <= 180, "a number of degrees in [0, 180]"),
    "train.augment_zoom": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "train.distribute": (lambda v: v in DISTRIBUTE, f"one of {', '.join(DISTRIBUTE)}"),
    "plot.samples": (lambda v: 1 <= v <= 100, "an integer in [1, 100]"),
    "plot.misclassified": (lambda v: 0 <= v <= 100, "an integer in [0, 100]"),
}


def load(path: Path = paths.PARAMS) -> Params:
    """Read and validate params.yaml; raise ConfigError naming the key on any problem."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    return parse(text, str(path))


def parse(text: str, source: str = "params.yaml") -> Params:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "parse error"
        raise ConfigError(f"{source}: not valid YAML{where}: {problem}") from None
    return _build(Params, raw, "", source)


def _build(cls: type, raw: Any, prefix: str, source: str) -> Any:
    where = prefix.rstrip(".") or "top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {where}: expected a mapping, got {_show(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in raw:
        if key not in fields:
            allowed = ", ".join(prefix + name for name in fields)
            raise ConfigError(f"{source}: unknown key {prefix}{key!s} (known keys: {allowed})")
    values = {}
    for name in fields:
        key = prefix + name
        if name not in raw:
            raise ConfigError(f"{source}: missing key {key}")
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            values[name] = _build(kind, raw[name], key + ".", source)
        else:
            values[name] = _convert(raw[name], kind, key, source)
    return cls(**values)


def _convert(value: Any, kind: type, key: str, source: str) -> Any:
    if kind is float and isinstance(value, str):
        # YAML 1.1 reads `1e-3` as a string, and DVC writes numbers in that form with `-S`.
        try:
            value = float(value)
        except ValueError:
            pass
    ok = {
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
        bool: isinstance(value, bool),
    }[kind]
    if not ok:
        raise ConfigError(f"{source}: {key}: expected {_type_name(kind)}, got {_show(value)}")
    if kind is float:
        value = float(value)
    test, expected = CHECKS.get(key, (lambda v: True, ""))
    if not test(value):
        raise ConfigError(f"{source}: {key}: expected {expected}, got {value!r}")
    return value


def _type_name(kind: type) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}[kind]


def _show(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"
