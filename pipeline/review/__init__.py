"""Tools for a change: is it better, are the committed results this code's, and named runs.

    python -m pipeline.review.report     a pull request's metrics, params and plots against its base
    python -m pipeline.review.history    test accuracy across the commits of main
    python -m pipeline.review.uptodate   are dvc.lock and metrics/ the results of this code?
    python -m pipeline.review.recipes    run a named set of train values from recipes.yaml

They read git revisions (revisions.py) and DVC's own commands, and never change the workspace's
pipeline outputs.
"""
