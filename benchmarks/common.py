"""Helpers for the benchmarks: a fresh copy of the repo, and a command measured as it runs."""
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}


@dataclass
class Measured:
    seconds: float
    peak_rss_mb: float  # the largest resident set of the process and everything it waited for
    output: str


def measure(args: list[str], cwd: Path) -> Measured:
    """Run a command to completion; wall time and the peak RSS of its whole process tree."""
    started = time.perf_counter()
    process = subprocess.Popen(args, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({process.returncode}):\n{output[-3000:]}")
    return Measured(seconds, usage.ru_maxrss / 1024, output)


def fresh_copy(destination: Path, params: dict[str, object] | None = None) -> Path:
    """The repo's tracked files, without outputs, in a new git repo; dotted params overridden."""
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in names:
        if name.startswith("metrics/") or name == "dvc.lock":
            continue
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, destination / name)
    if params:
        path = destination / "params.yaml"
        values = yaml.safe_load(path.read_text())
        for dotted, value in params.items():
            section, _, key = dotted.rpartition(".")
            (values[section] if section else values)[key] = value
        path.write_text(yaml.safe_dump(values, sort_keys=False))
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    subprocess.run(["git", "init", "-q"], cwd=destination, check=True)
    subprocess.run(["git", "add", "-A"], cwd=destination, check=True)
    subprocess.run([*git, "commit", "-qm", "benchmark"], cwd=destination, check=True)
    return destination


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    """['train.model=cnn', 'train.epochs=8'] -> {'train.model': 'cnn', 'train.epochs': 8}."""
    return {key: yaml.safe_load(value) for key, value in (pair.split("=", 1) for pair in pairs)}


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"
