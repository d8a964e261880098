"""Score the model users get on the field set: encoded images made from the test split.

Reads models/model_float32.tflite (the export stage's, what predict and the service load),
data/prepared/test.npz and data/prepared/collected_test.npz; writes metrics/field.json: accuracy
per source (mnist_png, photos, drawn, scans, app_exports) and on the same digits as arrays, and,
when the collected digits have a test part, the model's accuracy on them as stored (the 28x28s
it was served) as `collected`, per label too. The images are made in memory from the seed,
never written.
"""

from pipeline import render
from pipeline.core import artifacts, cli, config, paths
from pipeline.predict.predictor import Predictor
from pipeline.train import field


def main() -> None:
    params = config.load()
    images, labels = artifacts.load_split(paths.prepared("test"))
    chosen = field.choose(params.field.images, len(labels), params.seed)
    predictor = Predictor.from_path(paths.LITERT_FLOAT32)
    scores = field.score(predictor, images[chosen], labels[chosen], params.seed)
    shown = ", ".join(f"{source} {scores[source]:.4f}" for source in ("arrays", *render.SOURCES))
    cli.log(f"field accuracy on {len(chosen):,} test digits per source: {shown}")
    collected, collected_labels = artifacts.load_split(paths.COLLECTED_TEST)
    if len(collected_labels):  # none: field.json as it was before there was a store
        scores["collected"] = field.score_collected(predictor, collected, collected_labels)
        shown = f"{scores['collected']['accuracy']:.4f}"
        cli.log(f"field accuracy on {len(collected_labels):,} collected test digits: {shown}")
    artifacts.save_json(paths.FIELD_METRICS, scores)


if __name__ == "__main__":
    cli.run(main)
