"""The collected digits in the pull-request report, read through DVC from real temporary repos.

Each repo is git + DVC with a few digits under data/collected/<label>/ made by the collect store,
the output of a stage as in dvc.yaml, recorded by `dvc repro` and committed twice: the base holds
3/a, 3/b and 7/c; the head moves b to 8 (a relabelled digit), adds five 5s and removes c. DVC's
own diffs in the report are stubbed out.
"""

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.collect.store import Store
from pipeline.review import collected, gallery, report
from testkit.repos import run
from testkit.revision_repos import commit, metrics, write_run


def digit(seed: int) -> np.ndarray:
    pixels = np.zeros((28, 28), np.float32)
    pixels[4:24, 10 + seed % 8 : 14 + seed % 8] = np.random.default_rng(seed).random((20, 4))
    return pixels


def collect(repo: Path, label: str, seed: int) -> str:
    """Store a digit as the service does; its path under data/collected."""
    return Store(repo / "data/collected").save(digit(seed), label).path.as_posix()


# The collected stage's record of the store, as dvc.yaml has it; its command leaves the store alone.
DVC_YAML = """\
stages:
  collected:
    cmd: mkdir -p data/collected
    outs:
      - data/collected:
          persist: true
"""


def move(repo: Path, path: str, label: str) -> str:
    """Relabel a stored digit by hand, as a reviewer fixing one would: the same file, another folder."""
    target = Path(label) / Path(path).name
    (repo / "data/collected" / label).mkdir(exist_ok=True)
    (repo / "data/collected" / path).rename(repo / "data/collected" / target)
    return target.as_posix()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The two-commit repo, built once; tests work on copies. Its digits' paths by role."""
    repo = tmp_path_factory.mktemp("collected") / "repo"
    repo.mkdir()
    run(["git", "init", "-q"], cwd=repo)
    run(["dvc", "init", "-q"], cwd=repo)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    write_run(repo, {"seed": 42}, metrics(0.95), figures=False)  # the figures are tested elsewhere
    digits = {"a": collect(repo, "3", 1), "b": collect(repo, "3", 2), "c": collect(repo, "7", 3)}
    run(["dvc", "repro", "-q"], cwd=repo)
    commit(repo, "base: three digits")
    digits["b8"] = move(repo, digits["b"], "8")
    fives = [collect(repo, "5", seed) for seed in range(10, 15)]
    (repo / "data/collected" / digits["c"]).unlink()
    run(["dvc", "repro", "-q"], cwd=repo)
    write_run(repo, {"seed": 42}, metrics(0.96), figures=False)
    commit(repo, "head: b relabelled 8, five 5s, c removed")
    return repo, {**digits, **{f"5-{i}": path for i, path in enumerate(fives)}}


@pytest.fixture
def repo(built, tmp_path, monkeypatch) -> Path:
    """A copy of the built repo (its own DVC cache), as the working directory."""
    copy = tmp_path / "repo"
    shutil.copytree(built[0], copy, symlinks=True)
    monkeypatch.chdir(copy)
    monkeypatch.setattr(report, "run_dvc", lambda args: "_dvc stub_")
    return copy


def section(text: str) -> str:
    """The report's Collected digits section, up to the next heading."""
    return text.split("### Collected digits\n\n", 1)[1].split("\n### ", 1)[0]


def test_difference_names_added_removed_and_relabelled():
    base = frozenset({"3/a.png", "3/b.png", "7/c.png"})
    head = frozenset({"3/a.png", "8/b.png", "5/d.png", "5/e.png"})
    added, removed, relabelled = collected.difference(base, head)
    assert added == ("5/d.png", "5/e.png", "8/b.png")
    assert removed == ("3/b.png", "7/c.png")
    assert relabelled == (collected.Relabelled("b.png", ("3",), ("8",)),)
    assert collected.difference(head, head) == ((), (), ())


def test_the_gallery_shows_relabelled_digits_first_and_at_most_per_row_a_label():
    added = tuple(f"5/{i:03}.png" for i in range(60)) + ("5/moved.png", "8/b.png")
    rows = collected.gallery_paths(added, (collected.Relabelled("moved.png", ("3",), ("5",)),))
    assert [len(row) for row in rows] == [gallery.PER_ROW, 1]
    assert rows[0][:2] == ["5/moved.png", "5/000.png"] and rows[1] == ["8/b.png"]


def test_report_between_two_commits_counts_added_digits_per_label_and_names_the_relabelled(repo, built):
    names = built[1]
    report.main(["--base", "HEAD~1", "--head", "HEAD", "--out", "R"])
    text = (repo / "R/report.md").read_text()
    before_figures, after_figures = text.split(report.FIGURES_MARKER)
    found = section(before_figures)  # in the pull request's comment, which ends at the marker
    assert "**6 added, 2 removed** since the base (3 → 7 digits in `data/collected`)." in found
    assert "| label | base | head | added | removed |" in found
    for row in ("| 3 | 2 | 1 | 0 | 1 |", "| 5 | 0 | 5 | 5 | 0 |", "| 7 | 1 | 0 | 0 | 1 |", "| 8 | 0 | 1 | 1 | 0 |"):
        assert row in found
    assert "| all | 3 | 7 | 6 | 2 |" in found
    assert f"- `{Path(names['b']).name}`: 3 → 8" in found
    assert "`collected.png` beside this report" in found
    assert f"![collected digits added, a row per label]({collected.GALLERY})" in after_figures


def test_the_gallery_draws_the_added_digits_a_row_per_label(repo, built):
    report.main(["--base", "HEAD~1", "--head", "HEAD", "--out", "R"])
    raw = (repo / "R" / collected.GALLERY).read_bytes()
    image = Image.open(io.BytesIO(raw))
    side = 28 * gallery.SCALE
    rows = 2  # 5 and 8 gained digits; 3 and 7 only lost some
    digits_width = gallery.MARGIN + gallery.LABEL_WIDTH + 5 * (side + gallery.GAP) + gallery.MARGIN  # five 5s
    legend_width = 2 * gallery.MARGIN + round(gallery.font(gallery.MORE_SIZE).getlength(collected.LEGEND))
    assert image.size == (
        max(digits_width, legend_width),
        gallery.MARGIN + rows * (side + gallery.MARGIN) + gallery.MORE_SIZE + gallery.MARGIN,  # with the legend
    )
    # the relabelled digit, framed, in the second row: the stored image itself at scale
    top, left = gallery.MARGIN + side + gallery.MARGIN, gallery.MARGIN + gallery.LABEL_WIDTH
    stored = Image.open(repo / "data/collected" / built[1]["b8"]).resize((side, side), Image.Resampling.NEAREST)
    drawn = image.convert("L").crop((left, top, left + side, top + side))
    assert np.array_equal(np.asarray(drawn), np.asarray(stored))
    assert image.getpixel((left - 1, top + side // 2)) == gallery.FRAME
    report.main(["--base", "HEAD~1", "--head", "HEAD", "--out", "R"])
    assert (repo / "R" / collected.GALLERY).read_bytes() == raw  # the same inputs, the same bytes


def test_the_workspace_is_read_as_its_dvc_file_records_it(repo):
    collect(repo, "2", 40)
    run(["dvc", "repro", "-q"], cwd=repo)  # recorded in dvc.lock, not committed
    collect(repo, "2", 41)  # on disk only
    report.main(["--base", "HEAD", "--out", "R"])
    found = section((repo / "R/report.md").read_text())
    assert "**1 added, 0 removed** since the base (7 → 8 digits in `data/collected`)." in found
    assert "| 2 | 0 | 1 | 1 | 0 |" in found
    assert (
        "`data/collected` on disk holds 1 digit that `dvc.lock` does not record: this report reads `dvc.lock`; "
        "`dvc repro` (or `dvc commit collected`, without training) records the folder as it is."
    ) in found


def test_a_listing_missing_from_the_cache_is_one_line_saying_what_to_run(repo, tmp_path, monkeypatch):
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], cwd=tmp_path)  # git's files, no DVC cache, no remote
    monkeypatch.chdir(clone)
    (clone / "R").mkdir()
    (clone / "R" / collected.GALLERY).write_bytes(b"an earlier report's")
    report.main(["--base", "HEAD~1", "--head", "HEAD", "--out", "R"])
    text = (clone / "R/report.md").read_text()
    found = section(text)
    for side, rev in (("base", "HEAD~1"), ("head", "HEAD")):
        sha = run(["git", "rev-parse", rev], cwd=clone).stdout.strip()
        named = collected.record(sha).md5  # the .dir object that side's dvc.lock records
        assert named.endswith(".dir")
        assert (
            f"_`data/collected` at the {side}, `{rev}` ({sha[:7]}): its listing (the object `{named}` that "
            "`dvc.lock` records) is in neither the DVC cache nor a remote reached from here: "
            "run `dvc fetch --all-commits data/collected`, then the report again._"
        ) in found
    assert "Traceback" not in text and "| test_accuracy | 0.95 | 0.96 |" in text  # the rest of the report is there
    assert not (clone / "R" / collected.GALLERY).exists()  # no gallery, and not the stale one either


def test_digits_missing_from_the_cache_are_one_line_and_the_rest_drawn(repo):
    digits = [path for path in (repo / ".dvc/cache/files/md5").rglob("*") if path.is_file() and path.suffix != ".dir"]
    for path in digits:  # the .dir objects stay: both listings are there
        path.unlink()
    assert len(digits) == 8  # every image either side had: b is one object under 3, then 8
    report.main(["--base", "HEAD~1", "--head", "HEAD", "--out", "R"])
    found = section((repo / "R/report.md").read_text())
    assert "**6 added, 2 removed**" in found  # the listings are there
    assert (
        "_all 6 digits to draw are in neither the DVC cache nor a remote reached from here: "
        "run `dvc fetch --all-commits data/collected`, then the report again._"
    ) in found
    assert not (repo / "R" / collected.GALLERY).exists()


def test_a_remote_gives_what_the_cache_lacks(repo, tmp_path):
    # as CI does: a fresh clone, the remote's settings in .dvc/config.local, no `dvc pull`
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "--local", "-d", "store", str(remote)], cwd=repo)
    run(["dvc", "push", "-q", "--all-commits"], cwd=repo)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], cwd=tmp_path)
    run(["dvc", "remote", "add", "--local", "-d", "store", str(remote)], cwd=clone)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(clone)
        report.main(["--base", "HEAD~1", "--head", "HEAD", "--out", "R"])
    assert "**6 added, 2 removed**" in section((clone / "R/report.md").read_text())
    assert (clone / "R" / collected.GALLERY).is_file()


def test_an_empty_store_at_both_sides_is_no_section_and_no_dvc(tmp_path, monkeypatch):
    # main's state until digits are collected: dvc.lock records the store, with no files
    run(["git", "init", "-q"], cwd=tmp_path)
    run(["dvc", "init", "-q"], cwd=tmp_path)
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    write_run(tmp_path, {"seed": 42}, metrics(0.95), figures=False)
    run(["dvc", "repro", "-q"], cwd=tmp_path)
    sha = commit(tmp_path, "an empty store")
    monkeypatch.chdir(tmp_path)
    assert collected.record(sha).nfiles == 0
    monkeypatch.setattr(collected, "listing", lambda rev, recorded: pytest.fail("DVC asked for an empty store"))
    monkeypatch.setattr(report, "run_dvc", lambda args: "_dvc stub_")
    report.main(["--base", "HEAD", "--out", "R"])
    assert "ollected" not in (tmp_path / "R/report.md").read_text()


def test_the_record_is_dvc_lock_s_collected_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert collected.record(None) is None
    lock = "stages:\n  collected:\n    outs:\n    - path: data/collected\n      md5: ab.dir\n      nfiles: 2\n"
    (tmp_path / "dvc.lock").write_text(lock)
    assert collected.record(None).md5 == "ab.dir" and collected.record(None).where == "dvc.lock"
    (tmp_path / "dvc.lock").write_text("stages: [not, a, mapping]\n")
    assert collected.record(None) is None


def test_unchanged_digits_are_one_line():
    comparison = collected.Comparison(frozenset({"3/a.png"}), frozenset({"3/a.png"}))
    assert (
        collected.summary(comparison, "`main`", "the workspace", None)
        == "No digit added or removed: 1 digit at both sides."
    )


def test_the_field_scores_on_the_collected_test_digits_base_against_head():
    base = {
        "collected": {
            "digits": 4,
            "accuracy": 0.5,
            "per_label": {"3": {"digits": 4, "accuracy": 0.5}},
        }
    }
    head = {
        "collected": {
            "digits": 10,
            "accuracy": 0.8,
            "per_label": {"3": {"digits": 4, "accuracy": 0.75}, "5": {"digits": 6, "accuracy": 0.833333}},
        }
    }
    table = report.collected_scores_table(report.collected_scores(base), report.collected_scores(head))
    assert "| label | test digits, base | head | accuracy, base | head | change |" in table
    assert "| all | 4 | 10 | 0.5 | 0.8 | +0.3 |" in table
    assert "| 3 | 4 | 4 | 0.5 | 0.75 | +0.25 |" in table
    assert "| 5 | — | 6 | — | 0.833333 | — |" in table  # no test digit of 5 at the base
    assert table.endswith("| 5 | — | 6 | — | 0.833333 | — |")
    assert report.collected_scores({"images_per_source": 200, "arrays": 0.99}) == {}
