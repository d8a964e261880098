"""The prediction service: the app through FastAPI's TestClient, and the real server as a process
(where it listens, a stalled body, Ctrl-C, no TensorFlow import). The model reads typeset digits."""

import asyncio
import concurrent.futures
import contextlib
import hashlib
import io
import json
import re
import signal
import socket
import sys
import threading
import time

import httpx
import numpy as np
import psutil
import pytest
from fastapi.testclient import TestClient

from pipeline.core.errors import PipelineError
from pipeline.predict import Predictor, command, normalise
from pipeline.serve import app as service
from pipeline.serve import server as serve_main
from testkit.builders import png_claiming
from testkit.faults import Started
from testkit.glyphs import glyph, template_model
from testkit.repos import ROOT, env

PROBABILITY_RECORD = {"path", "digit", "confidence", "probabilities"}
NO_PARTS = {"content": b"--b--\r\n", "headers": {"content-type": "multipart/form-data; boundary=b"}}
TEXT_FIELD = {"data": {"name": "value"}, "files": {"f": ("a.png", b"x")}}


def png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def litert_path(template_litert):
    return template_litert


@pytest.fixture(scope="module")
def client(litert_path):
    app = service.create_app(Predictor.from_path(litert_path), max_body_bytes=200_000, max_files=4)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_a_form_of_images_gets_one_predict_json_record_each_in_order(client):
    files = [("images", (f"digit{d}.png", png(glyph(d)), "image/png")) for d in (3, 1, 4)]
    response = client.post("/predict", files=files)
    assert response.status_code == 200
    records = response.json()
    assert [r["path"] for r in records] == ["digit3.png", "digit1.png", "digit4.png"]
    assert [r["digit"] for r in records] == [3, 1, 4]
    assert all(set(r) == PROBABILITY_RECORD and len(r["probabilities"]) == 10 for r in records)


def test_the_records_are_predict_json_records(client, litert_path, tmp_path):
    (tmp_path / "digit7.png").write_bytes(png(glyph(7)))
    cli_record = json.loads(command.as_json(Predictor.from_path(litert_path).predict([tmp_path / "digit7.png"])[0], 1))
    served = client.post("/predict", files={"image": ("digit7.png", png(glyph(7)))}).json()[0]
    assert served == {**cli_record, "path": "digit7.png"}


def test_one_image_as_the_raw_body(client):
    for kind in ("image/png", "application/octet-stream"):
        response = client.post("/predict", content=png(glyph(5)), headers={"content-type": kind})
        assert response.status_code == 200
        assert [(r["path"], r["digit"]) for r in response.json()] == [("body", 5)]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"just some text", "not an image (expected PNG"),
        (b"", "empty file"),
        (b"\x89PNG\r\n\x1a\n truncated", "truncated or corrupt image"),
        (png_claiming(8_000, 8_000), "over the 50,000,000-pixel limit; refusing it (a decompression bomb?)"),
        (png_claiming(5_000, 5_000), "refusing it (damaged, or a decompression bomb?)"),
    ],
    ids=["non-image", "zero-byte", "truncated", "bomb", "dense-bomb"],
)
def test_a_bad_image_is_a_422_naming_it_and_the_others_are_still_answered(client, content, problem):
    files = [("images", ("bad.png", content)), ("images", ("digit2.png", png(glyph(2))))]
    response = client.post("/predict", files=files)
    assert response.status_code == 422
    bad, good = response.json()
    assert bad["path"] == "bad.png" and bad["error"].startswith("bad.png: ") and problem in bad["error"]
    assert good["digit"] == 2
    raw = client.post("/predict", content=content, headers={"content-type": "image/png"})
    assert raw.status_code == 422 and raw.json()[0]["error"].startswith("body: ")


def test_include_input_adds_the_28x28_the_model_saw_and_nothing_else_changes(client):
    files = [("images", ("digit3.png", png(glyph(3)))), ("images", ("bad.png", b"not an image"))]
    plain = client.post("/predict", files=files).json()
    response = client.post("/predict?include=input", files=files)
    assert response.status_code == 422
    with_input, bad = response.json()
    assert bad == plain[1]  # a failed image has no input to show
    assert {k: v for k, v in with_input.items() if k != "input"} == plain[0]
    seen = np.array(with_input["input"])
    expected = normalise.to_mnist(np.asarray(glyph(3).convert("L"), dtype=np.float32) / 255)
    assert seen.shape == (28, 28) and np.abs(seen - expected).max() <= 0.0005 + 1e-6  # 3 decimals, float32 ulps
    assert "input" not in plain[0]  # the default record is `predict --json`'s


def test_include_names_only_known_extras(client):
    raw = {"content": png(glyph(1)), "headers": {"content-type": "image/png"}}
    assert "input" in client.post("/predict?include=input", **raw).json()[0]
    assert "input" in client.post("/predict?include=&include=input,", **raw).json()[0]  # empty names are nothing
    assert "'probabilities'" in error_of(client.post("/predict?include=input,probabilities", **raw), 400)


def test_get_slash_is_the_page_and_everything_it_loads_is_served_here(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    loaded = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sorted(loaded) == ["/static/page.css", "/static/page.js"]
    for path in loaded:
        assert client.get(path).status_code == 200
    for file in sorted(service.STATIC.iterdir()):  # no CDN, no font service: the page works offline
        assert not re.search(r"(https?:)?//[\w.-]+\.[a-z]{2,}", file.read_text()), f"{file.name} loads from elsewhere"
    assert "include=input" in client.get("/static/page.js").text
    assert "GET /static/nothing.js: not found" in error_of(client.get("/static/nothing.js"), 404)


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()["error"]


def test_a_body_over_the_limit_is_413_whether_declared_or_streamed(client):
    too_big = b"\0" * 200_001
    declared = client.post("/predict", content=too_big, headers={"content-type": "image/png"})
    assert "over the 200,000-byte limit" in error_of(declared, 413)
    chunks = (too_big[i : i + 50_000] for i in range(0, len(too_big), 50_000))  # chunked: no Content-Length
    response = client.post("/predict", content=chunks, headers={"content-type": "image/png"})
    assert "over the 200,000-byte limit" in error_of(response, 413)
    assert response.headers["connection"] == "close"  # the unread rest must not pass for a request
    form = client.post("/predict", files={"image": ("big.png", too_big)})
    assert "over the 200,000-byte limit" in error_of(form, 413)


def test_more_files_than_the_limit_is_400(client):
    files = [("images", (f"{i}.png", png(glyph(1)))) for i in range(5)]
    assert "Too many files" in error_of(client.post("/predict", files=files), 400)


@pytest.mark.parametrize(
    ("request_args", "status", "problem"),
    [
        (("GET", "/predict", {}), 405, "GET /predict: method not allowed"),
        (("PUT", "/predict", {"content": b"x"}), 405, "PUT /predict: method not allowed"),
        (("POST", "/healthz", {}), 405, "POST /healthz: method not allowed"),
        (("GET", "/nowhere", {}), 404, "GET /nowhere: not found"),
        (("POST", "/predict", {"json": {"image": "x"}}), 415, "Content-Type application/json: send images as"),
        (("POST", "/predict", {"content": b"x", "headers": {"content-type": ""}}), 415, "Content-Type (none)"),
        (("POST", "/predict", TEXT_FIELD), 400, "'name' is not a file"),
        (("POST", "/predict", NO_PARTS), 400, "holds no files"),
    ],
    ids=["get", "put", "post-healthz", "404", "json", "no-type", "text-field", "empty-form"],
)
def test_wrong_methods_paths_and_content_types_are_json_4xx(client, request_args, status, problem):
    method, path, options = request_args
    assert problem in error_of(client.request(method, path, **options), status)


def test_a_filename_that_is_not_utf8_still_gets_an_answer(client):
    boundary = "x0x0x0"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="'.encode()
        + b"\xff\xfe-\xe9.png"
        + b'"\r\nContent-Type: image/png\r\n\r\n'
        + png(glyph(6))
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    response = client.post("/predict", content=body, headers=headers)
    assert response.status_code == 200
    (record,) = response.json()
    assert record["digit"] == 6 and record["path"] == "\xff\xfe-\xe9.png"  # the bytes read as Latin-1


def test_a_keras_model_serves_too_and_says_so():
    with TestClient(service.create_app(Predictor(template_model(), "elsewhere/model.keras"))) as keras_client:
        assert keras_client.post("/predict", files={"image": ("9.png", png(glyph(9)))}).json()[0]["digit"] == 9
        info = keras_client.get("/model").json()
        assert (info["file"], info["format"], info["sha256"], info["test_accuracy"]) == (
            "elsewhere/model.keras",
            "keras",
            None,
            None,
        )
        assert info["note"] == "no model file to identify: no accuracy is given"


def stored_png(image) -> bytes:
    """`image` as a 500 x 500 PNG: a digit the size of a small photo."""
    return png(image.resize((500, 500)))


class Watched(Predictor):
    """A Predictor noting, per model call, whether it ran on the event loop; calls with a file
    named `hold.png` wait for `release` first (and note whether it came)."""

    def __init__(self, path) -> None:
        model = Predictor.from_path(path)
        super().__init__(model.model, model.source)
        self.on_loop: list[bool] = []
        self.released: list[bool] = []
        self.release = threading.Event()

    def answer(self, prepared):  # the model call, which every path to the model makes
        try:
            asyncio.get_running_loop()
            self.on_loop.append(True)
        except RuntimeError:
            self.on_loop.append(False)
        if any(p.source == "hold.png" for p in prepared):
            self.released.append(self.release.wait(10))
        return super().answer(prepared)


def test_one_digit_meets_the_model_on_the_event_loop_and_a_batch_in_a_worker_thread(litert_path):
    watched = Watched(litert_path)
    small = {"image": ("7.png", png(glyph(7)))}
    big = [("images", (f"{d}.png", stored_png(glyph(d)))) for d in (2, 3)]
    with TestClient(service.create_app(watched)) as client:
        assert client.post("/predict", files=small).json()[0]["digit"] == 7
        assert [r["digit"] for r in client.post("/predict", files=big).json()] == [2, 3]
    assert watched.on_loop == [True, False]  # the same answers either way


def test_while_a_big_request_is_classified_the_service_goes_on_answering(litert_path):
    watched = Watched(litert_path)
    held = [("images", ("hold.png", stored_png(glyph(d)))) for d in (5, 6)]
    app = service.create_app(watched)
    decoded: list[str] = []
    pool, prepare = app.state.decoders, app.state.decoders.prepare

    async def noted(upload):  # the pool's answer for each image, noted as it comes
        prepared = await prepare(upload)
        decoded.append(upload.name)
        return prepared

    pool.prepare = noted
    with TestClient(app) as client:
        answer = concurrent.futures.ThreadPoolExecutor(1).submit(client.post, "/predict", files=held)
        while not watched.on_loop:  # the held request has reached the model
            time.sleep(0.01)
        assert client.get("/healthz").json() == {"status": "ok"}
        # the model is busy: a digit waits for it in a worker thread, not on the event loop
        digit = concurrent.futures.ThreadPoolExecutor(1).submit(
            client.post, "/predict", files={"i": ("1.png", png(glyph(1)))}
        )
        deadline = time.monotonic() + 30
        while "1.png" not in decoded and time.monotonic() < deadline:  # decoded: next it meets the model
            time.sleep(0.01)
        time.sleep(0.2)  # a few awaits on the loop, no I/O, then it waits for the lock
        assert client.get("/healthz").status_code == 200
        watched.release.set()
        assert [r["digit"] for r in answer.result(30).json()] == [5, 6] and digit.result(30).json()[0]["digit"] == 1
    # /healthz answered while the big request held the model, or the hold would have timed out
    assert watched.released == [True] and watched.on_loop == [False, False]


def test_healthz_and_the_model_it_serves(client, litert_path):
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/model").json()
    assert (info["file"], info["format"]) == (str(litert_path), "litert")
    assert info["sha256"] == hashlib.sha256(litert_path.read_bytes()).hexdigest()
    # not a file this checkout's dvc.lock records: metrics/ did not measure it (tests/unit/serve/test_serve_identity.py)
    assert (info["test_accuracy"], info["metrics"], info["pipeline_output"]) == (None, None, None)


def test_a_port_in_use_is_one_line(litert_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PipelineError, match=rf"cannot listen on 127.0.0.1:{port} \(Address already in use\)"):
            serve_main.listen("127.0.0.1", port)


# `python -m pipeline.serve ARGS` that writes, at exit, which of TensorFlow and Keras it imported.
IMPORTS_AT_EXIT = """
import atexit, json, runpy, sys
record = sys.argv.pop(1)
heavy = lambda: sorted({"tensorflow", "keras"} & set(sys.modules))
atexit.register(lambda: open(record, "w").write(json.dumps(heavy())))
runpy.run_module("pipeline.serve", run_name="__main__", alter_sys=True)
"""


# A request's head promising 1,000 bytes of image.
HEAD = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n"


def stalled_request(host: str, port: int) -> bytes:
    """Headers promising 1,000 bytes of body, 10 of them, then silence: the server's answer."""
    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(HEAD + b"0123456789")
        answer = b""
        while chunk := connection.recv(65536):  # the server closes the connection after answering
            answer += chunk
    return answer


def abandoned_request(host: str, port: int) -> None:
    """Headers and part of a body, then the connection closed."""
    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(HEAD + b"01")


def half_a_head(host: str, port: int) -> tuple[bytes, float]:
    """Half a request line, then silence: what the server sends before closing, and when."""
    with socket.create_connection((host, port), timeout=10) as connection:
        started = time.monotonic()
        connection.sendall(b"POST /predi")
        answer = connection.recv(65536)  # b"" once the server closes the connection
    return answer, time.monotonic() - started


def test_the_real_server_listens_times_out_stalled_requests_and_stops_on_ctrl_c(litert_path, tmp_path):
    record = tmp_path / "imported.json"
    args = ["--model", str(litert_path), "--port", "0", "--body-timeout", "0.5", "--head-timeout", "0.5"]
    command = [sys.executable, "-c", IMPORTS_AT_EXIT, str(record), *args]
    server = Started(command, ROOT, tmp_path / "logs", env(PYTHONPATH=str(ROOT)))
    try:
        server.wait_for(lambda: server.out().endswith("\n"), 60, "the line saying where it listens")
        line = server.out()
        assert line.startswith(f"serving {litert_path} (litert) on http://127.0.0.1:")
        assert line.endswith("; Ctrl-C stops it\n")
        base = line.split(" on ")[1].split(";")[0]
        host, port = base.removeprefix("http://").split(":")
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        started = time.monotonic()
        answer = stalled_request(host, int(port))
        assert answer.startswith(b"HTTP/1.1 408 ") and b"did not arrive within 0.5 s" in answer, answer
        assert time.monotonic() - started < 10  # answered, not left hanging (the bound is generous)
        abandoned_request(host, int(port))
        closed, seconds = half_a_head(host, int(port))
        assert closed == b"" and seconds < 10  # closed, not held open (uvicorn alone would hold it)
        predicted = httpx.post(f"{base}/predict", files={"image": ("d.png", png(glyph(8)))})
        assert predicted.json()[0]["digit"] == 8  # still up
        server.process.send_signal(signal.SIGINT)
        assert server.wait(30) == 130
    finally:
        server.stop()
    assert server.err() == "interrupted\n"  # no traceback, for the stalled body or the one abandoned
    assert json.loads(record.read_text()) == []  # neither TensorFlow nor Keras


def workers_of(server: Started) -> list[psutil.Process]:
    """The worker processes uvicorn spawned for `server` (its children running multiprocessing's spawn)."""
    workers = []
    for child in psutil.Process(server.pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and any("spawn_main" in part for part in child.cmdline()):
                workers.append(child)
        except psutil.Error:  # ended meanwhile
            continue
    return workers


def test_several_workers_share_the_port_a_dead_one_is_replaced_and_ctrl_c_stops_them_all(litert_path, tmp_path):
    command = [sys.executable, "-m", "pipeline.serve", "--model", str(litert_path), "--port", "0", "--workers", "2"]
    server = Started(command, ROOT, tmp_path / "logs", env(PYTHONPATH=str(ROOT)))
    try:
        server.wait_for(lambda: server.out().endswith("\n"), 60, "the line saying where it listens")
        assert server.out().endswith(" with 2 workers; Ctrl-C stops it\n")
        base = server.out().split(" on ")[1].split(" with")[0]
        server.wait_for(lambda: len(workers_of(server)) == 2, 60, "two workers")
        first = workers_of(server)
        with httpx.Client(base_url=base, timeout=30) as client:
            answers = [client.post("/predict", files={"image": (f"{d}.png", png(glyph(d)))}) for d in range(10)]
            assert [a.json()[0]["digit"] for a in answers] == list(range(10))
            # A worker lost (the OOM killer, a crash): uvicorn starts another. On a loaded machine its
            # supervisor may have killed this one already, for a missed health check: gone either way.
            with contextlib.suppress(psutil.NoSuchProcess):
                first[0].kill()
            server.wait_for(
                lambda: len(workers_of(server)) == 2 and first[0] not in workers_of(server), 60, "a new worker"
            )
            server.wait_for(lambda: client.get("/readyz").status_code == 200, 60, "readiness")
            again = [client.post("/predict", files={"image": ("3.png", png(glyph(3)))}) for _ in range(4)]
            assert [a.json()[0]["digit"] for a in again] == [3] * 4
        family = psutil.Process(server.pid).children(recursive=True)  # workers, their decoders
        assert len(family) > 2
        server.process.send_signal(signal.SIGINT)
        assert server.wait(30) == 130
        gone, alive = psutil.wait_procs(family, timeout=10)
        assert alive == []  # nothing left decoding or serving
    finally:
        server.stop()
    assert server.err().endswith("interrupted\n")
