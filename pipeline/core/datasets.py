"""MNIST in its three on-disk forms, read into one layout and checked.

The layout is Keras': `x_train` (N, 28, 28), `y_train` (N,), `x_test`, `y_test`, all uint8.
Readers take bytes or paths and raise DataError naming the file and the problem; nothing here
touches the network.
"""

import errno
import gzip
import hashlib
import io
import math
import os
import pickle
import stat
import zipfile
import zlib
from pathlib import Path

import numpy as np

from pipeline.core.errors import DataError

KEYS = ("x_train", "y_train", "x_test", "y_test")
# MNIST, once for every module: 28x28 grayscale digits, ten classes.
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10

# SHA-256 of the four arrays' bytes concatenated in KEYS order (shared/DATA.md): every route
# that claims to serve MNIST must reproduce it, so the raw output is byte-identical everywhere.
MNIST_FINGERPRINT = "06b0d1f124c4e5fa796686ade41a9b778edacc8622f2195a352ef479ad44fc16"

IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_IDX_UBYTE = 0x08


def scale(images: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [0, 1]: what the models take."""
    return images.astype(np.float32) / np.float32(255)


def fingerprint(data: dict[str, np.ndarray]) -> str:
    """SHA-256 over the four arrays' bytes (uint8, C order), in KEYS order."""
    digest = hashlib.sha256()
    for key in KEYS:
        digest.update(np.ascontiguousarray(data[key]).tobytes())
    return digest.hexdigest()


def validate(data: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """Check shapes, dtypes, label range and counts; return the arrays as uint8."""
    missing = [key for key in KEYS if key not in data]
    if missing:
        raise DataError(f"{source}: missing arrays {', '.join(missing)} (expected {', '.join(KEYS)})")
    checked = {}
    for split in ("train", "test"):
        images, labels = data[f"x_{split}"], data[f"y_{split}"]
        if images.dtype != np.uint8:
            raise DataError(f"{source}: x_{split}: expected uint8 pixels, got {images.dtype}")
        if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
            rows, cols = IMAGE_SHAPE
            raise DataError(f"{source}: x_{split}: expected shape (N, {rows}, {cols}), got {images.shape}")
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"{source}: y_{split}: expected a 1-D integer array, got {labels.dtype} {labels.shape}")
        if len(images) == 0:
            raise DataError(f"{source}: x_{split}: no images")
        if len(labels) != len(images):
            raise DataError(f"{source}: y_{split}: expected {len(images)} labels (one per image), got {len(labels)}")
        if labels.min() < 0 or labels.max() >= NUM_CLASSES:
            raise DataError(
                f"{source}: y_{split}: expected labels 0-{NUM_CLASSES - 1}, got {labels.min()}..{labels.max()}"
            )
        checked[f"x_{split}"] = np.ascontiguousarray(images)
        checked[f"y_{split}"] = labels.astype(np.uint8)
    return checked


def parse_idx(raw: bytes, name: str) -> np.ndarray:
    """Parse one IDX file of unsigned bytes: magic 0x0000 08 NDIM, NDIM big-endian sizes, data."""
    if len(raw) < 4:
        raise DataError(f"{name}: truncated IDX file: {len(raw)} bytes, no header")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UBYTE or raw[3] == 0:
        raise DataError(f"{name}: not an IDX file of unsigned bytes (magic {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated IDX header: expected {header} bytes, got {len(raw)}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(shape)  # Python ints: a forged header cannot overflow
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "trailing bytes in"
        raise DataError(f"{name}: {problem} IDX file: shape {shape} needs {expected} bytes, got {len(raw)}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def path_problem(path: Path, folder_ok: bool = False) -> str | None:
    """Why `path` is not a regular file (or, with `folder_ok`, a folder) to read; None if it is one.

    `Path.is_file()` is False alike for a missing path, a symlink loop and a device, and a message
    built on it says "no such file" to a user looking at the file. Reading a named pipe would
    hang, and a device such as /dev/null reads as empty: both are refused by name here.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symlink loop"
        if os.path.islink(path):
            return f"broken symlink to {os.readlink(path)}"
        if error.errno in (errno.ENOENT, errno.ENOTDIR):
            return "no such file or directory" if folder_ok else "no such file"
        return error.strerror or str(error)  # e.g. a folder on the way that may not be entered
    if stat.S_ISREG(mode) or (folder_ok and stat.S_ISDIR(mode)):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    kinds = {stat.S_ISCHR: "a device", stat.S_ISBLK: "a block device", stat.S_ISFIFO: "a named pipe"}
    kind = next((name for is_kind, name in kinds.items() if is_kind(mode)), "a socket")  # all stat() leaves
    return f"not a regular file{' or folder' if folder_ok else ''} ({kind})"


def read_idx_file(path: Path) -> np.ndarray:
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except OSError as error:  # includes gzip.BadGzipFile
        raise DataError(f"{path}: cannot read: {error}") from None
    except (EOFError, zlib.error) as error:
        raise DataError(f"{path}: corrupt gzip data: {error}") from None
    return parse_idx(raw, str(path))


def read_idx_dir(directory: Path) -> dict[str, np.ndarray]:
    """Read the four standard IDX files (each gzipped or not) from one directory."""
    data = {}
    for key, stem in IDX_NAMES.items():
        found = [p for p in (directory / stem, directory / f"{stem}.gz") if os.path.lexists(p)]
        if not found:
            raise DataError(f"{directory}: missing {stem} or {stem}.gz")
        problem = path_problem(found[0])
        if problem:
            raise DataError(f"{found[0]}: {problem}")
        array = read_idx_file(found[0])
        want_ndim = 3 if key.startswith("x") else 1
        if array.ndim != want_ndim:
            raise DataError(f"{found[0]}: expected {want_ndim} dimensions, got shape {array.shape}")
        data[key] = array
    return validate(data, str(directory))


def read_npz(path: Path, keys: tuple[str, ...], hint: str = "") -> dict[str, np.ndarray]:
    """Load the named arrays from an .npz without pickle; DataError if anything is wrong."""
    suffix = f"; {hint}" if hint else ""
    problem = path_problem(path)
    if problem:
        raise DataError(f"{path}: {problem}{suffix}")
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
            missing = [key for key in keys if key not in members]
            if missing:
                raise DataError(
                    f"{path}: missing arrays {', '.join(missing)} "
                    f"(expected {', '.join(keys)}, found {', '.join(members) or 'none'}){suffix}"
                )
            return {key: _read_member(archive, members[key], f"{path}: {key}", suffix) for key in keys}
    except DataError:
        raise
    except Exception as error:  # noqa: BLE001 -- numpy and zipfile raise a dozen types for a damaged file
        raise DataError(f"{path}: not a readable .npz ({type(error).__name__}: {error}){suffix}") from None


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, suffix: str) -> np.ndarray:
    """One .npy inside the archive, as np.load reads it, but only after checking its header:
    numpy allocates the shape a header claims before reading, so a damaged one could ask for
    any amount of memory."""
    with archive.open(info) as member:
        major, _ = np.lib.format.read_magic(member)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(member)
        claimed = math.prod(shape) * dtype.itemsize
        if claimed > info.file_size:
            raise DataError(f"{name}: header claims {claimed:,} bytes, the file holds {info.file_size:,}{suffix}")
        member.seek(0)  # back over the header only: read_array parses it again itself
        return np.lib.format.read_array(member, allow_pickle=False)


class _ArrayUnpickler(pickle.Unpickler):
    """Admits only what a pickled ndarray needs: a pickle can otherwise run any code."""

    def find_class(self, module: str, name: str):
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return np.ndarray.__reduce__(np.empty(0))[0]  # numpy's own _reconstruct, any version
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def parse_mnist_pickle(raw: bytes, name: str) -> dict[str, np.ndarray]:
    """Decode the classic mnist.pkl: ((train), (validation), (test)) pairs of float images/labels.

    Images hold exactly byte/256, so rounding x*256 restores the original pixels; train and
    validation together are MNIST's 60,000 training images in their original order.
    """
    try:
        parts = _ArrayUnpickler(io.BytesIO(raw), encoding="latin1").load()
        (x_a, y_a), (x_b, y_b), (x_t, y_t) = parts
        data = {
            "x_train": np.concatenate([_restore_pixels(x_a, name), _restore_pixels(x_b, name)]),
            "y_train": np.concatenate([np.asarray(y_a), np.asarray(y_b)]),
            "x_test": _restore_pixels(x_t, name),
            "y_test": np.asarray(y_t),
        }
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise DataError(f"{name}: not the expected MNIST pickle ({error})") from None
    return validate(data, name)


def _restore_pixels(images: object, name: str) -> np.ndarray:
    """float images holding byte/256 (N, 784) back to uint8 (N, 28, 28)."""
    pixels = np.rint(np.asarray(images, dtype=np.float64) * 256)
    if pixels.ndim != 2 or pixels.shape[1] != math.prod(IMAGE_SHAPE) or len(pixels) == 0:
        raise DataError(f"{name}: expected images of shape (N, 784), got {pixels.shape}")
    if not np.all((pixels >= 0) & (pixels <= 255)):  # also rejects NaN
        raise DataError(f"{name}: pixel values outside [0, 255/256]")
    return pixels.astype(np.uint8).reshape(-1, *IMAGE_SHAPE)
