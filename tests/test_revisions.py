"""Reading files at a git revision or in the workspace, and naming the params that changed."""
import pytest

from pipeline import revisions
from pipeline.errors import RevisionError
from tests.revision_repos import commit


def test_flatten_names_params_as_dvc_does():
    assert revisions.flatten({"seed": 1, "train": {"epochs": 2, "opt": {"lr": 0.1}}}) == {
        "seed": 1, "train.epochs": 2, "train.opt.lr": 0.1,
    }  # fmt: skip


def test_changed_params_lists_changed_added_and_removed_keys():
    old = {"seed": 42, "train": {"model": "mlp", "epochs": 15, "legacy": True}}
    new = {"seed": 42, "train": {"model": "cnn", "epochs": 15, "dropout": 0.4}}
    assert revisions.changed_params(old, new) == {
        "train.model": ("mlp", "cnn"),
        "train.dropout": (revisions.ABSENT, 0.4),
        "train.legacy": (True, revisions.ABSENT),
    }
    assert revisions.changed_params(new, new) == {}
    assert revisions.changed_params(None, {"seed": 1}) == {"seed": (revisions.ABSENT, 1)}


def test_read_text_at_a_revision_and_in_the_workspace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text("committed\n")
    sha = commit(tmp_path, "one")
    (tmp_path / "a.txt").write_text("edited\n")
    assert revisions.read_text(sha, "a.txt") == "committed\n"
    assert revisions.read_text(revisions.WORKSPACE, "a.txt") == "edited\n"
    assert revisions.read_text(sha, "missing.txt") is None
    assert revisions.read_text(revisions.WORKSPACE, "missing.txt") is None
    assert revisions.resolve("HEAD") == sha
    with pytest.raises(RevisionError, match="unknown revision 'HEAD~5'"):
        revisions.resolve("HEAD~5")


def test_outside_a_git_repository_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # don't find an enclosing repo
    with pytest.raises(RevisionError, match="unknown revision 'main': not a git repository"):
        revisions.resolve("main")
