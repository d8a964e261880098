"""Full `dvc repro` runs of one configuration over several seeds: mean and spread.

Each seed runs in a fresh copy of the repo (no outputs, the data from pip's cache), so the time
is that of a full repro from scratch. The results table of the README and docs/experiments.md
come from this script, and the export table too: each seed's exported models, scored by the
export stage, on a line below, how close training ran to the CPU's peak on another, and the
field stage's scores on a third.

    python benchmarks/seeds.py --recipe cnn_fast --seeds 1 2 3      # a recipe of recipes.yaml
    python benchmarks/seeds.py --seeds 1 2 3 -S train.model=cnn -S train.epochs=10
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

from common import cpu_name, cpu_peak, fresh_copy, measure, parse_overrides
from pipeline.core import config
from pipeline.review import recipes

# The train stage's line per epoch (an ensemble's starts "member 2/3") ends with the epoch's wall time: "(9.8 s)".
EPOCH_SECONDS = re.compile(r"^(?:member \d+/\d+ +)?epoch +\d+/\d+ .*\((\d+(?:\.\d+)?) s\)$", re.MULTILINE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--recipe", help="a recipe of recipes.yaml: its train values, before any -S")
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    overrides = recipes.overrides(recipes.get(args.recipe)) if args.recipe else {}
    overrides.update(parse_overrides(args.overrides))
    what = " ".join(([f"recipe {args.recipe}"] if args.recipe else []) + args.overrides) or "defaults"
    run_record = records.start("seeds", sys.argv[1:])
    print(f"{cpu_name()}, {os.cpu_count()} cores; {what}", flush=True)
    accuracies, seconds, per_seed = [], [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            repo = fresh_copy(Path(tmp) / f"seed{seed}", {**overrides, "seed": seed})
            run = measure(["dvc", "repro"], cwd=repo)
            metrics = json.loads((repo / "metrics/metrics.json").read_text())
            exported = json.loads((repo / "metrics/export.json").read_text())
            field = json.loads((repo / "metrics/field.json").read_text())
            accuracies.append(metrics["test_accuracy"])
            seconds.append(run.seconds)
            print(
                f"seed {seed}: test_accuracy {metrics['test_accuracy']:.4f}  params {metrics['params']}  "
                f"full repro {run.seconds:.0f} s  peak RSS {run.peak_rss_mb:.0f} MB",
                flush=True,
            )
            print(f"  export: {export_line(metrics, exported)}", flush=True)
            compute = compute_figures(repo, run.output)
            print(f"  compute: {compute_line(compute)}", flush=True)
            print(f"  field: {field_line(field)}", flush=True)
            per_seed[str(seed)] = {
                "test_accuracy": metrics["test_accuracy"],
                "params": metrics["params"],
                "seconds": round(run.seconds, 1),
                "peak_rss_mb": round(run.peak_rss_mb),
                "export": exported,
                "compute": compute,
                "field": field,
            }
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    print(
        f"mean test_accuracy {100 * statistics.mean(accuracies):.2f}% ± {100 * spread:.2f} (std, n={len(accuracies)}); "
        f"full repro {statistics.mean(seconds):.0f} s mean, {min(seconds):.0f}-{max(seconds):.0f} s"
    )
    records.write(run_record, {"recipe": args.recipe, "overrides": overrides, "seeds": per_seed})


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


def field_line(field: dict) -> str:
    """The field stage's accuracy per source (and on the same digits as arrays)."""
    scores = " ".join(f"{source} {value:.4f}" for source, value in field.items() if isinstance(value, float))
    return f"{scores} ({field['images_per_source']} digits a source)"


def compute_figures(repo: Path, output: str) -> dict:
    """Operations per image, the GFLOP/s training achieved over its epochs, and the CPU's peak;
    training counted as `models.multiply_adds` says (three forward passes, two operations each)."""
    from pipeline.train import models  # imports TensorFlow: only once a run has finished

    params = config.load(repo / "params.yaml")
    forward = 2 * models.multiply_adds(models.build_model(params.train))
    images = train_images(repo)
    epoch_seconds = sum(float(s) for s in EPOCH_SECONDS.findall(output))
    flops = 3 * forward * images * params.train.epochs
    peak, how = cpu_peak()
    return {
        "forward_flops": forward,
        "train_flops": flops,
        "epoch_seconds": epoch_seconds,
        "gflops": flops / epoch_seconds / 1e9,
        "peak_gflops": peak,
        "peak_how": how,
    }


def compute_line(compute: dict) -> str:
    achieved, peak = compute["train_flops"] / compute["epoch_seconds"] / 1e9, compute["peak_gflops"]
    return (
        f"{compute['forward_flops'] / 1e6:.2f} MFLOP per image forward, {compute['train_flops'] / 1e12:.2f} TFLOP "
        f"to train, epochs {compute['epoch_seconds']:.0f} s: {achieved:.0f} GFLOP/s, {achieved / peak:.0%} of the "
        f"CPU's peak {peak:.0f} GFLOP/s ({compute['peak_how']})"
    )


def train_images(repo: Path) -> int:
    """How many images one epoch trains on: the prepared training split's size."""
    import numpy as np

    with np.load(repo / "data/prepared/train.npz") as split:
        return len(split["labels"])


if __name__ == "__main__":
    main()
