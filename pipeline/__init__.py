"""MNIST digit classifier as a reproducible DVC pipeline.

The modules here are the stages' library: what `stages/` imports and `dvc repro` runs. Beside
it, predict/ reads digits in new images and review/ holds the tools for pull requests and
history; report.py, history.py and uptodate.py only give those tools their command names.
"""
