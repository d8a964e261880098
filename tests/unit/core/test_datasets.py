"""Readers of MNIST's on-disk forms (IDX, .npz, the legacy pickle), validation and fingerprint."""

import gzip
import hashlib
import os
import pickle
import re
import struct

import numpy as np
import pytest

from pipeline.core import datasets
from pipeline.core.errors import DataError
from testkit.builders import idx_bytes, legacy_pickle, small_mnist, split_legacy
from testkit.faults import special_path


def assert_same_arrays(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(expected)
    for key in expected:
        assert got[key].dtype == np.uint8, key
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


# --- IDX ------------------------------------------------------------------------------------


def test_parse_idx_round_trips_images():
    images = small_mnist()["x_train"]
    parsed = datasets.parse_idx(idx_bytes(images), "images")
    assert parsed.shape == images.shape == (12, 28, 28)
    assert parsed.dtype == np.uint8
    np.testing.assert_array_equal(parsed, images)


def test_parse_idx_round_trips_labels():
    labels = np.array([5, 0, 4, 1, 9], dtype=np.uint8)
    raw = idx_bytes(labels)
    assert raw[:8] == struct.pack(">II", 0x00000801, 5)
    parsed = datasets.parse_idx(raw, "labels")
    assert parsed.ndim == 1
    np.testing.assert_array_equal(parsed, labels)


def test_parse_idx_rejects_fewer_than_four_bytes():
    with pytest.raises(DataError, match="labels.*truncated"):
        datasets.parse_idx(b"\x00\x00\x08", "labels")


@pytest.mark.parametrize(
    "magic",
    [
        0x00000D03,  # type code 0x0D: float32 pixels
        0x00000903,  # type code 0x09: signed bytes
        0x01000803,  # non-zero first byte
        0x00010803,  # non-zero second byte
        0x00000800,  # zero dimensions
    ],
)
def test_parse_idx_rejects_bad_magic(magic):
    raw = struct.pack(">I", magic) + idx_bytes(small_mnist()["x_test"])[4:]
    with pytest.raises(DataError, match="not an IDX file"):
        datasets.parse_idx(raw, "images")


def test_parse_idx_rejects_truncated_header():
    raw = struct.pack(">III", 0x00000803, 2, 28)  # three dimensions announced, two sizes given
    with pytest.raises(DataError, match="truncated IDX header"):
        datasets.parse_idx(raw, "images")


def test_parse_idx_rejects_truncated_data():
    raw = idx_bytes(small_mnist()["x_test"])
    with pytest.raises(DataError, match="images: truncated IDX file"):
        datasets.parse_idx(raw[:-1], "images")


def test_parse_idx_rejects_trailing_bytes():
    raw = idx_bytes(small_mnist()["x_test"])
    with pytest.raises(DataError, match="trailing bytes"):
        datasets.parse_idx(raw + b"\x00", "images")


def test_parse_idx_rejects_sizes_whose_product_overflows():
    # 2**22 * 2**21 * 2**21 == 2**64, which np.prod(..., dtype=int64) wraps to 0, so a bare
    # 16-byte header passes the length check and reshape fails with a ValueError.
    raw = struct.pack(">IIII", 0x00000803, 2**22, 2**21, 2**21)
    with pytest.raises(DataError):
        datasets.parse_idx(raw, "images")


def write_idx_dir(directory, data, compress=False):
    directory.mkdir(exist_ok=True)
    for key, stem in datasets.IDX_NAMES.items():
        raw = idx_bytes(data[key])
        if compress:
            (directory / f"{stem}.gz").write_bytes(gzip.compress(raw))
        else:
            (directory / stem).write_bytes(raw)
    return directory


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzipped"])
def test_read_idx_dir(tmp_path, compress):
    data = small_mnist()
    directory = write_idx_dir(tmp_path / "idx", data, compress)
    assert_same_arrays(datasets.read_idx_dir(directory), data)


def test_read_idx_dir_names_a_missing_file(tmp_path):
    directory = write_idx_dir(tmp_path / "idx", small_mnist())
    (directory / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte"):
        datasets.read_idx_dir(directory)


def test_read_idx_dir_rejects_images_in_place_of_labels(tmp_path):
    data = small_mnist()
    directory = write_idx_dir(tmp_path / "idx", data)
    (directory / "train-labels-idx1-ubyte").write_bytes(idx_bytes(data["x_train"]))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: expected 1 dimensions"):
        datasets.read_idx_dir(directory)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda raw: b"\x1f\x8b" + b"not gzip at all" * 10,  # gzip signature, garbage after it
        lambda raw: gzip.compress(raw)[:-20],  # cut short
    ],
    ids=["garbage", "cut-short"],
)
def test_read_idx_dir_rejects_corrupt_gzip(tmp_path, corrupt):
    data = small_mnist()
    directory = write_idx_dir(tmp_path / "idx", data, compress=True)
    stem = datasets.IDX_NAMES["x_train"]
    (directory / f"{stem}.gz").write_bytes(corrupt(idx_bytes(data["x_train"])))
    with pytest.raises(DataError, match=stem):
        datasets.read_idx_dir(directory)


# --- .npz -----------------------------------------------------------------------------------


def test_read_npz(tmp_path):
    data = small_mnist()
    np.savez(tmp_path / "mnist.npz", **data)
    assert_same_arrays(datasets.read_npz(tmp_path / "mnist.npz", datasets.KEYS), data)


def test_read_npz_lists_missing_keys(tmp_path):
    data = small_mnist()
    del data["y_test"], data["x_test"]
    np.savez(tmp_path / "mnist.npz", **data)
    with pytest.raises(DataError, match="missing arrays x_test, y_test"):
        datasets.read_npz(tmp_path / "mnist.npz", datasets.KEYS)


def test_read_npz_rejects_a_truncated_file(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez(path, **small_mnist())
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="not a readable .npz"):
        datasets.read_npz(path, datasets.KEYS)


def test_read_npz_rejects_random_bytes(tmp_path):
    path = tmp_path / "mnist.npz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(DataError, match="mnist.npz"):
        datasets.read_npz(path, datasets.KEYS)


def test_read_npz_rejects_a_missing_path_with_the_hint(tmp_path):
    with pytest.raises(DataError, match="no such file; run it again"):
        datasets.read_npz(tmp_path / "absent.npz", datasets.KEYS, hint="run it again")


@pytest.mark.parametrize(
    ("kind", "problem", "problem_of_a_source"),
    [
        ("loop", "symlink loop", "symlink loop"),
        ("broken", "broken symlink to {directory}/nowhere", "broken symlink to {directory}/nowhere"),
        ("fifo", "not a regular file (a named pipe)", "not a regular file or folder (a named pipe)"),
        ("device", "not a regular file (a device)", "not a regular file or folder (a device)"),
    ],
)
def test_path_problem_names_what_a_path_is_instead_of_a_file(tmp_path, kind, problem, problem_of_a_source):
    path = special_path(kind, tmp_path)
    assert datasets.path_problem(path) == problem.format(directory=tmp_path)
    assert datasets.path_problem(path, folder_ok=True) == problem_of_a_source.format(directory=tmp_path)


def test_path_problem_of_files_folders_and_missing_paths(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    assert datasets.path_problem(tmp_path / "file") is None
    assert datasets.path_problem(tmp_path) == "is a folder, not a file"
    assert datasets.path_problem(tmp_path, folder_ok=True) is None
    assert datasets.path_problem(tmp_path / "absent") == "no such file"
    assert datasets.path_problem(tmp_path / "absent", folder_ok=True) == "no such file or directory"
    assert datasets.path_problem(tmp_path / "file" / "below") == "no such file"


@pytest.mark.parametrize(
    ("kind", "problem"), [("loop", "symlink loop"), ("fifo", r"not a regular file \(a named pipe\)")]
)
def test_read_npz_of_a_path_that_is_no_file_says_what_it_is(tmp_path, kind, problem):
    path = special_path(kind, tmp_path)  # a named pipe would block a reader: refused before opening
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}: {problem}; run it again$"):
        datasets.read_npz(path, datasets.KEYS, hint="run it again")


def test_read_idx_dir_refuses_a_named_pipe_in_place_of_a_file(tmp_path):
    directory = write_idx_dir(tmp_path / "idx", small_mnist())
    stem = datasets.IDX_NAMES["y_test"]
    (directory / stem).unlink()
    os.mkfifo(directory / stem)
    with pytest.raises(DataError, match=rf"^{re.escape(str(directory / stem))}: not a regular file \(a named pipe\)$"):
        datasets.read_idx_dir(directory)


def test_read_npz_refuses_object_arrays(tmp_path):
    data = small_mnist()
    data["y_train"] = np.array([{"label": 1}] * 12, dtype=object)  # needs pickle to load
    np.savez(tmp_path / "mnist.npz", **data)
    with pytest.raises(DataError, match="not a readable .npz"):
        datasets.read_npz(tmp_path / "mnist.npz", datasets.KEYS)


# --- validate -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, bad, name",
    [
        ("x_train", lambda x: x.astype(np.float32), "x_train"),
        ("x_test", lambda x: x[:, :, :27], "x_test"),
        ("x_train", lambda x: x.reshape(len(x), 784), "x_train"),
        ("y_train", lambda y: np.where(y == 3, 10, y), "y_train"),
        ("y_test", lambda y: np.concatenate([[-1], y[1:]]).astype(np.int64), "y_test"),
        ("y_train", lambda y: y[:-1], "y_train"),
        ("y_test", lambda y: y.astype(np.float32), "y_test"),
    ],
    ids=[
        "float-pixels",
        "shape-28x27",
        "flat-images",
        "label-10",
        "label-minus-1",
        "count-mismatch",
        "float-labels",
    ],
)
def test_validate_rejects(key, bad, name):
    data = small_mnist()
    data[key] = bad(data[key])
    with pytest.raises(DataError, match=f"^source.npz: {name}: "):
        datasets.validate(data, "source.npz")


def test_validate_rejects_an_empty_split():
    data = small_mnist()
    data["x_test"], data["y_test"] = data["x_test"][:0], data["y_test"][:0]
    with pytest.raises(DataError, match="^source.npz: x_test: no images"):
        datasets.validate(data, "source.npz")


def test_validate_names_missing_arrays():
    data = small_mnist()
    del data["y_train"]
    with pytest.raises(DataError, match="missing arrays y_train"):
        datasets.validate(data, "source")


def test_validate_converts_int64_labels_to_uint8():
    data = small_mnist()
    data["y_train"] = data["y_train"].astype(np.int64)
    checked = datasets.validate(data, "source")
    assert checked["y_train"].dtype == np.uint8
    np.testing.assert_array_equal(checked["y_train"], data["y_train"])


# --- fingerprint ----------------------------------------------------------------------------


def test_fingerprint_is_sha256_of_the_arrays_in_order():
    data = small_mnist()
    expected = hashlib.sha256(
        data["x_train"].tobytes() + data["y_train"].tobytes() + data["x_test"].tobytes() + data["y_test"].tobytes()
    ).hexdigest()
    assert datasets.fingerprint(data) == expected
    reordered = {key: data[key] for key in reversed(datasets.KEYS)}  # dict order does not matter
    assert datasets.fingerprint(reordered) == expected


def test_fingerprint_changes_with_one_pixel():
    data = small_mnist()
    before = datasets.fingerprint(data)
    data["x_test"][2, 14, 14] ^= 1
    assert datasets.fingerprint(data) != before


def test_fingerprint_changes_when_two_arrays_swap():
    data = small_mnist(train=5, test=5)
    swapped = {**data, "x_train": data["x_test"], "x_test": data["x_train"]}
    assert datasets.fingerprint(swapped) != datasets.fingerprint(data)


def test_fingerprint_ignores_memory_layout():
    data = small_mnist()
    flipped = {**data, "x_train": np.ascontiguousarray(data["x_train"][:, ::-1])[:, ::-1]}
    assert not flipped["x_train"].flags.c_contiguous
    assert datasets.fingerprint(flipped) == datasets.fingerprint(data)


# --- the legacy pickle ----------------------------------------------------------------------


def test_parse_mnist_pickle_restores_the_pixels():
    data = small_mnist(train=10, test=4)
    result = datasets.parse_mnist_pickle(legacy_pickle(split_legacy(data, first=7)), "mnist.pkl")
    assert result["x_train"].shape == (10, 28, 28)
    assert result["x_test"].shape == (4, 28, 28)
    assert_same_arrays(result, data)  # train = parts one and two, in order; pixels exact


def test_parse_mnist_pickle_rejects_a_wrong_structure():
    raw = pickle.dumps((1, 2), protocol=2)
    with pytest.raises(DataError, match="mnist.pkl: not the expected MNIST pickle"):
        datasets.parse_mnist_pickle(raw, "mnist.pkl")


def test_parse_mnist_pickle_rejects_pixels_out_of_range():
    data = small_mnist(train=10, test=4)
    parts = split_legacy(data, first=7)
    raw = legacy_pickle(parts)
    bigger = legacy_pickle([(parts[0][0].astype(np.float64) * 2, parts[0][1])] + parts[1:])
    datasets.parse_mnist_pickle(raw, "mnist.pkl")  # the unchanged parts are fine
    with pytest.raises(DataError, match="outside"):
        datasets.parse_mnist_pickle(bigger, "mnist.pkl")


def test_parse_mnist_pickle_rejects_images_of_the_wrong_width():
    parts = split_legacy(small_mnist(train=10, test=4), first=7)
    raw = legacy_pickle([(images[:, :, :25], labels) for images, labels in parts])  # 700 pixels each
    with pytest.raises(DataError):
        datasets.parse_mnist_pickle(raw, "mnist.pkl")


class RunsACommand:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_parse_mnist_pickle_refuses_to_run_code(tmp_path):
    marker = tmp_path / "hacked"
    raw = pickle.dumps(RunsACommand(f"touch {marker}"), protocol=2)
    with pytest.raises(DataError, match="refusing"):
        datasets.parse_mnist_pickle(raw, "mnist.pkl")
    assert not marker.exists()
