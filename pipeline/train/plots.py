"""Figures of the data, the training run and the test errors, as matplotlib Figures.

Uses matplotlib's object API (no pyplot, no global backend switch) and never TensorFlow.
"""

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline.core.datasets import NUM_CLASSES
from pipeline.train.evaluation import confusion


def to_png(figure: Figure, dpi: int = 100) -> bytes:
    """Render to PNG bytes that depend only on the figure (no version or time stamp)."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def _grid(count: int) -> tuple[int, int]:
    columns = int(np.ceil(np.sqrt(count)))
    return int(np.ceil(count / columns)), columns


def sample_grid(images: np.ndarray, labels: np.ndarray, count: int) -> Figure:
    """The first `count` training digits with their labels."""
    count = min(count, len(images))
    rows, columns = _grid(count)
    figure = Figure(figsize=(1.3 * columns, 1.5 * rows))
    for i in range(count):
        axes = figure.add_subplot(rows, columns, i + 1)
        axes.imshow(images[i], cmap="gray_r", vmin=0, vmax=1)
        axes.set_title(f"label {labels[i]}", fontsize=9)
        axes.axis("off")
    figure.suptitle("Sample training digits")
    figure.tight_layout()
    return figure


def learning_curve(curve: list[dict[str, float]], metric: str) -> Figure:
    """Training and validation `metric` ('loss' or 'accuracy') per epoch."""
    epochs = [row["epoch"] for row in curve]
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    axes.plot(epochs, [row[metric] for row in curve], marker="o", label=f"training {metric}")
    axes.plot(epochs, [row[f"val_{metric}"] for row in curve], marker="o", label=f"validation {metric}")
    axes.set_xlabel("epoch")
    axes.set_ylabel(metric)
    axes.set_title(f"Training and validation {metric}")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    return figure


def confusion_heatmap(actual: np.ndarray, predicted: np.ndarray) -> Figure:
    """Counts of true vs predicted digit on the test set, with the count in each cell."""
    matrix = confusion(actual, predicted)
    figure = Figure(figsize=(6.5, 5.5))
    axes = figure.add_subplot()
    image = axes.imshow(np.log1p(matrix), cmap="Blues")  # log: the diagonal would drown errors
    for (row, column), count in np.ndenumerate(matrix):
        if count:
            color = "white" if row == column else "black"
            axes.text(column, row, str(count), ha="center", va="center", fontsize=7, color=color)
    axes.set_xticks(range(NUM_CLASSES))
    axes.set_yticks(range(NUM_CLASSES))
    axes.set_xlabel("predicted digit")
    axes.set_ylabel("true digit")
    axes.set_title(f"Confusion matrix ({int(np.trace(matrix))}/{matrix.sum()} correct)")
    figure.colorbar(image, ax=axes, label="log(1 + count)")
    figure.tight_layout()
    return figure


def misclassified_gallery(
    images: np.ndarray, actual: np.ndarray, predicted: np.ndarray, confidence: np.ndarray, count: int
) -> Figure:
    """The most confident mistakes first: true vs predicted digit and the model's confidence."""
    wrong = np.flatnonzero(actual != predicted)
    order = wrong[np.lexsort((wrong, -confidence[wrong]))][:count]
    rows, columns = _grid(max(len(order), 1))
    figure = Figure(figsize=(1.5 * columns, 1.7 * rows))
    for i, index in enumerate(order):
        axes = figure.add_subplot(rows, columns, i + 1)
        axes.imshow(images[index], cmap="gray_r", vmin=0, vmax=1)
        axes.set_title(f"true {actual[index]} → {predicted[index]}\n{confidence[index]:.1%}", fontsize=8)
        axes.axis("off")
    title = f"Misclassified test digits ({len(wrong)} in all)" if len(wrong) else "No misclassified test digits"
    figure.suptitle(title)
    figure.tight_layout()
    return figure
