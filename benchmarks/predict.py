"""Predicting new images: accuracy on a realistic test set, throughput, latency, CLI cold start.

The realistic set is MNIST's test split rendered as photos of ink on paper (`tests/helpers/realistic.py`):
never the training split. Run from the repo root after `dvc repro` (it reads the prepared test
split and the model):

    python benchmarks/predict.py [--model models/model.keras] [--count 10000]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from common import ENV, ROOT, cpu_name
from pipeline import artifacts, paths
from pipeline.predict import Predictor
from tests.helpers import realistic


def accuracy(predictions, labels: np.ndarray) -> float:
    return float(np.mean([p.error is None and p.digit == label for p, label in zip(predictions, labels)]))


def literal_recipe(predictor: Predictor, pictures: list[Image.Image]) -> np.ndarray:
    """The notebook's recipe: grayscale, resize to 28x28, scale to [0, 1]; no normalisation."""
    arrays = [np.asarray(p.convert("L").resize((28, 28)), dtype=np.float32) / 255 for p in pictures]
    return predictor.probabilities(np.stack(arrays)).argmax(axis=1)


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} images/s ({count} in {seconds:.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=paths.MODEL)
    parser.add_argument("--count", type=int, default=10_000, help="test digits to render")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.chdir(ROOT)
    images, labels = artifacts.load_split(paths.prepared("test"))
    images, labels = images[: args.count], labels[: args.count]
    predictor = Predictor.from_path(args.model)
    print(f"{cpu_name()}, {os.cpu_count()} cores; model {args.model}; {len(labels)} test digits, seed {args.seed}")

    mnist = float(np.mean(predictor.probabilities(images).argmax(axis=1) == labels))
    pictures = realistic.render_set(images, args.seed)
    started = time.perf_counter()
    predicted = predictor.predict(pictures)
    chain_seconds = time.perf_counter() - started
    ours = accuracy(predicted, labels)
    literal = float(np.mean(literal_recipe(predictor, pictures) == labels))
    print(f"accuracy on MNIST test digits:              {mnist:.2%}")
    print(f"accuracy on the same digits as photos:      {ours:.2%}  (gap {100 * (mnist - ours):.2f} points)")
    print(f"  the notebook's literal recipe on them:    {literal:.2%}")
    print(f"  no digit found in:                        {sum(p.error is not None for p in predicted)}")

    batch = np.tile(images, (max(1, 10_000 // len(images)), 1, 1))[:10_000]
    predictor.probabilities(batch[:256])  # warm-up: the first call traces the model
    started = time.perf_counter()
    predictor.probabilities(batch)
    print(f"throughput, model on 28x28 arrays:          {rate(len(batch), time.perf_counter() - started)}")
    print(f"throughput, photos in memory (normalise+model): {rate(len(pictures), chain_seconds)}")

    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for index, picture in enumerate(pictures[:1000]):
            files.append(Path(tmp) / f"{index}.jpg")
            picture.save(files[-1], quality=90)
        started = time.perf_counter()
        predictor.predict(files)
        print(f"throughput, JPEG files on disk:             {rate(len(files), time.perf_counter() - started)}")
        latencies = []
        for path in files[:50]:
            started = time.perf_counter()
            predictor.predict([path])
            latencies.append(time.perf_counter() - started)
        print(f"single-image latency (file to digit):       {1000 * statistics.median(latencies):.1f} ms median")
        command = [sys.executable, "-m", "pipeline.predict", str(files[0]), "--model", str(args.model)]
        walls = []
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run(command, cwd=ROOT, env=ENV, check=True, capture_output=True)
            walls.append(time.perf_counter() - started)
        print(f"CLI cold start, one image:                  {statistics.median(walls):.2f} s median of 3")


if __name__ == "__main__":
    main()
