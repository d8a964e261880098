"""Small synthetic inputs in the on-disk forms the pipeline reads: MNIST as IDX files, the legacy
pickle and `.npz`, and image files built to test the readers' limits."""

import io
import pickle
import struct
import zlib

import numpy as np

IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}  # unsigned bytes, 3 or 1 dimensions


def small_mnist(train: int = 12, test: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """Random uint8 digits in the Keras layout, with every pixel value from 0 to 255 present."""
    rng = np.random.default_rng(seed)
    x_train = rng.integers(0, 256, size=(train, 28, 28), dtype=np.uint8)
    x_train.flat[:256] = np.arange(256)
    return {
        "x_train": x_train,
        "y_train": (np.arange(train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, size=(test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, size=test, dtype=np.uint8),
    }


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file: big-endian magic, one big-endian size per dimension, then the raw bytes."""
    header = struct.pack(">I", IDX_MAGIC[array.ndim])
    header += b"".join(struct.pack(">I", size) for size in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


class _Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 `str` (BINSTRING), as the cPickle that made mnist.pkl did.

    Python 3 with protocol 2 would wrap bytes in `_codecs.encode(...)`, a global the pipeline's
    restricted unpickler rightly refuses; the real file has no such call.
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def save_python2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_python2_str


def legacy_pickle(parts: list[tuple[np.ndarray, np.ndarray]]) -> bytes:
    """The classic mnist.pkl layout: ((x, y), (x, y), (x, y)), float32 (N, 784) = uint8 / 256,
    int64 labels, protocol 2, numpy referred to by its old module name as in the real file."""
    pairs = tuple(
        ((images.reshape(len(images), -1) / 256).astype(np.float32), labels.astype(np.int64))
        for images, labels in parts
    )
    stream = io.BytesIO()
    _Python2Pickler(stream, protocol=2).dump(pairs)
    return stream.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def split_legacy(data: dict[str, np.ndarray], first: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The Keras-layout arrays as the pickle's (train, validation, test) parts."""
    return [
        (data["x_train"][:first], data["y_train"][:first]),
        (data["x_train"][first:], data["y_train"][first:]),
        (data["x_test"], data["y_test"]),
    ]


def synthetic_mnist(train: int, test: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Small learnable data in the Keras layout: each digit is a bright bar at its own row."""
    rng = np.random.default_rng(seed)

    def make(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(count) % 10
        rng.shuffle(labels)
        images = rng.integers(0, 60, size=(count, 28, 28)).astype(np.uint8)
        for image, label in zip(images, labels):
            row = 3 + 2 * label
            image[row : row + 2, 4:24] = 255
        return images, labels.astype(np.uint8)

    x_train, y_train = make(train)
    x_test, y_test = make(test)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but carries only a few bytes of pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )
