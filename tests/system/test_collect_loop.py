"""The loop of docs/collecting.md on a shrunken pipeline, as a user runs it: serve with
`--collect data/collected`, correct answers on the page in Chromium, import a labelled folder,
`dvc repro` (which records the new digits and trains on them), read the collected scores in
metrics/field.json and `dvc metrics diff`, commit, `dvc push`, see the added digits in the
pull-request report, and get the same digits back in another clone with `dvc pull`."""

import json
import sys

import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from pipeline.collect import dataset
from testkit.faults import Started
from testkit.glyphs import glyph
from testkit.page import ANSWER_SECONDS, DESKTOP, STROKES, answers, chromium, draw, viewport, wait_for_answer
from testkit.repos import commit_all, ran_stages, run

pytestmark = pytest.mark.slow  # two shrunken pipelines, a browser and a server: about 3 minutes

COLLECTED = "data/collected"


def stored(repo) -> list[str]:
    """The store's files, <label>/<name>, as the pipeline lists them."""
    return [digit.path.as_posix() for digit in dataset.digits(repo / COLLECTED)]


def correct_on_the_page(base: str, repo, corrections: dict[int, str]) -> None:
    """Draw each digit on the page and answer "it was a ..." with its label."""
    with chromium() as browser:
        viewport(browser, *DESKTOP)
        browser.get(base + "/")
        for drawn, label in corrections.items():
            browser.find_element(By.ID, "clear").click()
            before = answers(browser)
            draw(browser, STROKES[drawn])
            wait_for_answer(browser, before)
            offered = lambda d: d.find_element(By.ID, "correct").is_displayed()  # noqa: E731
            WebDriverWait(browser, ANSWER_SECONDS).until(offered, "no correction offered")
            browser.find_element(By.CSS_SELECTOR, f'#labels button[data-label="{label}"]').click()
            thanked = lambda d: d.find_element(By.ID, "thanks").text  # noqa: E731
            WebDriverWait(browser, ANSWER_SECONDS).until(thanked, "no word on the correction")
            assert thanked(browser) == f"Thank you: kept as {'an' if label == '8' else 'a'} {label}."


def labelled_folder(root) -> int:
    """ROOT/<digit>/ of typeset digits, light and dark, PNG and JPEG: what a user would import."""
    count = 0
    for digit in range(10):
        (root / str(digit)).mkdir(parents=True)
        glyph(digit).save(root / str(digit) / "light.png")
        glyph(digit, dark_on_light=False).convert("RGB").save(root / str(digit) / "dark.jpg", quality=90)
        glyph(digit, size=60).save(root / str(digit) / "small.png")
        count += 3
    return count


def test_corrections_and_an_imported_folder_are_trained_on_scored_and_pushed(pipeline_repo, tmp_path):
    repo = pipeline_repo
    first = run(["dvc", "repro"], cwd=repo)
    assert "collected" in ran_stages(first.stdout)
    assert (repo / COLLECTED).is_dir() and stored(repo) == []  # a fresh clone's store: made empty
    assert "collected" not in json.loads((repo / "metrics/field.json").read_text())  # nothing collected, no score
    run(["dvc", "remote", "add", "-d", "storage", str(tmp_path / "remote")], cwd=repo)
    commit_all(repo, "the pipeline's first run")

    # 1. Serve what the pipeline built, collecting; correct three drawings on the page.
    command = [sys.executable, "-m", "pipeline.serve", "--collect", COLLECTED, "--port", "0"]
    server = Started(command, repo, tmp_path / "serve-logs")
    try:
        server.wait_for(lambda: server.out().endswith("\n"), 60, "the line saying where it listens")
        correct_on_the_page(server.out().split(" on ")[1].split(",")[0], repo, {7: "7", 1: "1", 0: "8"})
    finally:
        server.stop()
    assert sorted(path.split("/")[0] for path in stored(repo)) == ["1", "7", "8"]  # the 0 corrected to an 8

    # 2. Import a folder of labelled images into the same store.
    offered = labelled_folder(tmp_path / "phone")
    imported = run([sys.executable, "-m", "pipeline.collect", str(tmp_path / "phone")], cwd=repo)
    assert imported.stdout.count("taken") + imported.stdout.count("already collected") == offered
    found = dataset.digits(repo / COLLECTED)
    assert len(found) > 3 + 10

    # 3. dvc sees new data; dvc repro records it and trains on it; field scores its test part.
    assert "collected" in json.loads(run(["dvc", "status", "--json"], cwd=repo).stdout)
    second = run(["dvc", "repro"], cwd=repo)
    assert ran_stages(second.stdout) == ["collected", "train", "evaluate", "plot", "export", "field"]
    parts = dataset.split(found, 0.2)  # params.yaml's collected.test_fraction
    assert parts["test"] and parts["train"]
    assert f"{len(parts['train'])} collected, each 10 times" in second.stdout
    scores = json.loads((repo / "metrics/field.json").read_text())["collected"]
    assert scores["digits"] == len(parts["test"])
    labels = sorted({str(digit.label) for digit in parts["test"]})
    assert sorted(scores["per_label"]) == labels
    assert sum(entry["digits"] for entry in scores["per_label"].values()) == len(parts["test"])
    assert 0 <= scores["accuracy"] <= 1
    assert run(["dvc", "status", "--json"], cwd=repo).stdout.strip() == "{}"  # the new digits are recorded

    # 4. What the pull request shows: the collected scores in `dvc metrics diff`.
    diff = json.loads(run(["dvc", "metrics", "diff", "--json"], cwd=repo).stdout)["metrics/field.json"]
    assert diff["collected.accuracy"]["old"] is None and diff["collected.accuracy"]["new"] == scores["accuracy"]
    assert f"collected.per_label.{labels[0]}.accuracy" in diff

    # 5. Commit and push; the report shows the added digits; another clone gets them with dvc pull.
    commit_all(repo, "train on collected digits")
    run(["dvc", "push"], cwd=repo)
    run([sys.executable, "-m", "pipeline.review.report", "--base", "HEAD~1", "--head", "HEAD"], cwd=repo)
    report = (repo / "report/report.md").read_text()
    assert f"**{len(found)} added, 0 removed** since the base" in report
    with Image.open(repo / "report/collected.png") as gallery:
        assert gallery.height > 28 * 2 * len({digit.label for digit in found}) * 0.9  # a row per label
    run(["git", "clone", "-q", str(repo), str(tmp_path / "clone")], cwd=tmp_path)
    clone = tmp_path / "clone"
    assert not (clone / COLLECTED).exists()
    unpulled = run(["dvc", "repro", "collected"], cwd=clone, check=False)  # never an empty store recorded
    assert unpulled.returncode != 0 and f"run `dvc pull {COLLECTED}`" in unpulled.stdout + unpulled.stderr
    run(["dvc", "pull", COLLECTED], cwd=clone)
    assert stored(clone) == stored(repo)
    assert all(
        (clone / COLLECTED / path).read_bytes() == (repo / COLLECTED / path).read_bytes() for path in stored(repo)
    )
