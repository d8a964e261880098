"""The pipeline's file readers and writers: round trips, byte stability, atomic replacement."""

import os
import re
import stat

import numpy as np
import pytest

from pipeline.core import artifacts, datasets, paths
from pipeline.core.errors import DataError

LEARNING_CURVE = [
    {"epoch": 1, "loss": 0.9, "accuracy": 0.7, "val_loss": 1.0, "val_accuracy": 0.65},
    {"epoch": 2, "loss": 0.25, "accuracy": 0.93, "val_loss": 0.3125, "val_accuracy": 0.9},
]


def sample_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "images": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "labels": np.arange(6, dtype=np.uint8),
    }


# --- arrays ---------------------------------------------------------------------------------


def test_save_and_load_arrays(tmp_path):
    arrays = sample_arrays()
    artifacts.save_arrays(tmp_path / "split.npz", arrays)
    loaded = artifacts.load_arrays(tmp_path / "split.npz", ("images", "labels"))
    for key, array in arrays.items():
        assert loaded[key].dtype == array.dtype
        np.testing.assert_array_equal(loaded[key], array)


def test_saving_the_same_arrays_gives_the_same_bytes(tmp_path):
    artifacts.save_arrays(tmp_path / "a.npz", sample_arrays())
    artifacts.save_arrays(tmp_path / "b.npz", sample_arrays())
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_load_arrays_of_a_missing_output_says_how_to_restore_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a repository without its data
    with pytest.raises(DataError) as error:
        artifacts.load_arrays(paths.prepared("train"), ("images",))
    assert str(error.value) == (
        "data/prepared/train.npz: no such file; "
        "restore it with `dvc checkout --force data/prepared/train.npz` or rebuild it with `dvc repro`"
    )


def test_a_file_that_is_no_output_gets_no_restore_hint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a repository in which absent.npz is no stage's output
    absent = tmp_path / "absent.npz"
    with pytest.raises(DataError) as error:
        artifacts.load_arrays(absent, ("images",))
    assert str(error.value) == f"{absent}: no such file"
    (tmp_path / "metrics.json").write_text("{not json")
    with pytest.raises(DataError) as error:
        artifacts.load_json(tmp_path / "metrics.json")
    assert "dvc" not in str(error.value) and "checkout" not in str(error.value)


def test_split_round_trip_scales_pixels_to_the_unit_interval(tmp_path):
    arrays = sample_arrays()
    arrays["images"][0, 0, :3] = [0, 51, 255]
    artifacts.save_split(tmp_path / "val.npz", arrays["images"], arrays["labels"])
    images, labels = artifacts.load_split(tmp_path / "val.npz")
    assert images.dtype == np.float32 and images.shape == (6, 28, 28)
    np.testing.assert_array_equal(images[0, 0, :3], np.array([0.0, 0.2, 1.0], np.float32))
    np.testing.assert_array_equal(images, arrays["images"] / np.float32(255))
    np.testing.assert_array_equal(labels, arrays["labels"])


def test_scale_keeps_every_grey_level_distinct_in_the_unit_interval():
    scaled = datasets.scale(np.arange(256, dtype=np.uint8))
    assert scaled.dtype == np.float32 and scaled.min() == 0.0 and scaled.max() == 1.0
    assert np.all(np.diff(scaled) > 0)


@pytest.mark.parametrize(
    "images, labels",
    [
        (np.zeros((6, 28, 28), np.uint8), np.zeros(5, np.uint8)),  # one label short
        (np.zeros((6, 784), np.uint8), np.zeros(6, np.uint8)),  # flat images
        (np.zeros((6, 28, 28), np.float32), np.zeros(6, np.uint8)),  # scaled already: an older preprocess's
        (np.zeros((6, 28, 28), np.int64), np.zeros(6, np.uint8)),
    ],
)
def test_load_split_rejects_inconsistent_arrays(tmp_path, monkeypatch, images, labels):
    monkeypatch.chdir(tmp_path)
    artifacts.save_arrays(paths.prepared("train"), {"images": images, "labels": labels})
    with pytest.raises(
        DataError,
        match=r"train.npz: expected uint8 images \(N, 28, 28\) and N labels, got "
        r".*`dvc checkout --force data/prepared/train.npz`",
    ):
        artifacts.load_split(paths.prepared("train"))


# --- restore hints ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "restore"),
    [
        (paths.LEARNING_CURVE, "git checkout -- metrics/learning_curve.csv"),
        (paths.PLOTS_DIR / "loss.png", "git checkout -- metrics/plots/loss.png"),
        (paths.DATASET_INFO, "git checkout -- metrics/dataset.json"),
        (paths.MODEL, "dvc checkout --force models/model.keras"),
        (paths.RAW, "dvc checkout --force data/raw/mnist.npz"),
    ],
)
def test_restore_hint_matches_how_the_output_is_kept(tmp_path, monkeypatch, path, restore):
    monkeypatch.chdir(tmp_path)
    expected = f"restore it with `{restore}` or rebuild it with `dvc repro`"
    assert artifacts.restore_hint(path) == expected
    assert artifacts.restore_hint(tmp_path / path) == expected  # the same file, named absolutely


@pytest.mark.parametrize(
    "path", ["metrics/notes.csv", "models/other.keras", "/tmp/model.keras", "../models/model.keras"]
)
def test_restore_hint_is_empty_for_a_file_that_is_no_output(tmp_path, monkeypatch, path):
    monkeypatch.chdir(tmp_path)
    assert artifacts.restore_hint(path) == ""


def test_a_damaged_git_tracked_output_says_to_restore_it_with_git(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    artifacts.write_bytes(paths.LEARNING_CURVE, b"garbage\n")  # what `echo garbage > metrics/learning_curve.csv` leaves
    with pytest.raises(DataError) as error:
        artifacts.load_learning_curve(paths.LEARNING_CURVE)
    assert str(error.value) == (
        "metrics/learning_curve.csv: missing columns epoch, loss, accuracy, val_loss, val_accuracy; "
        "restore it with `git checkout -- metrics/learning_curve.csv` or rebuild it with `dvc repro`"
    )


# --- atomic writes --------------------------------------------------------------------------


def test_output_folder_creates_a_missing_folder_and_its_parents(tmp_path):
    folder = tmp_path / "report" / "plots"
    assert artifacts.output_folder(folder) == folder
    assert folder.is_dir()
    assert artifacts.output_folder(folder) == folder  # an existing folder is fine


@pytest.mark.parametrize("inside", ["", "deeper", "deeper/still"], ids=["the-folder", "a-parent", "a-grandparent"])
def test_output_folder_refuses_a_file_as_the_folder_or_a_parent(tmp_path, inside):
    blocker = tmp_path / "report"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(DataError, match=f"^{re.escape(str(blocker))}: is a file, not a folder$"):
        artifacts.output_folder(blocker / inside)
    assert blocker.read_text() == "a file where a folder should be"


def test_write_bytes_makes_an_ordinary_file_and_its_directory(tmp_path):
    path = tmp_path / "new" / "deeper" / "out.bin"
    artifacts.write_bytes(path, b"content")
    assert path.read_bytes() == b"content"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(path.parent) == ["out.bin"]


def test_failed_block_leaves_no_file(tmp_path):
    path = tmp_path / "out" / "model.keras"
    with pytest.raises(RuntimeError):
        with artifacts.atomic_path(path) as tmp:
            tmp.write_bytes(b"half written")
            raise RuntimeError("killed halfway")
    assert not path.exists()
    assert os.listdir(path.parent) == []  # no temporary file left behind


def test_failed_block_keeps_the_old_content(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with artifacts.atomic_path(path) as tmp:
            tmp.write_bytes(b"new")
            raise RuntimeError("killed halfway")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_a_full_disk_is_a_data_error_and_keeps_the_old_content(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    path.write_bytes(b"old")

    def disk_full(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(DataError, match="metrics.json: cannot write: No space left on device"):
        artifacts.write_bytes(path, b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_an_unwritable_destination_is_a_data_error(tmp_path):
    blocker = tmp_path / "metrics"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(DataError, match=f"^{re.escape(str(blocker))}: is a file, not a folder$"):
        artifacts.write_bytes(blocker / "metrics.json", b"{}")


# --- JSON and CSV ---------------------------------------------------------------------------


def test_json_round_trip(tmp_path):
    metrics = {"test_accuracy": 0.9772, "per_class": {"0": {"support": 980}}, "epochs": 15}
    artifacts.save_json(tmp_path / "metrics.json", metrics)
    assert artifacts.load_json(tmp_path / "metrics.json") == metrics
    assert (tmp_path / "metrics.json").read_text().endswith("}\n")


@pytest.mark.parametrize("content", [None, "{not json"], ids=["missing", "malformed"])
def test_load_json_problems_are_data_errors(tmp_path, monkeypatch, content):
    monkeypatch.chdir(tmp_path)
    if content is not None:
        artifacts.write_bytes(paths.METRICS, content.encode())
    with pytest.raises(DataError, match="metrics.json: cannot read JSON.*`git checkout -- metrics/metrics.json`"):
        artifacts.load_json(paths.METRICS)


def test_csv_round_trip(tmp_path):
    rows = [
        {"index": 0, "actual": 7, "predicted": 7, "confidence": 0.9981},
        {"index": 1, "actual": 2, "predicted": 3, "confidence": 0.5},
    ]
    artifacts.save_csv(tmp_path / "predictions.csv", rows)
    assert (tmp_path / "predictions.csv").read_text().splitlines()[0] == "index,actual,predicted,confidence"
    loaded = artifacts.load_csv(tmp_path / "predictions.csv", ("actual", "predicted"))
    assert loaded == [{key: str(value) for key, value in row.items()} for row in rows]


def test_load_csv_names_missing_columns(tmp_path):
    (tmp_path / "predictions.csv").write_text("index,actual\n0,7\n")
    with pytest.raises(DataError, match="missing columns predicted, confidence"):
        artifacts.load_csv(tmp_path / "predictions.csv", ("actual", "predicted", "confidence"))


def test_load_csv_of_a_missing_file(tmp_path):
    with pytest.raises(DataError, match="absent.csv: cannot read"):
        artifacts.load_csv(tmp_path / "absent.csv", ("actual",))


def test_load_csv_of_a_binary_file(tmp_path):
    (tmp_path / "predictions.csv").write_bytes(b"\xff\xfe\x00\x01 not text")
    with pytest.raises(DataError):
        artifacts.load_csv(tmp_path / "predictions.csv", ("actual",))


# --- history --------------------------------------------------------------------------------


def test_history_round_trip_restores_types(tmp_path):
    artifacts.save_learning_curve(tmp_path / "learning_curve.csv", LEARNING_CURVE)
    loaded = artifacts.load_learning_curve(tmp_path / "learning_curve.csv")
    assert loaded == LEARNING_CURVE
    assert [type(row["epoch"]) for row in loaded] == [int, int]
    assert all(type(row[key]) is float for row in loaded for key in artifacts.LEARNING_CURVE_COLUMNS[1:])


def test_load_history_converts_text(tmp_path):
    (tmp_path / "learning_curve.csv").write_text("epoch,loss,accuracy,val_loss,val_accuracy\n1,0.5,0.75,0.625,1\n")
    assert artifacts.load_learning_curve(tmp_path / "learning_curve.csv") == [
        {"epoch": 1, "loss": 0.5, "accuracy": 0.75, "val_loss": 0.625, "val_accuracy": 1.0}
    ]


def test_load_history_names_a_missing_column(tmp_path):
    (tmp_path / "learning_curve.csv").write_text("epoch,loss,accuracy,val_loss\n1,0.5,0.75,0.625\n")
    with pytest.raises(DataError, match="missing columns val_accuracy"):
        artifacts.load_learning_curve(tmp_path / "learning_curve.csv")


@pytest.mark.parametrize("row", ["1,0.5,0.75,0.625,high", "1.5,0.5,0.75,0.625,1", "1,0.5,0.75"])
def test_load_history_rejects_values_that_are_not_numbers(tmp_path, row):
    (tmp_path / "learning_curve.csv").write_text(f"epoch,loss,accuracy,val_loss,val_accuracy\n{row}\n")
    with pytest.raises(DataError, match="learning_curve.csv: not a number"):
        artifacts.load_learning_curve(tmp_path / "learning_curve.csv")


def test_load_history_with_no_epochs_is_an_error(tmp_path):
    (tmp_path / "learning_curve.csv").write_text("epoch,loss,accuracy,val_loss,val_accuracy\n")
    with pytest.raises(DataError, match="no epochs recorded"):
        artifacts.load_learning_curve(tmp_path / "learning_curve.csv")


def test_atomic_folder_replaces_only_on_success(tmp_path):
    target = tmp_path / "saved_model"
    (target / "1").mkdir(parents=True)
    (target / "1" / "old").write_text("old")
    with pytest.raises(RuntimeError), artifacts.atomic_folder(target) as scratch:
        (scratch / "half").write_text("half")
        raise RuntimeError("killed mid-write")
    assert [p.name for p in target.rglob("*")] == ["1", "old"]  # the old export is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved_model"]  # no scratch folder left
    with artifacts.atomic_folder(target) as scratch:
        (scratch / "2").mkdir()
    assert [p.name for p in target.iterdir()] == ["2"] and oct(target.stat().st_mode & 0o777) == "0o755"
