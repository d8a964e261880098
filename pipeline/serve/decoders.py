"""Decoding untrusted images in worker processes, each image under a deadline.

An image's format decides how much work its bytes cost: a JPEG's scans, a PNG's chunks, a
GIF's frames. Limits on pixels and scans catch the tricks known today; a deadline catches the
rest. A thread cannot be stopped half-way through a decoder's C code, a process can: each image
is decoded and normalised (`predictor.prepare`, exactly as `predict` does it) by one of SIZE
processes, and one that is not done within `deadline` seconds is killed and replaced, its image
answered with an error record. The event loop only sends bytes and reads 28x28s back.

Each request's images go one at a time, and idle decoders are handed out first come, first
served: a form of many big photos takes one decoder per turn, never all of them, so a small
request waits for one image at most, not for the whole form.

Replies are not pickles: a decoder reads hostile bytes through C code, and unpickling what it
sends would let a decoder exploit run code in the service. A reply is a tag and either a
28x28 of float32 or a line of text, checked for both.
"""

import asyncio
import collections
import multiprocessing
import pickle
import resource
import signal
import socket
import struct
from typing import Any

import numpy as np

from pipeline.core.datasets import IMAGE_SHAPE
from pipeline.predict import images
from pipeline.predict.predictor import Prediction, Upload, prepare

SIZE = 2  # decoders per service process: one held by a bomb until its deadline leaves one working
DEADLINE = 5.0  # seconds to decode and normalise one image; a 50-megapixel photo takes about one
# Address space per decoder: an idle one maps 0.3 GiB, one reading a 49-megapixel photo peaks at
# 0.75 GiB. Past the limit the decoder's allocation fails, not the machine.
MEMORY = 2 * 1024**3
# Forked from a server that has imported the decoders once: a replacement starts in milliseconds.
CONTEXT = multiprocessing.get_context("forkserver")
HEADER = struct.Struct("!Q")  # a frame's length
DIGIT, ERROR, COUNTS = b"D", b"E", b"C"  # reply tags
DIGIT_BYTES = int(np.prod(IMAGE_SHAPE)) * 4  # float32


class Decoders:
    """SIZE decoder processes, started by `fill()` (or by the first job) and stopped by `stop()`."""

    def __init__(self, size: int = SIZE, deadline: float = DEADLINE, memory: int = MEMORY) -> None:
        self.size, self.deadline, self.memory = size, deadline, memory
        self.idle: collections.deque[Decoder] = collections.deque()
        self.waiting: collections.deque[asyncio.Future] = collections.deque()
        self.started: list[Decoder] = []
        self.filling = False  # one fill at a time: two would start more than SIZE

    async def fill(self) -> None:
        """Start decoders until there are SIZE: each in a thread, handed out here, in the loop."""
        if self.filling:
            return
        self.filling = True
        try:
            while len(self.started) < self.size:
                self.add(await asyncio.to_thread(Decoder.start, self.memory))
        finally:
            self.filling = False

    def stop(self) -> None:
        for decoder in self.started:
            decoder.kill()
        self.started.clear()
        self.idle.clear()

    async def prepare(self, upload: Upload) -> Prediction:
        """`upload` decoded and normalised (`digit28`), or an error record naming it."""
        reply = await self.run(("prepare", upload), upload.name)
        if isinstance(reply, str):
            return Prediction(upload.name, error=reply)
        return Prediction(upload.name, digit28=reply)

    async def pixel_counts(self, uploads: list[Upload]) -> list[int] | str:
        """The pixels each upload's header claims (0 for no image of ours), or why not known."""
        return await self.run(("count", [upload.content for upload in uploads]), "the images' headers")

    async def run(self, job: tuple, name: str) -> Any:
        decoder = await self.acquire()
        if not decoder.process.is_alive():  # killed while idle (the OOM killer, a person): not this image's fault
            await self.replace(decoder)
            return await self.run(job, name)
        try:
            reply = await asyncio.wait_for(decoder.call(job), self.deadline)
        except TimeoutError:
            await self.replace(decoder)
            return f"{name}: not decoded within {self.deadline:g} s; refusing it (a decoding bomb?)"
        except (OSError, EOFError, ValueError):  # it died (a crash in C code), or sent nonsense
            await self.replace(decoder)
            return f"{name}: the decoder stopped while reading it; refusing it (a damaged or hostile file?)"
        except BaseException:  # cancelled mid-job: its reply would be read as the next job's
            self.drop(decoder)  # the next job starts another
            raise
        self.release(decoder)
        return reply

    async def acquire(self) -> "Decoder":
        if len(self.started) < self.size:  # not started yet (an app run without its lifespan), or one lost
            await self.fill()
        if self.idle and not self.waiting:
            return self.idle.popleft()
        turn = asyncio.get_running_loop().create_future()
        self.waiting.append(turn)
        try:
            return await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release(turn.result())
            raise

    def release(self, decoder: "Decoder") -> None:
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(decoder)
                return
        self.idle.append(decoder)

    def add(self, decoder: "Decoder") -> None:
        self.started.append(decoder)
        self.release(decoder)

    async def replace(self, decoder: "Decoder") -> None:
        self.drop(decoder)
        await self.fill()

    def drop(self, decoder: "Decoder") -> None:
        decoder.kill()
        if decoder in self.started:  # not if stop() came first, at shutdown
            self.started.remove(decoder)


class Decoder:
    """One decoder process and the parent's end of its socket."""

    def __init__(self, process: multiprocessing.process.BaseProcess, connection: socket.socket) -> None:
        self.process, self.connection = process, connection

    @classmethod
    def start(cls, memory: int) -> "Decoder":
        """A new decoder process (blocking for the few ms the forkserver takes; the first call
        starts the forkserver, a fraction of a second)."""
        CONTEXT.set_forkserver_preload(["pipeline.serve.decoders"])
        ours, theirs = socket.socketpair()
        process = CONTEXT.Process(target=serve, args=(theirs, memory), daemon=True, name="decoder")
        process.start()
        theirs.close()
        ours.setblocking(False)
        return cls(process, ours)

    async def call(self, job: tuple) -> Any:
        loop = asyncio.get_running_loop()
        payload = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)  # to the decoder: trusted
        await loop.sock_sendall(self.connection, HEADER.pack(len(payload)) + payload)
        (length,) = HEADER.unpack(await receive(loop, self.connection, HEADER.size))
        if length > images.MAX_PIXELS:  # no reply is this long: a decoder gone wrong
            raise ValueError(f"a reply of {length:,} bytes")
        return parse(await receive(loop, self.connection, length))

    def kill(self) -> None:
        self.connection.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(1)


async def receive(loop: asyncio.AbstractEventLoop, connection: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = await loop.sock_recv(connection, size - len(data))
        if not chunk:
            raise EOFError("the decoder closed its socket")
        data += chunk
    return bytes(data)


def parse(reply: bytes) -> np.ndarray | list[int] | str:
    """A decoder's reply as a 28x28, a list of pixel counts or an error line; ValueError if it is none."""
    tag, body = reply[:1], reply[1:]
    if tag == DIGIT and len(body) == DIGIT_BYTES:
        digit = np.frombuffer(body, dtype=np.float32).reshape(IMAGE_SHAPE).copy()
        if np.isfinite(digit).all() and digit.min() >= 0 and digit.max() <= 1:
            return digit
    elif tag == COUNTS and len(body) % 8 == 0:
        return [int(count) for count in np.frombuffer(body, dtype=">i8")]
    elif tag == ERROR:
        return " ".join(body.decode("utf-8", errors="replace").split())
    raise ValueError("a reply that is no digit, count or error")


def serve(connection: socket.socket, memory: int) -> None:
    """The decoder process: answer jobs until the service closes its end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the service ends us
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    connection.setblocking(True)
    with connection:
        while True:
            try:
                header = read_exactly(connection, HEADER.size)
            except EOFError:
                return
            (length,) = HEADER.unpack(header)
            job = pickle.loads(read_exactly(connection, length))
            reply = answer(job)
            connection.sendall(HEADER.pack(len(reply)) + reply)


def answer(job: tuple) -> bytes:
    kind, argument = job
    if kind == "count":
        return COUNTS + np.array([images.pixel_count(content) for content in argument], dtype=">i8").tobytes()
    (prepared,) = prepare([argument])
    if prepared.error is not None:
        return ERROR + prepared.error.encode()
    return DIGIT + np.ascontiguousarray(prepared.digit28, dtype=np.float32).tobytes()


def read_exactly(connection: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = connection.recv(min(size - len(data), 1 << 20))
        if not chunk:
            raise EOFError
        data += chunk
    return bytes(data)
