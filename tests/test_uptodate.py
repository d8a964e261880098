"""Telling a stale pipeline from one whose data is merely absent, in `dvc status --json` output."""
import pytest

from pipeline import uptodate
from pipeline.errors import CheckFailed

# `dvc status --json` in a fresh clone that has not pulled: everything cached is missing.
NOT_PULLED = {
    "fetch": [{"changed outs": {"data/raw/mnist.npz": "not in cache"}}],
    "train": [
        {"changed deps": {"data/prepared/train.npz": "deleted", "data/prepared/val.npz": "deleted"}},
        {"changed outs": {"models/model.keras": "not in cache"}},
    ],
    "evaluate": [{"changed deps": {"models/model.keras": "deleted"}}],
}


def test_absent_data_is_not_a_change():
    assert uptodate.stale(NOT_PULLED) == {}
    assert uptodate.stale({}) == {}


def test_changed_code_params_command_and_tracked_outputs_are():
    status = {
        **NOT_PULLED,
        "train": [{"changed deps": {"data/prepared/train.npz": "deleted", "pipeline/training.py": "modified"}}],
        "plot": [{"changed deps": {"params.yaml": {"plot": "modified"}}}, "changed command"],
        "evaluate": [{"changed outs": {"metrics/metrics.json": "modified"}}],
    }
    assert uptodate.stale(status) == {
        "train": ["pipeline/training.py modified"],
        "plot": ["params.yaml:plot modified", "changed command"],
        "evaluate": ["metrics/metrics.json modified"],
    }


def test_main_fails_with_one_line_naming_each_stale_stage(monkeypatch):
    changed_plot = {"plot": [{"changed deps": {"params.yaml": {"plot": "modified"}}}]}
    monkeypatch.setattr(uptodate, "dvc_status", lambda: changed_plot)
    with pytest.raises(CheckFailed, match=r"out of date, .* \(plot: params.yaml:plot modified\)"):
        uptodate.main()
    monkeypatch.setattr(uptodate, "dvc_status", lambda: NOT_PULLED)
    uptodate.main()
