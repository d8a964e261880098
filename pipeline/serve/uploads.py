"""The images of a /predict request: the files of a multipart form, or one image as the raw body."""

from contextlib import aclosing

from fastapi import Request
from python_multipart.multipart import parse_options_header
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.types import Message, Receive

from pipeline.predict.predictor import Upload

RAW_BODY_NAME = "body"  # the `path` of an image sent as the raw body: it came with no file name
RAW_TYPES = ("application/octet-stream",)  # and image/*


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
