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

The model follows its file: replaced on disk, it is reloaded by the next request (holder.py).

GET routes answer HEAD as well. Past MAX_PREDICTS requests to /predict at once, more are shed with
503 {"error": ...} and Retry-After before a byte of their body is read (the page shows "busy").

/predict answers 200 when every image was classified, 422 when any was not (the list still holds
every image's record), as `predict` exits 1 when one input failed. Any other refusal is a 4xx
with {"error": "..."} naming the problem, never a traceback. Memory per request is bounded: the
body is counted as it streams in and cut off past MAX_BODY_BYTES (a Content-Length over it is
refused before a byte is read), a form holds at most MAX_FILES images, and a body that stops
arriving is answered 408 after `body_timeout` seconds.

Images are decoded and normalised in decoder processes (decoders.py), never on the event loop:
one over its `decode_timeout` is stopped there and answered with an error record (422). A
request's images go one at a time, so a small request waits for one image of a big form at
most. A request holds at most MAX_REQUEST_PIXELS pixels in all (read from the headers): more
is 413. The model runs one call at a time (a LiteRT interpreter is not thread-safe).

The page's files are served from /static by the app itself: no CDN, it works offline.
"""

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from python_multipart.multipart import parse_options_header
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.predict import images
from pipeline.predict.command import as_record
from pipeline.predict.predictor import Prediction, Predictor, Upload
from pipeline.serve import decoders, identity
from pipeline.serve.holder import ModelHolder

# 8 MB: a phone photo of a digit is 2-5 MB; images.py refuses more than 50 megapixels anyway.
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_FILES = 16  # images per request: enough for a page of digits, and one request stays short
# Seconds for a whole body to arrive: 8 MB needs ~2 Mbit/s. uvicorn's keep-alive timeout does not
# cover a body that stalls half-way, and each stalled request holds a connection slot.
BODY_TIMEOUT = 30.0
RAW_BODY_NAME = "body"  # the `path` of an image sent as the raw body: it came with no file name
RAW_TYPES = ("application/octet-stream",)  # and image/*
STATIC = Path(__file__).parent / "static"  # the page: index.html, page.js, page.css
INLINE_DIGITS = 1  # a model call for this many digits runs on the event loop when the model is free
INCLUDES = ("input",)  # what ?include= may add to a record
# /predict requests answered at once, per worker; more are shed with 503. Their bodies stay under
# 64 x 8 MB, and 64 one-digit requests queue for a fraction of a second. At 16, 32 clients of one
# worker saw most of their requests shed (benchmarks/serve.py): a closed loop of 32 is load, not overload.
MAX_PREDICTS = 64
RETRY_AFTER = 1  # seconds: one request takes milliseconds to a second
# Pixels in all the images of one request, read from their headers: two photos at images.py's
# 50-megapixel limit for each; 14 of them took seconds to read.
MAX_REQUEST_PIXELS = 2 * images.MAX_PIXELS
INPUT_DECIMALS = 3  # the 28x28's values in `input`: a 1/1000 step is finer than any screen shows


def create_app(
    predictor: Predictor,
    body_timeout: float = BODY_TIMEOUT,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_files: int = MAX_FILES,
    max_predicts: int = MAX_PREDICTS,
    decode_timeout: float = decoders.DEADLINE,
    decoder_count: int = decoders.SIZE,
) -> FastAPI:
    """The service answering from `predictor`, and from its file's new content when that changes."""
    pool = decoders.Decoders(size=decoder_count, deadline=decode_timeout)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.fill()
        try:
            yield
        finally:
            pool.stop()

    app = FastAPI(title="MNIST digits", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.decoders = pool
    # python-multipart logs each malformed body on stderr as well; its client gets the 400 here.
    logging.getLogger("python_multipart").setLevel(logging.ERROR)
    holder = ModelHolder(predictor)  # follows the model file; hashes it once per load, never per request
    # One model call at a time: a LiteRT interpreter is not thread-safe. One lock for old and new
    # models alike, so a swap never doubles the CPU the model takes.
    lock = threading.Lock()

    def answer(predictor: Predictor, prepared: list[Prediction]) -> list[Prediction]:
        with lock:
            return predictor.answer(prepared)

    async def answer_soon(predictor: Predictor, prepared: list[Prediction]) -> list[Prediction]:
        # One digit is answered here when the model is free: the call takes a fraction of a
        # millisecond, less than a hop to a worker thread. A batch, or a wait, goes to the thread.
        digits = sum(p.error is None for p in prepared)
        if digits <= INLINE_DIGITS and lock.acquire(blocking=False):
            try:
                return predictor.answer(prepared)
            finally:
                lock.release()
        return await run_in_threadpool(answer, predictor, prepared)

    async def prepare(uploads: list[Upload]) -> list[Prediction] | None:
        """Each upload decoded by the pool, one at a time; None if the request is over its budget."""
        if len(uploads) > 1:  # one image is within images.MAX_PIXELS, which is within the budget
            counts = await pool.pixel_counts(uploads)
            if isinstance(counts, str):  # the headers alone overran the deadline
                return [Prediction(upload.name, error=counts) for upload in uploads]
            if sum(counts) > MAX_REQUEST_PIXELS:
                raise HTTPException(
                    413,
                    f"the images hold {sum(counts):,} pixels in all;"
                    f" a request may hold {MAX_REQUEST_PIXELS:,}: send fewer at once",
                )
        return [await pool.prepare(upload) for upload in uploads]

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        with_input = "input" in included(request)
        uploads = await read_uploads(request, max_files)
        prepared = await prepare(uploads)
        loaded = await holder.model()  # this request answers from this model, whatever loads meanwhile
        predictions = await answer_soon(loaded.predictor, prepared)
        status = 200 if all(p.error is None for p in predictions) else 422
        return JSONResponse([served_record(p, with_input) for p in predictions], status_code=status)

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.api_route("/healthz", methods=["GET", "HEAD"])
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.api_route("/readyz", methods=["GET", "HEAD"])
    async def readyz() -> dict:
        loaded = await holder.model()
        return {"status": "ready", "sha256": loaded.content.sha256 if loaded.content else None}

    @app.api_route("/model", methods=["GET", "HEAD"])
    async def model() -> dict:
        # dvc.lock and metrics/ are read now, not at load: they change under a running service
        # (`git checkout -- dvc.lock metrics/`), and /model must not vouch for a stale match.
        loaded = await holder.model()
        predictor = loaded.predictor
        info = await run_in_threadpool(identity.describe, predictor.source, predictor.format, loaded.content)
        return {**info, "refused": holder.refused}

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(ClientDisconnect, client_gone)
    app.add_exception_handler(Exception, server_error)
    app.add_middleware(BodyLimits, max_bytes=max_body_bytes, timeout=body_timeout)
    app.add_middleware(Shed, path="/predict", limit=max_predicts)  # outermost: before any body is read
    return app


class Shed:
    """At most `limit` requests to `path` at once; past it 503 with Retry-After, the body unread.

    uvicorn's own concurrency limit answers 503 in plain text to every route, /healthz included,
    which gets a healthy pod killed; shedding here keeps the cheap routes answering."""

    def __init__(self, app: ASGIApp, path: str, limit: int) -> None:
        self.app, self.path, self.limit, self.busy = app, path, limit, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            return await self.app(scope, receive, send)
        if self.busy >= self.limit:
            message = f"busy: {self.limit} requests are being answered; try again in {RETRY_AFTER} s"
            return await error_response(503, message, {"retry-after": str(RETRY_AFTER)})(scope, receive, send)
        self.busy += 1  # one event loop: no other request runs between the test and this
        try:
            await self.app(scope, receive, send)
        finally:
            self.busy -= 1


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
    record = as_record(prediction, top=1)
    if with_input and prediction.error is None:
        record["input"] = prediction.digit28.round(INPUT_DECIMALS).tolist()
    return record


async def read_uploads(request: Request, max_files: int) -> list[Upload]:
    """The images of a request: its form's files, or its body; HTTPException if neither."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        return await form_uploads(request, max_files)
    if kind in RAW_TYPES or kind.startswith("image/"):
        return [Upload(RAW_BODY_NAME, await request.body())]
    raise HTTPException(
        415,
        f"Content-Type {kind or '(none)'}: send images as multipart/form-data files, "
        "or one image as the body with Content-Type image/* or application/octet-stream",
    )


async def form_uploads(request: Request, max_files: int) -> list[Upload]:
    _, options = parse_options_header(request.headers["content-type"])  # as the form parser reads it
    boundary = options.get(b"boundary", b"").decode("latin-1")
    ending = Ending(request.receive, f"--{boundary}--".encode())
    request = Request(request.scope, ending)
    try:
        async with aclosing(request.stream()) as stream:
            form = await Parts(request.headers, stream, max_files=max_files, max_fields=max_files).parse()
    except MultiPartException as error:
        raise HTTPException(400, error.message) from None
    # Starlette spools each file past 1 MB to a temporary file, closed at the end.
    try:
        if not boundary or not ending.seen:
            # python-multipart keeps what it parsed of a body cut short and drops the rest unsaid.
            raise HTTPException(
                400,
                f"the form ends before its closing boundary ({ending.delimiter.decode(errors='replace')}):"
                " a truncated upload?",
            )
        fields = [name for name, value in form.multi_items() if not isinstance(value, UploadFile)]
        if fields:
            raise HTTPException(400, f"form field {fields[0]!r} is not a file: send images as files")
        files = [value for _, value in form.multi_items()]
        if not files:
            raise HTTPException(400, "the form holds no files: send one or more images")
        return [Upload(file_name(file, index), await file.read()) for index, file in enumerate(files)]
    finally:
        await form.close()


class Parts(MultiPartParser):
    """Starlette's form parser, saying why a part named with `filename*=` is not a file.

    RFC 7578 (4.2) forbids RFC 5987's `filename*=` in multipart/form-data, and python-multipart
    drops it, so such a part reads as a text field: refused, but by what it is."""

    def on_headers_finished(self) -> None:
        disposition = self._current_part.content_disposition or b""  # noqa: SLF001 (the part being read)
        _, options = parse_options_header(disposition)
        if b"filename" not in options and b"filename*=" in disposition.lower():
            name = options.get(b"name", b"").decode("latin-1")
            raise MultiPartException(
                f"form part {name!r} names its file only with filename*=, which multipart/form-data does "
                'not allow (RFC 7578, 4.2): send filename="..." (UTF-8 is fine there)'
            )
        super().on_headers_finished()


class Ending:
    """A request's `receive`, watching its body for a multipart form's closing delimiter."""

    def __init__(self, receive: Receive, delimiter: bytes) -> None:
        self.receive, self.delimiter, self.seen, self.tail = receive, delimiter, False, b""

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.request" and not self.seen:
            window = self.tail + message.get("body", b"")
            self.seen = self.delimiter in window
            self.tail = window[-(len(self.delimiter) - 1) :]  # a delimiter split across two chunks
        return message


def file_name(file: UploadFile, index: int) -> str:
    """The upload's file name as the client sent it, for `path`.

    Multipart names are bytes; Starlette decodes them as UTF-8 and, where that fails, as
    Latin-1, so any bytes make some name and never an error (b"\\xff.png" is "ÿ.png").
    """
    return file.filename or f"file {index + 1}"


class BodyLimits:
    """ASGI middleware: a request body of at most `max_bytes`, arriving within `timeout` seconds.

    A declared Content-Length over the limit is refused before the app runs; a chunked or lying
    body is counted as it streams in and stopped by HTTPException (413, or 408 when it stalls)
    raised where the app reads it, so no more than `max_bytes` is ever held.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float) -> None:
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:  # uvicorn has checked it is a number
            return await error_response(413, self.too_large())(scope, receive, send)
        deadline = asyncio.get_running_loop().time() + self.timeout
        received, complete = 0, False

        async def limited() -> Message:
            nonlocal received, complete
            if complete:  # the body is in; Starlette may wait for a disconnect with no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), deadline - asyncio.get_running_loop().time())
            except TimeoutError:
                raise HTTPException(408, f"the request body did not arrive within {self.timeout:g} s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise HTTPException(413, self.too_large())
            return message

        await self.app(scope, limited, send)

    def too_large(self) -> str:
        return f"the request body is over the {self.max_bytes:,}-byte limit"


# Refusals that leave part of the body unread end the connection: the rest would be read as the
# next request.
CLOSING = {408, 413, 503}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    headers = dict(headers or {})
    if status in CLOSING:
        headers["connection"] = "close"
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def http_error(request: Request, error: HTTPException) -> JSONResponse:
    """404, 405, and the refusals above, as {"error": ...}; 404/405 name the method and path."""
    message = (
        error.detail
        if error.status_code not in (404, 405)
        else (f"{request.method} {request.url.path}: {error.detail.lower()}")
    )
    return error_response(error.status_code, message, error.headers)


async def client_gone(request: Request, error: ClientDisconnect) -> JSONResponse:
    """The client hung up mid-body: nobody will read the answer, and it is no bug to log."""
    return error_response(400, "the client closed the connection before sending the whole body")


async def server_error(request: Request, error: Exception) -> JSONResponse:
    """A bug: the client gets one line, the server's log the traceback (uvicorn prints it)."""
    return error_response(500, f"internal error ({type(error).__name__}); the server log has the details")
