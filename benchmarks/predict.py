"""Predicting new images: accuracy on a realistic test set, throughput, latency, CLI cold start.

The realistic set is MNIST's test split rendered as photos of ink on paper (`pipeline/render/photos.py`):
never the training split. Run from the repo root after `dvc repro` (it reads the prepared test
split, the Keras model and the export stage's LiteRT models):

    python benchmarks/predict.py [--model models/model.keras] [--count 10000] [--repeats 5]

The claim it checks: with the exported LiteRT model, `python -m pipeline.predict` classifies one
image from a cold start in under a second, where importing TensorFlow alone takes seconds (both
measured in the same run), and LiteRT names the Keras model's digit on the photos.
"""

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import records
from PIL import Image

from common import ENV, ROOT, cpu_name
from pipeline import render
from pipeline.core import artifacts, paths
from pipeline.predict import Predictor
from pipeline.predict.predictor import default_model


def accuracy(predictions, labels: np.ndarray) -> float:
    return float(np.mean([p.error is None and p.digit == label for p, label in zip(predictions, labels)]))


def literal_recipe(predictor: Predictor, pictures: list[Image.Image]) -> np.ndarray:
    """The notebook's recipe: grayscale, resize to 28x28, scale to [0, 1]; no normalisation."""
    arrays = [np.asarray(p.convert("L").resize((28, 28)), dtype=np.float32) / 255 for p in pictures]
    return predictor.probabilities(np.stack(arrays)).argmax(axis=1)


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} images/s ({count} in {seconds:.2f} s)"


def array_seconds(predictor: Predictor, images: np.ndarray) -> tuple[int, float]:
    """Throughput of the model alone on 10,000 MNIST-form digits, after one warm-up call: (count, seconds)."""
    batch = np.tile(images, (max(1, 10_000 // len(images)), 1, 1))[:10_000]
    predictor.probabilities(batch[:256])  # warm-up: the first call traces the Keras model
    started = time.perf_counter()
    predictor.probabilities(batch)
    return len(batch), time.perf_counter() - started


def compare_litert(path: Path, seen: np.ndarray, keras_digits: np.ndarray, labels: np.ndarray) -> dict | None:
    """A LiteRT model on the digits the Keras path saw: its accuracy and agreement with Keras.

    The same normalised 28x28 digits go to both, so any difference is the model's. Accuracy is
    over all photos (a photo with no digit found counts as wrong, as for Keras).
    """
    if not path.exists():
        print(f"{path}: not exported (run `dvc repro export`)")
        return None
    litert = Predictor.from_path(path)
    digits = litert.probabilities(seen).argmax(axis=1)
    differ = int(np.sum(digits != keras_digits))
    photos = float(np.sum(digits == labels) / len(labels))
    print(f"LiteRT {path} on the digits the Keras path saw:")
    print(f"  accuracy on the photos:                   {photos:.2%}")
    agreement = 1 - differ / len(seen)
    print(f"  same digit as Keras:                      {agreement:.2%}  ({differ} of {len(seen)} differ)")
    count, seconds = array_seconds(litert, seen)
    print(f"  throughput, model on 28x28 arrays:        {rate(count, seconds)}")
    return {"photos_accuracy": photos, "agreement": agreement, "differ": differ, "arrays_per_s": count / seconds}


def cold_starts(commands: dict[str, list[str]], repeats: int) -> dict[str, float]:
    """Median wall time of each command, each run `repeats` times, interleaved so that anything
    else on the machine slows them alike."""
    walls: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, cwd=ROOT, env=ENV, check=True, capture_output=True)
            walls[name].append(time.perf_counter() - started)
    return {name: statistics.median(times) for name, times in walls.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=paths.MODEL, help="the Keras model LiteRT is compared with")
    parser.add_argument("--count", type=int, default=10_000, help="test digits to render")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="cold starts of each command")
    args = parser.parse_args()
    os.chdir(ROOT)
    run_record = records.start("predict", sys.argv[1:])
    images, labels = artifacts.load_split(paths.prepared("test"))
    images, labels = images[: args.count], labels[: args.count]
    predictor = Predictor.from_path(args.model)
    print(f"{cpu_name()}, {os.cpu_count()} cores; model {args.model}; {len(labels)} test digits, seed {args.seed}")

    mnist = float(np.mean(predictor.probabilities(images).argmax(axis=1) == labels))
    pictures = [Image.open(io.BytesIO(content)) for content in render.render_set("photos", images, args.seed)]
    started = time.perf_counter()
    predicted = predictor.predict(pictures)
    chain_seconds = time.perf_counter() - started
    ours = accuracy(predicted, labels)
    literal = float(np.mean(literal_recipe(predictor, pictures) == labels))
    print(f"accuracy on MNIST test digits:              {mnist:.2%}")
    print(f"accuracy on the same digits as photos:      {ours:.2%}  (gap {100 * (mnist - ours):.2f} points)")
    print(f"  the notebook's literal recipe on them:    {literal:.2%}")
    print(f"  no digit found in:                        {sum(p.error is not None for p in predicted)}")

    count, seconds = array_seconds(predictor, images)
    print(f"throughput, model on 28x28 arrays:          {rate(count, seconds)}")
    print(f"throughput, photos in memory (normalise+model): {rate(len(pictures), chain_seconds)}")
    values = {
        "model": str(args.model),
        "digits": len(labels),
        "seed": args.seed,
        "mnist_accuracy": mnist,
        "photos_accuracy": ours,
        "literal_recipe_accuracy": literal,
        "no_digit_found": sum(p.error is not None for p in predicted),
        "arrays_per_s": count / seconds,
        "photos_in_memory_per_s": len(pictures) / chain_seconds,
        "litert": {},
    }

    found = [(p, label) for p, label in zip(predicted, labels) if p.error is None]
    seen = np.stack([p.digit28 for p, _ in found])
    keras_digits = np.array([p.digit for p, _ in found])
    for path in (paths.LITERT_FLOAT32, paths.LITERT_INT8):
        scores = compare_litert(path, seen, keras_digits, np.array([label for _, label in found]))
        if scores is not None:
            values["litert"][str(path)] = scores

    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for index, picture in enumerate(pictures[:1000]):
            files.append(Path(tmp) / f"{index}.jpg")
            picture.save(files[-1], quality=90)
        started = time.perf_counter()
        predictor.predict(files)
        files_seconds = time.perf_counter() - started
        print(f"throughput, JPEG files on disk:             {rate(len(files), files_seconds)}")
        values["jpeg_files_per_s"] = len(files) / files_seconds
        latencies = []
        for path in files[:50]:
            started = time.perf_counter()
            predictor.predict([path])
            latencies.append(time.perf_counter() - started)
        print(f"single-image latency (file to digit):       {1000 * statistics.median(latencies):.1f} ms median")
        predict = [sys.executable, "-m", "pipeline.predict", str(files[0])]
        medians = cold_starts(
            {
                "import tensorflow": [sys.executable, "-c", "import tensorflow"],
                "default": predict,  # the LiteRT float32 model when exported
                "keras": [*predict, "--model", str(args.model)],
            },
            args.repeats,
        )
        runs = f"median of {args.repeats}"
        print(f"TensorFlow import alone (python -c):        {medians['import tensorflow']:.2f} s {runs}")
        print(f"CLI cold start, one image, default:         {medians['default']:.2f} s {runs}  ({default_model()})")
        print(f"CLI cold start, one image, Keras:           {medians['keras']:.2f} s {runs}  (--model {args.model})")
    values.update(
        latency_ms_median=1000 * statistics.median(latencies),
        repeats=args.repeats,
        tensorflow_import_s=medians["import tensorflow"],
        cold_start_default_s=medians["default"],
        cold_start_default_model=str(default_model()),
        cold_start_keras_s=medians["keras"],
    )
    records.write(run_record, values)


if __name__ == "__main__":
    main()
