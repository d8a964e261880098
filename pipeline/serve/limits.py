"""The limits that keep a bad or hostile request from costing the service more than a bounded
amount of memory and time, and the one JSON shape of every refusal: {"error": "..."}.

A request body is counted as it streams in and cut off past MAX_BODY_BYTES (a Content-Length over
it is refused before a byte is read); a body that stops arriving is answered 408 after
`body_timeout` seconds; past MAX_PREDICTS requests with images (POST /predict and /feedback) at
once, more are shed with 503 and Retry-After before a byte of their body is read.
"""

import asyncio

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.predict import images

# 8 MB: a phone photo of a digit is 2-5 MB; images.py refuses more than 50 megapixels anyway.
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_FILES = 16  # images per request: enough for a page of digits, and one request stays short
# Seconds for a whole body to arrive: 8 MB needs ~2 Mbit/s. uvicorn's keep-alive timeout does not
# cover a body that stalls half-way, and each stalled request holds a connection slot.
BODY_TIMEOUT = 30.0
# Requests with images to decode (POST /predict and /feedback) answered at once, per worker; more
# are shed with 503. Their bodies stay under 64 x 8 MB. At 16, a closed loop of 32 clients on one
# worker had most of its requests shed (benchmarks/serve.py): that is load, not overload.
MAX_PREDICTS = 64
RETRY_AFTER = 1  # seconds: one request takes milliseconds to a second
# Pixels in all the images of one request, read from their headers: two photos at images.py's
# 50-megapixel limit for each.
MAX_REQUEST_PIXELS = 2 * images.MAX_PIXELS


def add_limits(app: FastAPI, max_body_bytes: int, body_timeout: float, max_predicts: int) -> None:
    """The body limits, the shedding of image requests (outermost: before any body is read) and
    the JSON refusals, on a FastAPI app."""
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(ClientDisconnect, client_gone)
    app.add_exception_handler(Exception, server_error)
    app.add_middleware(BodyLimits, max_bytes=max_body_bytes, timeout=body_timeout)
    app.add_middleware(Shed, paths=SHED, limit=max_predicts)


# The routes whose POSTs bring images to decode: one budget for all, since they share the bodies'
# memory and the decoder processes (a flood of corrections must not starve predictions of them).
SHED = ("/predict", "/feedback")


class Shed:
    """At most `limit` POSTs to `paths` at once, together; past it 503 with Retry-After, the body unread.

    uvicorn's own concurrency limit answers 503 in plain text to every route, /healthz included,
    which gets a healthy pod killed; shedding here keeps the cheap routes answering."""

    def __init__(self, app: ASGIApp, paths: tuple[str, ...], limit: int) -> None:
        self.app, self.paths, self.limit, self.busy = app, paths, limit, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        if self.busy >= self.limit:
            message = f"busy: {self.limit} requests are being answered; try again in {RETRY_AFTER} s"
            return await error_response(503, message, {"retry-after": str(RETRY_AFTER)})(scope, receive, send)
        self.busy += 1  # one event loop: no other request runs between the test and this
        try:
            await self.app(scope, receive, send)
        finally:
            self.busy -= 1


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
