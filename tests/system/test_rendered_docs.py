"""The docs' figures are rendered, not typed: benchmarks/render.py --check on the committed docs,
a hand-edited figure caught on a copy, and a benchmark record written byte-stably."""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.repos import ROOT, env

RENDER = ROOT / "benchmarks/render.py"


def load_records():
    spec = importlib.util.spec_from_file_location("records", ROOT / "benchmarks/records.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check(root: Path, *extra: str) -> subprocess.CompletedProcess:
    # PYTHONPATH: this checkout's `pipeline`, whichever checkout the development install points at
    command = [sys.executable, str(RENDER), "--root", str(root), *extra]
    return subprocess.run(command, cwd=ROOT, env=env(PYTHONPATH=str(ROOT)), capture_output=True, text=True)


def test_every_rendered_block_is_what_the_records_and_metrics_give():
    result = check(ROOT, "--check")
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The docs and what they are rendered from, outside git (so the history block is not checked)."""
    for name in ("README.md", "docs", "metrics", "benchmarks/results", "dvc.lock", "dvc.yaml", "params.yaml"):
        source, target = ROOT / name, tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.png"))
        else:
            shutil.copy(source, target)
    return tmp_path


def test_a_figure_edited_by_hand_is_named_and_the_check_writes_nothing(copy: Path):
    readme = copy / "README.md"
    text = readme.read_text()
    start = text.index("<!-- rendered: deployed -->")
    block = text[start : text.index("<!-- /rendered -->", start)]
    figure = block[block.index("| mlp | ") + len("| mlp | ") :].split(" ")[0]  # the MLP's Keras accuracy
    edited = text[:start] + block.replace(f"| mlp | {figure}", "| mlp | 99.99%", 1) + text[start + len(block) :]
    readme.write_text(edited)

    result = check(copy, "--check")
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["README.md: block 'deployed' is stale"]
    assert readme.read_text() == edited

    assert check(copy).returncode == 0  # rendering puts the figure back
    assert readme.read_text() == text
    assert check(copy, "--check").returncode == 0


def test_a_changed_metric_makes_its_blocks_stale(copy: Path):
    metrics = json.loads((copy / "metrics/export.json").read_text())
    metrics["litert_int8"]["agreement"] = 0.5
    (copy / "metrics/export.json").write_text(json.dumps(metrics))
    stale = check(copy, "--check").stdout.splitlines()
    assert "README.md: block 'deployed' is stale" in stale
    assert "docs/predicting.md: block 'int8-agreement' is stale" in stale
    assert "docs/export.md: block 'export-scores' is stale" in stale


def test_a_block_with_no_renderer_is_an_error(copy: Path):
    (copy / "docs/extra.md").write_text("<!-- rendered: nonsense -->\n12 s\n<!-- /rendered -->\n")
    result = check(copy, "--check")
    assert result.returncode == 1 and "docs/extra.md: block 'nonsense': no such block" in result.stdout


def test_a_record_written_twice_is_the_same_bytes(tmp_path: Path):
    records = load_records()
    run = records.start("seeds", ["--recipe", "cnn_fast", "--seeds", "1", "2", "3"])
    values = {"seeds": {"2": {"test_accuracy": 0.9935, "seconds": 73.0}, "1": {"test_accuracy": 0.9936}}}
    first = records.write(run, values, tmp_path / "a")
    second = records.write(run, json.loads(json.dumps(values)), tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    assert first.name == "seeds--recipe-cnn_fast--seeds-1-2-3.json"
    text = first.read_text()
    assert text.endswith("}\n") and text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"
    assert [p.name for p in (tmp_path / "a").iterdir()] == [first.name]  # no temporary file left behind


def test_a_record_names_its_run():
    records = load_records()
    run = records.start("predict", [])
    assert run["name"] == "predict--defaults" and run["command"] == "python benchmarks/predict.py"
    assert run["cores"] >= 1 and run["cpu"] and isinstance(run["load_average"], float)
    assert len(run["commit"]) == 40 and isinstance(run["dirty"], bool)
    assert records.name_for("seeds", ["--seeds", "1", "2"]) != records.name_for("seeds", ["--seeds", "1"])
    assert len(records.name_for("seeds", ["-S", "train.model=" + "x" * 300])) < 160
