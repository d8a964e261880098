"""Train a model on prepared arrays: seeded, deterministic, one progress line per epoch."""
import time
from typing import Any

import numpy as np

from pipeline.artifacts import HISTORY_COLUMNS
from pipeline.config import TrainConfig
from pipeline.models import build_model
from pipeline.tf import keras, make_deterministic, tensorflow

EVAL_BATCH = 1024  # evaluation has no gradient noise to keep small: bigger is just faster


def batches(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int | None = None) -> Any:
    """A tf.data pipeline; shuffled each epoch (from `seed`) when a seed is given."""
    tf = tensorflow()
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    if seed is not None:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def fit(
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    params: TrainConfig,
    seed: int,
    log: Any = print,
) -> tuple[Any, list[dict[str, float]]]:
    """Build, compile and train the configured model; return it and its per-epoch history."""
    make_deterministic(seed)
    model = build_model(params)
    model.compile(
        optimizer=keras().optimizers.Adam(learning_rate=params.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    result = model.fit(
        batches(*train, params.batch_size, seed=seed),
        validation_data=batches(*val, EVAL_BATCH),
        epochs=params.epochs,
        shuffle=False,  # the tf.data pipeline already reshuffles every epoch
        verbose=0,
        callbacks=[epoch_log(params.epochs, log)],
    )
    history = [
        {"epoch": epoch + 1, **{key: float(result.history[key][epoch]) for key in HISTORY_COLUMNS[1:]}}
        for epoch in range(params.epochs)
    ]
    return model, history


def epoch_log(epochs: int, log: Any) -> Any:
    """A callback printing one line per epoch instead of Keras' progress bars."""
    started = {}

    def begin(epoch: int, logs: dict | None = None) -> None:
        started["time"] = time.perf_counter()

    def end(epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        figures = "  ".join(f"{key} {logs[key]:.4f}" for key in HISTORY_COLUMNS[1:] if key in logs)
        seconds = time.perf_counter() - started["time"]
        log(f"epoch {epoch + 1:>{len(str(epochs))}}/{epochs}  {figures}  ({seconds:.1f} s)")

    return keras().callbacks.LambdaCallback(on_epoch_begin=begin, on_epoch_end=end)
