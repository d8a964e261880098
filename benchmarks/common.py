"""Helpers for the benchmarks: a fresh copy of the repo, and a command measured as it runs.

`pipeline` and `testkit` import because the project is installed in development mode
(`pip install --no-deps --no-build-isolation -e .`, see pyproject.toml).
"""

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import records
except ModuleNotFoundError:  # imported as benchmarks.common (tests/unit/core/test_config.py), not run as a script
    from benchmarks import records

from pipeline.core.config import parse_yaml
from testkit.repos import ROOT, commit_all, copy_repo, env, set_params  # noqa: F401 (ROOT: for the scripts)

ENV = env()


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
    """The repo as a user clones it (no outputs) in a new git repo, dotted params overridden."""
    repo = copy_repo(destination)
    set_params(repo, **(params or {}))
    commit_all(repo, "benchmark")
    return repo


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    """['train.model=cnn', 'train.epochs=8'] -> {'train.model': 'cnn', 'train.epochs': 8}."""
    # Read as params.yaml is read (YAML 1.2): `off` stays the string the pipeline expects.
    return {key: parse_yaml(value, f"-S {key}") for key, value in (pair.split("=", 1) for pair in pairs)}


def cpu_name() -> str:
    return _cpuinfo().get("model name", "unknown CPU")


def cpu_peak() -> tuple[float, str]:
    """The CPU's peak float32 GFLOP/s over all its cores, and how it was worked out.

    cores x 2 FMA units x SIMD lanes (16 with AVX-512, 8 with AVX2) x 2 operations per FMA x the
    clock /proc/cpuinfo reports. Two FMA units is what Zen 2-4 and most Xeon Scalable cores have;
    boost clocks are not counted, so a core can run somewhat above this.
    """
    info = _cpuinfo()
    flags = info.get("flags", "").split()
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    ghz = float(info.get("cpu MHz", "0")) / 1000
    cores = os.cpu_count() or 1
    peak = cores * 2 * lanes * 2 * ghz
    simd = {16: "AVX-512", 8: "AVX2", 4: "SSE"}[lanes]
    return peak, f"{cores} cores x 2 FMA units x {lanes} lanes ({simd}) x 2 x {ghz:.2f} GHz"


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo."""
    return records.cpuinfo()
