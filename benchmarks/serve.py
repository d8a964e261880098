"""The prediction service under load: requests/s, latency and errors on loopback.

Starts `python -m pipeline.serve` (the default model: the LiteRT export), then CLIENTS threads,
each with one keep-alive connection, send REQUESTS single-image requests apiece: MNIST test
digits (data/prepared/test.npz, never the training split) as PNG files in a multipart form.
Bounded: CLIENTS x REQUESTS requests, each with a TIMEOUT. Run from the repo root after
`dvc repro`:

    python benchmarks/serve.py [--clients 8] [--requests 250] [--raw]

The claim it checks, on 2 cores shared by server and clients: zero errors, >= 200 requests/s,
p99 <= 50 ms. The accuracy line is a check that the digits arrive intact, not a new figure.
"""
import argparse
import http.client
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO

import numpy as np
from PIL import Image

from common import ENV, ROOT, cpu_name
from pipeline import artifacts, paths

TIMEOUT = 10.0  # seconds per request: a hung server fails the run instead of stalling it
BOUNDARY = "benchmark-boundary"


def png(digit: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.round(digit * 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def form(name: str, content: bytes) -> bytes:
    disposition = f'Content-Disposition: form-data; name="image"; filename="{name}"'
    head = f"--{BOUNDARY}\r\n{disposition}\r\nContent-Type: image/png\r\n\r\n"
    return head.encode() + content + f"\r\n--{BOUNDARY}--\r\n".encode()


def start_server(log: IO[str]) -> tuple[subprocess.Popen, str, int]:
    """`python -m pipeline.serve --port 0`, stderr to `log`; the process, and the host and port
    its line names."""
    command = [sys.executable, "-m", "pipeline.serve", "--port", "0"]
    server = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=log, text=True)
    line = server.stdout.readline()
    if not line.startswith("serving "):
        server.kill()
        server.wait()
        log.seek(0)
        sys.exit(f"the server did not start: {line!r}\n{log.read()}")
    address = line.split(" on http://")[1].split(";")[0]
    host, port = address.rsplit(":", 1)
    return server, host, int(port)


def client(host: str, port: int, bodies: list[tuple[bytes, int]], raw: bool, results: list) -> None:
    """Send each body in turn on one connection; append (seconds, ok) per request to `results`."""
    connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    headers = {"Content-Type": "image/png" if raw else f"multipart/form-data; boundary={BOUNDARY}"}
    for body, label in bodies:
        started = time.perf_counter()
        try:
            connection.request("POST", "/predict", body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            seconds = time.perf_counter() - started
            ok = response.status == 200
            results.append((seconds, ok, ok and json.loads(answer)[0]["digit"] == label))
        except (OSError, http.client.HTTPException, ValueError):
            results.append((time.perf_counter() - started, False, False))
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections")
    parser.add_argument("--requests", type=int, default=250, help="requests per client")
    parser.add_argument("--raw", action="store_true", help="send each image as the raw body, not a form")
    args = parser.parse_args()
    os.chdir(ROOT)
    images, labels = artifacts.load_split(paths.prepared("test"))
    count = min(args.clients * args.requests, len(images))  # more requests than digits reuse them
    encoded = [(png(images[i]), int(labels[i])) for i in range(count)]
    bodies = [(image if args.raw else form(f"test{i}.png", image), label) for i, (image, label) in enumerate(encoded)]
    log = tempfile.TemporaryFile("w+")  # the server's stderr: "interrupted" at the end, or why it failed
    server, host, port = start_server(log)
    try:
        results: list = []
        client(host, port, bodies[:50], args.raw, [])  # warm-up: first calls allocate the interpreter's tensors
        requests = [bodies[i % len(bodies)] for i in range(args.clients * args.requests)]
        shares = [requests[c * args.requests : (c + 1) * args.requests] for c in range(args.clients)]
        threads = [threading.Thread(target=client, args=(host, port, share, args.raw, results)) for share in shares]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        source = model_name(host, port)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    latencies = sorted(r[0] for r in results)
    errors = sum(not r[1] for r in results)
    p50, p99 = (1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))] for q in (0.50, 0.99))
    kind = "raw body" if args.raw else "multipart form"
    print(f"{cpu_name()}, {os.cpu_count()} cores (server and clients); model {source}")
    print(f"{args.clients} clients x {args.requests} requests, one MNIST test digit per request ({kind}, PNG)")
    print(f"requests/s:   {len(results) / seconds:,.0f}  ({len(results)} in {seconds:.2f} s)")
    print(f"latency:      p50 {p50:.1f} ms, p99 {p99:.1f} ms, mean {1000 * statistics.mean(latencies):.1f} ms")
    print(f"errors:       {errors}")
    print(f"accuracy:     {sum(r[2] for r in results) / len(results):.2%}  (served digit = MNIST label)")
    log.seek(0)
    problems = log.read().replace("interrupted\n", "")
    if problems:
        print(f"the server's stderr:\n{problems}")


def model_name(host: str, port: int) -> str:
    """GET /model, in a line: the file, its format, the start of its sha256."""
    connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        connection.request("GET", "/model")
        info = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    return f"{info['file']} ({info['format']}, sha256 {info['sha256'][:12]}...)"


if __name__ == "__main__":
    main()
