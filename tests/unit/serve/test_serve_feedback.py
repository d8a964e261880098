"""POST /feedback with --collect: a correction is stored as the server decoded it, under a name
the server makes, once, whole, within the store's limits; hostile labels and names, non-images,
a full or refusing disk and a missing token write nothing, and /predict answers on."""

import concurrent.futures
import errno
import io
import subprocess
import sys

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pipeline.collect import store as collect
from pipeline.collect.store import Store
from pipeline.predict import Predictor
from pipeline.serve import app as service
from pipeline.serve.feedback import Collecting
from testkit.faults import Started
from testkit.glyphs import glyph
from testkit.repos import ROOT, env


@pytest.fixture(scope="module")
def predictor(template_litert) -> Predictor:
    return Predictor.from_path(template_litert)


def png(digit: int, offset: tuple[int, int] = (0, 0)) -> bytes:
    buffer = io.BytesIO()
    glyph(digit, offset=offset).save(buffer, format="PNG")
    return buffer.getvalue()


def files_under(root) -> list[str]:
    """Every file under `root`, hidden ones too (a temporary left behind would show)."""
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def client_for(predictor, store: Store | None, token: str | None = None) -> TestClient:
    collecting = Collecting(store, token) if store is not None else None
    return TestClient(service.create_app(predictor, collecting=collecting))


def send(client: TestClient, label: str, image: bytes, name: str = "digit.png", **headers):
    return client.post("/feedback", params={"label": label}, files={"image": (name, image)}, headers=headers)


def test_a_correction_is_stored_as_the_server_decoded_it_once(predictor, tmp_path):
    with client_for(predictor, Store(tmp_path)) as client:
        seen = client.post("/predict?include=input", files={"image": ("d.png", png(3))}).json()[0]["input"]
        first = send(client, "8", png(3))  # the model said 3; the user says it was an 8
        again = send(client, "8", png(3), name="another-name.png")
    assert (first.status_code, again.status_code) == (201, 200)
    stored = first.json()["stored"]
    assert first.json() == {"label": 8, "stored": stored, "new": True}
    assert again.json() == {"label": 8, "stored": stored, "new": False}
    assert files_under(tmp_path) == [stored] and stored.startswith("8/") and len(stored) == len("8/.png") + 64
    pixels = np.asarray(Image.open(tmp_path / stored))
    assert pixels.shape == (28, 28) and pixels.dtype == np.uint8
    np.testing.assert_allclose(pixels / 255, np.array(seen), atol=1 / 255 + 1e-3)  # the 28x28 the model saw


def test_the_same_image_under_another_label_is_another_file(predictor, tmp_path):
    with client_for(predictor, Store(tmp_path)) as client:
        assert send(client, "1", png(7)).status_code == 201
        assert send(client, "7", png(7)).status_code == 201
    assert [name.split("/")[0] for name in files_under(tmp_path)] == ["1", "7"]


HOSTILE_LABELS = ["", "10", "-1", "07", " 7", "7\n", "7 ", "../7", "7/../../x", "/etc", "٣", "７", "3.0", "x" * 5000]


@pytest.mark.parametrize("label", HOSTILE_LABELS)
def test_a_label_that_is_not_one_digit_is_400_and_writes_nothing(predictor, tmp_path, label):
    with client_for(predictor, Store(tmp_path / "store")) as client:
        answer = send(client, label, png(4))
    assert answer.status_code == 400 and "expected one digit, 0 to 9" in answer.json()["error"]
    assert "\n" not in answer.json()["error"] and len(answer.json()["error"]) < 120
    assert files_under(tmp_path) == []


def test_a_missing_label_several_images_a_non_image_and_a_blank_page_write_nothing(predictor, tmp_path):
    blank = io.BytesIO()
    Image.new("L", (120, 120), 255).save(blank, format="PNG")
    with client_for(predictor, Store(tmp_path)) as client:
        missing = client.post("/feedback", files={"image": ("d.png", png(4))})
        two = client.post("/feedback?label=4", files=[("image", ("a.png", png(4))), ("image", ("b.png", png(4)))])
        text = send(client, "4", b"not an image at all", name="notes.txt")
        empty = send(client, "4", blank.getvalue(), name="blank.png")
    assert (missing.status_code, two.status_code, text.status_code, empty.status_code) == (400, 400, 422, 422)
    assert missing.json()["error"].startswith("label: missing")
    assert "not an image" in text.json()["error"] and "no digit found" in empty.json()["error"]
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("name", ["../../escape.png", "/etc/passwd", "8/../../x.png", "a\x00b.png", "..", "ö" * 300])
def test_the_client_names_nothing_on_disk(predictor, tmp_path, name):
    root = tmp_path / "store"
    with client_for(predictor, Store(root)) as client:
        assert send(client, "5", png(5), name=name).status_code == 201
    (stored,) = files_under(tmp_path)
    assert stored.startswith("store/5/") and stored.endswith(".png") and ".." not in stored


def test_a_full_store_is_503_and_predictions_go_on(predictor, tmp_path):
    with client_for(predictor, Store(tmp_path, max_files=1)) as client:
        assert send(client, "2", png(2)).status_code == 201
        full = send(client, "3", png(3))
        assert send(client, "2", png(2)).status_code == 200  # a digit already stored is no new file
        assert client.post("/predict", files={"image": ("d.png", png(3))}).status_code == 200
    assert full.status_code == 503 and full.json()["error"].startswith("the collection holds 1 digits")
    assert len(files_under(tmp_path)) == 1


def test_the_byte_limit_counts_what_was_stored_before(predictor, tmp_path):
    with client_for(predictor, Store(tmp_path)) as client:
        assert send(client, "2", png(2)).status_code == 201
    size = sum((tmp_path / name).stat().st_size for name in files_under(tmp_path))
    with client_for(predictor, Store(tmp_path, max_bytes=size + 10)) as client:  # a restart: counted from disk
        assert send(client, "3", png(3)).status_code == 503


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT])
def test_a_disk_that_refuses_is_503_nothing_half_written_and_predictions_go_on(predictor, tmp_path, monkeypatch, code):
    def refuse(fd):
        raise OSError(code, f"refused ({errno.errorcode[code]})")

    monkeypatch.setattr(collect.os, "fsync", refuse)  # after the bytes are written, before they are linked in
    with client_for(predictor, Store(tmp_path)) as client:
        refused = send(client, "6", png(6))
        assert client.post("/predict", files={"image": ("d.png", png(6))}).status_code == 200
    assert refused.status_code == 503 and "predictions go on" in refused.json()["error"]
    assert files_under(tmp_path) == []  # no digit, no temporary


def test_a_read_only_store_is_503(predictor, tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    (root / "6").write_text("a file where the label's folder would be")
    with client_for(predictor, Store(root)) as client:
        refused = send(client, "6", png(6))
    assert refused.status_code == 503 and refused.json()["error"].startswith("cannot store the digit")


def test_without_collect_feedback_is_403_and_says_so(predictor, tmp_path):
    with client_for(predictor, None) as client:
        answer = send(client, "1", png(1))
        state = client.get("/feedback").json()
    assert answer.status_code == 403 and "--collect DIR" in answer.json()["error"]
    assert state == {"collecting": False, "token_required": False}


def test_with_a_token_only_its_bearer_stores(predictor, tmp_path):
    with client_for(predictor, Store(tmp_path), token="s3cret-token") as client:
        assert client.get("/feedback").json() == {"collecting": True, "token_required": True}
        none = send(client, "1", png(1))
        wrong = send(client, "1", png(1), authorization="Bearer s3cret-tokex")
        right = send(client, "1", png(1), authorization="Bearer s3cret-token")
    assert (none.status_code, wrong.status_code, right.status_code) == (401, 401, 201)
    assert none.headers["www-authenticate"] == "Bearer" and "s3cret" not in none.text + wrong.text
    assert len(files_under(tmp_path)) == 1


def test_concurrent_corrections_store_each_digit_once_and_whole(tmp_path):
    store = Store(tmp_path)
    digits = [np.random.default_rng(seed).random((28, 28), dtype=np.float32) for seed in range(8)]
    jobs = [(digits[i % 8], str(i % 3)) for i in range(96)]  # each (digit, label) twice or more
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda job: store.save(*job), jobs))
    distinct = {(i % 8, i % 3) for i in range(96)}
    assert sum(result.created for result in results) == len(distinct) == len(files_under(tmp_path))
    assert store.files == len(distinct)
    for name in files_under(tmp_path):
        assert Image.open(tmp_path / name).size == (28, 28)  # whole: every file decodes


def test_beyond_loopback_collect_needs_a_token_from_the_environment(tmp_path):
    command = [sys.executable, "-m", "pipeline.serve", "--collect", str(tmp_path / "c"), "--host", "0.0.0.0"]
    result = subprocess.run(command, cwd=ROOT, env=env(MNIST_COLLECT_TOKEN=""), capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1].endswith(
        "--collect on 0.0.0.0 (beyond this machine) needs a token: set MNIST_COLLECT_TOKEN"
    )
    assert not (tmp_path / "c").exists()


def test_the_command_collects_in_every_worker_within_one_limit_for_all(template_litert, tmp_path):
    root = tmp_path / "collected"
    command = [sys.executable, "-m", "pipeline.serve", "--model", str(template_litert), "--port", "0"]
    collect = ["--collect", str(root), "--collect-max-files", "6"]
    server = Started([*command, "--workers", "2", *collect], ROOT, tmp_path / "logs", env())
    try:
        server.wait_for(lambda: server.out().endswith("\n"), 60, "the line saying where it listens")
        assert server.out().endswith(f" with 2 workers, collecting corrections in {root}; Ctrl-C stops it\n")
        base = server.out().split(" on ")[1].split(" with")[0]
        # A connection a request: the workers share the socket, and each takes some of them.
        with httpx.Client(base_url=base, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            server.wait_for(lambda: client.get("/readyz").status_code == 200, 60, "readiness")
            answers = [client.post("/feedback?label=9", files={"image": ("d.png", png(d))}) for d in range(10)]
    finally:
        server.stop()
    assert sorted(answer.status_code for answer in answers) == [201] * 6 + [503] * 4  # both workers count all
    assert sorted(name.split("/")[0] for name in files_under(root)) == ["9"] * 6
