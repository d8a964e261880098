"""Draw the sample digits, learning curves, confusion matrix and misclassified digits.

Reads data/prepared/{train,test}.npz, metrics/learning_curve.csv and metrics/predictions.csv; writes
PNGs to metrics/plots/.
"""

from pipeline.core import artifacts, cli, config, paths
from pipeline.train import plots


def main() -> None:
    params = config.load()
    train_images, train_labels = artifacts.load_split(paths.prepared("train"))
    test_images, _ = artifacts.load_split(paths.prepared("test"))
    curve = artifacts.load_learning_curve(paths.LEARNING_CURVE)
    actual, predicted, confidence = artifacts.load_predictions(paths.PREDICTIONS)
    figures = {
        "samples.png": plots.sample_grid(train_images, train_labels, params.plot.samples),
        "loss.png": plots.learning_curve(curve, "loss"),
        "accuracy.png": plots.learning_curve(curve, "accuracy"),
        "confusion.png": plots.confusion_heatmap(actual, predicted),
        "misclassified.png": plots.misclassified_gallery(
            test_images, actual, predicted, confidence, params.plot.misclassified
        ),
    }
    rendered = {name: plots.to_png(figure) for name, figure in figures.items()}  # all, then write
    for name, png in rendered.items():
        artifacts.write_bytes(paths.PLOTS_DIR / name, png)
    cli.log(f"wrote {len(rendered)} plots to {paths.PLOTS_DIR}/")


if __name__ == "__main__":
    cli.run(main)
