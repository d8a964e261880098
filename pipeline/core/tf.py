"""Import TensorFlow quietly, once, and only in the stages that need it; keep native logs quiet.

TensorFlow writes several lines of C++ log (oneDNN notes, CUDA probes) to stderr before its
logging can be configured; they are captured here and shown only if the import fails.
"""

import contextlib
import functools
import io
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any


@functools.cache
def tensorflow() -> Any:
    # 3 also hides C++ "errors" that are only notes (an unknown tf.data attribute, a missing
    # CUDA driver); real failures still surface as Python exceptions.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # oneDNN's kernels: TensorFlow turns them on by itself only on some Intel CPUs. On an AMD EPYC
    # they train the conv nets about twice as fast, with op determinism kept (benchmarks/results.txt);
    # on everywhere, every machine runs the same kernels.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    with quiet(fds=(2,)), _without_unused_extras():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # the CUDA probe logs here, not at import
    tf.get_logger().setLevel("ERROR")
    return tf


# Packages Keras imports eagerly, whenever installed, for features nothing here uses: scikit-learn
# for its scikit-learn wrappers, matplotlib.pyplot for its image gallery; together a good part of
# Keras' import time (`python -X importtime -c "import keras"` shows them).
UNUSED_BY_KERAS = ("sklearn", "matplotlib")


@contextlib.contextmanager
def _without_unused_extras() -> Iterator[None]:
    """Hide UNUSED_BY_KERAS while Keras imports, unless already imported; each stays importable
    afterwards (the plot stage's matplotlib, the tests' scikit-learn)."""
    hidden = [name for name in UNUSED_BY_KERAS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # `import name` raises ImportError, which Keras handles
    try:
        yield
    finally:
        for name in hidden:
            del sys.modules[name]


@contextlib.contextmanager
def quiet(fds: tuple[int, ...] = (1, 2)) -> Iterator[None]:
    """Hold back what the block writes to stdout and stderr, C++ logs and Python warnings
    included; show it only if the block fails.

    TensorFlow's converters and LiteRT's interpreter print notes (saved artifacts, quantization
    settings, the XNNPACK delegate) straight to the process's file descriptors, where Python
    cannot filter them.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in fds}
    python_streams = io.StringIO()
    with tempfile.TemporaryFile() as captured, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for fd in fds:
            os.dup2(captured.fileno(), fd)
        try:
            with contextlib.redirect_stdout(python_streams), contextlib.redirect_stderr(python_streams):
                yield
        except BaseException:
            _restore(saved)
            captured.seek(0)
            held = captured.read().decode(errors="replace") + python_streams.getvalue()
            held += "".join(f"{w.category.__name__}: {w.message}\n" for w in caught)
            sys.stderr.write(held)
            raise
        finally:
            _restore(saved)


def _restore(saved: dict[int, int]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, original in list(saved.items()):
        os.dup2(original, fd)
        os.close(original)
        del saved[fd]


def keras() -> Any:
    tensorflow()
    import keras as keras_module

    return keras_module


def make_deterministic(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow from one number and make TF ops deterministic."""
    keras().utils.set_random_seed(seed)
    tensorflow().config.experimental.enable_op_determinism()
