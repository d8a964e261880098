"""The same artifacts on another machine: through a DVC remote without retraining, or by retraining.

Each clone is a separate directory with its own DVC cache, as a teammate's or a CI machine is;
the remote is a plain directory, as on a shared drive.
"""

import json
from pathlib import Path

import pytest
import yaml

from testkit import repos
from testkit.repos import dvc_status, make_pipeline_repo, ran_stages, run, set_params

pytestmark = pytest.mark.slow
CACHED = [
    "data/raw/mnist.npz",
    "data/prepared/train.npz",
    "data/prepared/val.npz",
    "data/prepared/test.npz",
    "models/model.keras",
]


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """Clone A: the shrunken pipeline with a directory remote, run, committed and pushed."""
    base = tmp_path_factory.mktemp("machines")
    repo = make_pipeline_repo(base / "A")
    run(["dvc", "remote", "add", "-d", "-f", "shared", str(base / "remote")], cwd=repo)  # -f: main may have one
    run(["dvc", "repro"], cwd=repo)
    repos.commit_all(repo, "run, with a shared remote")
    assert "files pushed" in run(["dvc", "push"], cwd=repo).stdout
    return repo


def test_pull_gives_a_clone_the_same_artifacts_without_running_anything(published, tmp_path):
    clone = tmp_path / "B"
    run(["git", "clone", "-q", str(published), str(clone)], cwd=tmp_path)
    assert not (clone / ".dvc/cache").exists() and not (clone / "models/model.keras").exists()
    run(["dvc", "pull"], cwd=clone)
    assert dvc_status(clone) == {}
    for path in CACHED:
        assert (clone / path).read_bytes() == (published / path).read_bytes(), path
    assert ran_stages(run(["dvc", "repro"], cwd=clone).stdout) == []
    assert json.loads(run(["dvc", "metrics", "diff", "HEAD", "--json"], cwd=clone).stdout or "{}") == {}
    assert (clone / "metrics/metrics.json").read_bytes() == (published / "metrics/metrics.json").read_bytes()


def test_repro_pull_allow_missing_fetches_only_what_a_change_needs(published, tmp_path):
    clone = tmp_path / "C"
    run(["git", "clone", "-q", str(published), str(clone)], cwd=tmp_path)
    assert ran_stages(run(["dvc", "repro", "--pull", "--allow-missing"], cwd=clone).stdout) == []
    assert not (clone / "models/model.keras").exists()  # nothing to run, so nothing downloaded

    set_params(clone, **{"plot.samples": 16})  # plot reads the prepared train and test splits
    result = run(["dvc", "repro", "--pull", "--allow-missing"], cwd=clone)
    assert ran_stages(result.stdout) == ["plot"]
    assert (clone / "data/prepared/train.npz").read_bytes() == (published / "data/prepared/train.npz").read_bytes()
    assert not (clone / "models/model.keras").exists()  # train and evaluate were skipped, not pulled
    run(["dvc", "pull"], cwd=clone)
    assert dvc_status(clone) == {}


def test_from_scratch_twice_gives_identical_lock_and_metrics(published, tmp_path):
    """A second machine that retrains (own copy, own cache) gets every output hash of the first."""
    other = make_pipeline_repo(tmp_path / "D")
    run(["dvc", "repro"], cwd=other)
    lock, other_lock = (yaml.safe_load((repo / "dvc.lock").read_text()) for repo in (published, other))
    for stage in lock["stages"]:
        outs = {out["path"]: out.get("md5") for out in lock["stages"][stage]["outs"]}
        assert outs == {out["path"]: out.get("md5") for out in other_lock["stages"][stage]["outs"]}, stage
    assert (other / "dvc.lock").read_bytes() == (published / "dvc.lock").read_bytes()
    assert (other / "metrics/metrics.json").read_bytes() == (published / "metrics/metrics.json").read_bytes()


def test_uptodate_tells_stale_results_from_absent_data(published, tmp_path):
    """What CI asks before rebuilding: a clone without data is up to date; an unrun change is not."""
    clone = tmp_path / "E"
    run(["git", "clone", "-q", str(published), str(clone)], cwd=tmp_path)
    assert dvc_status(clone) != {}  # every cached output is missing here...
    run(["python", "-m", "pipeline.review.uptodate"], cwd=clone)  # ...which is not a change
    set_params(clone, **{"train.epochs": 2})
    result = run(["python", "-m", "pipeline.review.uptodate"], cwd=clone, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: out of date, run `dvc repro` and commit dvc.lock and metrics/")
    assert "train: params.yaml:train modified" in result.stderr and "plot" not in result.stderr


def test_conv_net_with_augmentation_retrains_to_the_same_bytes(tmp_path):
    """The convolutional path (random augmentation layers, batch norm) is as repeatable as the MLP."""
    changes = {"train.model": "deep_cnn", "train.augment": True, "train.dropout": 0.2}
    models = []
    for name in ("F", "G"):
        repo = make_pipeline_repo(tmp_path / name)
        set_params(repo, **changes)
        run(["dvc", "repro", "train"], cwd=repo)
        models.append((repo / "models/model.keras").read_bytes())
    assert models[0] == models[1]
