"""A recipe run as a DVC experiment on the shrunken pipeline: `python -m pipeline.review.recipes NAME` puts
every value of the recipe where `dvc exp show` and `dvc params diff` see it (the recipes
themselves, against the config, are tests/unit/review/test_recipes.py)."""

import sys

import pytest

from pipeline.review import recipes
from testkit import experiments
from testkit.repos import ROOT, run

RECIPES = ROOT / "recipes.yaml"


@pytest.mark.slow
def test_a_recipe_runs_as_an_experiment_whose_params_show_every_value(pipeline_repo):
    # The shrunken pipeline's data, one short epoch: what is checked is where the values land.
    command = [sys.executable, "-m", "pipeline.review.recipes", "cnn_fast", "-S", "train.epochs=1", "-n", "fast"]
    result = run(command, cwd=pipeline_repo)
    assert result.stdout.splitlines()[0].startswith("dvc exp run -S train.model=cnn -S train.width=1")
    shown = experiments.params(experiments.show(pipeline_repo)["fast"])["train"]
    expected = {**recipes.load(RECIPES)["cnn_fast"], "epochs": 1}
    assert shown == expected
    diff = run(["dvc", "params", "diff", "--json"], cwd=pipeline_repo).stdout
    assert '"train.model"' in diff and '"train.label_smoothing"' in diff  # workspace vs HEAD: the recipe's
