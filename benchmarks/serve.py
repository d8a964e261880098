"""The prediction service under load: requests/s, latency, refusals and liveness on loopback.

For each worker count, starts `python -m pipeline.serve --workers N` (the default model: the
LiteRT export); for each client count, that many threads, each with one keep-alive connection,
send REQUESTS single-image requests apiece: MNIST test digits (data/prepared/test.npz, never the
training split) as PNG files in a multipart form. Meanwhile one more connection asks /healthz
every PROBE_EVERY seconds. Then the same with one extra client sending a crafted JPEG in a loop
(issue 25's: a 256x256 progressive 7 followed by 650,000 empty scans, 7.8 MB). Bounded: every
request has a TIMEOUT. Run from the repo root after `dvc repro`:

    python benchmarks/serve.py [--workers 1,2,4] [--clients 8,32] [--requests 100] [--raw]

The claims it checks, on 2 cores shared by server and clients: no errors, /healthz under 50 ms
at any load, and beside the crafted JPEG the other clients' p99 under 100 ms. A 503 is the
service shedding load past app.MAX_PREDICTS requests a worker (counted apart from errors). The
accuracy column checks that the digits arrive intact; it is not a new figure.
"""

import argparse
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import IO

import numpy as np
import records
from PIL import Image

from common import ENV, ROOT, cpu_name
from pipeline.core import artifacts, paths
from testkit import crafted

TIMEOUT = 30.0  # seconds per request: a hung server fails the run instead of stalling it
BOUNDARY = "benchmark-boundary"
PROBE_EVERY = 0.02  # seconds between /healthz probes
CRAFTED_SCANS = 650_000  # issue 25's file: 7.8 MB, under the 8 MB body limit


def png(digit: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.round(digit * 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def form(name: str, content: bytes, kind: str = "image/png") -> bytes:
    disposition = f'Content-Disposition: form-data; name="image"; filename="{name}"'
    head = f"--{BOUNDARY}\r\n{disposition}\r\nContent-Type: {kind}\r\n\r\n"
    return head.encode() + content + f"\r\n--{BOUNDARY}--\r\n".encode()


@dataclass
class Tally:
    """What one kind of client saw: (seconds, status, right digit) per request."""

    results: list[tuple[float, int, bool]] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        latencies = sorted(r[0] for r in self.results)
        return 1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")

    def count(self, status: int) -> int:
        return sum(r[1] == status for r in self.results)

    @property
    def errors(self) -> int:
        return sum(r[1] not in (200, 503) for r in self.results)


class Server:
    """`python -m pipeline.serve --port 0 --workers N`, stderr to a file, until `stop()`."""

    def __init__(self, workers: int) -> None:
        self.log: IO[str] = tempfile.TemporaryFile("w+")
        command = [sys.executable, "-m", "pipeline.serve", "--port", "0", "--workers", str(workers)]
        self.process = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.process.stdout.readline()
        if not line.startswith("serving "):
            self.stop()
            self.log.seek(0)
            sys.exit(f"the server did not start: {line!r}\n{self.log.read()}")
        address = line.split(" on http://")[1].split(";")[0].split(" with")[0]
        host, port = address.rsplit(":", 1)
        self.host, self.port = host, int(port)

    def stop(self) -> str:
        """Ctrl-C; what the server printed on stderr besides 'interrupted'."""
        self.process.send_signal(signal.SIGINT)
        self.process.wait(60)
        self.log.seek(0)
        return self.log.read().replace("interrupted\n", "")

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)


def post(
    server: Server, bodies: list[tuple[bytes, int]], headers: dict, tally: Tally, until: threading.Event | None = None
) -> None:
    """Send each body in turn on one connection (round and round until `until` is set, if given)."""
    connection = server.connection()
    index = 0
    while index < len(bodies) or (until is not None and not until.is_set()):
        body, label = bodies[index % len(bodies)]
        index += 1
        started = time.perf_counter()
        try:
            connection.request("POST", "/predict", body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            right = response.status == 200 and json.loads(answer)[0]["digit"] == label
            tally.results.append((time.perf_counter() - started, response.status, right))
            if response.getheader("connection") == "close":
                connection.close()
                connection = server.connection()
        except (OSError, http.client.HTTPException, ValueError):
            tally.results.append((time.perf_counter() - started, 0, False))
            connection.close()
            connection = server.connection()
        if until is not None and until.is_set():
            break
    connection.close()


def probe(server: Server, stop: threading.Event, tally: Tally) -> None:
    """GET /healthz every PROBE_EVERY seconds on one connection until `stop`."""
    connection = server.connection()
    while not stop.wait(PROBE_EVERY):
        started = time.perf_counter()
        try:
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            response.read()
            tally.results.append((time.perf_counter() - started, response.status, response.status == 200))
        except (OSError, http.client.HTTPException):
            tally.results.append((time.perf_counter() - started, 0, False))
            connection.close()
            connection = server.connection()
    connection.close()


def load(server: Server, shares: list[list[tuple[bytes, int]]], headers: dict, attack: bytes | None) -> dict:
    """Run every share on its own connection, the /healthz probe and, if given, a client
    sending `attack` in a loop until the others are done; the figures."""
    clients, health, attacker = Tally(), Tally(), Tally()
    done = threading.Event()
    threads = [threading.Thread(target=post, args=(server, share, headers, clients)) for share in shares]
    helpers = [threading.Thread(target=probe, args=(server, done, health))]
    if attack is not None:
        attack_headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        body = form("crafted.jpg", attack, "image/jpeg")
        helpers.append(threading.Thread(target=post, args=(server, [(body, 7)], attack_headers, attacker, done)))
    for thread in helpers:
        thread.start()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    done.set()
    for thread in helpers:
        thread.join()
    answered = clients.count(200)
    return {
        "requests/s": answered / seconds,
        "p50": clients.percentile(0.50),
        "p99": clients.percentile(0.99),
        "shed": clients.count(503),
        "errors": clients.errors,
        "accuracy": sum(r[2] for r in clients.results) / max(answered, 1),
        "healthz p99": health.percentile(0.99),
        "healthz max": max((r[0] for r in health.results), default=float("nan")) * 1000,
        "healthz failed": sum(not r[2] for r in health.results),
        "attack": attacker,
    }


def warm(server: Server, bodies: list[tuple[bytes, int]], headers: dict, workers: int) -> None:
    """Wait until /readyz answers, then send a few requests on several connections, so that each
    worker has loaded its model and its decoders before the clock starts."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            connection = server.connection()
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                break
        except (OSError, http.client.HTTPException):
            time.sleep(0.2)
    threads = [threading.Thread(target=post, args=(server, bodies[:20], headers, Tally())) for _ in range(4 * workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def row(workers: int, clients: int, figures: dict) -> str:
    return (
        f"{workers:>7} {clients:>7} {figures['requests/s']:>7,.0f} {figures['p50']:>7.1f} {figures['p99']:>7.1f}"
        f" {figures['shed']:>5} {figures['errors']:>6} {figures['healthz p99']:>8.1f} {figures['healthz max']:>8.1f}"
        f" {figures['accuracy']:>8.2%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--clients", default="8,32", help="client counts, comma-separated")
    parser.add_argument("--requests", type=int, default=100, help="requests per client")
    parser.add_argument("--raw", action="store_true", help="send each image as the raw body, not a form")
    args = parser.parse_args()
    worker_counts = [int(n) for n in args.workers.split(",")]
    client_counts = [int(n) for n in args.clients.split(",")]
    os.chdir(ROOT)
    run_record = records.start("serve", sys.argv[1:])
    images, labels = artifacts.load_split(paths.prepared("test"))
    count = min(max(client_counts) * args.requests, len(images))  # more requests than digits reuse them
    encoded = [(png(images[i]), int(labels[i])) for i in range(count)]
    bodies = [(image if args.raw else form(f"test{i}.png", image), label) for i, (image, label) in enumerate(encoded)]
    headers = {"Content-Type": "image/png" if args.raw else f"multipart/form-data; boundary={BOUNDARY}"}
    attack = crafted.scan_bomb(CRAFTED_SCANS)
    kind = "raw body" if args.raw else "multipart form"
    print(f"{cpu_name()}, {os.cpu_count()} cores (server and clients)")
    print(f"one MNIST test digit per request ({kind}, PNG), {args.requests} requests per client; ms")
    print(
        f"{'workers':>7} {'clients':>7} {'req/s':>7} {'p50':>7} {'p99':>7} {'503':>5} {'errors':>6}"
        f" {'healthz':>8} {'':>8} {'accuracy':>8}"
    )
    print(f"{'':>7} {'':>7} {'':>7} {'':>7} {'':>7} {'':>5} {'':>6} {'p99':>8} {'max':>8}")
    attacked: list[tuple[int, int, dict]] = []
    problems = []
    loads, model_answer = [], None
    for workers in worker_counts:
        server = Server(workers)
        try:
            warm(server, bodies, headers, workers)
            model_answer = model_answer or get_model(server)
            for clients in client_counts:
                requests = [bodies[i % len(bodies)] for i in range(clients * args.requests)]
                shares = [requests[c * args.requests : (c + 1) * args.requests] for c in range(clients)]
                figures = load(server, shares, headers, None)
                loads.append({"workers": workers, "clients": clients, **figures_record(figures)})
                print(row(workers, clients, figures), flush=True)
            clients = min(client_counts)
            requests = [bodies[i % len(bodies)] for i in range(clients * args.requests)]
            shares = [requests[c * args.requests : (c + 1) * args.requests] for c in range(clients)]
            attacked.append((workers, clients, load(server, shares, headers, attack)))
        finally:
            problems.append(server.stop())
    print(
        f"\nbeside one more client sending the crafted JPEG ({CRAFTED_SCANS:,} scans,"
        f" {len(attack) / 1e6:.1f} MB) in a loop:"
    )
    for workers, clients, figures in attacked:
        crafted_tally: Tally = figures["attack"]
        statuses = sorted({r[1] for r in crafted_tally.results})
        print(row(workers, clients, figures))
        print(
            f"{'':>15} crafted: {len(crafted_tally.results)} sent, answered {statuses},"
            f" p50 {crafted_tally.percentile(0.5):.1f} ms, p99 {crafted_tally.percentile(0.99):.1f} ms"
        )
    leftover = "".join(problems)
    if leftover:
        print(f"the servers' stderr:\n{leftover}")
    beside = []
    for workers, clients, figures in attacked:
        crafted_tally = figures["attack"]
        beside.append(
            {
                "workers": workers,
                "clients": clients,
                **figures_record(figures),
                "crafted_sent": len(crafted_tally.results),
                "crafted_statuses": sorted({r[1] for r in crafted_tally.results}),
                "crafted_p50": crafted_tally.percentile(0.5),
                "crafted_p99": crafted_tally.percentile(0.99),
            }
        )
    values = {
        "requests_per_client": args.requests,
        "body": kind,
        "crafted_scans": CRAFTED_SCANS,
        "crafted_bytes": len(attack),
        "load": loads,
        "beside_crafted": beside,
        "model": model_answer,
    }
    records.write(run_record, values)


def figures_record(figures: dict) -> dict:
    """A row's figures as a record holds them (latencies in ms), without the crafted client's tally."""
    return {key.replace(" ", "_").replace("/", "_per_"): value for key, value in figures.items() if key != "attack"}


def get_model(server: Server) -> dict | None:
    """The service's GET /model answer: which model's bytes these figures are of."""
    connection = server.connection()
    try:
        connection.request("GET", "/model")
        response = connection.getresponse()
        return json.loads(response.read()) if response.status == 200 else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        connection.close()


if __name__ == "__main__":
    main()
