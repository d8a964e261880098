"""The service follows its model file: replaced under a running app (TestClient), as `dvc repro`,
`dvc checkout` and `dvc exp apply` replace it (a new file, or a link to another cache file),
the next request answers from the new model; a damaged replacement is refused and the old
model answers on; requests in flight finish on the model they started with."""

import concurrent.futures
import hashlib
import io
import os
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipeline.predict import Predictor
from pipeline.serve import app as service
from pipeline.train import export
from testkit.glyphs import glyph, shifted_model


@pytest.fixture(scope="module")
def models(template_litert) -> tuple[bytes, bytes]:
    """The template model (reads a 3 as 3) and the retrained one (reads a 3 as 4)."""
    return template_litert.read_bytes(), export.to_litert(shifted_model())


@pytest.fixture
def model_path(tmp_path, models) -> Path:
    path = tmp_path / "models" / "model.tflite"
    path.parent.mkdir()
    path.write_bytes(models[0])
    return path


def png(image, side: int = 120) -> bytes:
    buffer = io.BytesIO()
    image.resize((side, side)).save(buffer, format="PNG")
    return buffer.getvalue()


def digit(client: TestClient, name: str = "3.png", side: int = 120) -> int:
    """The digit the service reads in a typeset 3."""
    response = client.post("/predict", files={"image": (name, png(glyph(3), side))})
    assert response.status_code == 200, response.text
    return response.json()[0]["digit"]


def replace(path: Path, content: bytes) -> None:
    """A new file moved into place, as DVC checks a copy out: a new inode under the same name."""
    new = path.with_name(path.name + ".new")
    new.write_bytes(content)
    os.replace(new, path)


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_a_replaced_model_answers_from_the_next_request_and_says_so(model_path, models, capsys):
    with TestClient(service.create_app(Predictor.from_path(model_path))) as client:
        assert digit(client) == 3
        replace(model_path, models[1])
        assert digit(client) == 4
        info = client.get("/model").json()
        assert (info["file"], info["sha256"], info["refused"]) == (str(model_path), sha256(models[1]), None)
    out = capsys.readouterr().out
    assert out == f"now serving {model_path} (litert, sha256 {sha256(models[1])[:12]}): the file changed on disk\n"


def link(kind: str, target: Path, path: Path) -> None:
    """`path` made a symlink or hardlink to `target`, replacing what was there, as DVC's link cache types do."""
    new = path.with_name(path.name + ".new")
    os.symlink(target, new) if kind == "symlink" else os.link(target, new)
    os.replace(new, path)


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_a_link_moved_to_another_cache_file_is_followed(tmp_path, models, kind):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "old").write_bytes(models[0])
    (cache / "new").write_bytes(models[1])
    path = tmp_path / "model.tflite"
    link(kind, cache / "old", path)
    with TestClient(service.create_app(Predictor.from_path(path))) as client:
        assert digit(client) == 3
        link(kind, cache / "new", path)
        assert digit(client) == 4
        assert client.get("/model").json()["sha256"] == sha256(models[1])


def test_a_model_rewritten_in_place_is_followed(model_path, models):
    with TestClient(service.create_app(Predictor.from_path(model_path))) as client:
        assert digit(client) == 3
        time.sleep(0.05)  # past the kernel's timestamp tick: the same inode and size, a new mtime
        model_path.write_bytes(models[1])
        assert digit(client) == 4


@pytest.mark.parametrize(
    "damage",
    [lambda good: b"", lambda good: b"not a model", lambda good: good[: len(good) // 2]],
    ids=["empty", "not-a-model", "truncated"],
)
def test_a_damaged_replacement_is_refused_and_the_old_model_answers_on(model_path, models, capsys, damage):
    with TestClient(service.create_app(Predictor.from_path(model_path))) as client:
        assert digit(client) == 3
        replace(model_path, damage(models[1]))
        assert [digit(client), digit(client)] == [3, 3]  # tried once, not per request
        info = client.get("/model").json()
        assert info["sha256"] == sha256(models[0])  # the model that answers, not the file on disk
        assert info["refused"].startswith(f"{model_path}: ") and "not a loadable LiteRT model" in info["refused"]
        replace(model_path, models[1])  # the pipeline finished writing it
        assert digit(client) == 4
        assert client.get("/model").json()["refused"] is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"not serving the new {model_path}: {model_path}: not a loadable")
    assert err.endswith(f"; still serving sha256 {sha256(models[0])[:12]}\n")


def test_a_model_file_gone_for_a_moment_keeps_the_model_loaded(model_path, models, capsys):
    with TestClient(service.create_app(Predictor.from_path(model_path))) as client:
        model_path.unlink()  # `dvc checkout` removes the old file before it links the new one
        assert digit(client) == 3
        assert client.get("/model").json()["refused"] is None
        model_path.write_bytes(models[1])
        assert digit(client) == 4
    assert capsys.readouterr().err == ""


class Held(Predictor):
    """A Predictor whose model calls for a file named `hold.png` wait for `release`."""

    def __init__(self, path: Path) -> None:
        model = Predictor.from_path(path)
        super().__init__(model.model, model.source)
        self.started, self.release = threading.Event(), threading.Event()

    def answer(self, prepared):  # the model call, which every path to the model makes
        if any(p.source == "hold.png" for p in prepared):
            self.started.set()
            self.release.wait(10)
        return super().answer(prepared)


def test_a_request_in_flight_finishes_on_the_model_it_started_with(model_path, models):
    held = Held(model_path)
    with TestClient(service.create_app(held)) as client, concurrent.futures.ThreadPoolExecutor(2) as posts:
        try:
            # 500 x 500: a photo's size, classified in a worker thread, so the event loop stays free
            in_flight = posts.submit(digit, client, "hold.png", 500)
            assert held.started.wait(10)
            replace(model_path, models[1])
            after = posts.submit(digit, client)
            answering = client.get("/model").json()["sha256"]  # swapped while the old model works
        finally:
            held.release.set()  # else a failure above leaves the client waiting for the held request
        assert (in_flight.result(30), after.result(30)) == (3, 4)
    assert answering == sha256(models[1])


def test_an_unchanged_model_file_is_read_once(model_path, monkeypatch):
    from pipeline.serve import identity

    hashed = []
    real = identity.digests
    monkeypatch.setattr(identity, "digests", lambda content: hashed.append(1) or real(content))
    with TestClient(service.create_app(Predictor.from_path(model_path))) as client:
        assert [digit(client) for _ in range(3)] == [3, 3, 3]
        client.get("/model")
    assert hashed == [1]
