"""MNIST digit classifier as a reproducible DVC pipeline: the library behind `stages/`."""
