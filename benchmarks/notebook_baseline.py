"""The notebook's training code as a plain script: the baseline our pipeline must beat.

numpy arrays straight into model.fit, default batch size 32, validation_split=0.2, 15 epochs
(verbose=2, one line per epoch: slightly kinder to the baseline than the notebook's progress bar).
Reads the Keras-layout data/raw/mnist.npz (what keras.datasets.mnist.load_data() returns from
its cache). Prints the test accuracy as its last line, and writes a record (benchmarks/results/)
unless given --no-record, as pipeline_vs_notebook.py runs it.

    python benchmarks/notebook_baseline.py data/raw/mnist.npz
"""

import os
import sys
import time

import numpy as np
import records

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    run_record = records.start("notebook_baseline", []) if "--no-record" not in sys.argv else None
    started = time.perf_counter()
    import keras

    with np.load(sys.argv[1]) as data:
        x_train, y_train, x_test, y_test = (data[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    x_train, x_test = x_train / 255.0, x_test / 255.0
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=15, validation_split=0.2, verbose=2)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test_accuracy {accuracy:.4f}")
    if run_record is not None:
        records.write(run_record, {"test_accuracy": accuracy, "seconds": time.perf_counter() - started})


if __name__ == "__main__":
    main()
