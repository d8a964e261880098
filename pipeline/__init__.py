"""MNIST digit classifier as a reproducible DVC pipeline, in packages by role:

    core/     what every other package shares: MNIST's constants and files, errors, paths,
              params.yaml's typed config, the command runner and its argparse types, TensorFlow's quiet import
    train/    the stages' library (fetch, preprocess, train, evaluate, plot, export, field): what stages/ runs
    render/   digits drawn, photographed and scanned, made from MNIST's: the field set and augmentation
    predict/  images in, digits out: decoding, normalising, the LiteRT and Keras runners (no training code)
    collect/  digits from users: the store of corrections and imported folders, its import command
    serve/    the HTTP service and its page, on predict and collect (no training code)
    review/   tools for a change: its report, the history of main, whether results are up to date, recipes

Imports point one way (tests/system/test_imports.py): core <- predict <- collect <- serve, and
predict, render <- train <- review.
"""
