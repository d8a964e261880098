"""Fault injection for tests/system/test_faults.py: a start-up shim for stage processes, process handling,
and checks of what a fault left behind (partial files, the DVC cache, DVC's locks); and paths that
are no regular file, for the readers' tests.

Nothing here is imported by the pipeline. The shim reaches a stage only through PYTHONPATH, which
a test sets for the `dvc repro` or `python -m stages.<name>` it starts.
"""

import functools
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from testkit.repos import env

# Python imports `sitecustomize` at start-up from PYTHONPATH. DVC imports it too, so it patches
# nothing until `pipeline.core.artifacts` (which only a stage imports) is loaded, and only acts on the
# one path named by FAULT_PATH:
#   FAULT_MODE=hang  write_bytes puts half the bytes in the writer's real temporary file, writes
#                    its pid to FAULT_READY, then sleeps until killed
#   FAULT_MODE=deny  os.replace onto the path raises EACCES, as for a read-only directory
SHIM = """
import errno, importlib.abc, importlib.util, os, sys, time
from pathlib import Path

TARGET, MODE, READY = (os.environ.get(k) for k in ("FAULT_PATH", "FAULT_MODE", "FAULT_READY"))


def patch(artifacts):
    write_bytes, replace = artifacts.write_bytes, os.replace

    def hanging_write_bytes(path, raw):
        if Path(path) != Path(TARGET):
            return write_bytes(path, raw)
        with artifacts.atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                handle.write(raw[: len(raw) // 2])
            Path(READY).write_text(str(os.getpid()))
            time.sleep(600)

    def denied_replace(source, target, **kwargs):
        if Path(target) == Path(TARGET):
            raise PermissionError(errno.EACCES, "Permission denied", str(target))
        return replace(source, target, **kwargs)

    if MODE == "hang":
        artifacts.write_bytes = hanging_write_bytes
    elif MODE == "deny":
        os.replace = denied_replace


class PatchArtifacts(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "pipeline.core.artifacts":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module
        spec.loader.exec_module = lambda module: (load(module), patch(module))
        return spec


if TARGET:
    sys.meta_path.insert(0, PatchArtifacts())
"""

# Shadows the real TensorFlow and Keras: importing either leaves a marker file and fails.
FAKE_TF = """
from pathlib import Path
Path(__file__).parents[1].joinpath("tensorflow-was-imported").touch()
raise ImportError("the fake TensorFlow of testkit/faults.py was imported")
"""

EPOCH_LINE = re.compile(r"^epoch +\d+/\d+ ", re.MULTILINE)


def shim_dir(directory: Path, fake_tensorflow: bool = False) -> Path:
    """A directory for PYTHONPATH holding the fault shim and, if asked, a fake TensorFlow."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(SHIM)
    for name in ("tensorflow", "keras") if fake_tensorflow else ():
        (directory / name).mkdir(exist_ok=True)
        (directory / name / "__init__.py").write_text(FAKE_TF)
    return directory


def tensorflow_imported(directory: Path) -> bool:
    return (directory / "tensorflow-was-imported").exists()


class Started:
    """A process started in its own session (as a terminal starts a job), output sent to files."""

    def __init__(self, args: list[str], cwd: Path, logs: Path, environment: dict[str, str] | None = None, **popen: Any):
        logs.mkdir(parents=True, exist_ok=True)
        self.out_path, self.err_path = logs / "stdout", logs / "stderr"
        # A terminal's job hears Ctrl-C even when pytest itself was started in the background
        # (`cmd &` in a script), which would hand every child SIGINT ignored.
        popen.setdefault("preexec_fn", functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL))
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.process = subprocess.Popen(
                args, cwd=cwd, env=environment or env(), stdout=out, stderr=err, start_new_session=True, **popen
            )
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.process.pid

    def out(self) -> str:
        return self.out_path.read_text()

    def err(self) -> str:
        return self.err_path.read_text()

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def wait_for(self, found: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll until `found()`; fail early if the process ends first."""
        deadline = time.monotonic() + timeout
        while not found():
            if self.process.poll() is not None:
                raise AssertionError(f"ended ({self.process.returncode}) before {what}:\n{self.out()}\n{self.err()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} after {timeout} s:\n{self.out()}\n{self.err()}")
            time.sleep(0.05)

    def child(self, module: str) -> psutil.Process:
        """This process's descendant running `python -m <module>` (the stage, not dvc)."""
        for process in psutil.Process(self.pid).children(recursive=True):
            try:
                if module in process.cmdline():
                    return process
            except psutil.NoSuchProcess:
                continue
        raise AssertionError(f"no `{module}` process under pid {self.pid}")

    def stop(self) -> None:
        """Kill what is left of this process and its descendants (a failed test's cleanup)."""
        if self.process.poll() is not None:
            return  # ended and reaped: its pid may already be another process's
        try:
            family = [psutil.Process(self.pid), *psutil.Process(self.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            family = []
        for process in family:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        self.process.wait(30)


def wait_all(started: list[Started], timeout: float) -> list[tuple[int, float]]:
    """Wait for every process; return each one's exit code and seconds from its start to its end."""
    ended: dict[int, tuple[int, float]] = {}
    deadline = time.monotonic() + timeout
    while len(ended) < len(started) and time.monotonic() < deadline:
        for index, each in enumerate(started):
            if index not in ended and each.process.poll() is not None:
                ended[index] = (each.process.returncode, time.monotonic() - each.started)
        time.sleep(0.05)
    assert len(ended) == len(started), f"still running after {timeout} s"
    return [ended[index] for index in range(len(started))]


def bad_cache_objects(repo: Path) -> list[str]:
    """Objects in repo's DVC cache whose content does not hash to their name (empty: intact).

    A file object `md5/xx/yyyy…` must have MD5 xx+yyyy…; a directory listing `….dir` is the JSON
    listing whose MD5 is its name without `.dir`, so the same check covers it. Anything else in
    the cache (a temporary file, say) is reported too.
    """
    bad = []
    root = repo / ".dvc/cache/files/md5"
    for path in sorted(root.glob("*/*")) if root.exists() else []:
        name = path.parent.name + path.name
        expected = name.removesuffix(".dir")
        if not re.fullmatch(r"[0-9a-f]{32}", expected):
            bad.append(f"{path.relative_to(repo)}: not a cache object name")
        elif hashlib.md5(path.read_bytes()).hexdigest() != expected:
            bad.append(f"{path.relative_to(repo)}: content does not match its name")
    return bad


def temporaries(directory: Path) -> list[str]:
    """The atomic writers' temporary files (`.<name>.<random>.tmp`) in `directory`."""
    return sorted(p.name for p in directory.glob(".*.tmp"))


def locked_pids(repo: Path) -> set[int]:
    """PIDs DVC's rwlock file says hold a read or write lock on some path."""
    path = repo / ".dvc/tmp/rwlock"
    if not path.exists():
        return set()
    lock = json.loads(path.read_text() or "{}")
    readers = [info["pid"] for infos in lock.get("read", {}).values() for info in infos]
    return set(readers) | {info["pid"] for info in lock.get("write", {}).values()}


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def locked_md5(repo: Path, stage: str, path: str) -> str:
    """The MD5 dvc.lock records for `path` among `stage`'s outs."""
    import yaml

    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return next(out["md5"] for out in lock["stages"][stage]["outs"] if out["path"] == path)


def special_path(kind: str, directory: Path) -> Path:
    """A path in `directory` that is no regular file: "loop" (two symlinks to each other),
    "broken" (a symlink to nothing), "fifo" (a named pipe), or "device" (/dev/null itself)."""
    path = directory / kind
    if kind == "loop":
        path.symlink_to(directory / "loop-back")
        (directory / "loop-back").symlink_to(path)
    elif kind == "broken":
        path.symlink_to(directory / "nowhere")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        return Path("/dev/null")
    return path


def stderr_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def predict_memory(image_dir: str, warmup_dir: str, model: str) -> None:
    """Run the predict CLI over `image_dir` after a warm-up; print its cost as JSON.

    `growth_mb` is peak RSS after the run minus peak RSS after the warm-up (TensorFlow, the model
    and one chunk's buffers already in place): what the number of images adds.
    """
    import contextlib
    import io
    import resource

    from pipeline.predict import command

    def peak_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    class Count(io.TextIOBase):
        lines = 0

        def write(self, text: str) -> int:
            self.lines += text.count("\n")
            return len(text)

    with contextlib.redirect_stdout(Count()):
        assert command.main([warmup_dir, "--model", model]) == 0
    baseline = peak_mb()
    sink = Count()
    started = time.perf_counter()
    with contextlib.redirect_stdout(sink):
        code = command.main([image_dir, "--model", model])
    seconds = time.perf_counter() - started
    result = {
        "code": code,
        "lines": sink.lines,
        "seconds": seconds,
        "peak_mb": peak_mb(),
        "growth_mb": peak_mb() - baseline,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    predict_memory(*sys.argv[1:])
