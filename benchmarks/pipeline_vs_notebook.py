"""The default `dvc repro` against the notebook's code, in one invocation, alternating.

Claim: a full `dvc repro` from scratch (fetch included, the data served from pip's local cache)
takes at most half the wall time of the notebook's code as a plain script, at >= 97.5% test
accuracy; fetch + preprocess take under 10 s; the field stage adds at most 10 s; a no-op
repro under 3 s; every stage peaks under 2.5 GB RSS. Compare ratios within one run: the
machines are shared and noisy.

    python benchmarks/pipeline_vs_notebook.py [--rounds 2]
"""

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

import records

from common import ROOT, cpu_name, fresh_copy, measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    rounds = parser.parse_args().rounds
    run_record = records.start("pipeline_vs_notebook", sys.argv[1:])
    print(f"{cpu_name()}, {os.cpu_count()} cores, {rounds} rounds")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_number in range(1, rounds + 1):
            repo = fresh_copy(Path(tmp) / f"repo{round_number}")
            full = measure(["dvc", "repro"], cwd=repo)
            stages = len(re.findall(r"^Running stage '", full.output, re.M))
            accuracy = json.loads((repo / "metrics/metrics.json").read_text())["test_accuracy"]
            rows.append(("pipeline: dvc repro from scratch", full, accuracy))

            script = ROOT / "benchmarks/notebook_baseline.py"
            baseline = measure([sys.executable, str(script), str(repo / "data/raw/mnist.npz"), "--no-record"], cwd=repo)
            rows.append(("notebook as a script", baseline, float(baseline.output.split()[-1])))

            data = measure(["dvc", "repro", "-f", "preprocess"], cwd=repo)
            rows.append(("pipeline: fetch + preprocess (cached)", data, None))
            field = measure(["dvc", "repro", "-f", "-s", "field"], cwd=repo)
            rows.append(("pipeline: the field stage alone", field, None))
            noop = measure(["dvc", "repro"], cwd=repo)
            rows.append(("pipeline: no-op dvc repro", noop, None))

    print(f"{'what':40} {'wall s':>8} {'peak RSS MB':>12} {'test acc':>9}")
    for name, result, accuracy in rows:
        shown = f"{accuracy:.4f}" if accuracy is not None else ""
        print(f"{name:40} {result.seconds:8.1f} {result.peak_rss_mb:12.0f} {shown:>9}")
    pipeline = statistics.median(r.seconds for n, r, _ in rows if n.startswith("pipeline: dvc repro"))
    notebook = statistics.median(r.seconds for n, r, _ in rows if n.startswith("notebook"))
    print(f"median wall: pipeline {pipeline:.1f} s, notebook {notebook:.1f} s, ratio {pipeline / notebook:.2f}")
    values = [
        {"what": name, "seconds": result.seconds, "peak_rss_mb": result.peak_rss_mb, "test_accuracy": accuracy}
        for name, result, accuracy in rows
    ]
    records.write(
        run_record,
        {
            "rounds": rounds,
            "stages": stages,  # what a full repro ran: the count the docs give beside its time
            "rows": values,
            "median_pipeline_s": pipeline,
            "median_notebook_s": notebook,
        },
    )


if __name__ == "__main__":
    main()
