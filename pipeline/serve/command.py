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
from pathlib import Path

from pipeline.core import cli, paths
from pipeline.predict.predictor import Predictor, default_model
from pipeline.serve.decoders import DEADLINE
from pipeline.serve.limits import BODY_TIMEOUT
from pipeline.serve.server import HEAD_TIMEOUT, ServeConfig, listen, serve, url


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
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    for option in ("head_timeout", "body_timeout", "decode_timeout"):
        if not getattr(args, option) > 0:
            parser.error(f"--{option.replace('_', '-')} must be positive, got {getattr(args, option):g}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model = Path(args.model) if args.model is not None else default_model()
    predictor = Predictor.from_path(model)  # here too: a bad --model is one line, not one per worker
    loaded = predictor if args.workers == 1 else None  # workers load their own
    config = ServeConfig(model, args.workers, args.head_timeout, args.body_timeout, args.decode_timeout, loaded)
    listener = listen(args.host, args.port)
    workers = f" with {args.workers} workers" if args.workers > 1 else ""
    print(f"serving {predictor.source} ({predictor.format}) on {url(listener)}{workers}; Ctrl-C stops it", flush=True)
    serve(config, listener)
    return 0
