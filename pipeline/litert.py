"""Run an exported LiteRT (.tflite) digit classifier, without TensorFlow.

ai_edge_litert's interpreter imports in a fraction of a second where TensorFlow takes seconds,
so this is what predictions use when the export stage has produced a model. Inputs and outputs
are float32 in both exported models (the int8 one quantizes inside), as for the Keras model:
(N, 28, 28) digits in [0, 1] in, (N, 10) probabilities out.
"""

from pathlib import Path

import numpy as np

from pipeline import artifacts, models
from pipeline.datasets import IMAGE_SHAPE, NUM_CLASSES
from pipeline.errors import first_line
from pipeline.tf import quiet


class LiteRTModel:
    """A .tflite classifier of MNIST digits: call it with digits, get probabilities."""

    def __init__(self, content: bytes, source: str, threads: int | None = None) -> None:
        """`threads`: the interpreter's, None for LiteRT's default (one). More split each batch's
        work and give the same bytes; worth it where nothing else runs, as in the export stage."""
        from ai_edge_litert.interpreter import Interpreter  # not at import: the module stays light

        if not content:  # the interpreter would say "`model_path` or `model_content` must be specified"
            raise artifacts.file_error(Path(source), "not a loadable LiteRT model (empty file)")
        try:
            with quiet(fds=(2,)):  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                self.interpreter = Interpreter(model_content=content, num_threads=threads)
        except (ValueError, RuntimeError) as error:
            # file_error: a damaged exported model is named with the `dvc checkout` that restores it
            problem = f"not a loadable LiteRT model ({first_line(error)})"
            raise artifacts.file_error(Path(source), problem) from None
        (self.input,) = self.interpreter.get_input_details()
        (self.output,) = self.interpreter.get_output_details()
        inputs, outputs = (tuple(int(n) for n in detail["shape"]) for detail in (self.input, self.output))
        if inputs[1:] != IMAGE_SHAPE or outputs[1:] != (NUM_CLASSES,):
            raise models.shape_error(Path(source), inputs, outputs)
        self.source = source
        self.batch = 0  # the batch size the interpreter's tensors are allocated for

    @classmethod
    def from_path(cls, path: Path) -> "LiteRTModel":
        path = models.model_file(Path(path))
        return cls(path.read_bytes(), str(path))

    def __call__(self, digits: np.ndarray) -> np.ndarray:
        """Probabilities (N, 10) for MNIST-form digits (N, 28, 28) in [0, 1]."""
        digits = np.asarray(digits, dtype=np.float32).reshape(-1, *IMAGE_SHAPE)
        batch = models.INFERENCE_BATCH
        parts = [self._run(digits[i : i + batch]) for i in range(0, len(digits), batch)]
        return np.concatenate(parts) if parts else np.zeros((0, NUM_CLASSES), np.float32)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) != self.batch:  # re-plan the tensors only when the batch size changes
            self.interpreter.resize_tensor_input(self.input["index"], [len(batch), *IMAGE_SHAPE])
            with quiet(fds=(2,)):
                self.interpreter.allocate_tensors()
            self.batch = len(batch)
        self.interpreter.set_tensor(self.input["index"], batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"]).copy()
