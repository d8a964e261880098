"""POST /feedback?label=D: a user's correction of an answer, kept when the service collects.

With `--collect DIR` the image (one, as a form file or the raw body, as /predict takes it) is
decoded and normalised by the decoders, and the 28x28 the model saw is stored under its label
(collect.py). A label that is not one digit, a non-image, an image with no digit: a 4xx and
nothing written. A full store or a disk that refuses: 503, and /predict answers on. When a
token is set (the service listens beyond loopback), the request must carry
`Authorization: Bearer TOKEN`. GET /feedback says whether this service collects, for the page.
"""

import hmac
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from pipeline.collect.store import MAX_BYTES, MAX_FILES, Full, Store, label_of
from pipeline.serve.uploads import read_uploads

routes = APIRouter()


@dataclass(frozen=True)
class Collecting:
    store: Store
    token: str | None = None  # required as `Authorization: Bearer TOKEN` when set


@dataclass(frozen=True)
class CollectOptions:
    """What `--collect` and its options say; picklable, for the workers, each of which opens the store."""

    root: Path
    max_files: int = MAX_FILES
    max_bytes: int = MAX_BYTES
    token: str | None = None

    def open(self) -> Collecting:
        return Collecting(Store(self.root, self.max_files, self.max_bytes), self.token)

    def __repr__(self) -> str:  # never the token: a config is printed in tracebacks and logs
        return f"CollectOptions(root={str(self.root)!r}, max_files={self.max_files}, max_bytes={self.max_bytes})"


@routes.api_route("/feedback", methods=["GET", "HEAD"])
async def collecting(request: Request) -> dict:
    collecting: Collecting | None = request.app.state.collecting
    return {"collecting": collecting is not None, "token_required": bool(collecting and collecting.token)}


@routes.post("/feedback")
async def feedback(request: Request) -> JSONResponse:
    collecting: Collecting | None = request.app.state.collecting
    if collecting is None:
        raise HTTPException(403, "POST /feedback: this service does not collect (start it with --collect DIR)")
    authorize(request, collecting.token)
    label = request.query_params.get("label")
    if label is None:
        raise HTTPException(400, "label: missing; send ?label=D, the digit the image shows (0 to 9)")
    try:
        label_of(label)
    except ValueError as error:
        raise HTTPException(400, str(error)) from None
    uploads = await read_uploads(request, max_files=1)
    (prepared,) = await request.app.state.service.prepare(uploads)
    if prepared.error is not None:
        return JSONResponse({"error": prepared.error}, status_code=422)
    try:
        stored = await run_in_threadpool(collecting.store.save, prepared.digit28, label)
    except Full as error:
        raise HTTPException(503, f"{error}: not storing more; predictions go on") from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise HTTPException(503, f"cannot store the digit ({reason}); predictions go on") from None
    record = {"label": int(label), "stored": stored.path.as_posix(), "new": stored.created}
    return JSONResponse(record, status_code=201 if stored.created else 200)


def authorize(request: Request, token: str | None) -> None:
    """HTTPException 401 unless the request carries the token (compared in constant time)."""
    if token is None:
        return
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise HTTPException(401, "POST /feedback needs `Authorization: Bearer TOKEN`", {"www-authenticate": "Bearer"})
