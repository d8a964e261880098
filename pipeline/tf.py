"""Import TensorFlow quietly, once, and only in the stages that need it.

TensorFlow writes several lines of C++ log (oneDNN notes, CUDA probes) to stderr before its
logging can be configured; they are captured here and shown only if the import fails.
"""
import functools
import os
import sys
import tempfile
from typing import Any


@functools.cache
def tensorflow() -> Any:
    # 3 also hides C++ "errors" that are only notes (an unknown tf.data attribute, a missing
    # CUDA driver); real failures still surface as Python exceptions.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # the CUDA probe logs here, not at import
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    tf.get_logger().setLevel("ERROR")
    return tf


def keras() -> Any:
    tensorflow()
    import keras as keras_module

    return keras_module


def make_deterministic(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow from one number and make TF ops deterministic."""
    keras().utils.set_random_seed(seed)
    tensorflow().config.experimental.enable_op_determinism()
