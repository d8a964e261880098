"""params.yaml validation: every problem is a ConfigError naming the dotted key, raised before
anything heavy is imported, and a stage reports it as one line."""
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline import config
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
REAL_TEXT = (ROOT / "params.yaml").read_text()
DELETE = object()  # marks a key to remove in `changed`


def changed(changes: dict[str, object]) -> str:
    """The real params.yaml with dotted keys set (or deleted), as YAML text."""
    params = yaml.safe_load(REAL_TEXT)
    for dotted, value in changes.items():
        section, _, key = dotted.rpartition(".")
        mapping = params[section] if section else params
        if value is DELETE:
            del mapping[key]
        else:
            mapping[key] = value
    return yaml.safe_dump(params, sort_keys=False)


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
        ("fetch.source", 3),
        ("train.model", None),
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
        ("plot.samples", 0),
        ("plot.misclassified", 101),
        ("fetch.source", "  "),
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
        ("preprocess.val_fraction", 0.5),
        ("train.learning_rate", 1),
        ("seed", 0),
        ("seed", 2**32 - 1),
        ("plot.misclassified", 0),
    ],
)
def test_boundary_values_are_accepted(key, value):
    params = config.parse(changed({key: value}))
    section, _, name = key.rpartition(".")
    assert getattr(getattr(params, section) if section else params, name) == value


def test_integer_learning_rate_becomes_a_float():
    params = config.parse(changed({"train.learning_rate": 1}))
    assert type(params.train.learning_rate) is float


def test_float_written_as_string_is_accepted():
    params = config.parse(changed({"train.learning_rate": "1e-3"}))
    assert params.train.learning_rate == 0.001
    assert type(params.train.learning_rate) is float


def test_unquoted_exponent_float_is_accepted():
    # YAML 1.1 reads `1e-3` (no dot) as a string; the loader must still take it as a number.
    text = REAL_TEXT.replace("learning_rate:", "learning_rate: 1e-3  #", 1)
    assert config.parse(text).train.learning_rate == 0.001


def test_numeric_string_is_not_an_integer():
    assert "train.epochs: expected an integer" in error_for(changed({"train.epochs": "1e3"}))


def test_invalid_yaml_names_the_line():
    lines = REAL_TEXT.splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.strip().startswith("epochs:"))
    lines[number - 1] = "  epochs: 15: oops"
    message = error_for("\n".join(lines) + "\n")
    assert "not valid YAML" in message
    assert f"line {number}," in message


def test_section_that_is_not_a_mapping():
    assert "train: expected a mapping" in error_for(changed({"train": 5}))


def test_top_level_that_is_not_a_mapping():
    assert "top level: expected a mapping" in error_for("- seed\n- 42\n")
    assert "top level: expected a mapping, got nothing" in error_for("")


def bad_params_dir(tmp_path: Path) -> Path:
    (tmp_path / "params.yaml").write_text(changed({"train.epochs": -1}))
    return tmp_path


def python_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_train_stage_reports_a_bad_param_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "stages.train"],
        cwd=bad_params_dir(tmp_path),
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr
    assert "train.epochs" in result.stderr
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
