"""`python -m pipeline.serve [--model PATH] [--host 127.0.0.1] [--port 8000]`
                          `[--head-timeout S] [--body-timeout S]`

Loads the model (as `predict` does: the LiteRT export if there is one, else Keras), binds the
socket, prints one line saying where it listens, and serves until Ctrl-C (exit 130, after the
requests in flight finish or GRACEFUL_SHUTDOWN seconds pass). `--port 0` takes a free port; the
line names it. A connection whose request head (request line and headers) does not arrive within
`--head-timeout` seconds is closed: uvicorn times out only idle connections between requests, so
MAX_CONNECTIONS connections that open and send nothing, or half a head, would otherwise hold every slot.
"""
import argparse
import asyncio
import socket

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from pipeline import cli, paths
from pipeline.errors import PipelineError
from pipeline.predict.command import path_argument
from pipeline.predict.predictor import Predictor
from pipeline.serve.app import BODY_TIMEOUT, create_app

# Connections served at once; past it uvicorn answers 503 in plain text to every route. The app
# sheds /predict itself past app.MAX_PREDICTS (which bounds the bodies in memory), so this only
# bounds idle and cheap connections, and /healthz keeps answering under a load of predictions.
MAX_CONNECTIONS = 256
GRACEFUL_SHUTDOWN = 5  # seconds Ctrl-C waits for requests in flight
HEAD_TIMEOUT = 10.0  # seconds for a request line and headers, a few hundred bytes, to arrive


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.serve", description="Serve digit predictions over HTTP.")
    model_help = f"a .tflite or .keras model (default: {paths.LITERT_FLOAT32} if exported, else {paths.MODEL})"
    parser.add_argument("--model", type=path_argument, metavar="PATH", help=model_help)
    host_help = "address to listen on (default: 127.0.0.1, this machine only)"
    parser.add_argument("--host", default="127.0.0.1", help=host_help)
    parser.add_argument("--port", type=int, default=8000, help="port to listen on; 0 takes a free one (default: 8000)")
    head_help = f"seconds a request's head may take to arrive, else the connection closes (default: {HEAD_TIMEOUT:g})"
    parser.add_argument("--head-timeout", type=float, default=HEAD_TIMEOUT, metavar="S", help=head_help)
    timeout_help = f"seconds a request body may take to arrive, else 408 (default: {BODY_TIMEOUT:g})"
    parser.add_argument("--body-timeout", type=float, default=BODY_TIMEOUT, metavar="S", help=timeout_help)
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")
    for option in ("head_timeout", "body_timeout"):
        if not getattr(args, option) > 0:
            parser.error(f"--{option.replace('_', '-')} must be positive, got {getattr(args, option):g}")
    return args


def head_timeout_protocol(seconds: float) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol, closing a connection that has no request under way and no
    complete head `seconds` after it opened or after its last response."""

    class HeadTimeout(H11Protocol):
        head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self.arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self.head_timer is not None:
                self.head_timer.cancel()
            super().connection_lost(exc)

        def arm(self) -> None:
            if self.head_timer is not None:
                self.head_timer.cancel()
            self.head_timer = self.loop.call_later(seconds, self.overdue)

        def overdue(self) -> None:
            # A cycle whose response is not complete is a request under way: the body timeout
            # and the app deal with it. Otherwise its head is late (or the connection idle).
            under_way = self.cycle is not None and not self.cycle.response_complete
            if not under_way and not self.transport.is_closing():
                self.transport.close()

    return HeadTimeout


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port; PipelineError naming it if that is impossible."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        listener = socket.socket(family, kind, proto)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart reuses the port at once
        listener.bind(address)
        listener.listen(2048)
    except OSError as error:  # socket.gaierror too: an unknown host name
        raise PipelineError(f"cannot listen on {host}:{port} ({error.strerror or error})") from None
    return listener


def url(listener: socket.socket) -> str:
    host, port = listener.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    predictor = Predictor.from_path(args.model)
    app = create_app(predictor, body_timeout=args.body_timeout)
    listener = listen(args.host, args.port)
    print(f"serving {predictor.source} ({predictor.format}) on {url(listener)}; Ctrl-C stops it", flush=True)
    config = uvicorn.Config(
        app,
        log_level="warning",  # the line above says where; no per-request log lines
        limit_concurrency=MAX_CONNECTIONS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        http=head_timeout_protocol(args.head_timeout),
        h11_max_incomplete_event_size=64 * 1024,  # request line and headers; the body is MAX_BODY_BYTES
    )
    uvicorn.Server(config).run(sockets=[listener])
    return 0


if __name__ == "__main__":
    cli.run(main, interrupted=cli.COMMAND_INTERRUPTED)
