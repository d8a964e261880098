"""Full `dvc repro` runs of one configuration over several seeds: mean and spread.

Each seed runs in a fresh copy of the repo (no outputs, the data from pip's cache), so the time
is that of a full repro from scratch. The results table of docs/experiments.md comes from this script,
and the export table too: each seed's exported models, scored by the export stage, on a line below.

    python benchmarks/seeds.py --seeds 1 2 3 -S train.model=cnn -S train.epochs=10
"""
import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from common import cpu_name, fresh_copy, measure, parse_overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    overrides = parse_overrides(args.overrides)
    print(f"{cpu_name()}, {os.cpu_count()} cores; {' '.join(args.overrides) or 'defaults'}", flush=True)
    accuracies, seconds = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            repo = fresh_copy(Path(tmp) / f"seed{seed}", {**overrides, "seed": seed})
            run = measure(["dvc", "repro"], cwd=repo)
            metrics = json.loads((repo / "metrics/metrics.json").read_text())
            accuracies.append(metrics["test_accuracy"])
            seconds.append(run.seconds)
            print(
                f"seed {seed}: test_accuracy {metrics['test_accuracy']:.4f}  params {metrics['params']}  "
                f"full repro {run.seconds:.0f} s  peak RSS {run.peak_rss_mb:.0f} MB",
                flush=True,
            )
            print(f"  export: {export_line(metrics, json.loads((repo / 'metrics/export.json').read_text()))}", flush=True)
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    print(
        f"mean test_accuracy {100 * statistics.mean(accuracies):.2f}% ± {100 * spread:.2f} (std, n={len(accuracies)}); "
        f"full repro {statistics.mean(seconds):.0f} s mean, {min(seconds):.0f}-{max(seconds):.0f} s"
    )


def export_line(metrics: dict, exported: dict) -> str:
    """Each exported format's test accuracy (points from Keras'), agreement with Keras and size."""
    keras = metrics["test_accuracy"]
    float32 = exported["litert_float32"]["size_bytes"]
    parts = [
        f"{name} {score['test_accuracy']:.4f} ({100 * (score['test_accuracy'] - keras):+.2f} pt), "
        f"agrees {score['agreement']:.2%}, {score['size_bytes']:,} B ({score['size_bytes'] / float32:.0%} of float32)"
        for name, score in exported.items()
    ]
    return "; ".join(parts)


if __name__ == "__main__":
    main()
