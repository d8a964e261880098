"""Train the model named in params.yaml:train.

Reads data/prepared/{train,val}.npz; writes models/model.keras and metrics/learning_curve.csv.
"""

from pipeline.core import artifacts, cli, config, paths
from pipeline.train import models, training


def main() -> None:
    params = config.load()
    train = artifacts.load_split(paths.prepared("train"))
    val = artifacts.load_split(paths.prepared("val"))
    model, curve = training.fit(train, val, params.train, params.seed, log=cli.log)
    models.save_model(model, paths.MODEL)
    artifacts.save_learning_curve(paths.LEARNING_CURVE, curve)


if __name__ == "__main__":
    cli.run(main, skip_teardown=True)  # past TensorFlow's teardown (see cli.run)
