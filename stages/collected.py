"""Split the collected digits into train and test parts by a hash of each file.

Reads data/collected/<label>/*.png, the store the service and `python -m pipeline.collect` write
(an output here only so that DVC caches, pushes and records it; made empty when a fresh clone
has none); writes data/prepared/collected_{train,test}.npz (`images`: uint8 28x28 as stored,
the serving normaliser's output; `labels`): the train stage adds the train part to MNIST's
training split `collected.repeat` times, the field stage scores the test part.
"""

from pipeline.collect import dataset
from pipeline.core import artifacts, cli, config, paths


def main() -> None:
    params = config.load()
    dataset.ensure(paths.COLLECTED)  # a fresh clone's empty store; refused if dvc.lock says it held digits
    parts = dataset.split(dataset.digits(paths.COLLECTED), params.collected.test_fraction)
    for name, path in (("train", paths.COLLECTED_TRAIN), ("test", paths.COLLECTED_TEST)):
        artifacts.save_split(path, *dataset.arrays(paths.COLLECTED, parts[name]))
    cli.log(f"collected digits: {len(parts['train'])} to train on, {len(parts['test'])} to test on")


if __name__ == "__main__":
    cli.run(main)
