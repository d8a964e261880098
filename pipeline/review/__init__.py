"""Review tools: is a change better, and are the committed results this code's?

    python -m pipeline.report     report.py: a pull request's metrics, params and plots against its base
    python -m pipeline.history    history.py: test accuracy across the commits of main
    python -m pipeline.uptodate   uptodate.py: are dvc.lock and metrics/ the results of this code?

They read git revisions (revisions.py) and DVC's own commands, and never change the workspace's
pipeline outputs. The commands keep their short names through pipeline/report.py, history.py
and uptodate.py.
"""
