"""What every package shares: MNIST's constants and files (datasets.py), atomic writes and the
pipeline's file formats (artifacts.py), errors, paths, params.yaml's typed config, the command
runner and its argparse types (cli.py), and TensorFlow's quiet, lazy import (tf.py)."""
