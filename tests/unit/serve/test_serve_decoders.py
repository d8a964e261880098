"""Decoding in killable processes: an image past its deadline is a 422 record naming it while
the service goes on answering, a killed or dead decoder is replaced, a decoder's memory is
bounded, the service process itself never decodes, and a decoder's reply is read as data."""

import asyncio
import concurrent.futures
import io
import os
import pickle
import signal
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pipeline.predict import Predictor, images
from pipeline.predict.predictor import Upload
from pipeline.serve import app as service
from pipeline.serve import decoders
from testkit import crafted
from testkit.glyphs import glyph

# 49 megapixels, under images.MAX_PIXELS: 0.37 s to decode and normalise in a warm decoder, 0.56 s
# in a new one, on a 2-core AMD EPYC: seven times SHORT_DEADLINE, which a one-digit PNG (2 ms)
# meets twenty times over.
SLOW_SIDE = 7000
SHORT_DEADLINE = 0.05


@pytest.fixture(scope="module")
def predictor(template_litert) -> Predictor:
    return Predictor.from_path(template_litert)


@pytest.fixture(scope="module")
def slow_png() -> bytes:
    """A big, valid photo-like PNG: a dark bar on white, slow only because of its size."""
    pixels = np.full((SLOW_SIDE, SLOW_SIDE), 255, np.uint8)
    pixels[SLOW_SIDE // 4 : 3 * SLOW_SIDE // 4, SLOW_SIDE // 2 - 200 : SLOW_SIDE // 2 + 200] = 0
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def png(digit: int) -> bytes:
    buffer = io.BytesIO()
    glyph(digit).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_image_past_its_deadline_is_a_422_naming_it_and_healthz_answers_meanwhile(predictor, slow_png):
    app = service.create_app(predictor, decode_timeout=SHORT_DEADLINE)
    with TestClient(app) as client, concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(client.post, "/predict", files={"image": ("slow.png", slow_png, "image/png")})
        health = client.get("/healthz")
        response = slow.result(30)
        after = client.post("/predict", files={"image": ("7.png", png(7), "image/png")})
    assert health.status_code == 200
    assert response.status_code == 422
    assert response.json() == [
        {
            "path": "slow.png",
            "error": f"slow.png: not decoded within {SHORT_DEADLINE:g} s; refusing it (a decoding bomb?)",
        }
    ]
    assert after.status_code == 200 and after.json()[0]["digit"] == 7  # a fresh decoder took its place


def test_the_decoder_past_its_deadline_is_killed_and_replaced(predictor, slow_png):
    app = service.create_app(predictor, decode_timeout=SHORT_DEADLINE)
    with TestClient(app) as client:
        pool = app.state.decoders
        before = {decoder.process.pid for decoder in pool.started}
        client.post("/predict", files={"image": ("slow.png", slow_png, "image/png")})
        after = {decoder.process.pid for decoder in pool.started}
    assert len(after) == len(before) == decoders.SIZE
    (killed,) = before - after
    with pytest.raises(ProcessLookupError):  # not left decoding on a core
        os.kill(killed, 0)


def test_a_decoder_that_died_while_idle_is_replaced_before_it_gets_an_image(predictor):
    app = service.create_app(predictor)
    with TestClient(app) as client:
        for decoder in app.state.decoders.started:
            os.kill(decoder.process.pid, signal.SIGKILL)
            decoder.process.join(5)
        responses = [client.post("/predict", files={"image": (f"{d}.png", png(d), "image/png")}) for d in (3, 8)]
    assert [r.status_code for r in responses] == [200, 200]
    assert [r.json()[0]["digit"] for r in responses] == [3, 8]


def test_a_decoder_that_dies_on_an_image_is_an_error_record_and_the_next_image_is_read(predictor, monkeypatch):
    app = service.create_app(predictor)

    with TestClient(app) as client:
        pool = app.state.decoders
        real_call = decoders.Decoder.call

        async def crash_on_first(self, job):  # as a decoder killed by a segfault in C code
            if job[0] == "prepare" and job[1].name == "crash.png":
                os.kill(self.process.pid, signal.SIGKILL)
            return await real_call(self, job)

        monkeypatch.setattr(decoders.Decoder, "call", crash_on_first)
        files = [("images", ("crash.png", png(1), "image/png")), ("images", ("5.png", png(5), "image/png"))]
        response = client.post("/predict", files=files)
        assert len(pool.started) == decoders.SIZE
    assert response.status_code == 422
    crashed, read = response.json()
    assert crashed == {
        "path": "crash.png",
        "error": "crash.png: the decoder stopped while reading it; refusing it (a damaged or hostile file?)",
    }
    assert read["digit"] == 5


def test_a_decoder_that_runs_out_of_its_memory_says_so(slow_png):
    async def decode() -> str | None:
        pool = decoders.Decoders(size=1, memory=420 * 1024**2)  # an idle decoder maps about 300 MB
        await pool.fill()
        try:
            return (await pool.prepare(Upload("big.png", slow_png))).error
        finally:
            pool.stop()

    assert asyncio.run(decode()) == "big.png: needs more memory to decode than there is; refusing it"


def test_the_service_process_never_decodes_an_image(predictor, monkeypatch):
    def not_here(*args, **kwargs):
        raise AssertionError("decoded in the service process")

    app = service.create_app(predictor)
    with TestClient(app) as client:
        # patched after the decoders started: only the service process has this decode
        monkeypatch.setattr(images, "decode", not_here)
        monkeypatch.setattr(images, "pixel_count", not_here)
        one = client.post("/predict", content=png(4), headers={"content-type": "image/png"})
        two = client.post(
            "/predict", files=[("i", ("2.png", png(2), "image/png")), ("i", ("6.png", png(6), "image/png"))]
        )
    assert one.status_code == 200 and one.json()[0]["digit"] == 4
    assert two.status_code == 200 and [r["digit"] for r in two.json()] == [2, 6]


@pytest.mark.parametrize(
    "reply",
    [
        b"",  # nothing
        decoders.DIGIT + b"\0" * 10,  # a digit of the wrong size
        decoders.DIGIT + np.full(784, np.nan, np.float32).tobytes(),  # not numbers
        decoders.DIGIT + np.full(784, 2.0, np.float32).tobytes(),  # not in [0, 1]
        decoders.COUNTS + b"\0" * 7,  # half a count
        pickle.dumps(Upload("x", b"")),  # a pickle is never run, whatever it holds
    ],
)
def test_a_reply_that_is_no_digit_count_or_error_is_refused(reply):
    with pytest.raises(ValueError):
        decoders.parse(reply)


def test_replies_are_read_back_as_sent():
    digit = np.linspace(0, 1, 784, dtype=np.float32).reshape(28, 28)
    assert np.array_equal(decoders.parse(decoders.DIGIT + digit.tobytes()), digit)
    assert decoders.parse(decoders.COUNTS + np.array([784, 0], ">i8").tobytes()) == [784, 0]
    assert decoders.parse(decoders.ERROR + b"a.png: not an\nimage") == "a.png: not an image"


def test_a_request_waits_behind_one_image_of_a_big_form_not_the_whole_form(predictor, slow_png):
    # One decoder, so the two requests share it: turns go image by image, first come first served.
    app = service.create_app(predictor, decoder_count=1)
    finished: dict[str, float] = {}

    def post(name: str, files: list) -> int:
        response = client.post("/predict", files=files)
        finished[name] = time.perf_counter()
        return response.status_code

    big = [("images", (f"photo{i}.png", slow_png, "image/png")) for i in range(2)]  # 98 MP: within the budget
    with TestClient(app) as client, concurrent.futures.ThreadPoolExecutor(2) as pool:
        form = pool.submit(post, "form", big)
        while app.state.decoders.idle:  # until the form holds the decoder
            time.sleep(0.005)
        small = pool.submit(post, "small", [("image", ("7.png", png(7), "image/png"))])
        assert (small.result(60), form.result(60)) == (200, 200)  # the bar reads as a 1
    assert finished["small"] < finished["form"]


# Each fills most of the 8 MB body limit. What the service must do with it: refuse it, naming
# the trick, or read its first frame; and answer /healthz while it does.
CRAFTED = {
    "scans.jpg": (lambda: crafted.scan_bomb(650_000), "scans; refusing it"),  # issue 25's file
    "scans-mpo.jpg": (lambda: crafted.mpo_wrapped(crafted.scan_bomb(650_000)), "scans; refusing it"),
    "segments.jpg": (lambda: crafted.many_segment_jpeg(0xE1), "parts; refusing it"),
    "chunks.png": (lambda: crafted.many_chunk_png(), "parts; refusing it"),
    "frames.gif": (lambda: crafted.many_frame_gif(), None),
    "frames.webp": (lambda: crafted.many_frame_webp(), None),
    "pages.tif": (lambda: crafted.many_page_tiff(), None),
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_a_crafted_file_is_refused_by_its_trick_or_read_and_healthz_answers_meanwhile(predictor, name):
    make, refusal = CRAFTED[name]
    content = make()
    assert len(content) < service.MAX_BODY_BYTES - 1000
    with TestClient(service.create_app(predictor)) as client, concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(client.post, "/predict", files={"image": (name, content, "application/octet-stream")})
        health = client.get("/healthz")
        response = answer.result(60)
    assert health.status_code == 200
    (record,) = response.json()
    if refusal is None:  # the first frame or page: a 7, or too little of one to say
        assert response.status_code in (200, 422) and record["path"] == name
        assert record.get("digit", 7) == 7 or record["error"].startswith(f"{name}: no digit found")
    else:
        assert response.status_code == 422 and record["error"].startswith(f"{name}: ") and refusal in record["error"]


def test_a_job_cancelled_half_way_costs_its_decoder_and_the_next_job_starts_another(slow_png):
    async def scenario() -> tuple[int, list[int], str | None]:
        pool = decoders.Decoders(size=2)
        await pool.fill()
        try:
            first = pool.idle[0]  # the next to be handed out
            job = asyncio.create_task(pool.prepare(Upload("slow.png", slow_png)))
            await asyncio.sleep(0.1)  # decoding
            job.cancel()  # a request given up on (a shutdown): the decoder's reply will never be read
            with pytest.raises(asyncio.CancelledError):
                await job
            after = await pool.prepare(Upload("7.png", png(7)))
            return first.process.pid, [decoder.process.pid for decoder in pool.started], after.error
        finally:
            pool.stop()

    killed, now, error = asyncio.run(scenario())
    assert error is None and len(now) == 2 and killed not in now  # not one decoder short from then on
    with pytest.raises(ProcessLookupError):
        os.kill(killed, 0)
