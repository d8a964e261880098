"""Fixtures of the system tests: the whole pipeline as a user would clone it."""

from pathlib import Path

import pytest

from testkit.repos import make_pipeline_repo


@pytest.fixture
def pipeline_repo(tmp_path: Path) -> Path:
    """A shrunken pipeline in a fresh git repo: see make_pipeline_repo."""
    return make_pipeline_repo(tmp_path / "repo")
