"""Running the service under uvicorn, in one process or several, as uvicorn runs workers.

`ServeConfig` is uvicorn's Config carrying our options; each process that serves builds its own
app from them (`load_app`), so with `workers` > 1 every worker loads its own model and decoders,
and the parent only binds the socket and watches the workers (uvicorn's Multiprocess).
"""

import asyncio
import socket
from pathlib import Path

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import Multiprocess

from pipeline.core.errors import PipelineError
from pipeline.predict.predictor import Predictor
from pipeline.serve.app import create_app
from pipeline.serve.feedback import CollectOptions

# Connections served at once, per worker; past it uvicorn answers 503 in plain text to every
# route. The app sheds /predict itself past app.MAX_PREDICTS (which bounds the bodies in
# memory), so this only bounds idle and cheap connections, and /healthz keeps answering.
MAX_CONNECTIONS = 256
GRACEFUL_SHUTDOWN = 5  # seconds Ctrl-C waits for requests in flight
HEAD_TIMEOUT = 10.0  # seconds for a request line and headers, a few hundred bytes, to arrive
MAX_HEAD_BYTES = 64 * 1024  # request line and headers; the body is app.MAX_BODY_BYTES


class ServeConfig(uvicorn.Config):
    """uvicorn's Config plus the service's options; picklable, for the workers uvicorn spawns."""

    def __init__(
        self,
        model: Path,
        workers: int,
        head_timeout: float,
        body_timeout: float,
        decode_timeout: float,
        loaded: Predictor | None = None,
        collect: CollectOptions | None = None,
    ) -> None:
        """`loaded`: the model already loaded from `model`, for one process (never pickled then);
        `collect`: where and how POST /feedback stores corrections, if it does."""
        self.model, self.loaded, self.head_timeout, self.collect = model, loaded, head_timeout, collect
        self.body_timeout, self.decode_timeout = body_timeout, decode_timeout
        super().__init__(
            "pipeline.serve.app:create_app",  # named for uvicorn's checks; load_app builds it
            workers=workers,
            log_level="warning",  # the line `main` prints says where; no per-request log lines
            limit_concurrency=MAX_CONNECTIONS,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
            http=HeadTimeout,
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        )

    def load_app(self):  # in the process that serves: its own model, its own decoders
        predictor = self.loaded or Predictor.from_path(self.model)
        collecting = self.collect.open() if self.collect else None
        return create_app(
            predictor, body_timeout=self.body_timeout, decode_timeout=self.decode_timeout, collecting=collecting
        )


class HeadTimeout(H11Protocol):
    """uvicorn's HTTP/1.1, closing a connection that has no request under way and no complete
    head `config.head_timeout` seconds after it opened or after its last response.

    uvicorn times out only idle connections between requests, so MAX_CONNECTIONS connections that
    open and send nothing, or half a head, would otherwise hold every slot."""

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
        self.head_timer = self.loop.call_later(self.config.head_timeout, self.overdue)

    def overdue(self) -> None:
        # A cycle whose response is not complete is a request under way: the body timeout and
        # the app deal with it. Otherwise its head is late (or the connection idle).
        under_way = self.cycle is not None and not self.cycle.response_complete
        if not under_way and not self.transport.is_closing():
            self.transport.close()


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


def serve(config: ServeConfig, listener: socket.socket) -> None:
    """Serve until a signal stops it: in this process, or in `config.workers` worker processes
    that uvicorn keeps alive (a worker that dies is restarted). KeyboardInterrupt when stopped."""
    if config.workers == 1:
        uvicorn.Server(config).run(sockets=[listener])  # re-raises the SIGINT that stopped it
        return
    supervisor = Multiprocess(config, sockets=[listener])
    supervisor.run()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        raise PipelineError("a worker failed to start (its error is above); no worker is serving")
    raise KeyboardInterrupt  # Multiprocess returns only once a signal has stopped every worker
