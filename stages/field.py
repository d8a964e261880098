"""Score the model users get on the field set: encoded images made from the test split.

Reads models/model_float32.tflite (the export stage's, what predict and the service load),
data/prepared/test.npz and data/collected/; writes metrics/field.json: accuracy per source
(mnist_png, photos, drawn, scans, app_exports) and on the same digits as arrays, and, when the
collected digits have a test part, the model's accuracy on them as stored, the 28x28s it was
served, as `collected` (per label too). The images are
made in memory from the seed, never written.
"""

from pipeline import render
from pipeline.collect import dataset
from pipeline.core import artifacts, cli, config, datasets, paths
from pipeline.predict.predictor import Predictor
from pipeline.train import field


def main() -> None:
    params = config.load()
    test = dataset.split(dataset.digits(paths.COLLECTED), params.collected.test_fraction)["test"]
    images, labels = artifacts.load_split(paths.prepared("test"))
    chosen = field.choose(params.field.images, len(labels), params.seed)
    predictor = Predictor.from_path(paths.LITERT_FLOAT32)
    scores = field.score(predictor, images[chosen], labels[chosen], params.seed)
    shown = ", ".join(f"{source} {scores[source]:.4f}" for source in ("arrays", *render.SOURCES))
    cli.log(f"field accuracy on {len(chosen):,} test digits per source: {shown}")
    if test:  # none: field.json as it was before there was a store
        digits, labels = dataset.arrays(paths.COLLECTED, test)
        scores["collected"] = field.score_collected(predictor, datasets.scale(digits), labels)
        cli.log(f"field accuracy on {len(test):,} collected test digits: {scores['collected']['accuracy']:.4f}")
    artifacts.save_json(paths.FIELD_METRICS, scores)


if __name__ == "__main__":
    cli.run(main)
