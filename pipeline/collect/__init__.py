"""Digits from the people who use the model: corrections the service collects and folders of
labelled images a user imports, kept as the 28x28 the model saw, under data/collected/<label>/.

    python -m pipeline.collect ROOT [--into DIR]    import ROOT/<digit>/*.png|jpg|... (command.py)

store.py is the store both write through (server-made names, whole files, bounded); the service's
POST /feedback is pipeline/serve/feedback.py. dataset.py reads the store for the pipeline: the
collected stage's train and test parts, which train and field use.
"""
