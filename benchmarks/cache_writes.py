"""Two processes writing the same new object into one DVC cache, as two queue workers do.

    python benchmarks/cache_writes.py [--rounds 300] [--megabytes 3]

Each round both processes add the same bytes to a fresh cache with DVC's own writer (the call
`dvc commit` and every stage's end make), then check the object is there, as the checkout that
follows does. A round where a process finds it missing or corrupted is the failure behind
`unable to remove ... without a confirmation` in a run of `dvc queue start -j 2`
(docs/experiments.md#a-sweep-on-several-machines). Rerun it when DVC is upgraded: zero losses
over many rounds is the sign the sweep no longer needs the commit's outputs first.
"""

import argparse
import hashlib
import multiprocessing
import sys
import tempfile
from pathlib import Path

import records
from dvc_data.hashfile.db.local import LocalHashFileDB
from dvc_objects.errors import ObjectFormatError
from dvc_objects.fs.local import LocalFileSystem

from common import cpu_name

WRITERS = 2  # two queue workers


def writer(source: Path, caches: Path, rounds: int, go: multiprocessing.Queue, lost: multiprocessing.Queue) -> None:
    """Add `source` to cache `caches/<round>` each round when told to; put how many checks failed."""
    fs = LocalFileSystem()
    oid = hashlib.md5(source.read_bytes()).hexdigest()
    failures = 0
    for round_ in range(rounds):
        go.get()
        cache = LocalHashFileDB(fs, str(caches / str(round_)))
        cache.add(str(source), fs, oid)
        try:
            cache.check(oid)
        except (FileNotFoundError, ObjectFormatError):
            failures += 1
    lost.put(failures)


def race(rounds: int, megabytes: int, folder: Path) -> list[int]:
    """Each process's count of rounds in which the object it had just written was not there."""
    data = bytes(range(256)) * (megabytes * 4096)
    sources = [folder / f"source-{i}" for i in range(WRITERS)]  # a workspace each, one content
    for source in sources:
        source.write_bytes(data)
    lost = multiprocessing.Queue()
    starts = [multiprocessing.Queue() for _ in sources]
    processes = [
        multiprocessing.Process(target=writer, args=(source, folder / "caches", rounds, go, lost))
        for source, go in zip(sources, starts)
    ]
    for process in processes:
        process.start()
    for _ in range(rounds):
        for go in starts:
            go.put(True)
    counts = [lost.get() for _ in processes]
    for process in processes:
        process.join()
    return counts


def main() -> None:
    """Race two writers of one object into a shared DVC cache; print and record the losses."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--megabytes", type=int, default=3)
    args = parser.parse_args()
    run = records.start("cache_writes", sys.argv[1:])
    with tempfile.TemporaryDirectory() as folder:
        counts = race(args.rounds, args.megabytes, Path(folder))
    writes = WRITERS * args.rounds
    print(f"{cpu_name()}: {sum(counts)} of {writes} writes of one {args.megabytes} MB object found it gone")
    records.write(run, {"rounds": args.rounds, "megabytes": args.megabytes, "writes": writes, "lost": sum(counts)})


if __name__ == "__main__":
    main()
