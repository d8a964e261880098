"""The prediction service as an ASGI app: `create_app(predictor)` -> FastAPI, no server in it.

    GET  /          the page (static/index.html): draw a digit or drop an image, see the answer
    POST /predict   images as multipart form files, or one image as the raw body (image/* or
                    application/octet-stream): a JSON list, one `predict --json` record per
                    image (path, digit, confidence, probabilities; or path and error), in order.
                    `?include=input` adds `input`, the 28x28 the model saw (rows of floats in
                    [0, 1]), to each classified image's record: the page shows it.
    GET  /healthz   {"status": "ok"}: liveness, answered at any load (never queued behind /predict)
    GET  /readyz    {"status": "ready", "sha256": ...}: readiness, a model is loaded and answering
    GET  /model     the model answering: file, format, sha256, md5, and the metrics that
                    measured that content, matched through dvc.lock's hashes (identity.py)
    POST /feedback  ?label=D and one image: a correction, stored when the service runs with
                    --collect DIR (feedback.py); GET /feedback says whether it does

The model follows its file: replaced on disk, it is reloaded by the next request (holder.py).

GET routes answer HEAD as well. Past MAX_PREDICTS requests with images (POST /predict and /feedback)
at once, more are shed with 503 {"error": ...} and Retry-After before a byte of their body is read
(the page shows "busy").

/predict answers 200 when every image was classified, 422 when any was not (the list still holds
every image's record), as `predict` exits 1 when one input failed. Any other refusal is a 4xx
with {"error": "..."} naming the problem, never a traceback; the limits on a request's size and
time are limits.py's, the reading of its images uploads.py's.

Images are decoded and normalised in decoder processes (decoders.py), never on the event loop:
one over its `decode_timeout` is stopped there and answered with an error record (422). A
request's images go one at a time, so a small request waits for one image of a big form at
most. A request holds at most MAX_REQUEST_PIXELS pixels in all (read from the headers): more
is 413. The model runs one call at a time (a LiteRT interpreter is not thread-safe).

The page's files are served from /static by the app itself: no CDN, it works offline.
"""

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from pipeline.predict.predictor import Prediction, Predictor, Upload
from pipeline.serve import decoders, feedback, identity
from pipeline.serve.feedback import Collecting
from pipeline.serve.holder import ModelHolder
from pipeline.serve.limits import BODY_TIMEOUT, MAX_BODY_BYTES, MAX_FILES, MAX_PREDICTS, MAX_REQUEST_PIXELS, add_limits
from pipeline.serve.uploads import read_uploads

STATIC = Path(__file__).parent / "static"  # the page: index.html, page.js, page.css
INLINE_DIGITS = 1  # a model call for this many digits runs on the event loop when the model is free
INCLUDES = ("input",)  # what ?include= may add to a record
INPUT_DECIMALS = 3  # the 28x28's values in `input`: a 1/1000 step is finer than any screen shows

routes = APIRouter()


def create_app(
    predictor: Predictor,
    body_timeout: float = BODY_TIMEOUT,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_files: int = MAX_FILES,
    max_predicts: int = MAX_PREDICTS,
    decode_timeout: float = decoders.DEADLINE,
    decoder_count: int = decoders.SIZE,
    collecting: Collecting | None = None,
) -> FastAPI:
    """The service answering from `predictor`, and from its file's new content when that changes;
    with `collecting`, keeping the corrections POST /feedback sends (feedback.py)."""
    service = Service(ModelHolder(predictor), decoders.Decoders(size=decoder_count, deadline=decode_timeout), max_files)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.pool.fill()
        try:
            yield
        finally:
            service.pool.stop()

    app = FastAPI(title="MNIST digits", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.service, app.state.decoders, app.state.collecting = service, service.pool, collecting
    # python-multipart logs each malformed body on stderr as well; its client gets the 400 here.
    logging.getLogger("python_multipart").setLevel(logging.ERROR)
    app.include_router(routes)
    app.include_router(feedback.routes)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_limits(app, max_body_bytes, body_timeout, max_predicts)
    return app


@dataclass
class Service:
    """What the routes answer from: the model (following its file), the decoders, the form limit."""

    holder: ModelHolder  # hashes the model file once per load, never per request
    pool: decoders.Decoders  # the decoder processes
    max_files: int
    # One model call at a time: a LiteRT interpreter is not thread-safe. One lock for old and new
    # models alike, so a swap never doubles the CPU the model takes.
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, predictor: Predictor, prepared: list[Prediction]) -> list[Prediction]:
        with self.lock:
            return predictor.answer(prepared)

    async def answer_soon(self, predictor: Predictor, prepared: list[Prediction]) -> list[Prediction]:
        # One digit is answered here when the model is free: the call takes a fraction of a
        # millisecond, less than a hop to a worker thread. A batch, or a wait, goes to the thread.
        digits = sum(p.error is None for p in prepared)
        if digits <= INLINE_DIGITS and self.lock.acquire(blocking=False):
            try:
                return predictor.answer(prepared)
            finally:
                self.lock.release()
        return await run_in_threadpool(self.answer, predictor, prepared)

    async def prepare(self, uploads: list[Upload]) -> list[Prediction]:
        """Each upload decoded by the decoders, one at a time; HTTPException (413) past the pixel budget."""
        if len(uploads) > 1:  # one image is within images.MAX_PIXELS, which is within the budget
            counts = await self.pool.pixel_counts(uploads)
            if isinstance(counts, str):  # the headers alone overran the deadline
                return [Prediction(upload.name, error=counts) for upload in uploads]
            if sum(counts) > MAX_REQUEST_PIXELS:
                raise HTTPException(
                    413,
                    f"the images hold {sum(counts):,} pixels in all;"
                    f" a request may hold {MAX_REQUEST_PIXELS:,}: send fewer at once",
                )
        return [await self.pool.prepare(upload) for upload in uploads]


@routes.post("/predict")
async def predict(request: Request) -> JSONResponse:
    service: Service = request.app.state.service
    with_input = "input" in included(request)
    uploads = await read_uploads(request, service.max_files)
    prepared = await service.prepare(uploads)
    loaded = await service.holder.model()  # this request answers from this model, whatever loads meanwhile
    predictions = await service.answer_soon(loaded.predictor, prepared)
    status = 200 if all(p.error is None for p in predictions) else 422
    return JSONResponse([served_record(p, with_input) for p in predictions], status_code=status)


@routes.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@routes.api_route("/healthz", methods=["GET", "HEAD"])
async def healthz() -> dict:
    return {"status": "ok"}


@routes.api_route("/readyz", methods=["GET", "HEAD"])
async def readyz(request: Request) -> dict:
    loaded = await request.app.state.service.holder.model()
    return {"status": "ready", "sha256": loaded.content.sha256 if loaded.content else None}


@routes.api_route("/model", methods=["GET", "HEAD"])
async def model(request: Request) -> dict:
    # dvc.lock and metrics/ are read now, not at load: they change under a running service
    # (`git checkout -- dvc.lock metrics/`), and /model must not vouch for a stale match.
    holder = request.app.state.service.holder
    loaded = await holder.model()
    predictor = loaded.predictor
    info = await run_in_threadpool(identity.describe, predictor.source, predictor.format, loaded.content)
    return {**info, "refused": holder.refused}


def included(request: Request) -> set[str]:
    """The extras named by ?include= (comma-separated, or repeated); HTTPException on an unknown one."""
    values = request.query_params.getlist("include")
    names = {name.strip() for value in values for name in value.split(",") if name.strip()}
    unknown = sorted(names - set(INCLUDES))
    if unknown:
        raise HTTPException(400, f"include={unknown[0]!r}: the only extra a record can include is 'input'")
    return names


def served_record(prediction: Prediction, with_input: bool) -> dict:
    """The `predict --json` record, plus `input` (the 28x28 rows) when asked and classified."""
    record = prediction.record()
    if with_input and prediction.error is None:
        record["input"] = prediction.digit28.round(INPUT_DECIMALS).tolist()
    return record
