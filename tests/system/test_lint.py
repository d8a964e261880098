"""The code passes ruff's lint rules and is laid out as ruff formats it (both configured in
pyproject.toml; ruff is pinned in requirements-dev.in). Run `ruff format .` to fix the layout."""

import subprocess
import sys

import pytest

from testkit.repos import ROOT


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_the_code_passes_ruff(command):
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "--no-cache", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
