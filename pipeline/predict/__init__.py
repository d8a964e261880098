"""Predicting digits in new images: photos, scans and drawings brought to MNIST's form.

    python -m pipeline.predict IMAGE_OR_DIR...     the command (command.py)
    from pipeline.predict import Predictor         the Python API (predictor.py)

images.py reads any picture safely into grayscale; normalise.py makes it look like an MNIST digit;
runners.py runs a LiteRT or Keras model file behind one interface, after checking the file.
"""

from pipeline.predict.predictor import Prediction, Predictor, Upload

__all__ = ["Prediction", "Predictor", "Upload"]
