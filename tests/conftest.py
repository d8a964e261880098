"""Fixtures shared by the unit tests (tests/unit/) and the system tests (tests/system/, whose own
conftest.py adds the shrunken pipeline); the helpers they build on live in testkit/."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def template_litert(tmp_path_factory) -> Path:
    """testkit.glyphs' template model as the export stage writes it, LiteRT float32: converted once
    for every test that reads with it (a conversion takes seconds). Read it, never write to it."""
    from pipeline.train import export  # imports TensorFlow: only when a test asks for the model
    from testkit.glyphs import template_model

    path = tmp_path_factory.mktemp("template-litert") / "model.tflite"
    path.write_bytes(export.to_litert(template_model()))
    return path
