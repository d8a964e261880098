"""Train the model named in params.yaml:train.

Reads data/prepared/{train,val}.npz and data/prepared/collected_train.npz (the collected
digits' train part, added `collected.repeat` times); writes models/model.keras and
metrics/learning_curve.csv.
"""

from pipeline.core import artifacts, cli, config, paths
from pipeline.train import models, training


def main() -> None:
    params = config.load()
    mnist = artifacts.load_split(paths.prepared("train"))
    collected = artifacts.load_split(paths.COLLECTED_TRAIN)
    train = training.with_collected(mnist, collected, params.collected.repeat)
    if len(train[1]) > len(mnist[1]):
        repeat = params.collected.repeat
        cli.log(f"training on {len(mnist[1]):,} MNIST digits and {len(collected[1]):,} collected, each {repeat} times")
    val = artifacts.load_split(paths.prepared("val"))
    model, curve = training.fit(train, val, params.train, params.seed, log=cli.log)
    models.save_model(model, paths.MODEL)
    artifacts.save_learning_curve(paths.LEARNING_CURVE, curve)


if __name__ == "__main__":
    cli.run(main, skip_teardown=True)  # past TensorFlow's teardown (see cli.run)
