"""The networks `train.model` can name. Each is one readable Sequential block."""
from typing import Any

from pipeline.config import TrainConfig
from pipeline.tf import keras

INPUT_SHAPE = (28, 28)
NUM_CLASSES = 10


def build_model(params: TrainConfig) -> Any:
    """Build (uncompiled) the network named by `params.model`."""
    builders = {"mlp": mlp}
    return builders[params.model](params)


def mlp(params: TrainConfig) -> Any:
    """The notebook's network: 784 -> 128 relu -> 32 relu -> 10 softmax, 104,938 parameters."""
    layers = keras().layers
    return keras().Sequential(
        [
            keras().Input(shape=INPUT_SHAPE),
            layers.Flatten(),  # flattening lives in the model, so inputs stay 28x28 images
            layers.Dense(128, activation="relu"),
            layers.Dense(32, activation="relu"),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="mlp",
    )
