"""The command line: import a folder of labelled images into the collected store.

    python -m pipeline.collect ROOT [--into data/collected]

ROOT holds one folder per digit, named 0 to 9, of images of that digit (a phone's photos, a
scan's cut-outs): ROOT/<digit>/*.png, .jpg, ... Each image is decoded and normalised exactly as
`predict` and the service do, and the 28x28 the model would see is stored under its label as
the service stores a correction (store.py). Every file gets one line: taken, already collected,
or why not (stderr, `error:` first); nothing is refused silently, and the exit code is 1 if
anything was.
"""

import argparse
import sys
from pathlib import Path

from pipeline.collect.store import LABELS, MAX_BYTES, MAX_FILES, Full, Store
from pipeline.core import cli, paths
from pipeline.core.errors import DataError
from pipeline.predict.images import SUFFIXES
from pipeline.predict.predictor import prepare


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.collect", description="Import ROOT/<digit>/<image> into the collected digits."
    )
    parser.add_argument("root", type=cli.path_argument, metavar="ROOT", help="a folder of folders named 0 to 9")
    into_help = f"the collected store (default: {paths.COLLECTED})"
    parser.add_argument("--into", type=cli.path_argument, default=paths.COLLECTED, metavar="DIR", help=into_help)
    files_help = f"digits the store may hold (default: {MAX_FILES:,})"
    parser.add_argument("--max-files", type=cli.positive, default=MAX_FILES, metavar="N", help=files_help)
    bytes_help = f"bytes the store may hold (default: {MAX_BYTES:,})"
    parser.add_argument("--max-bytes", type=cli.positive, default=MAX_BYTES, metavar="N", help=bytes_help)
    return parser.parse_args(argv)


def entries(root: Path) -> list[tuple[Path, str | None, str | None]]:
    """(file, its label, why it is not taken) for everything under ROOT, in name order."""
    found = []
    for entry in sorted(root.iterdir()):
        if not entry.is_dir():
            found.append((entry, None, "not in a digit's folder (ROOT/<digit>/<image>)"))
        elif entry.name not in LABELS:
            found.append((entry, None, f"folder {entry.name[:40]!r} is not a digit 0 to 9"))
        else:
            for file in sorted(entry.iterdir()):
                if file.is_dir():
                    found.append((file, None, f"a folder inside {entry.name}/: only ROOT/<digit>/<image> is read"))
                elif file.suffix.lower() not in SUFFIXES:
                    found.append((file, None, f"not an image file name (takes {', '.join(SUFFIXES)})"))
                else:
                    found.append((file, entry.name, None))
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.root.is_dir():
        raise DataError(f"{args.root}: not a folder (expected ROOT/<digit>/<image>)")
    if args.into.resolve().is_relative_to(args.root.resolve()):
        raise DataError(f"{args.into}: inside {args.root}; the store must be apart from what it imports")
    store = Store(args.into, args.max_files, args.max_bytes)
    counts = {"taken": 0, "already collected": 0, "not taken": 0}
    for file, label, problem in entries(args.root):
        if problem is None:
            (prepared,) = prepare([file])
            problem = prepared.error
        if problem is None:
            try:
                stored = store.save(prepared.digit28, label)
            except Full as error:
                problem = f"{file}: {error}"
            else:
                outcome = "taken" if stored.created else "already collected"
                counts[outcome] += 1
                article = "an" if label == "8" else "a"
                print(f"{file}: {outcome} as {article} {label}: {args.into / stored.path}", flush=True)
                continue
        counts["not taken"] += 1
        line = problem if problem.startswith(str(file)) else f"{file}: {problem}"
        print(f"error: {line}", file=sys.stderr, flush=True)
    print(", ".join(f"{count} {what}" for what, count in counts.items()), file=sys.stderr)
    return 1 if counts["not taken"] else 0
