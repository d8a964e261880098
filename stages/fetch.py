"""Fetch MNIST from params.yaml:fetch.source.

Writes data/raw/mnist.npz (Keras layout, uint8) and metrics/dataset.json (its fingerprint and
sizes, and whether it is the canonical MNIST).
"""

from pipeline.core import artifacts, cli, config, datasets, paths
from pipeline.train import fetch


def main() -> None:
    params = config.load()
    data = fetch.fetch(params.fetch.source, log=cli.log)
    fingerprint = datasets.fingerprint(data)
    info = {
        "fingerprint": fingerprint,
        "is_mnist": fingerprint == datasets.MNIST_FINGERPRINT,
        "train_images": len(data["x_train"]),
        "test_images": len(data["x_test"]),
    }
    artifacts.save_arrays(paths.RAW, data)
    artifacts.save_json(paths.DATASET_INFO, info)
    kind = "MNIST, fingerprint verified" if info["is_mnist"] else f"fingerprint {info['fingerprint']}"
    cli.log(f"wrote {paths.RAW}: {info['train_images']} training and {info['test_images']} test images ({kind})")


if __name__ == "__main__":
    cli.run(main)
