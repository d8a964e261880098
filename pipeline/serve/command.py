"""The command line: serve digit predictions over HTTP.

    python -m pipeline.serve [--model PATH] [--host 127.0.0.1] [--port 8000] [--workers 1]
                             [--head-timeout S] [--body-timeout S] [--decode-timeout S]

Loads the model (as `predict` does: the LiteRT export if there is one, else Keras), binds the
socket, prints one line saying where it listens, and serves until Ctrl-C (exit 130, after the
requests in flight finish or GRACEFUL_SHUTDOWN seconds pass). `--port 0` takes a free port; the
line names it. `--workers N` serves from N processes sharing the socket, each with its own model
(server.py). A connection whose request head does not arrive within `--head-timeout` seconds is
closed; an image not decoded within `--decode-timeout` seconds is refused (decoders.py).
"""

import argparse
import ipaddress
import os
from pathlib import Path

from pipeline.collect.store import MAX_BYTES, MAX_FILES
from pipeline.core import cli, paths
from pipeline.core.errors import DataError
from pipeline.predict.predictor import Predictor, default_model
from pipeline.serve.decoders import DEADLINE
from pipeline.serve.feedback import CollectOptions
from pipeline.serve.limits import BODY_TIMEOUT
from pipeline.serve.server import HEAD_TIMEOUT, ServeConfig, listen, serve, url

TOKEN_VARIABLE = "MNIST_COLLECT_TOKEN"  # POST /feedback's bearer token, when the service listens beyond loopback


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.serve", description="Serve digit predictions over HTTP.")
    model_help = f"a .tflite or .keras model (default: {paths.LITERT_FLOAT32} if exported, else {paths.MODEL})"
    parser.add_argument("--model", type=cli.path_argument, metavar="PATH", help=model_help)
    host_help = "address to listen on (default: 127.0.0.1, this machine only)"
    parser.add_argument("--host", default="127.0.0.1", help=host_help)
    parser.add_argument("--port", type=int, default=8000, help="port to listen on; 0 takes a free one (default: 8000)")
    workers_help = "processes serving the socket, each with its own model (default: 1)"
    parser.add_argument("--workers", type=int, default=1, metavar="N", help=workers_help)
    head_help = f"seconds a request's head may take to arrive, else the connection closes (default: {HEAD_TIMEOUT:g})"
    parser.add_argument("--head-timeout", type=float, default=HEAD_TIMEOUT, metavar="S", help=head_help)
    timeout_help = f"seconds a request body may take to arrive, else 408 (default: {BODY_TIMEOUT:g})"
    parser.add_argument("--body-timeout", type=float, default=BODY_TIMEOUT, metavar="S", help=timeout_help)
    decode_help = f"seconds an image may take to decode, else its record is an error (default: {DEADLINE:g})"
    parser.add_argument("--decode-timeout", type=float, default=DEADLINE, metavar="S", help=decode_help)
    collect_help = "store the corrections POST /feedback sends (and the page offers) under DIR/<digit>/ (default: off)"
    parser.add_argument("--collect", type=cli.path_argument, metavar="DIR", help=collect_help)
    files_help = f"digits the collection may hold (default: {MAX_FILES:,})"
    parser.add_argument("--collect-max-files", type=cli.positive, default=MAX_FILES, metavar="N", help=files_help)
    bytes_help = f"bytes the collection may hold (default: {MAX_BYTES:,})"
    parser.add_argument("--collect-max-bytes", type=cli.positive, default=MAX_BYTES, metavar="N", help=bytes_help)
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    for option in ("head_timeout", "body_timeout", "decode_timeout"):
        if not getattr(args, option) > 0:
            parser.error(f"--{option.replace('_', '-')} must be positive, got {getattr(args, option):g}")
    if args.collect is not None and not loopback(args.host) and not os.environ.get(TOKEN_VARIABLE):
        parser.error(f"--collect on {args.host} (beyond this machine) needs a token: set {TOKEN_VARIABLE}")
    return args


def loopback(host: str) -> bool:
    """Whether `host` is this machine only: no one else can reach what listens there."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve beyond this machine
        return False


def collect_options(args: argparse.Namespace) -> CollectOptions | None:
    """--collect's options, its folder made (or a one-line error); the token from the environment only,
    never the command line, which any user of the machine can read in `ps`."""
    if args.collect is None:
        return None
    try:
        args.collect.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"{args.collect}: cannot make the --collect folder ({error.strerror or error})") from None
    token = os.environ.get(TOKEN_VARIABLE) or None
    return CollectOptions(args.collect, args.collect_max_files, args.collect_max_bytes, token)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model = Path(args.model) if args.model is not None else default_model()
    predictor = Predictor.from_path(model)  # here too: a bad --model is one line, not one per worker
    loaded = predictor if args.workers == 1 else None  # workers load their own
    collect = collect_options(args)
    config = ServeConfig(
        model, args.workers, args.head_timeout, args.body_timeout, args.decode_timeout, loaded, collect
    )
    listener = listen(args.host, args.port)
    workers = f" with {args.workers} workers" if args.workers > 1 else ""
    collecting = f", collecting corrections in {collect.root}" if collect else ""
    print(
        f"serving {predictor.source} ({predictor.format}) on {url(listener)}{workers}{collecting}; Ctrl-C stops it",
        flush=True,
    )
    serve(config, listener)
    return 0
