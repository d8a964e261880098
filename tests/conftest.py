"""Fixtures shared by the test modules; the helpers they use live in testkit/."""

from pathlib import Path

import pytest

from testkit.repos import make_pipeline_repo


@pytest.fixture
def pipeline_repo(tmp_path: Path) -> Path:
    """A shrunken pipeline in a fresh git repo: see make_pipeline_repo."""
    return make_pipeline_repo(tmp_path / "repo")
