"""params.yaml validation: every problem is a ConfigError naming the dotted key, raised before
anything heavy is imported, and a stage reports it as one line."""

import dataclasses
import io
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from dvc.utils.serialize import parse_yaml as dvc_parse_yaml
from ruamel.yaml import YAML

from pipeline.core import config
from pipeline.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
REAL_TEXT = (ROOT / "params.yaml").read_text()
DELETE = object()  # marks a key to remove in `changed`


def changed(changes: dict[str, object]) -> str:
    """The real params.yaml with dotted keys set (or deleted), as YAML 1.2 text (ruamel.yaml, as
    DVC): a 1.1 writer such as PyYAML leaves the string '1e3' unquoted, which reads back as a number."""
    params = YAML(typ="safe").load(REAL_TEXT)
    for dotted, value in changes.items():
        section, _, key = dotted.rpartition(".")
        mapping = params[section] if section else params
        if value is DELETE:
            del mapping[key]
        else:
            mapping[key] = value
    text = io.StringIO()
    YAML(typ="safe").dump(params, text)
    return text.getvalue()


def edited(key: str, value: str) -> str:
    """The real params.yaml with `key: value` written literally in place of the key's line, as a
    user or `dvc exp run -S` leaves it."""
    lines = REAL_TEXT.splitlines()
    index = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{key}:"))
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
    lines[index] = f"{indent}{key}: {value}"
    return "\n".join(lines) + "\n"


def int_keys(cls: type = config.Params, prefix: str = "") -> list[str]:
    """Every integer param's dotted key, found from the dataclasses: a new one is checked too."""
    keys = []
    for name, kind in typing.get_type_hints(cls).items():
        if dataclasses.is_dataclass(kind):
            keys += int_keys(kind, f"{prefix}{name}.")
        elif kind is int:
            keys.append(prefix + name)
    return keys


def error_for(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        config.parse(text)
    return str(caught.value)


def test_real_params_load():
    params = config.load(ROOT / "params.yaml")
    assert isinstance(params.seed, int)
    assert params.train.model in config.MODELS
    assert isinstance(params.train.epochs, int) and params.train.epochs >= 1
    assert isinstance(params.train.learning_rate, float)
    assert 0 < params.preprocess.val_fraction < 1
    assert params == config.parse(REAL_TEXT)


def test_load_reads_params_yaml_from_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "params.yaml").write_text(changed({"train.epochs": 3}))
    monkeypatch.chdir(tmp_path)
    assert config.load().train.epochs == 3


def test_load_of_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path / "nope.yaml")


def test_params_are_frozen():
    params = config.parse(REAL_TEXT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.train.epochs = 3


def test_unknown_top_level_key():
    message = error_for(changed({"sed": 1}))
    assert "unknown key sed" in message


def test_unknown_key_in_a_section():
    message = error_for(changed({"train.epoch": 3}))
    assert "unknown key train.epoch " in message
    assert "train.epochs" in message  # the known keys are listed


@pytest.mark.parametrize("key", ["train.batch_size", "seed", "plot", "fetch.source"])
def test_missing_key(key):
    assert f"missing key {key}" in error_for(changed({key: DELETE}))


@pytest.mark.parametrize(
    "key, value",
    [
        ("train.epochs", "ten"),
        ("train.epochs", True),  # bool is an int in Python, not in params.yaml
        ("train.epochs", 2.0),
        ("seed", 1.5),
        ("train.learning_rate", "fast"),
        ("train.learning_rate", False),
        ("train.warmup", "10%"),
        ("train.label_smoothing", True),
        ("train.ensemble", 2.0),
        ("train.ensemble", "three"),
        ("fetch.source", 3),
        ("train.model", None),
        ("train.augment_stroke", "thick"),
        ("train.augment_stroke", True),
        ("train.augment_elastic", [2]),
        ("train.augment_elastic", False),
        ("collected.repeat", 2.5),
        ("collected.repeat", "10"),
        ("collected.test_fraction", "a fifth"),
    ],
)
def test_wrong_type(key, value):
    message = error_for(changed({key: value}))
    assert f"{key}: expected" in message


@pytest.mark.parametrize(
    "key, value",
    [
        ("train.epochs", -1),
        ("train.epochs", 0),
        ("train.batch_size", 0),
        ("preprocess.val_fraction", 0),
        ("preprocess.val_fraction", 1),
        ("preprocess.val_fraction", 1.5),
        ("train.model", "resnet"),
        ("train.learning_rate", 0),
        ("seed", -1),
        ("seed", 2**32),
        ("train.epochs", 1001),
        ("train.batch_size", 60_001),  # more than MNIST's training set
        ("plot.samples", 0),
        ("plot.misclassified", 101),
        ("fetch.source", "  "),
        ("train.warmup", 1),  # all warm-up and no training
        ("train.warmup", -0.1),
        ("train.label_smoothing", 1),  # every target the same: nothing left to learn
        ("train.label_smoothing", -0.5),
        ("train.ensemble", 0),
        ("train.ensemble", 11),
        ("train.augment_stroke", -1),
        ("train.augment_stroke", 4.5),  # wider than twice MNIST's pen, or no stroke left
        ("train.augment_stroke", 1e9),
        ("train.augment_elastic", -0.5),
        ("train.augment_elastic", 5),
        ("train.augment_elastic", 10**6),
        ("collected.test_fraction", -0.1),
        ("collected.test_fraction", 1.5),
        ("collected.repeat", -1),
        ("collected.repeat", 101),  # one hand outweighing a thousand MNIST digits of its class
    ],
)
def test_out_of_range(key, value):
    message = error_for(changed({key: value}))
    assert f"{key}: expected" in message
    assert repr(value) in message


@pytest.mark.parametrize(
    "key, value",
    [
        ("train.epochs", 1),
        ("train.epochs", 1000),
        ("train.batch_size", 60_000),
        ("preprocess.val_fraction", 0.5),
        ("train.learning_rate", 1),
        ("seed", 0),
        ("seed", 2**32 - 1),
        ("plot.misclassified", 0),
        ("train.warmup", 0.0),
        ("train.warmup", 0.99),
        ("train.label_smoothing", 0.0),
        ("train.label_smoothing", 0.5),
        ("train.ensemble", 1),
        ("train.ensemble", 10),
        ("train.augment_stroke", 0),
        ("train.augment_stroke", 4),
        ("train.augment_elastic", 0.0),
        ("train.augment_elastic", 4),
        ("collected.test_fraction", 0),
        ("collected.test_fraction", 1),
        ("collected.repeat", 0),
        ("collected.repeat", 100),
    ],
)
def test_boundary_values_are_accepted(key, value):
    params = config.parse(changed({key: value}))
    section, _, name = key.rpartition(".")
    assert getattr(getattr(params, section) if section else params, name) == value


@pytest.mark.parametrize("key", ["train.augment_stroke", "train.augment_elastic"])
@pytest.mark.parametrize(
    "value, expected",
    [
        (-1, "a number of pixels in [0, 4], got -1.0"),
        (28, "a number of pixels in [0, 4], got 28.0"),
        ("2px", "a number, got str '2px'"),
    ],
)
def test_a_bad_stroke_or_elastic_limit_is_one_line_naming_its_key(key, value, expected):
    assert error_for(changed({key: value})) == f"params.yaml: {key}: expected {expected}"


def test_integer_learning_rate_becomes_a_float():
    params = config.parse(changed({"train.learning_rate": 1}))
    assert type(params.train.learning_rate) is float


@pytest.mark.parametrize("key", int_keys())
def test_every_integer_param_has_an_upper_bound(key):
    huge = 2**63  # past int64: TensorFlow dies on it with a traceback
    message = error_for(changed({key: huge}))
    assert f"{key}: expected an integer in [" in message and repr(huge) in message
    assert "\n" not in message


def test_unquoted_exponent_float_is_accepted():
    # People write 1e-3 with no dot: YAML 1.2 reads a number, as DVC does (YAML 1.1 read text).
    text = REAL_TEXT.replace("learning_rate:", "learning_rate: 1e-3  #", 1)
    assert config.parse(text).train.learning_rate == 0.001


def test_quoted_number_is_text_not_a_number():
    # DVC reads '1e-3' as text: the stage must not train on a value `dvc params diff` shows as one.
    message = error_for(edited("learning_rate", "'1e-3'"))
    assert message == "params.yaml: train.learning_rate: expected a number, got str '1e-3'"


# Scalars that YAML 1.1 (PyYAML) reads otherwise than YAML 1.2 (ruamel.yaml, as DVC uses it), and
# some both read alike. A quoted one is text to both.
TRICKY_SCALARS = [
    "off",
    "on",
    "yes",
    "no",
    "y",
    "True",
    "010",
    "0o10",
    "0x10",
    "0b10",
    "1e-3",
    "1e3",
    "1_000",
    ".5",
    "1:30",
    "~",
    "null",
    "",
    "2024-01-02",
    "2024-01-02 10:00:00",
    ".inf",
    "+1",
    "'1e-3'",
    "'off'",
    "[off, 010]",
]


@pytest.mark.parametrize("scalar", TRICKY_SCALARS)
def test_params_yaml_is_read_as_dvc_reads_it(scalar):
    text = f"train:\n  value: {scalar}\n"
    # repr: equality alone takes 10 for 10.0 and True for 1
    assert repr(config.parse_yaml(text, "params.yaml")) == repr(dvc_parse_yaml(text, "params.yaml"))


def test_real_params_yaml_is_read_as_dvc_reads_it():
    assert repr(config.parse_yaml(REAL_TEXT, "params.yaml")) == repr(dvc_parse_yaml(REAL_TEXT, "params.yaml"))


def test_off_written_by_dvc_exp_run_is_the_string_off():
    # `dvc exp run -S train.distribute=off` writes it unquoted; YAML 1.1 reads that as false.
    assert config.parse(edited("distribute", "off")).train.distribute == "off"


def test_leading_zero_integer_is_the_decimal_number_dvc_shows():
    text = edited("epochs", "010")  # YAML 1.1 reads an octal 8
    assert config.parse(text).train.epochs == 10 == dvc_parse_yaml(text, "params.yaml")["train"]["epochs"]


def test_overrides_in_tests_and_benchmarks_are_read_and_written_as_dvc_does(tmp_path):
    # `benchmarks/seeds.py -S train.distribute=off` and the end-to-end tests' set_params: a YAML 1.1
    # round trip turned `off` into false and 010 into 8, so they ran a different recipe.
    from benchmarks.common import parse_overrides
    from testkit.repos import set_params

    overrides = parse_overrides(["train.distribute=off", "train.epochs=010", "train.learning_rate=1e-3"])
    assert overrides == {"train.distribute": "off", "train.epochs": 10, "train.learning_rate": 0.001}
    (tmp_path / "params.yaml").write_text(REAL_TEXT)
    set_params(tmp_path, **overrides)
    train = config.load(tmp_path / "params.yaml").train
    assert (train.distribute, train.epochs, train.learning_rate) == ("off", 10, 0.001)
    assert "# drives the split" in (tmp_path / "params.yaml").read_text()  # comments kept, as DVC keeps them


@pytest.mark.parametrize("word", ["yes", "no", "on", "off"])
def test_yes_and_no_are_text_not_true_or_false(word):
    message = error_for(edited("augment", word))
    assert message == f"params.yaml: train.augment: expected true or false, got str {word!r}"


def test_duplicate_keys_are_refused_naming_the_key_and_line():
    lines = REAL_TEXT.splitlines()
    after = next(i for i, line in enumerate(lines) if line.strip().startswith("batch_size:"))
    nested = "\n".join([*lines[: after + 1], "  epochs: 8", *lines[after + 1 :]]) + "\n"
    message = error_for(nested)  # as a stage run directly sees it; `dvc repro` refuses it too
    assert f'at line {after + 2}, column 3: found duplicate key "epochs" with value "8"' in message
    assert "\n" not in message
    top_level = REAL_TEXT + "seed: 1\n"
    message = error_for(top_level)
    assert f'at line {len(lines) + 1}, column 1: found duplicate key "seed"' in message
    assert "\n" not in message


def test_numeric_string_is_not_an_integer():
    assert "train.epochs: expected an integer" in error_for(changed({"train.epochs": "1e3"}))


def test_invalid_yaml_names_the_line():
    lines = REAL_TEXT.splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.strip().startswith("epochs:"))
    lines[number - 1] = "  epochs: 15: oops"
    message = error_for("\n".join(lines) + "\n")
    assert "not valid YAML" in message
    assert f"line {number}," in message


def test_control_character_is_one_line():
    # the one error ruamel.yaml gives no line for, and whose message spans two
    message = error_for("seed: 4\x002\n")
    assert message == "params.yaml: not valid YAML: unacceptable character #x0000: special characters are not allowed"


def test_section_that_is_not_a_mapping():
    assert "train: expected a mapping" in error_for(changed({"train": 5}))


def test_top_level_that_is_not_a_mapping():
    assert "top level: expected a mapping" in error_for("- seed\n- 42\n")
    assert "top level: expected a mapping, got nothing" in error_for("")


def bad_params_dir(tmp_path: Path, changes: dict[str, object] | None = None) -> Path:
    (tmp_path / "params.yaml").write_text(changed(changes or {"train.epochs": -1}))
    return tmp_path


def python_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize("key, value", [("train.epochs", -1), ("train.batch_size", 2**63)])
def test_train_stage_reports_a_bad_param_in_one_line(tmp_path, key, value):
    result = subprocess.run(
        [sys.executable, "-m", "stages.train"],
        cwd=bad_params_dir(tmp_path, {key: value}),
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr
    assert f"{key}: expected" in result.stderr
    assert "Traceback" not in result.stderr


CHECK_NO_TENSORFLOW = """
import sys
import stages.train
try:
    stages.train.main()
except (SystemExit, Exception) as error:
    print(type(error).__name__)
print("tensorflow" in sys.modules)
"""


def test_tensorflow_is_not_imported_before_params_are_validated(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", CHECK_NO_TENSORFLOW],
        cwd=bad_params_dir(tmp_path),
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ConfigError", "False"]
