"""Score the trained model on the test set.

Reads models/model.keras, data/prepared/test.npz and metrics/learning_curve.csv; writes
metrics/metrics.json and metrics/predictions.csv (one row per test image).
"""
from functools import partial

from pipeline import artifacts, cli, evaluation, models, paths

log = partial(print, flush=True)


def main() -> None:
    images, labels = artifacts.load_split(paths.prepared("test"))
    curve = artifacts.load_learning_curve(paths.LEARNING_CURVE)
    model = models.load_model(paths.MODEL)
    probabilities = model.predict(images, batch_size=1024, verbose=0)
    metrics = evaluation.summarize(probabilities, labels, curve, model.count_params())
    artifacts.save_json(paths.METRICS, metrics)
    artifacts.save_csv(paths.PREDICTIONS, evaluation.prediction_rows(probabilities, labels))
    log(f"test accuracy {metrics['test_accuracy']:.4f}, test loss {metrics['test_loss']:.4f}")


if __name__ == "__main__":
    cli.run(main)
