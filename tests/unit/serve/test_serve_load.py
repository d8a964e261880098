"""Liveness and readiness apart from load: requests with images (POST /predict and /feedback,
one budget) are shed past their limit with a 503 JSON error and Retry-After, while /healthz and
/readyz answer; GET routes answer HEAD."""

import asyncio
import io

import httpx
import pytest
from fastapi.testclient import TestClient

from pipeline.collect.store import Store
from pipeline.predict import Predictor
from pipeline.serve import app as service
from pipeline.serve.feedback import Collecting
from testkit.builders import png_claiming
from testkit.glyphs import glyph


@pytest.fixture(scope="module")
def predictor(template_litert) -> Predictor:
    return Predictor.from_path(template_litert)


def png(digit: int) -> bytes:
    buffer = io.BytesIO()
    glyph(digit).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/model", "/"])
def test_every_get_route_answers_head_without_a_body(predictor, path):
    with TestClient(service.create_app(predictor)) as client:
        got, head = client.get(path), client.head(path)
    assert head.status_code == got.status_code == 200  # HEAD /healthz was 405
    assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"]


def test_readiness_names_the_model_that_answers(predictor):
    with TestClient(service.create_app(predictor)) as client:
        ready = client.get("/readyz").json()
        assert ready == {"status": "ready", "sha256": client.get("/model").json()["sha256"]}


@pytest.mark.parametrize(
    "held, shed_path",
    [("/predict", "/predict"), ("/feedback", "/predict"), ("/predict", "/feedback")],
)
def test_past_the_limit_image_requests_are_shed_with_retry_after_and_healthz_still_answers(
    predictor, tmp_path, held, shed_path
):
    # /predict and /feedback share one budget: both bring bodies to hold and images to decode.
    app = service.create_app(predictor, max_predicts=2, collecting=Collecting(Store(tmp_path)))
    query = {"/predict": "", "/feedback": "?label=7"}

    async def scenario() -> tuple[list[httpx.Response], *tuple[httpx.Response, ...]]:
        release = asyncio.Event()

        async def slow_body():  # a client sending its image slowly holds its place
            await release.wait()
            yield png(7)

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            headers = {"content-type": "image/png"}
            held_requests = [
                asyncio.create_task(client.post(held + query[held], content=slow_body(), headers=headers))
                for _ in range(2)
            ]
            await asyncio.sleep(0.2)  # both are in, waiting for their bodies
            shed = await client.post(shed_path + query[shed_path], content=png(1), headers=headers)
            health = await client.get("/healthz")
            collecting = await client.get("/feedback")  # a GET is never shed: the page asks it after each answer
            release.set()
            answered = await asyncio.gather(*held_requests)
            after = await client.post("/predict", content=png(1), headers=headers)  # room again
            return list(answered), shed, health, collecting, after

    answered, shed, health, collecting, after = asyncio.run(scenario())
    assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
    assert shed.json()["error"].startswith("busy: 2 requests are being answered")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert collecting.status_code == 200 and collecting.json()["collecting"] is True
    # Two corrections of the same digit: whichever is stored first is 201, the other 200.
    assert sorted(r.status_code for r in answered) == ([200, 200] if held == "/predict" else [200, 201])
    assert after.status_code == 200 and after.json()[0]["digit"] == 1


def form(*parts: tuple[str, bytes], boundary: str = "xyz") -> bytes:
    """A multipart form of files, as a browser writes it, closing delimiter included."""
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
        + content
        + b"\r\n"
        for name, content in parts
    )
    return body + f"--{boundary}--\r\n".encode()


def test_a_form_cut_short_anywhere_says_so_and_a_whole_one_is_read(predictor, capfd):
    whole = form(("one.png", png(1)), ("seven.png", png(7)))
    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    with TestClient(service.create_app(predictor), raise_server_exceptions=False) as client:
        assert [r["digit"] for r in client.post("/predict", content=whole, headers=headers).json()] == [1, 7]
        # Every cut: in a part's headers, in its image, between parts, inside the closing delimiter.
        for cut in sorted({*range(0, len(whole) - 2, 97), len(whole) - 9, len(whole) - 4}):
            response = client.post("/predict", content=whole[:cut], headers=headers)
            assert response.status_code == 400, cut
            # It was "the form holds no files", or the first image alone answered 200.
            assert response.json()["error"].startswith("the form ends before its closing boundary (--xyz--)"), cut
    assert "Expected boundary" not in capfd.readouterr().err  # python-multipart's own lines stay off stderr


def test_a_part_named_only_with_filename_star_is_refused_by_what_it_is(predictor):
    whole = form(("seven.png", png(7))).replace(b'filename="seven.png"', b"filename*=UTF-8''s%C3%A9ven.png")
    with TestClient(service.create_app(predictor)) as client:
        response = client.post("/predict", content=whole, headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert response.status_code == 400
    # It was "form field 'image' is not a file", which the client had sent as a file.
    assert response.json()["error"].startswith("form part 'image' names its file only with filename*=")


def test_a_request_of_more_pixels_in_all_than_its_budget_is_413_before_any_is_decoded(predictor):
    side = 7000  # 49 megapixels each: each under images.py's limit, three over the request's
    files = [("images", (f"big{i}.png", png_claiming(side, side), "image/png")) for i in range(3)]
    with TestClient(service.create_app(predictor)) as client:
        response = client.post("/predict", files=files)
    assert response.status_code == 413
    assert response.json()["error"] == (
        f"the images hold {3 * side * side:,} pixels in all;"
        f" a request may hold {service.MAX_REQUEST_PIXELS:,}: send fewer at once"
    )
