"""GET /model names the served file by its content and gives only the metrics dvc.lock says
measured that content: a fake workspace (models/, metrics/, dvc.lock as DVC writes it) in a
temporary folder, the service through TestClient. No DVC runs here."""

import hashlib
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipeline.core import paths
from pipeline.predict import Predictor
from pipeline.serve import app as service
from pipeline.train import export
from testkit.glyphs import shifted_model, template_model

EXPORT_SCORES = {"litert_float32": {"test_accuracy": 0.97}, "litert_int8": {"test_accuracy": 0.96}}
# Which files each stage's dvc.lock entry records: (deps, outs), as in dvc.yaml.
STAGES = {
    "train": ([], [paths.MODEL]),
    "evaluate": ([paths.MODEL], [paths.METRICS]),
    "export": ([paths.MODEL], [paths.EXPORT_METRICS, paths.LITERT_FLOAT32, paths.LITERT_INT8]),
    "field": ([paths.LITERT_FLOAT32], [paths.FIELD_METRICS]),
}


@pytest.fixture(scope="module")
def models(template_litert) -> tuple[bytes, bytes, bytes]:
    """Three different LiteRT models: the template one, and two reading a digit as the next (or
    the one after): the float32, the int8 and an experiment's model."""
    return (template_litert.read_bytes(), *(export.to_litert(model) for model in (shifted_model(2), shifted_model(1))))


def write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def record_lock() -> None:
    """dvc.lock as `dvc repro` leaves it: each stage's deps and outs with the md5 they have now."""

    def entries(files: list[Path]) -> list[dict]:
        return [{"path": str(f), "hash": "md5", "md5": md5(f), "size": f.stat().st_size} for f in files]

    stages = {
        name: {"cmd": f"python -m stages.{name}", "deps": entries(deps), "outs": entries(outs)}
        for name, (deps, outs) in STAGES.items()
    }
    paths.DVC_LOCK.write_text(json.dumps({"schema": "2.0", "stages": stages}))  # JSON is YAML


@pytest.fixture
def workspace(tmp_path, monkeypatch, models) -> Path:
    """The last `dvc repro`'s outputs and its dvc.lock, in the working directory."""
    monkeypatch.chdir(tmp_path)
    float32, int8, _ = models
    write(paths.LITERT_FLOAT32, float32)
    write(paths.LITERT_INT8, int8)
    write(paths.MODEL, b"a Keras model, as far as dvc.lock is concerned")
    write(paths.EXPORT_METRICS, json.dumps(EXPORT_SCORES).encode())
    write(paths.METRICS, json.dumps({"test_accuracy": 0.98}).encode())
    write(paths.FIELD_METRICS, json.dumps({"photos": 0.93}).encode())
    record_lock()
    return tmp_path


def served(path: Path, predictor: Predictor | None = None) -> dict:
    with TestClient(service.create_app(predictor or Predictor.from_path(path))) as client:
        return client.get("/model").json()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_pipelines_model_gets_the_metrics_that_measured_it(workspace):
    info = served(paths.LITERT_FLOAT32)
    assert info["file"] == str(paths.LITERT_FLOAT32) and info["format"] == "litert"
    assert info["sha256"] == sha256(paths.LITERT_FLOAT32)
    assert info["md5"] == md5(paths.LITERT_FLOAT32)  # what dvc.lock records
    assert info["pipeline_output"] == "export: models/model_float32.tflite"
    assert (info["test_accuracy"], info["metrics"]) == (0.97, "metrics/export.json:litert_float32")
    assert info["measured_by"] == ["metrics/export.json:litert_float32", "metrics/field.json"]
    int8 = served(paths.LITERT_INT8)
    assert (int8["test_accuracy"], int8["measured_by"]) == (0.96, ["metrics/export.json:litert_int8"])


def test_a_retrained_model_beside_the_last_runs_metrics_gets_no_accuracy(workspace, models):
    # `dvc exp run -S train.epochs=1`, then `git checkout -- metrics/ dvc.lock params.yaml`:
    # models/ holds the experiment's model, metrics/ and dvc.lock the last run's.
    paths.LITERT_FLOAT32.write_bytes(models[2])
    info = served(paths.LITERT_FLOAT32)
    assert info["sha256"] == sha256(paths.LITERT_FLOAT32)
    assert (info["test_accuracy"], info["metrics"], info["measured_by"]) == (None, None, [])
    assert info["pipeline_output"] is None
    assert "not the pipeline's last output" in info["note"] and "no accuracy" in info["note"]


def test_a_copy_of_the_pipelines_model_elsewhere_is_known_by_its_content(workspace):
    copy = workspace / "deploy" / "digits.tflite"
    write(copy, paths.LITERT_FLOAT32.read_bytes())
    info = served(copy)
    assert (info["file"], info["test_accuracy"]) == (str(copy), 0.97)
    assert info["pipeline_output"] == "export: models/model_float32.tflite"


def test_metrics_that_are_not_the_ones_dvc_lock_records_give_no_accuracy(workspace):
    paths.EXPORT_METRICS.write_text(json.dumps({"litert_float32": {"test_accuracy": 0.5}}))  # edited, or another run's
    info = served(paths.LITERT_FLOAT32)
    assert info["pipeline_output"] == "export: models/model_float32.tflite"
    assert (info["test_accuracy"], info["measured_by"]) == (None, ["metrics/field.json"])
    assert "metrics/export.json" in info["note"] and "no accuracy" in info["note"]


def test_no_dvc_lock_means_no_accuracy(workspace):
    paths.DVC_LOCK.unlink()
    info = served(paths.LITERT_FLOAT32)
    assert (info["test_accuracy"], info["pipeline_output"]) == (None, None)
    assert "no dvc.lock" in info["note"]


def test_the_keras_model_is_matched_through_the_evaluate_stage(workspace):
    info = served(paths.MODEL, Predictor(template_model(), str(paths.MODEL)))
    assert info["pipeline_output"] == "train: models/model.keras"
    assert (info["test_accuracy"], info["metrics"]) == (0.98, "metrics/metrics.json")
    assert info["measured_by"] == ["metrics/metrics.json"]


def test_the_model_file_is_hashed_once_per_load_not_per_request(workspace, monkeypatch):
    from pipeline.serve import identity

    hashed = []
    real = identity.digests
    monkeypatch.setattr(identity, "digests", lambda content: hashed.append(len(content)) or real(content))
    with TestClient(service.create_app(Predictor.from_path(paths.LITERT_FLOAT32))) as client:
        answers = [client.get("/model").json()["test_accuracy"] for _ in range(3)]
    assert answers == [0.97] * 3
    assert hashed == [paths.LITERT_FLOAT32.stat().st_size]
