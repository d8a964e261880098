"""Score the trained model on the test set.

Reads models/model.keras, data/prepared/test.npz and metrics/learning_curve.csv; writes
metrics/metrics.json and metrics/predictions.csv (one row per test image).
"""

from pipeline.core import artifacts, cli, paths
from pipeline.predict import runners
from pipeline.train import evaluation


def main() -> None:
    images, labels = artifacts.load_split(paths.prepared("test"))
    curve = artifacts.load_learning_curve(paths.LEARNING_CURVE)
    model = runners.load_model(paths.MODEL, compile=False)  # predicting needs no optimizer
    probabilities = model.predict(images, batch_size=runners.INFERENCE_BATCH, verbose=0)
    metrics = evaluation.summarize(probabilities, labels, curve, model.count_params())
    artifacts.save_json(paths.METRICS, metrics)
    artifacts.save_csv(paths.PREDICTIONS, evaluation.prediction_rows(probabilities, labels))
    cli.log(f"test accuracy {metrics['test_accuracy']:.4f}, test loss {metrics['test_loss']:.4f}")


if __name__ == "__main__":
    cli.run(main, skip_teardown=True)  # past TensorFlow's teardown (see cli.run)
