"""Reading files at a git revision or in the workspace, and naming the params that changed."""

import pytest

from pipeline.core.errors import RevisionError
from pipeline.review import revisions
from testkit.revision_repos import commit


def test_flatten_names_params_as_dvc_does():
    assert revisions.flatten({"seed": 1, "train": {"epochs": 2, "opt": {"lr": 0.1}}}) == {
        "seed": 1,
        "train.epochs": 2,
        "train.opt.lr": 0.1,
    }


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


# params.yaml texts a commit may hold that are not a mapping of params, and why each is unreadable
BROKEN_PARAMS = [
    ("seed: 42\ntrain:\n    epochs: 2\n  model: mlp\n", "not valid YAML at line 4, column 3: expected <block end>"),
    ("seed: 1\nseed: 2\n", 'not valid YAML at line 2, column 1: found duplicate key "seed"'),
    ("- seed\n- 42\n", "expected a mapping of params, got list"),
    ("42\n", "expected a mapping of params, got int"),
]


@pytest.mark.parametrize("text, reason", BROKEN_PARAMS)
def test_params_that_are_not_a_mapping_are_unreadable_not_an_error(tmp_path, monkeypatch, text, reason):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(text)
    sha = commit(tmp_path, "broken params")
    for rev in (sha, revisions.WORKSPACE):
        params = revisions.read_params(rev, "params.yaml")
        assert isinstance(params, revisions.Unreadable)
        assert params.reason.startswith(reason) and "\n" not in params.reason


def test_params_at_a_revision_are_read_as_dvc_reads_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("train:\n  distribute: off\n  augment: yes\n  epochs: 010\n")
    sha = commit(tmp_path, "YAML 1.2")
    # YAML 1.1 would read False, True and 8: not what `dvc params diff` shows
    assert revisions.read_params(sha, "params.yaml") == {"train": {"distribute": "off", "augment": "yes", "epochs": 10}}
    (tmp_path / "params.yaml").write_text("")
    assert revisions.read_params(revisions.WORKSPACE, "params.yaml") == {}  # no params, as DVC reads it
    assert revisions.read_params(sha, "missing.yaml") is None
