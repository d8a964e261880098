"""Split off a stratified validation set.

Reads data/raw/mnist.npz; writes data/prepared/{train,val,test}.npz (`images` uint8 28x28,
scaled to [0, 1] as each stage loads them; `labels` uint8).
"""

from pipeline.core import artifacts, cli, config, datasets, paths
from pipeline.train import preprocessing


def main() -> None:
    params = config.load()
    raw = datasets.validate(artifacts.load_arrays(paths.RAW, datasets.KEYS), str(paths.RAW))
    splits = preprocessing.prepare(raw, params.preprocess.val_fraction, params.seed)
    for name, (images, labels) in splits.items():
        artifacts.save_split(paths.prepared(name), images, labels)
    cli.log("wrote " + ", ".join(f"{name} {len(labels)}" for name, (_, labels) in splits.items()))


if __name__ == "__main__":
    cli.run(main)
