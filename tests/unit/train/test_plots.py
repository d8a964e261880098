"""Figures render to valid, byte-stable PNGs without a version stamp, and show the right things."""

import io

import numpy as np
import pytest
from PIL import Image

from pipeline.train import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LEARNING_CURVE = [
    {"epoch": 1, "loss": 0.9, "accuracy": 0.7, "val_loss": 1.0, "val_accuracy": 0.65},
    {"epoch": 2, "loss": 0.4, "accuracy": 0.88, "val_loss": 0.5, "val_accuracy": 0.85},
    {"epoch": 3, "loss": 0.25, "accuracy": 0.93, "val_loss": 0.35, "val_accuracy": 0.9},
]


def images(count: int = 30) -> np.ndarray:
    return np.random.default_rng(0).random((count, 28, 28), dtype=np.float32)


def labels(count: int = 30) -> np.ndarray:
    return (np.arange(count) % 10).astype(np.uint8)


def predictions(count: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Predicted digits (every fifth one wrong) and confidences."""
    predicted = labels(count).astype(np.int64)
    predicted[::5] = (predicted[::5] + 1) % 10
    confidence = np.linspace(0.5, 0.99, count)
    return predicted, confidence


FIGURES = {
    "samples": lambda: plots.sample_grid(images(), labels(), 9),
    "loss": lambda: plots.learning_curve(LEARNING_CURVE, "loss"),
    "accuracy": lambda: plots.learning_curve(LEARNING_CURVE, "accuracy"),
    "confusion": lambda: plots.confusion_heatmap(labels(), predictions()[0]),
    "misclassified": lambda: plots.misclassified_gallery(images(), labels(), *predictions(), 9),
    "no-mistakes": lambda: plots.misclassified_gallery(
        images(), labels(), labels().astype(np.int64), np.full(30, 0.9), 25
    ),
}


@pytest.mark.parametrize("name", FIGURES)
def test_renders_a_valid_png(name):
    raw = plots.to_png(FIGURES[name]())
    assert raw.startswith(PNG_SIGNATURE)
    assert len(raw) > 2_000
    Image.open(io.BytesIO(raw)).verify()
    with Image.open(io.BytesIO(raw)) as image:
        assert min(image.size) >= 100


@pytest.mark.parametrize("name", FIGURES)
def test_rendering_is_byte_stable(name):
    assert plots.to_png(FIGURES[name]()) == plots.to_png(FIGURES[name]())


@pytest.mark.parametrize("name", ["samples", "confusion"])
def test_png_has_no_software_stamp(name):
    raw = plots.to_png(FIGURES[name]())
    assert b"matplotlib" not in raw
    assert b"Software" not in raw


def test_png_size_follows_figure_size_and_dpi():
    raw = plots.to_png(plots.learning_curve(LEARNING_CURVE, "loss"), dpi=50)
    with Image.open(io.BytesIO(raw)) as image:
        assert image.size == (300, 200)  # figsize (6, 4) inches


def test_sample_grid_shows_count_digits_with_labels():
    figure = plots.sample_grid(images(), labels(), 7)
    titles = [axes.get_title() for axes in figure.axes]
    assert titles == [f"label {digit}" for digit in range(7)]


def test_sample_grid_with_fewer_images_than_asked():
    assert len(plots.sample_grid(images(4), labels(4), 25).axes) == 4


def test_learning_curve_plots_both_series():
    axes = plots.learning_curve(LEARNING_CURVE, "accuracy").axes[0]
    lines = {line.get_label(): line for line in axes.get_lines()}
    assert sorted(lines) == ["training accuracy", "validation accuracy"]
    np.testing.assert_array_equal(lines["validation accuracy"].get_ydata(), [0.65, 0.85, 0.9])
    np.testing.assert_array_equal(lines["training accuracy"].get_xdata(), [1, 2, 3])


def test_confusion_heatmap_title_counts_correct_predictions():
    figure = plots.confusion_heatmap(labels(), predictions()[0])
    assert figure.axes[0].get_title() == "Confusion matrix (24/30 correct)"


def test_misclassified_gallery_shows_the_most_confident_mistakes_first():
    predicted, confidence = predictions()
    figure = plots.misclassified_gallery(images(), labels(), predicted, confidence, 4)
    titles = [axes.get_title() for axes in figure.axes]
    # mistakes are at 0, 5, ..., 25; confidence rises with the index
    assert [title.split("\n")[0] for title in titles] == ["true 5 → 6", "true 0 → 1", "true 5 → 6", "true 0 → 1"]
    shown = float(titles[0].split("\n")[1].rstrip("%")) / 100
    assert shown == pytest.approx(confidence[25], abs=0.005)
    assert figure.get_suptitle() == "Misclassified test digits (6 in all)"


def test_misclassified_gallery_without_mistakes():
    figure = FIGURES["no-mistakes"]()
    assert figure.axes == []
    assert figure.get_suptitle() == "No misclassified test digits"


def test_misclassified_gallery_with_count_zero_still_reports_the_mistakes():
    predicted, confidence = predictions()
    figure = plots.misclassified_gallery(images(), labels(), predicted, confidence, 0)
    assert figure.get_suptitle() != "No misclassified test digits"
