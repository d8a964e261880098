"""The field scores of the workspace's model against their targets, and the field stage's time.

Targets (issue 24), for the default pipeline: mnist_png >= test accuracy - 0.2 points, drawn
>= 93%, photos >= 95%; for the recipe named for deployment: drawn >= 99%, photos >= 98.5%,
mnist_png within 0.2 points of its test accuracy. Run after `dvc repro` (or a recipe):

    python benchmarks/field.py [--deployment]

It times `python -m stages.field` (which rewrites metrics/field.json with the same bytes for
the same model and params) and prints each score beside its target.
"""
import argparse
import json
import os
import sys

from common import ROOT, cpu_name, measure

DEFAULT = {"drawn": 0.93, "photos": 0.95}
DEPLOYMENT = {"drawn": 0.99, "photos": 0.985}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployment", action="store_true", help="check the deployment recipe's targets")
    deployment = parser.parse_args().deployment
    stage = measure([sys.executable, "-m", "stages.field"], cwd=ROOT)
    field = json.loads((ROOT / "metrics/field.json").read_text())
    test = json.loads((ROOT / "metrics/metrics.json").read_text())["test_accuracy"]
    print(f"{cpu_name()}, {os.cpu_count()} cores; field stage {stage.seconds:.1f} s, peak RSS {stage.peak_rss_mb:.0f} MB")
    print(f"test accuracy (10,000 arrays) {test:.4f}; field set {field['images_per_source']} digits a source")
    targets = {**(DEPLOYMENT if deployment else DEFAULT), "mnist_png": test - 0.002}
    for source in ("arrays", "mnist_png", "photos", "drawn", "scans", "app_exports"):
        target = targets.get(source)
        verdict = "" if target is None else f"target >= {target:.4f}: {'met' if field[source] >= target else 'NOT met'}"
        print(f"  {source:12} {field[source]:.4f}  {verdict}")


if __name__ == "__main__":
    main()
