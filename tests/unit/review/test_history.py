"""Accuracy history over a temporary git repo of hand-written runs: rows, params changed, the PNG."""

import io
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from pipeline.core.errors import RevisionError
from pipeline.review import history, revisions
from testkit.repos import ROOT, env
from testkit.revision_repos import commit, metrics, write_run

MLP = {"seed": 42, "train": {"model": "mlp", "epochs": 15}}
CNN = {"seed": 42, "train": {"model": "cnn", "epochs": 10}}


@dataclass
class Repo:
    path: Path
    shas: list[str]  # of the commits with a run, oldest first


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Repo:
    """main: mlp 97.79% -> cnn 99.33% -> a commit without metrics (seed 1) -> dropout 99.01%."""
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    shas = []
    write_run(repo, MLP, metrics(0.9779, loss=0.0764, epochs=15))
    shas.append(commit(repo, "MLP baseline"))
    write_run(repo, CNN, metrics(0.9933, loss=0.0213, epochs=10))
    shas.append(commit(repo, "Convolutional network | 10 epochs"))
    write_run(repo, {**CNN, "seed": 1}, None)  # params only: the run is committed later
    (repo / "README.md").write_text("notes\n")
    commit(repo, "README and a new seed")
    write_run(repo, {**CNN, "seed": 1, "train": {**CNN["train"], "dropout": 0.4}}, metrics(0.9901, epochs=10))
    shas.append(commit(repo, "Dropout 0.4, and a subject far too long to fit in the table's column at all"))
    monkeypatch.chdir(repo)
    return Repo(repo, shas)


def data_rows(output: str) -> list[list[str]]:
    """Cells of the plain table's data rows (columns are two or more spaces apart)."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.splitlines()[1:]]


def test_rows_newest_first_with_the_params_that_changed(repo, capsys):
    history.main(["--out", "h.png"])
    output = capsys.readouterr().out
    assert output.splitlines()[0].split() == [
        "commit",
        "date",
        "subject",
        "test",
        "acc",
        "test",
        "loss",
        "epochs",
        "params",
        "params",
        "changed",
    ]
    rows = data_rows(output)
    assert [row[0] for row in rows] == [sha[:7] for sha in reversed(repo.shas)]  # the README commit is not a run
    newest, middle, oldest = rows
    assert newest[2] == "Dropout 0.4, and a subject far too long to fit in…" and len(newest[2]) == 50
    assert newest[3:7] == ["99.01%", "0.1000", "10", "104,938"]
    # compared with the previous run, not the parent commit: the seed changed in between
    assert newest[7] == "seed=1, train.dropout=0.4"
    assert middle[2:8] == [
        "Convolutional network | 10 epochs",
        "99.33%",
        "0.0213",
        "10",
        "104,938",
        "train.model=cnn, train.epochs=10",
    ]
    assert oldest[3] == "97.79%" and oldest[-1] == "(first)"


def test_png_of_accuracy_over_commits(repo, capsys):
    history.main(["--out", "plots/history.png"])
    assert capsys.readouterr().err == "wrote plots/history.png\n"  # stdout holds only the table
    raw = (repo.path / "plots/history.png").read_bytes()
    Image.open(io.BytesIO(raw)).verify()
    history.main(["--out", "plots/two.png", "-n", "2"])
    assert (repo.path / "plots/two.png").read_bytes() != raw  # fewer points drawn


def test_limit_keeps_the_newest_and_still_compares_the_oldest_shown(repo, capsys):
    history.main(["-n", "2", "--out", "h.png"])
    rows = data_rows(capsys.readouterr().out)
    assert [row[0] for row in rows] == [repo.shas[2][:7], repo.shas[1][:7]]
    assert rows[-1][-1] == "train.model=cnn, train.epochs=10"  # not "(first)": the mlp run is read too


def test_markdown_table(repo, capsys):
    history.main(["--markdown", "--out", "h.png"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| commit | date | subject | test acc | test loss | epochs | params | params changed |"
    assert lines[1] == "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |"
    assert len(lines) == 5
    assert "| Convolutional network \\| 10 epochs |" in lines[3]  # a pipe in a subject is escaped


def test_main_is_the_default_not_the_checked_out_branch(repo, capsys):
    subprocess.run(["git", "checkout", "-qb", "experiment"], check=True)
    write_run(repo.path, MLP, metrics(0.5))
    commit(repo.path, "experiment")
    history.main(["--out", "h.png"])
    assert "experiment" not in capsys.readouterr().out
    history.main(["--rev", "experiment", "--out", "h.png"])
    assert data_rows(capsys.readouterr().out)[0][2:4] == ["experiment", "50.00%"]


def test_unknown_revision_is_one_line(repo):
    with pytest.raises(RevisionError, match="unknown revision 'nope'"):
        history.main(["--rev", "nope"])
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.review.history", "--rev", "nope"],
        env=env(PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr == "error: unknown revision 'nope': not a commit in this repository\n"


def run_history(*args: str) -> subprocess.CompletedProcess:
    """`python -m pipeline.review.history` in the current directory, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.review.history", *args],
        env=env(PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
    )


def test_unreadable_params_are_marked_and_the_history_goes_on(repo, capsys):
    broken = {}  # a commit cannot be rewritten: each must be shown, not stop the command
    runs = [("invalid", "train: {epochs: 2\n", 0.96), ("list", "- seed\n- 42\n", 0.97), ("scalar", "42\n", 0.98)]
    for name, text, accuracy in runs:  # a new accuracy each: a commit that changed the metrics has a row
        write_run(repo.path, text, metrics(accuracy))
        broken[name] = commit(repo.path, f"params.yaml is {name}")[:7]
    write_run(repo.path, MLP, metrics(0.99))
    newest = commit(repo.path, "readable again")[:7]
    history.main(["--out", "h.png"])
    out, err = capsys.readouterr()
    rows = data_rows(out)
    assert [row[0] for row in rows[:4]] == [newest, broken["scalar"], broken["list"], broken["invalid"]]
    assert rows[0][-1] == f"(not compared: {broken['scalar']} unreadable)"
    assert [row[-1] for row in rows[1:4]] == [revisions.UNREADABLE] * 3
    assert rows[4][-1] == "seed=1, train.dropout=0.4"  # the readable runs below still compare
    assert err.splitlines() == [
        f"params.yaml at {broken['scalar']} is unreadable: expected a mapping of params, got int",
        f"params.yaml at {broken['list']} is unreadable: expected a mapping of params, got list",
        f"params.yaml at {broken['invalid']} is unreadable: not valid YAML at line 2, column 1: "
        "expected ',' or '}', but got '<stream end>'",
        "wrote h.png",
    ]


def test_a_commit_with_unreadable_metrics_is_skipped_and_the_history_goes_on(repo, capsys):
    write_run(repo.path, MLP, metrics(0.97))
    older = commit(repo.path, "good run")[:7]
    (repo.path / "metrics/metrics.json").write_text('{"test_accuracy": 0.98,')  # cut short
    broken = commit(repo.path, "metrics.json cut short")[:7]
    write_run(repo.path, MLP, metrics(0.99))
    newest = commit(repo.path, "good again")[:7]
    history.main(["--out", "h.png"])
    out, err = capsys.readouterr()
    assert [row[0] for row in data_rows(out)][:2] == [newest, older]
    assert err.splitlines()[0].startswith(f"skipped {broken}: metrics/metrics.json at {broken}")
    assert err.splitlines()[0].count("not valid JSON") == 1


def test_limit_of_one_with_unreadable_params_in_the_commit_below(repo):
    # -n 1 reads a second commit to compare with: its params.yaml must not stop the first's row
    write_run(repo.path, "- not\n- a mapping\n", metrics(0.98))
    below = commit(repo.path, "params.yaml is a list")[:7]
    write_run(repo.path, MLP, metrics(0.99))
    commit(repo.path, "readable again")
    result = run_history("-n", "1", "--out", "h.png")
    assert result.returncode == 0, result.stderr
    assert [row[-1] for row in data_rows(result.stdout)] == [f"(not compared: {below} unreadable)"]
    assert result.stderr.splitlines() == [
        f"params.yaml at {below} is unreadable: expected a mapping of params, got list",
        "wrote h.png",
    ]


def test_out_inside_a_file_is_one_line_before_any_table(repo):
    (repo.path / "notes").write_text("a file\n")
    result = run_history("--out", "notes/history.png")
    assert result.returncode == 1
    assert result.stderr == "error: notes: is a file, not a folder\n"
    assert result.stdout == ""  # checked before the table is printed, not after
    assert (repo.path / "notes").read_text() == "a file\n"
