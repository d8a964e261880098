"""`python -m stages.collected`, as `dvc repro` runs it: the store's train part as a prepared
split, the test part left out of it; a stray file stops it with one line and writes nothing."""

import os
import shutil
import subprocess
import sys

import numpy as np

from pipeline.collect import dataset
from pipeline.collect.store import Store
from pipeline.core import artifacts, paths
from testkit.glyphs import fill_store, stored_digit
from testkit.repos import ROOT


def run_stage(cwd):
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "stages.collected"]
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=120)


def workspace(tmp_path):
    shutil.copy(ROOT / paths.PARAMS, tmp_path / paths.PARAMS)
    return Store(tmp_path / paths.COLLECTED)


def test_the_train_part_is_written_and_the_test_part_held_out(tmp_path):
    fill_store(workspace(tmp_path), range(10), range(4))
    result = run_stage(tmp_path)
    assert result.returncode == 0, result.stderr
    parts = dataset.split(dataset.digits(tmp_path / paths.COLLECTED), 0.2)  # params.yaml's test_fraction
    assert len(parts["test"]) > 0
    images, labels = artifacts.load_split(tmp_path / paths.COLLECTED_TRAIN)
    expected_images, expected_labels = dataset.arrays(tmp_path / paths.COLLECTED, parts["train"])
    np.testing.assert_array_equal(np.rint(images * 255), expected_images)
    np.testing.assert_array_equal(labels, expected_labels)
    assert f"{len(parts['train'])} to train on, {len(parts['test'])} to test on" in result.stdout + result.stderr


def test_an_empty_store_gives_an_empty_split(tmp_path):
    workspace(tmp_path)
    (tmp_path / paths.COLLECTED).mkdir(parents=True)
    assert run_stage(tmp_path).returncode == 0
    images, labels = artifacts.load_split(tmp_path / paths.COLLECTED_TRAIN)
    assert images.shape == (0, 28, 28) and labels.shape == (0,)


def test_a_stray_file_is_one_line_and_nothing_is_written(tmp_path):
    workspace(tmp_path).save(stored_digit(4), "4")
    (tmp_path / paths.COLLECTED / "4" / "IMG_0001.HEIC").write_bytes(b"a phone's photo")
    result = run_stage(tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "data/collected/4/IMG_0001.HEIC: expected only .png digits" in result.stderr
    assert not (tmp_path / paths.COLLECTED_TRAIN).exists()
    assert not (tmp_path / paths.PREPARED_DIR).exists() or not any((tmp_path / paths.PREPARED_DIR).iterdir())
