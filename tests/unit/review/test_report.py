"""The pull-request report: formatting and thresholds, then whole reports from real git revisions.

The tests read hand-written metrics from temporary git repos (DVC's own diffs are stubbed out);
tests/system/test_report_real_runs.py trains twice with different params and reads the real runs.
"""

import io
import re
import subprocess
import sys

import pytest
from PIL import Image

from pipeline.core.errors import CheckFailed, DataError, RevisionError
from pipeline.review import collected, report
from testkit.repos import ROOT, env
from testkit.revision_repos import commit, metrics, write_run

PARAMS = {"seed": 42, "train": {"model": "mlp", "epochs": 1, "learning_rate": 0.004}}
ALL_FIGURES = {f"{side}-{name}.png" for side in ("base", "head") for name in report.FIGURES}


def test_signed_changes_keep_their_sign_and_drop_trailing_zeros():
    assert report.signed(0.9812 - 0.9779) == "+0.0033"
    assert report.signed(0.95 - 0.97) == "-0.02"
    assert report.signed(0.0) == "0"
    assert report.signed(3) == "+3"
    assert report.signed(-1500) == "-1,500"


def test_relative_change_is_a_signed_percentage_of_the_base():
    assert report.relative(0.9779, 0.9812) == "+0.34%"
    assert report.relative(0.5, 0.25) == "-50.00%"
    assert report.relative(0.5, 0.5) == "0%"
    assert report.relative(0, 0.1) == "—"  # undefined, not a division error


def test_metrics_rows_cover_top_level_numbers_only():
    rows = report.metrics_rows(metrics(0.95, loss=0.2), metrics(0.97, loss=0.1, epochs=3))
    by_name = {row[0]: row[1:] for row in rows}
    assert list(by_name) == [
        "test_accuracy",
        "test_loss",
        "train_accuracy",
        "train_loss",
        "val_accuracy",
        "val_loss",
        "epochs",
        "params",
    ]
    assert by_name["test_accuracy"] == ["0.95", "0.97", "+0.02", "+2.11%"]
    assert by_name["test_loss"] == ["0.2", "0.1", "-0.1", "-50.00%"]
    assert by_name["epochs"] == ["2", "3", "+1", "+50.00%"]
    assert by_name["params"] == ["104,938", "104,938", "0", "0%"]
    assert report.metrics_rows(None, metrics(0.97))[0] == ["test_accuracy", "—", "0.97", "—", "—"]


def test_classes_listed_only_when_recall_or_f1_moves_more_than_the_threshold():
    base = metrics(0.9, recall={"1": 0.9, "2": 0.9, "3": 0.9})["per_class"]
    head = metrics(0.9, recall={"1": 0.906, "2": 0.896, "3": 0.895})["per_class"]
    head["4"]["f1"] = 0.9  # F1 alone moved by 0.05
    head["5"]["precision"] = 0.5  # precision is not a listed score
    rows = report.class_changes(base, head, threshold=0.005)
    assert [row[0] for row in rows] == ["1", "4"]  # 3 moved by exactly 0.005: not more
    assert rows[0][1] == "0.9 → 0.906 (+0.006)"
    assert report.class_changes(base, head, threshold=0.1) == []


def test_accuracy_gate():
    assert report.accuracy_check(metrics(0.98), metrics(0.97), max_drop=0.005)[0] is False
    assert report.accuracy_check(metrics(0.98), metrics(0.975), max_drop=0.005)[0] is True  # exactly the margin
    assert report.accuracy_check(metrics(0.98), metrics(0.99), max_drop=0.0)[0] is True
    passed, line = report.accuracy_check(None, metrics(0.5), max_drop=0.0)
    assert passed and "no baseline" in line


@pytest.fixture
def two_commits(tmp_path, monkeypatch):
    """A repo whose HEAD~1 scores 0.95 after 1 epoch and HEAD 0.97 after 2, digit 3 improved."""
    repo = tmp_path / "repo"
    repo.mkdir()
    write_run(repo, PARAMS, metrics(0.95, epochs=1, recall={"3": 0.9}))
    commit(repo, "one epoch")
    write_run(repo, {**PARAMS, "train": {**PARAMS["train"], "epochs": 2}}, metrics(0.97, recall={"3": 0.96}))
    commit(repo, "two epochs")
    monkeypatch.chdir(repo)
    monkeypatch.setattr(report, "run_dvc", lambda args: "_dvc stub_")
    return repo


def assert_valid_png(raw: bytes) -> None:
    Image.open(io.BytesIO(raw)).verify()


def test_report_between_two_revisions(two_commits):
    report.main(["--base", "HEAD~1", "--head", "HEAD", "--out", "R"])
    text = (two_commits / "R/report.md").read_text()
    assert text.startswith(report.MARKER)
    assert "## Test accuracy: 0.95 → 0.97 (+0.02)" in text
    assert "| test_accuracy | 0.95 | 0.97 | +0.02 | +2.11% |" in text
    assert "| `train.epochs` | 1 | 2 |" in text and "learning_rate" not in text
    assert "| 3 | 0.9 → 0.96 (+0.06) | 0.9 → 0.96 (+0.06) |" in text
    assert not re.search(r"^\| [0-24-9] \|", text, re.MULTILINE)  # no other digit listed
    assert "<code>dvc metrics diff --md HEAD~1 HEAD</code>" in text
    assert {p.name for p in (two_commits / "R").glob("*.png")} == ALL_FIGURES
    for name in ALL_FIGURES:
        assert f"]({name})" in text.split(report.FIGURES_MARKER)[1]
        assert_valid_png((two_commits / "R" / name).read_bytes())
    assert (two_commits / "R/base-loss.png").read_bytes() != (two_commits / "R/head-loss.png").read_bytes()


def test_a_base_from_before_the_rename_still_has_its_learning_curves(two_commits):
    # Until November 2026 the learning curve was metrics/history.csv: a pull request's base may
    # still be such a commit.
    base = two_commits / "base"
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(base), "HEAD~1"], check=True)
    (base / "metrics/learning_curve.csv").rename(base / "metrics/history.csv")
    old_base = commit(base, "as committed before the rename")
    report.main(["--base", old_base, "--head", "HEAD", "--out", "R"])
    assert {p.name for p in (two_commits / "R").glob("*.png")} == ALL_FIGURES
    assert (two_commits / "R/base-loss.png").read_bytes() != (two_commits / "R/head-loss.png").read_bytes()


def test_without_collected_digits_the_report_is_as_before(two_commits, monkeypatch):
    (two_commits / "R").mkdir()
    (two_commits / "R" / collected.GALLERY).write_bytes(b"an earlier report's gallery")
    monkeypatch.setattr(collected, "listing", lambda rev, recorded: pytest.fail("DVC asked, with no store recorded"))
    report.main(["--base", "HEAD~1", "--head", "HEAD", "--out", "R"])
    text = (two_commits / "R/report.md").read_text()
    assert "ollected" not in text
    assert {p.name for p in (two_commits / "R").glob("*.png")} == ALL_FIGURES  # the stale gallery removed


def test_workspace_is_the_default_head(two_commits):
    write_run(two_commits, {**PARAMS, "seed": 7}, metrics(0.93), figures=False)  # not committed
    report.main(["--base", "HEAD", "--out", "R"])
    text = (two_commits / "R/report.md").read_text()
    assert "## Test accuracy: 0.97 → 0.93 (-0.04)" in text and "Head: the workspace" in text
    assert "| `seed` | 42 | 7 |" in text
    assert "<code>dvc metrics diff --md HEAD</code>" in text  # DVC compares with the workspace too


def test_accuracy_drop_beyond_the_margin_fails_after_writing_the_report(two_commits):
    with pytest.raises(CheckFailed, match=r"0\.97 → 0\.95 \(-0\.02\): more than the allowed drop of 0\.01"):
        report.main(["--base", "HEAD", "--head", "HEAD~1", "--out", "R", "--max-drop", "0.01"])
    assert "**Accuracy check FAILED**" in (two_commits / "R/report.md").read_text()
    report.main(["--base", "HEAD", "--head", "HEAD~1", "--out", "R", "--max-drop", "0.02"])
    assert "**Accuracy check passed**" in (two_commits / "R/report.md").read_text()


def test_missing_baseline_is_reported_not_a_crash(two_commits):
    report.main(["--base", "HEAD", "--head", "HEAD", "--out", "R"])  # leaves base figures behind
    (two_commits / "README.md").write_text("before any metrics\n")
    subprocess.run(["git", "rm", "-rq", "metrics"], cwd=two_commits, check=True)
    head_sha = commit(two_commits, "metrics removed")[:7]
    report.main(["--base", "HEAD", "--head", "HEAD~1", "--out", "R", "--max-drop", "0"])
    text = (two_commits / "R/report.md").read_text()
    assert f"## No baseline metrics at `HEAD` ({head_sha})" in text
    assert "**Accuracy check passed**: no baseline test accuracy to compare with" in text
    assert "Digits whose" not in text
    assert {p.name for p in (two_commits / "R").glob("*.png")} == {f"head-{n}.png" for n in report.FIGURES}


def test_head_without_metrics_is_an_error(two_commits):
    (two_commits / "metrics/metrics.json").unlink()
    with pytest.raises(DataError, match="no metrics/metrics.json in the workspace: run `dvc repro`"):
        report.main(["--base", "HEAD", "--out", "R"])


def test_unknown_revision_is_one_line_and_exit_1(two_commits):
    with pytest.raises(RevisionError, match="unknown revision 'no-such-branch'"):
        report.main(["--base", "no-such-branch"])
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.review.report", "--base", "no-such-branch"],
        cwd=two_commits,
        env=env(PYTHONPATH=str(ROOT)),  # the temporary repo has no pipeline/ of its own
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr == "error: unknown revision 'no-such-branch': not a commit in this repository\n"
    assert not (two_commits / "report").exists()


@pytest.mark.parametrize(
    "text, reason",
    [
        (
            "seed: 42\ntrain:\n    epochs: 2\n  model: mlp\n",
            "not valid YAML at line 4, column 3: expected <block end>, but found '<block mapping start>'",
        ),
        (
            "seed: 1\nseed: 2\n",
            'not valid YAML at line 2, column 1: found duplicate key "seed" with value "2" (original value: "1")',
        ),
        ("- seed\n- 42\n", "expected a mapping of params, got list"),
        ("42\n", "expected a mapping of params, got int"),
    ],
)
def test_unreadable_params_are_reported_not_a_crash(two_commits, text, reason):
    write_run(two_commits, text, metrics(0.96))
    sha = commit(two_commits, "broken params.yaml")[:7]
    report.main(["--base", "HEAD", "--head", "HEAD~1", "--out", "R"])
    written = (two_commits / "R/report.md").read_text()
    # in code: YAML's <block end> would otherwise vanish from the page as an HTML tag
    assert f"### Params\n\n`params.yaml` at `HEAD` ({sha}) is unreadable: ` {reason} `\n\n" in written
    assert "No params are compared." in written
    assert "| test_accuracy | 0.96 | 0.97 | +0.01 | +1.04% |" in written  # the rest of the report is there


def test_params_are_compared_as_dvc_reads_them(two_commits):
    # what `dvc exp run -S train.distribute=off` and a hand-written 010 look like
    (two_commits / "params.yaml").write_text("seed: 42\ntrain:\n  model: mlp\n  epochs: 010\n  distribute: off\n")
    report.main(["--base", "HEAD", "--out", "R"])
    text = (two_commits / "R/report.md").read_text()
    assert "| `train.epochs` | 2 | 10 |" in text  # YAML 1.1 reads 8
    assert "| `train.distribute` | (absent) | off |" in text  # YAML 1.1 reads False


def test_out_that_is_a_file_is_one_line_and_nothing_written(two_commits):
    (two_commits / "R").write_text("a file\n")
    before = sorted(two_commits.rglob("*"))
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.review.report", "--base", "HEAD~1", "--head", "HEAD", "--out", "R"],
        cwd=two_commits,
        env=env(PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr == "error: R: is a file, not a folder\n"
    assert result.stdout == ""
    assert sorted(two_commits.rglob("*")) == before and (two_commits / "R").read_text() == "a file\n"


def test_the_field_scores_stand_beside_the_test_accuracy():
    from pipeline.review.report import field_section

    base = {"images_per_source": 200, "arrays": 0.99, "photos": 0.8, "no_digit_found": {"photos": 1}}
    head = {"images_per_source": 200, "arrays": 0.99, "photos": 0.85, "drawn": 0.9, "no_digit_found": {"photos": 0}}
    text = field_section(base, head)
    assert "200 test digits a source" in text
    assert "| photos | 0.8 | 0.85 | +0.05 |" in text.replace("  ", " ")
    assert "| drawn | — | 0.9 |" in text  # a source the base did not have
