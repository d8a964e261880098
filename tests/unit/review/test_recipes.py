"""Named recipes (recipes.yaml): each a full, valid train section, run as a DVC experiment by
`python -m pipeline.review.recipes NAME` with every value visible to `dvc exp show`."""

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dvc.utils.hydra import to_hydra_overrides
from hypothesis import given
from hypothesis import strategies as st

from pipeline.core import config
from pipeline.core.errors import ConfigError, PipelineError
from pipeline.review import recipes
from testkit.repos import ROOT, env, run

RECIPES = ROOT / "recipes.yaml"
TRAIN_KEYS = [field.name for field in dataclasses.fields(config.TrainConfig)]


def values_of(flags: list[str]) -> dict[str, object]:
    """`-S train.KEY=VALUE` flags read back as `dvc exp run` reads them."""
    assert flags[0::2] == ["-S"] * (len(flags) // 2)
    return {override.key_or_group: override.value() for override in to_hydra_overrides(flags[1::2])}


def test_the_issue_names_three_recipes_each_a_full_valid_train_section():
    loaded = recipes.load(RECIPES)
    assert list(loaded) == ["cnn_fast", "cnn_aug", "cnn_best"]
    for values in loaded.values():
        assert list(values) == TRAIN_KEYS  # every key, in params.yaml's order: nothing inherited
        config.build_section(config.TrainConfig, values, "train.", "recipes.yaml")


@pytest.mark.parametrize("name", ["cnn_fast", "cnn_aug", "cnn_best"])
def test_the_command_sets_every_value_of_the_recipe_as_dvc_reads_it(name):
    command = recipes.command(name, [], RECIPES)
    assert command[:3] == ["dvc", "exp", "run"]
    assert values_of(command[3:]) == recipes.overrides(recipes.load(RECIPES)[name])


def test_options_after_the_name_go_to_dvc_after_the_recipes_values():
    command = recipes.command("cnn_fast", ["-S", "train.epochs=1", "--queue"], RECIPES)
    assert command[-3:] == ["-S", "train.epochs=1", "--queue"]  # later -S wins in dvc exp run


def test_an_unknown_recipe_names_the_known_ones():
    with pytest.raises(ConfigError, match=r"recipes.yaml: no recipe 'cnn_fats' \(known: cnn_fast, cnn_aug, cnn_best\)"):
        recipes.get("cnn_fats", RECIPES)


def test_the_command_refuses_an_unknown_recipe_in_one_line_without_running_dvc():
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.review.recipes", "cnn_fats"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr == "error: recipes.yaml: no recipe 'cnn_fats' (known: cnn_fast, cnn_aug, cnn_best)\n"
    assert result.stdout == ""  # dvc exp run was never printed, so never started


def test_without_a_name_the_command_lists_the_recipes_and_their_values():
    result = subprocess.run([sys.executable, "-m", "pipeline.review.recipes"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["cnn_fast", "cnn_aug", "cnn_best"]
    assert "model=cnn " in lines[0] and "augment=true" in lines[1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fast:\n  model: cnn\n", "recipes.yaml: recipe fast: missing key train.width"),
        ("fast: 3\n", "recipes.yaml: recipe fast: train: expected a mapping, got int 3"),
        ("[cnn]\n", "recipes.yaml: expected a mapping of recipe names to train values, got ['cnn']"),
        ("fast: {model: cnn\n", "recipes.yaml: not valid YAML"),
    ],
)
def test_a_broken_recipes_file_is_one_error_naming_the_recipe_and_key(tmp_path, text, message):
    path = tmp_path / "recipes.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        recipes.load(path)
    assert str(caught.value).startswith(message.replace("recipes.yaml", str(path)))
    assert "\n" not in str(caught.value)


def test_a_recipe_value_out_of_range_names_the_recipe_and_the_key(tmp_path):
    real = recipes.load(RECIPES)["cnn_fast"]
    path = tmp_path / "recipes.yaml"
    path.write_text(
        "fast:\n" + "".join(f"  {k}: {'0' if k == 'epochs' else recipes.set_value(v)}\n" for k, v in real.items())
    )
    with pytest.raises(ConfigError, match=r"recipe fast: train.epochs: expected an integer in \[1, 1000\], got 0"):
        recipes.load(path)


NAMES = st.text(st.characters(categories=["L", "N", "P", "S", "Zs"]), max_size=12)  # what YAML text holds


@given(st.one_of(st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=False, allow_infinity=False), NAMES))
def test_every_value_is_written_so_dvc_reads_back_the_same_value_and_type(value):
    (override,) = to_hydra_overrides([f"train.key={recipes.set_value(value)}"])
    assert override.value() == value and type(override.value()) is type(value)


WITHOUT_VENV = "/usr/bin:/bin"  # PATH of a shell where the virtualenv was never activated


def test_without_an_activated_venv_the_recipe_runs_this_venvs_dvc_and_its_stages_get_this_python(monkeypatch):
    # The stages' commands are `python -m stages...`: DVC finds that `python` on PATH, so the venv
    # must come first there too, or the stages would run in a python without the project's packages.
    ran = {}
    monkeypatch.setenv("PATH", WITHOUT_VENV)
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(
        recipes.subprocess,
        "run",
        lambda args, env: ran.update(args=args, env=env) or subprocess.CompletedProcess(args, 0),
    )
    assert recipes.main(["cnn_fast", "--queue"]) == 0
    venv = Path(sys.executable).parent
    assert ran["args"][0] == str(venv / "dvc") and ran["args"][1:3] == ["exp", "run"] and ran["args"][-1] == "--queue"
    assert ran["env"]["PATH"].split(os.pathsep) == [str(venv), *WITHOUT_VENV.split(os.pathsep)]


def test_without_an_activated_venv_the_command_reaches_dvc_instead_of_a_traceback(tmp_path):
    # Outside a DVC repository, dvc itself refuses: what matters is that it was found and ran.
    shutil.copy(RECIPES, tmp_path / "recipes.yaml")
    command = [sys.executable, "-m", "pipeline.review.recipes", "cnn_fast"]
    environment = {**os.environ, "PATH": WITHOUT_VENV, "PYTHONPATH": str(ROOT), "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True)
    assert "Traceback" not in result.stderr and "FileNotFoundError" not in result.stderr
    assert "not inside of a DVC repository" in result.stderr and result.returncode != 0


def test_without_dvc_anywhere_the_command_says_so_in_one_line(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(recipes.revisions, "tool", lambda name: None)
    with pytest.raises(PipelineError, match=r"^dvc is not installed here: pip install -r requirements.txt$"):
        recipes.main(["cnn_fast"])


@pytest.mark.slow
def test_without_an_activated_venv_a_recipes_stages_run_in_this_python(tmp_path):
    # A one-stage pipeline whose command, like ours, is a bare `python`: it records which one ran.
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  where:\n    cmd: python -c 'import sys; print(sys.prefix)' > where.txt\n"
        "    params: [train]\n    outs: [where.txt]\n"
    )
    for name in ("params.yaml", "recipes.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    run(["git", "init", "-q"], cwd=tmp_path)
    run(["dvc", "init", "-q"], cwd=tmp_path)
    run(["git", "add", "-A"], cwd=tmp_path)
    run(["git", "commit", "-qm", "toy"], cwd=tmp_path)
    environment = {**env(), "PATH": WITHOUT_VENV, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "pipeline.review.recipes", "cnn_fast", "--temp"]
    result = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    run(
        ["dvc", "exp", "apply", run(["dvc", "exp", "ls", "--name-only"], cwd=tmp_path).stdout.split()[-1]], cwd=tmp_path
    )
    assert (tmp_path / "where.txt").read_text().strip() == sys.prefix
