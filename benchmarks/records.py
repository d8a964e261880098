"""A benchmark run as a JSON record under benchmarks/results/, the data the docs' figures are rendered from.

One file per benchmark and arguments (`seeds--recipe-cnn_fast--seeds-1-2-3.json`), so running the
same command again replaces its record. A record holds the command, the commit it ran at (and
whether the tree was dirty), the CPU, the date and the load average when it started, and the
values. `benchmarks/render.py` turns records and metrics/ into the docs' tables.

    run = records.start("seeds", sys.argv[1:])   # before the work: the load average, the date
    ...
    records.write(run, {"seeds": {...}})          # after it: benchmarks/results/<name>.json

Only the standard library: benchmarks/render.py and its test import this without TensorFlow.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks/results"


def name_for(benchmark: str, args: list[str]) -> str:
    """A stable file name from the benchmark and its arguments: ['--seeds', '1', '2'] -> seeds--seeds-1-2."""
    words = [re.sub(r"[^A-Za-z0-9_.=]+", "-", arg.lstrip("-")).strip("-") for arg in args]
    parts, current = [], []
    for arg, word in zip(args, words):
        if arg.startswith("-") and current:
            parts.append("-".join(current))
            current = []
        current.append(word)
    if current:
        parts.append("-".join(current))
    name = "--".join([benchmark, *parts]) if parts else f"{benchmark}--defaults"
    if len(name) > 150:  # a file name must stay under 255 bytes: a long one keeps its start and a hash of all
        name = f"{name[:130]}--{hashlib.sha256(name.encode()).hexdigest()[:12]}"
    return name


def start(benchmark: str, args: list[str]) -> dict:
    """What a record says about the run, taken before it starts (the load average at the start)."""
    info = cpuinfo()
    return {
        "benchmark": benchmark,
        "command": " ".join(["python", f"benchmarks/{benchmark}.py", *args]),
        "name": name_for(benchmark, args),
        "commit": git("rev-parse", "HEAD"),
        # Records themselves do not make a run dirty: a batch of benchmarks writes one after another.
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results")),
        "cpu": info.get("model name", "unknown CPU"),
        "cores": os.cpu_count() or 1,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_average": round(os.getloadavg()[0], 2),
        "source": "benchmarks/" + benchmark + ".py",
    }


def write(run: dict, values: dict, directory: Path = RESULTS) -> Path:
    """`run` with `values` as benchmarks/results/<name>.json: sorted keys, indent 2, a trailing
    newline, written to a temporary file and renamed, so a reader never sees half a record."""
    record = {**{key: value for key, value in run.items() if key != "name"}, "values": values}
    return dump(record, directory / f"{run['name']}.json")


def dump(record: dict, path: Path) -> Path:
    """`record` as byte-stable JSON at `path`, atomically."""
    dump_text(json.dumps(record, sort_keys=True, indent=2, ensure_ascii=False) + "\n", path)
    print(f"record: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", file=sys.stderr)
    return path


def dump_text(text: str, path: Path) -> None:
    """`text` at `path` by a temporary file renamed over it: a reader sees the old file or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_all(directory: Path = RESULTS) -> dict[str, dict]:
    """Every record, by file name without .json."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def git(*args: str) -> str | None:
    try:
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip()


def cpuinfo() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo."""
    fields: dict[str, str] = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields
