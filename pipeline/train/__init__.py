"""The stages' library: what `stages/` runs under `dvc repro`, one module a stage or so.

fetch.py and preprocessing.py make the data, models.py the networks and their byte-stable files,
training.py fits them (rendered.py adds digits read through the serving normaliser), evaluation.py
and plots.py score and draw them, export.py writes the deployed forms, field.py scores the exported
model on rendered images. Models are read back through pipeline/predict/runners.py, as users read them.
"""
