"""The pull-request report on two real runs of the shrunken pipeline in a temporary git repo: the
accuracy delta with its sign, the changed param named, DVC's own diffs, the figures, and the
--max-drop gate both ways round (formatting and thresholds: tests/unit/review/test_report.py)."""

import json
import re

import pytest

from pipeline.review import report
from testkit.repos import run, set_params
from testkit.revision_repos import commit
from tests.unit.review.test_report import ALL_FIGURES, assert_valid_png


@pytest.mark.slow
def test_report_on_two_real_runs(pipeline_repo):
    """Train with a learning rate too small to learn in one epoch, then with the default one."""
    default_rate = 0.004
    set_params(pipeline_repo, **{"train.learning_rate": 0.0001})
    run(["dvc", "repro"], cwd=pipeline_repo)
    commit(pipeline_repo, "tiny learning rate")
    set_params(pipeline_repo, **{"train.learning_rate": default_rate})
    run(["dvc", "repro"], cwd=pipeline_repo)
    commit(pipeline_repo, "default learning rate")

    def accuracy(rev: str) -> float:
        shown = run(["git", "show", f"{rev}:metrics/metrics.json"], cwd=pipeline_repo).stdout
        return json.loads(shown)["test_accuracy"]

    old, new = accuracy("HEAD~1"), accuracy("HEAD")
    assert new - old > 0.005, "the default rate learns the synthetic digits in one epoch, the tiny one does not"
    delta = report.signed(new - old)
    assert delta[0] == ("+" if new > old else "-")

    result = run(["python", "-m", "pipeline.review.report", "--base", "HEAD~1", "--out", "R"], cwd=pipeline_repo)
    assert "wrote R/report.md and 6 figures" in result.stdout
    text = (pipeline_repo / "R/report.md").read_text()
    assert f"## Test accuracy: {old} → {new} ({delta})" in text
    assert f"| test_accuracy | {old} | {new} | {delta} |" in text
    assert f"| `train.learning_rate` | 0.0001 | {default_rate} |" in text
    dvc_params = text.split("<code>dvc params diff --md HEAD~1</code>")[1].split("</details>")[0]
    assert re.search(r"\| params\.yaml\s+\| train\.learning_rate\s+\| 0\.0001\s+\| 0\.004\s+\|", dvc_params)
    dvc_metrics = text.split("<code>dvc metrics diff --md HEAD~1</code>")[1].split("</details>")[0]
    assert re.search(r"\| metrics/metrics\.json\s+\| test_accuracy\s+\|", dvc_metrics)
    for name in ALL_FIGURES:
        assert_valid_png((pipeline_repo / "R" / name).read_bytes())

    # The gate, both ways round: reverting to the tiny rate loses far more than half a point.
    drop = run(
        [
            "python",
            "-m",
            "pipeline.review.report",
            "--base",
            "HEAD",
            "--head",
            "HEAD~1",
            "--out",
            "R",
            "--max-drop",
            "0.005",
        ],
        cwd=pipeline_repo,
        check=False,
    )
    assert drop.returncode == 1 and "Traceback" not in drop.stderr
    assert drop.stderr.startswith("error: test accuracy") and drop.stderr.count("\n") == 1
    assert "**Accuracy check FAILED**" in (pipeline_repo / "R/report.md").read_text()
    run(
        ["python", "-m", "pipeline.review.report", "--base", "HEAD~1", "--out", "R", "--max-drop", "0.005"],
        cwd=pipeline_repo,
    )

    # The first commit of the fixture predates any run: no baseline, head figures only.
    run(["python", "-m", "pipeline.review.report", "--base", "HEAD~2", "--out", "first"], cwd=pipeline_repo)
    first = (pipeline_repo / "first/report.md").read_text()
    assert "## No baseline metrics at `HEAD~2`" in first
    assert sorted(p.name for p in (pipeline_repo / "first").glob("*.png")) == [
        "head-accuracy.png",
        "head-confusion.png",
        "head-loss.png",
    ]
