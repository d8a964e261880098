"""The collected store as the pipeline's data: each digit's part fixed by its bytes as the store
grows, the layout checked with one line naming the stray file, digits used as stored: the
28x28s the model was served."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.collect import dataset
from pipeline.collect.store import Store
from pipeline.core.errors import DataError, PipelineError
from testkit.glyphs import fill_store, glyph, stored_digit


def test_adding_digits_never_moves_one_between_parts(tmp_path):
    store = Store(tmp_path)
    fill_store(store, range(10), range(0, 10, 2))
    before = {d.path: name for name, part in dataset.split(dataset.digits(tmp_path), 0.3).items() for d in part}
    fill_store(store, range(10), range(1, 10, 2))
    after = {d.path: name for name, part in dataset.split(dataset.digits(tmp_path), 0.3).items() for d in part}
    assert len(before) == 50 and len(after) == 100
    assert {path: after[path] for path in before} == before
    assert 0 < sum(name == "test" for name in after.values()) < 100


def test_the_part_is_the_hash_against_the_fraction():
    values = np.random.default_rng(0).integers(0, 2**64, 4000, dtype=np.uint64, endpoint=False)
    hashes = [f"{int(value):016x}" + "0" * 48 for value in values]
    share = np.mean([dataset.part(h, 0.2) == "test" for h in hashes])
    assert 0.17 < share < 0.23
    assert {dataset.part(h, 0.0) for h in hashes} == {"train"}
    assert {dataset.part(h, 1.0) for h in hashes} == {"test"}
    assert dataset.part("0" * 64, 0.01) == "test" and dataset.part("f" * 64, 0.99) == "train"


def test_digits_lists_label_folders_in_order_with_each_file_hash(tmp_path):
    store = Store(tmp_path)
    for variant, digit in enumerate((7, 3, 3)):
        store.save(stored_digit(digit, variant), str(digit))
    found = dataset.digits(tmp_path)
    assert [d.label for d in found] == [3, 3, 7]
    assert [d.path.as_posix() for d in found] == sorted(
        p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png")
    )
    assert all(d.path.name == f"{d.sha256}.png" for d in found)


def test_an_empty_store_has_no_digits_and_makes_empty_arrays(tmp_path):
    assert dataset.digits(tmp_path) == []
    images, labels = dataset.arrays(tmp_path, [])
    assert images.shape == (0, 28, 28) and images.dtype == np.uint8 and labels.shape == (0,)


@pytest.mark.parametrize(
    "stray, expected",
    [
        ("loose.png", "expected only folders named 0 to 9"),
        ("x/a.png", "expected only folders named 0 to 9"),
        ("10/a.png", "expected only folders named 0 to 9"),
        ("3/photo.jpg", "expected only .png digits"),
        ("3/nested/a.png", "expected only .png digits"),
        ("3/notes.txt", "expected only .png digits"),
    ],
)
def test_anything_but_label_folders_of_pngs_is_one_line_naming_it(tmp_path, stray, expected):
    Store(tmp_path).save(stored_digit(3), "3")
    path = tmp_path / stray
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    with pytest.raises(DataError) as caught:
        dataset.digits(tmp_path)
    message = str(caught.value)
    assert expected in message and "\n" not in message
    assert str(tmp_path / stray.split("/")[0]) in message
    assert "python -m pipeline.collect" in message


def test_a_killed_writers_temporary_is_no_digit(tmp_path):
    Store(tmp_path).save(stored_digit(5), "5")
    (tmp_path / "5" / ".abc123.tmp").write_bytes(b"half a png")
    assert [d.label for d in dataset.digits(tmp_path)] == [5]


def test_no_store_is_one_line(tmp_path):
    with pytest.raises(DataError, match="no collected store"):
        dataset.digits(tmp_path / "missing")


def test_digits_are_used_as_stored_the_28x28s_the_model_was_served(tmp_path):
    # Normalising a stored digit again would move it: training would see another image than the served one.
    store = Store(tmp_path)
    fill_store(store, range(10), range(2))
    found = dataset.digits(tmp_path)
    images, labels = dataset.arrays(tmp_path, found)
    for image, digit in zip(images, found):
        with Image.open(tmp_path / digit.path) as stored:
            np.testing.assert_array_equal(image, np.asarray(stored))
    np.testing.assert_array_equal(labels, [d.label for d in found])
    served = stored_digit(3, 1)  # what the service fed the model, in [0, 1]
    Store(tmp_path / "one").save(served, "3")
    stored_back = dataset.arrays(tmp_path / "one", dataset.digits(tmp_path / "one"))[0][0] / 255
    assert np.abs(stored_back - served).max() <= 0.5 / 255 + 1e-6  # 8-bit rounding, nothing else


def test_a_picture_that_is_not_a_stored_28x28_digit_stops_with_its_name(tmp_path):
    Store(tmp_path).save(stored_digit(2), "2")
    photo = tmp_path / "2" / "photo.png"
    glyph(2).save(photo)  # a whole picture placed by hand: the import command would normalise it
    with pytest.raises(DataError) as caught:
        dataset.arrays(tmp_path, dataset.digits(tmp_path))
    message = str(caught.value)
    assert message.startswith(f"{photo}: 240x240 pixels, expected a stored 28x28 digit;")
    assert "python -m pipeline.collect" in message


def test_an_unreadable_digit_stops_with_its_name(tmp_path):
    Store(tmp_path).save(stored_digit(2), "2")
    bad = tmp_path / "2" / ("0" * 64 + ".png")
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(PipelineError) as caught:
        dataset.arrays(tmp_path, dataset.digits(tmp_path))
    assert str(bad) in str(caught.value)


LOCK = """schema: '2.0'
stages:
  collected:
    cmd: python -m stages.collected
    outs:
    - path: data/collected
      hash: md5
      md5: 0123456789abcdef0123456789abcdef.dir
      size: 2400
      nfiles: {nfiles}
"""


def test_a_fresh_clone_gets_an_empty_store_when_dvc_lock_records_none(tmp_path):
    lock = tmp_path / "dvc.lock"
    lock.write_text(LOCK.format(nfiles=0))
    dataset.ensure(tmp_path / "data/collected", lock)
    assert (tmp_path / "data/collected").is_dir()
    dataset.ensure(tmp_path / "elsewhere", tmp_path / "no-lock-yet")
    assert (tmp_path / "elsewhere").is_dir()


def test_a_missing_store_that_dvc_lock_says_held_digits_is_refused_not_started_empty(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("dvc.lock").write_text(LOCK.format(nfiles=12))
    with pytest.raises(DataError) as caught:
        dataset.ensure(Path("data/collected"), Path("dvc.lock"))
    assert str(caught.value) == (
        "data/collected: missing, and dvc.lock records 12 collected digits in it: run `dvc pull data/collected`"
    )
    assert not Path("data/collected").exists()
