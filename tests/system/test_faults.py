"""Faults and bad input: each is injected into the shrunken real pipeline (or the writer it hits)
and the promised outcome is checked.

The promises: a killed or interrupted stage leaves no output that looks complete, the next
`dvc repro` finishes with `dvc status` clean and the DVC cache intact; a failed write or a bad
file or parameter costs one line naming it, with no traceback; a model that would run code on
load is refused; predict streams any number of images in bounded memory.
"""

import errno
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import psutil
import pytest

from pipeline.core import artifacts, cli
from pipeline.core.errors import DataError
from pipeline.train import models
from testkit import faults, repos
from testkit.repos import ROOT, dvc_status, env, make_pipeline_repo, ran_stages, run, set_params

pytestmark = pytest.mark.faults
slow = pytest.mark.slow

# Enough epochs at batch 16 that a signal sent after the first epoch's line lands mid-training.
LONG_TRAINING = {"train.epochs": 30, "train.batch_size": 16}
INTERRUPTED = cli.INTERRUPTED


@pytest.fixture(scope="module")
def built_template(tmp_path_factory) -> Path:
    repo = make_pipeline_repo(tmp_path_factory.mktemp("built") / "repo")
    run(["dvc", "repro"], cwd=repo)
    return repo


@pytest.fixture
def built_repo(built_template, tmp_path) -> Path:
    """A shrunken pipeline after a successful `dvc repro` (a copy: each test may break its own)."""
    return Path(shutil.copytree(built_template, tmp_path / "repo", symlinks=True))


def assert_recovers(repo: Path) -> subprocess.CompletedProcess:
    """The promise after any fault: `dvc repro` finishes, status is clean, the cache intact."""
    result = run(["dvc", "repro"], cwd=repo)
    assert dvc_status(repo) == {}
    assert faults.bad_cache_objects(repo) == []
    return result


def fault_env(shims: Path, **extra: str) -> dict[str, str]:
    return env(PYTHONPATH=f"{shims}{os.pathsep}{ROOT}", **extra)


# --- a stage killed mid-write (SIGKILL) ------------------------------------------------------


@slow
@pytest.mark.parametrize("stage, target", [("fetch", "data/raw/mnist.npz"), ("preprocess", "data/prepared/val.npz")])
def test_sigkill_mid_write_leaves_no_partial_output(pipeline_repo, tmp_path, stage, target):
    repo, ready = pipeline_repo, tmp_path / "ready"
    environment = fault_env(
        faults.shim_dir(tmp_path / "shim"), FAULT_PATH=target, FAULT_MODE="hang", FAULT_READY=str(ready)
    )
    repro = faults.Started(["dvc", "repro"], repo, tmp_path / "logs", environment)
    try:
        repro.wait_for(ready.exists, 120, f"{target} half written")
        writer = psutil.Process(int(ready.read_text()))
        assert writer.cmdline()[-2:] == ["-m", f"stages.{stage}"]  # the stage, not dvc
        writer.kill()
        assert repro.wait(30) != 0
    finally:
        repro.stop()
    assert f"failed to reproduce '{stage}'" in repro.err()
    assert not (repo / target).exists()  # DVC removed the old output before the run; no partial one
    assert faults.bad_cache_objects(repo) == []
    # SIGKILL skips cleanup: the half-written temporary file stays, under a name neither DVC nor
    # git takes for an output, until the next write of the same output removes it.
    left = faults.temporaries((repo / target).parent)
    assert len(left) == 1 and left[0].startswith(f".{Path(target).name}.")
    assert run(["git", "check-ignore", "-q", f"{Path(target).parent}/{left[0]}"], cwd=repo, check=False).returncode == 0

    assert_recovers(repo)
    assert faults.temporaries((repo / target).parent) == []
    assert faults.md5(repo / target) == faults.locked_md5(repo, stage, target)


@slow
def test_sigkill_mid_write_of_a_stage_run_by_hand_keeps_the_previous_file(built_repo, tmp_path):
    repo, target, ready = built_repo, "data/prepared/val.npz", tmp_path / "ready"
    before = {name: faults.md5(repo / f"data/prepared/{name}.npz") for name in ("train", "val", "test")}
    environment = fault_env(
        faults.shim_dir(tmp_path / "shim"), FAULT_PATH=target, FAULT_MODE="hang", FAULT_READY=str(ready)
    )
    stage = faults.Started([sys.executable, "-m", "stages.preprocess"], repo, tmp_path / "logs", environment)
    try:
        stage.wait_for(ready.exists, 60, f"{target} half written")
        os.kill(int(ready.read_text()), signal.SIGKILL)
        assert stage.wait(30) == -signal.SIGKILL
    finally:
        stage.stop()
    # train.npz was rewritten with the same bytes, val.npz never replaced, test.npz not reached:
    # all three are the complete files dvc.lock records, so there is nothing to redo.
    assert {name: faults.md5(repo / f"data/prepared/{name}.npz") for name in before} == before
    assert dvc_status(repo) == {}
    assert len(faults.temporaries(repo / "data/prepared")) == 1
    assert faults.bad_cache_objects(repo) == []

    run([sys.executable, "-m", "stages.preprocess"], cwd=repo)  # the next write clears the leftover
    assert faults.temporaries(repo / "data/prepared") == []


def test_the_next_write_of_an_output_removes_its_killed_writers_temporary(tmp_path):
    (tmp_path / ".val.npz.k1ll3d.tmp").write_bytes(b"half of val")
    (tmp_path / ".train.npz.k1ll3d.tmp").write_bytes(b"half of train")  # another output's
    artifacts.write_bytes(tmp_path / "val.npz", b"complete")
    assert sorted(os.listdir(tmp_path)) == [".train.npz.k1ll3d.tmp", "val.npz"]


# --- a stage killed or interrupted during training --------------------------------------------


# DVC runs a stage as `$SHELL -c cmd` (/bin/sh if SHELL is unset, as in CI and containers).
# bash replaces itself with the command; dash forks, waits, and reports signals its own way.
SHELLS = pytest.mark.parametrize("shell", ["/bin/bash", "/bin/sh"], ids=["bash", "sh"])


def start_long_training(repo: Path, logs: Path, shell: str) -> faults.Started:
    set_params(repo, **LONG_TRAINING)
    repro = faults.Started(["dvc", "repro"], repo, logs, env(SHELL=shell))
    repro.wait_for(lambda: faults.EPOCH_LINE.search(repro.out()), 180, "the first epoch")
    return repro


def assert_no_model(repo: Path) -> None:
    """What a killed train leaves: no model or history (DVC removed the old ones), no temporaries,
    nothing new in the cache."""
    assert not (repo / "models/model.keras").exists()
    assert not (repo / "metrics/learning_curve.csv").exists()
    assert faults.temporaries(repo / "models") == [] and faults.temporaries(repo / "metrics") == []
    assert faults.bad_cache_objects(repo) == []


@slow
@SHELLS
def test_sigkill_of_the_training_stage(built_repo, tmp_path, shell):
    repro = start_long_training(built_repo, tmp_path / "logs", shell)
    try:
        trainer = repro.child("stages.train")
        trainer.kill()
        assert repro.wait(30) != 0
    finally:
        repro.stop()
    assert re.search(r"failed to reproduce 'train': .* exited with (-9|137)$", repro.err(), re.M)
    assert not re.search(r"epoch +30/30", repro.out())  # it was killed mid-training
    assert_no_model(built_repo)
    assert faults.locked_pids(built_repo) == set()  # dvc itself lived to release its locks
    assert_recovers(built_repo)


@slow
@SHELLS
def test_sigkill_of_dvc_during_training_stops_the_stage_too(built_repo, tmp_path, shell):
    repro = start_long_training(built_repo, tmp_path / "logs", shell)
    trainer = repro.child("stages.train")
    try:
        os.kill(repro.pid, signal.SIGKILL)
        repro.wait(30)
        # Without pipeline.core.cli.stop_with_dvc the orphan trained on and wrote a model no dvc.lock records.
        trainer.wait(10)
    except psutil.TimeoutExpired:
        trainer.kill()
        pytest.fail("the training stage outlived its killed dvc")
    finally:
        repro.stop()
    assert repro.err().strip().splitlines()[-1] == INTERRUPTED
    assert_no_model(built_repo)
    # dvc died holding read locks on the stage's deps and write locks on its outs. The next dvc
    # finds the pid gone, warns, and takes over the locks it needs; the rest stay listed until a
    # later dvc needs them (the train deps that preprocess writes, below): stale, not blocking.
    assert repro.pid in faults.locked_pids(built_repo)
    recovered = assert_recovers(built_repo)
    assert f"(Pid {repro.pid})" in recovered.stderr and "had been killed" in recovered.stderr
    assert faults.locked_pids(built_repo) <= {repro.pid} and not psutil.pid_exists(repro.pid)
    run(["dvc", "repro", "--force", "--single-item", "preprocess"], cwd=built_repo)
    assert dvc_status(built_repo) == {}


@slow
@SHELLS
def test_ctrl_c_during_training_stops_within_seconds_with_one_line(built_repo, tmp_path, shell):
    repro = start_long_training(built_repo, tmp_path / "logs", shell)
    try:
        os.killpg(repro.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole job
        sent = time.monotonic()
        code = repro.wait(30)
        seconds = time.monotonic() - sent
    finally:
        repro.stop()
    assert code != 0 and seconds < 5, seconds
    assert not re.search(r"epoch +30/30", repro.out())
    # Ours is the stage's one line; DVC (which ignores SIGINT while a stage runs) adds its own.
    ours = [line for line in faults.stderr_lines(repro.err()) if not line.startswith("ERROR: ")]
    assert ours == [INTERRUPTED]
    # The stage exits 130; dash, interrupted too, then kills itself with SIGINT (-2).
    assert re.search(r"^ERROR: failed to reproduce 'train': .* exited with (130|-2)$", repro.err(), re.M)
    assert "Traceback" not in repro.out() + repro.err()
    assert_no_model(built_repo)
    assert_recovers(built_repo)


@pytest.fixture
def start_stage(tmp_path):
    """Start a process running `cli.run(main)` for the `main` in a snippet; return once it prints "ready"."""
    started = []

    def start(body: str, **popen: object) -> faults.Started:
        code = f"import time\nfrom pipeline.core import cli\n{textwrap.dedent(body)}\ncli.run(main)\n"
        environment = env(PYTHONPATH=str(ROOT))
        started.append(faults.Started([sys.executable, "-c", code], ROOT, tmp_path / "logs", environment, **popen))
        started[-1].wait_for(lambda: "ready" in started[-1].out(), 30, "ready")
        return started[-1]

    yield start
    for stage in started:
        stage.stop()


def test_ctrl_c_ends_the_stage_even_when_the_keyboardinterrupt_is_lost(start_stage):
    # Python loses a KeyboardInterrupt raised inside code that clears errors: here, on purpose.
    stage = start_stage("""
        def main():
            print("ready", flush=True)
            while True:
                try:
                    time.sleep(0.01)
                except KeyboardInterrupt:
                    pass
    """)
    os.kill(stage.pid, signal.SIGINT)
    assert stage.wait(30) == 130
    assert stage.err() == INTERRUPTED + "\n"


def test_a_second_ctrl_c_does_not_break_the_first_ones_cleanup(start_stage):
    stage = start_stage("""
        def main():
            try:
                print("ready", flush=True)
                time.sleep(60)
            finally:
                print("cleaning up", flush=True)
                time.sleep(1)
                print("cleaned up", flush=True)
    """)
    os.kill(stage.pid, signal.SIGINT)
    stage.wait_for(lambda: "cleaning up" in stage.out(), 30, "the cleanup")
    os.kill(stage.pid, signal.SIGINT)
    assert stage.wait(30) == 130
    assert "cleaned up" in stage.out() and stage.err() == INTERRUPTED + "\n"


def test_a_second_ctrl_c_while_exiting_prints_no_traceback(start_stage):
    # After the first Ctrl-C the process is shutting down (atexit, TensorFlow's threads): a
    # second one there raised a KeyboardInterrupt that Python printed as "Exception ignored".
    stage = start_stage("""
        import atexit
        def main():
            atexit.register(lambda: (print("exiting", flush=True), time.sleep(1)))
            print("ready", flush=True)
            time.sleep(60)
    """)
    os.kill(stage.pid, signal.SIGINT)
    stage.wait_for(lambda: "exiting" in stage.out(), 30, "the exit")
    os.kill(stage.pid, signal.SIGINT)
    assert stage.wait(30) == 130
    assert stage.err() == INTERRUPTED + "\n"


def test_a_stage_started_with_sigint_ignored_keeps_ignoring_it(start_stage):
    # What a shell without job control does to `cmd &`: Ctrl-C in the terminal is not for it.
    stage = start_stage(
        """
        def main():
            print("ready", flush=True)
            time.sleep(1)
            print("finished", flush=True)
    """,
        preexec_fn=functools.partial(signal.signal, signal.SIGINT, signal.SIG_IGN),
    )
    os.kill(stage.pid, signal.SIGINT)
    assert stage.wait(30) == 0
    assert "finished" in stage.out() and stage.err() == ""


@slow
def test_a_field_stage_that_fails_leaves_the_last_field_scores(built_repo):
    repo = built_repo
    before = (repo / "metrics/field.json").read_bytes()
    set_params(repo, **{"field.images": 10_000})  # valid, but more than the shrunken test split holds
    failed = run(["dvc", "repro"], cwd=repo, check=False)
    assert failed.returncode != 0 and "failed to reproduce 'field'" in failed.stderr
    assert "field.images: 10000 is more than the" in failed.stderr
    # DVC deletes a stage's outputs before running it; this one it keeps (persist), so the
    # metrics a reviewer reads are the last complete ones, and `dvc status` says they are stale.
    assert (repo / "metrics/field.json").read_bytes() == before
    assert "field" in dvc_status(repo)
    set_params(repo, **{"field.images": 100})
    assert_recovers(repo)
    assert (repo / "metrics/field.json").read_bytes() == before


# --- two dvc repro at once ---------------------------------------------------------------------


@slow
def test_two_repros_at_once_one_runs_the_other_fails_fast(built_repo, tmp_path):
    set_params(built_repo, **{"train.epochs": 3})  # train, evaluate, plot and export to run: ~25 s
    first = faults.Started(["dvc", "repro"], built_repo, tmp_path / "first")
    second = faults.Started(["dvc", "repro"], built_repo, tmp_path / "second")
    try:
        ended = faults.wait_all([first, second], 300)
    finally:
        first.stop()
        second.stop()
    (first_code, first_seconds), (second_code, second_seconds) = ended
    assert sorted([first_code, second_code])[0] == 0 and first_code != second_code, ended
    winner, loser, loser_seconds = (
        (first, second, second_seconds) if first_code == 0 else (second, first, first_seconds)
    )
    # DVC releases its repo lock while a stage's command runs and guards each stage's deps and
    # outs with its rwlock instead: the loser gives up on whichever it meets first (after 3 s of
    # retries for the repo lock, at once for a path), having changed nothing.
    assert re.search(
        r"ERROR: Unable to acquire lock\. Most likely another DVC process is running"
        r"|ERROR: failed to reproduce '\w+': '[^']+' is busy, it is being blocked by:\n  \(PID \d+\): \S*dvc repro",
        loser.err(),
    ), loser.err()
    assert loser_seconds < 10, loser_seconds
    assert "Running stage" not in loser.out()
    assert ran_stages(winner.out()) == ["train", "evaluate", "plot", "export", "field"]
    assert dvc_status(built_repo) == {}
    assert faults.bad_cache_objects(built_repo) == []


# --- a write that fails: full disk, no permission ----------------------------------------------


class ScratchModel:
    """Stands in for a Keras model; `save` is Keras writing its scratch copy."""

    def __init__(self, fail: OSError | None = None) -> None:
        self.fail = fail

    def save(self, path: Path) -> None:
        if self.fail:
            raise self.fail
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("config.json", "{}")


WRITERS = {
    "write_bytes": lambda path: artifacts.write_bytes(path, b"new" * 1000),
    "save_arrays": lambda path: artifacts.save_arrays(path, {"x": np.arange(1000)}),
    "save_split": lambda path: artifacts.save_split(path, np.zeros((2, 28, 28), np.uint8), np.arange(2)),
    "save_json": lambda path: artifacts.save_json(path, {"test_accuracy": 0.5}),
    "save_csv": lambda path: artifacts.save_csv(path, [{"actual": 1, "predicted": 2}]),
    "save_learning_curve": lambda path: artifacts.save_learning_curve(path, [{"epoch": 1, "loss": 0.5}]),
    "save_model": lambda path: models.save_model(ScratchModel(), path),
}


def half_then_full_disk(self, data):
    """Path.write_bytes on a disk that fills up halfway through the temporary file."""
    with open(self, "wb") as handle:
        handle.write(data[: len(data) // 2])
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def refuse(errno_code):
    def fail(*args, **kwargs):
        raise OSError(errno_code, os.strerror(errno_code), str(args[-1]) if args else None)

    return fail


FAULTS = {  # where the write fails: (what to patch, its replacement, the message)
    "disk-full-while-writing": ("pathlib.Path.write_bytes", half_then_full_disk, "No space left on device"),
    "no-permission-to-create": ("tempfile.mkstemp", refuse(errno.EACCES), "Permission denied"),
    "disk-full-on-rename": ("os.replace", refuse(errno.ENOSPC), "No space left on device"),
    "read-only-on-rename": ("os.replace", refuse(errno.EROFS), "Read-only file system"),
}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("writer", WRITERS)
def test_a_failed_write_is_one_line_naming_the_path_and_keeps_the_old_file(tmp_path, monkeypatch, writer, fault):
    path = tmp_path / "out" / "output.bin"
    path.parent.mkdir()
    path.write_bytes(b"the previous, complete output")
    target, replacement, message = FAULTS[fault]
    monkeypatch.setattr(target, replacement)
    with pytest.raises(DataError) as raised:
        WRITERS[writer](path)
    monkeypatch.undo()
    assert str(raised.value) == f"{path}: cannot write: {message}"
    assert path.read_bytes() == b"the previous, complete output"
    assert os.listdir(path.parent) == ["output.bin"]  # no temporary file left


@pytest.mark.parametrize(
    "error, line",
    [
        (OSError(errno.ENOSPC, "No space left on device"), "error: No space left on device"),
        (
            PermissionError(errno.EACCES, "Permission denied", "/tmp/scratch/model.keras"),
            "error: /tmp/scratch/model.keras: Permission denied",
        ),
    ],
)
def test_a_full_disk_outside_our_writers_is_still_one_line(capsys, error, line):
    # e.g. a library's own scratch file; models.save_model names its path itself (test_models).
    def main():
        raise error

    with pytest.raises(SystemExit) as exited:
        cli.run(main)
    assert exited.value.code == 1
    assert capsys.readouterr().err == line + "\n"


def test_a_full_disk_during_the_models_scratch_save_names_the_model(capsys):
    with pytest.raises(SystemExit):
        cli.run(lambda: models.save_model(ScratchModel(fail=OSError(errno.ENOSPC, "No space left")), Path("m.keras")))
    assert re.fullmatch(
        r"error: m.keras: cannot write \(scratch copy in \S+\): No space left\n", capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "body, code, out, err",
    [
        ("print('done', end='')", 0, "done", ""),  # buffered in a pipe: flushed, not lost
        ("print('half', end=''); raise DataError('x.npz: damaged')", 1, "half", "error: x.npz: damaged\n"),
    ],
)
def test_skip_teardown_flushes_and_exits_with_the_stages_code_past_atexit(body, code, out, err):
    snippet = textwrap.dedent(f"""
        import atexit
        from pipeline.core import cli
        from pipeline.core.errors import DataError
        atexit.register(lambda: print("teardown ran"))

        def main():
            {body}

        cli.run(main, skip_teardown=True)
    """)
    result = subprocess.run(
        [sys.executable, "-c", snippet],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env(PYTHONPATH=str(ROOT)),
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (code, out + ("teardown ran\n" if code else ""), err)


def test_an_oserror_that_is_a_bug_keeps_its_traceback():
    with pytest.raises(FileNotFoundError):
        cli.run(lambda: open("/nonexistent/input"))


@slow
def test_a_stage_whose_output_cannot_be_written_says_which_in_one_line(built_repo, tmp_path):
    repo, target = built_repo, "metrics/metrics.json"
    before = (repo / target).read_bytes()
    if os.geteuid() == 0:  # root writes through a read-only directory: deny the write in the stage
        environment = fault_env(faults.shim_dir(tmp_path / "shim"), FAULT_PATH=target, FAULT_MODE="deny")
    else:
        environment = env()
        (repo / "metrics").chmod(0o555)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "stages.evaluate"], cwd=repo, env=environment, capture_output=True, text=True
        )
    finally:
        (repo / "metrics").chmod(0o755)
    assert result.returncode == 1
    assert result.stderr == f"error: {target}: cannot write: Permission denied\n"
    assert (repo / target).read_bytes() == before
    assert faults.temporaries(repo / "metrics") == []


# --- a data file damaged by hand after dvc repro -----------------------------------------------


def stage_error(repo: Path, stage: str) -> str:
    result = run([sys.executable, "-m", f"stages.{stage}"], cwd=repo, check=False)
    assert result.returncode == 1, result
    return result.stderr


@slow
def test_a_truncated_raw_file_is_reported_and_checkout_restores_it(built_repo):
    repo, raw = built_repo, built_repo / "data/raw/mnist.npz"
    # A hand edit must not reach the cache: the workspace file is a copy (or a copy-on-write
    # reflink), never a hardlink or symlink to the cached object.
    assert run(["dvc", "config", "cache.type"], cwd=repo).stdout.strip() == "reflink,copy"
    cached = repo / ".dvc/cache/files/md5" / faults.locked_md5(repo, "fetch", "data/raw/mnist.npz")[:2]
    assert not raw.is_symlink() and raw.stat().st_ino not in {p.stat().st_ino for p in cached.iterdir()}

    with open(raw, "r+b") as handle:  # in place, as an editor or a crashed copy would
        handle.truncate(raw.stat().st_size // 2)
    assert faults.bad_cache_objects(repo) == []
    status = dvc_status(repo)
    assert status["fetch"] == [{"changed outs": {"data/raw/mnist.npz": "modified"}}]

    assert stage_error(repo, "preprocess") == (
        "error: data/raw/mnist.npz: not a readable .npz (BadZipFile: File is not a zip file); "
        "restore it with `dvc checkout --force data/raw/mnist.npz` or rebuild it with `dvc repro`\n"
    )
    run(["dvc", "checkout", "--force", "data/raw/mnist.npz"], cwd=repo)  # as the message says
    assert dvc_status(repo) == {}
    assert faults.md5(raw) == faults.locked_md5(repo, "fetch", "data/raw/mnist.npz")


@slow
def test_flipped_bytes_in_a_prepared_file_are_reported_and_repro_restores_it(built_repo, tmp_path):
    repo, train = built_repo, built_repo / "data/prepared/train.npz"
    middle = train.stat().st_size // 2
    with open(train, "r+b") as handle:  # the archive still opens: only the pixels are wrong
        handle.seek(middle)
        flipped = bytes(b ^ 0xFF for b in handle.read(64))
        handle.seek(middle)
        handle.write(flipped)
    status = dvc_status(repo)
    assert status["preprocess"] == [{"changed outs": {"data/prepared/train.npz": "modified"}}]

    # The zip's CRC-32 of each array catches it: train refuses before TensorFlow starts.
    shims = faults.shim_dir(tmp_path / "shim", fake_tensorflow=True)
    result = subprocess.run(
        [sys.executable, "-m", "stages.train"], cwd=repo, env=fault_env(shims), capture_output=True, text=True
    )
    assert result.returncode == 1 and not faults.tensorflow_imported(shims)
    assert result.stderr == (
        "error: data/prepared/train.npz: not a readable .npz (BadZipFile: Bad CRC-32 for file 'images.npy'); "
        "restore it with `dvc checkout --force data/prepared/train.npz` or rebuild it with `dvc repro`\n"
    )
    assert_recovers(repo)
    assert faults.md5(train) == faults.locked_md5(repo, "preprocess", "data/prepared/train.npz")


@slow
def test_a_damaged_git_tracked_output_is_reported_and_git_checkout_restores_it(built_repo):
    repo, history = built_repo, built_repo / "metrics/learning_curve.csv"
    repos.commit_all(repo, "results")  # as committed after `dvc repro`: git holds the metrics
    history.write_text("garbage\n")  # `echo garbage > metrics/learning_curve.csv`
    assert stage_error(repo, "evaluate") == (
        "error: metrics/learning_curve.csv: missing columns epoch, loss, accuracy, val_loss, val_accuracy; "
        "restore it with `git checkout -- metrics/learning_curve.csv` or rebuild it with `dvc repro`\n"
    )
    run(["git", "checkout", "--", "metrics/learning_curve.csv"], cwd=repo)  # as the message says
    assert dvc_status(repo) == {}


# --- params.yaml: not YAML, a wrong type, an unknown key ----------------------------------------

BAD_PARAMS = {  # a line replaced in params.yaml: (old, new, how the one line a stage prints starts)
    # An unclosed [ is noticed on the next line, at the colon after its key.
    "not-yaml": ("  epochs: 1", "  epochs: [1", "error: params.yaml: not valid YAML at line {next}, column "),
    "wrong-type": (
        "  epochs: 1",
        "  epochs: ten",
        "error: params.yaml: train.epochs: expected an integer, got str 'ten'",
    ),
    "unknown-key": (
        "  epochs: 1",
        "  epochs: 1\n  epoch: 2",
        "error: params.yaml: unknown key train.epoch (known keys: ",
    ),
    # `dvc repro` refuses a duplicate key; a stage run directly must not take the last one silently.
    "duplicate-key": (
        "  epochs: 1",
        "  epochs: 1\n  epochs: 2",
        'error: params.yaml: not valid YAML at line {next}, column 3: found duplicate key "epochs"',
    ),
}


def break_params(repo: Path, fault: str) -> str:
    """Break repo/params.yaml as BAD_PARAMS[fault] says; return the start of the expected line."""
    old, new, line = BAD_PARAMS[fault]
    lines = (repo / "params.yaml").read_text().splitlines()
    index = next(i for i, text in enumerate(lines) if text.split("#")[0].rstrip() == old)  # comments kept by set_params
    lines[index] = new
    (repo / "params.yaml").write_text("\n".join(lines) + "\n")
    return line.format(next=index + 2)


@pytest.mark.parametrize("fault", BAD_PARAMS)
def test_bad_params_stop_a_stage_in_one_line_before_tensorflow(tmp_path, fault):
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "params.yaml", repo / "params.yaml")
    set_params(repo, **{"train.epochs": 1})
    line = break_params(repo, fault)
    shims = faults.shim_dir(tmp_path / "shim", fake_tensorflow=True)
    result = subprocess.run(
        [sys.executable, "-m", "stages.train"], cwd=repo, env=fault_env(shims), capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.startswith(line) and result.stderr.count("\n") == 1, result.stderr
    assert not faults.tensorflow_imported(shims)


# What a stage run by DVC prints after the key's error: DVC deleted the stage's outputs before
# running it, and they are still dvc.lock's, so checking them out (not retraining) restores them.
RESTORE_TRAIN = (
    "; dvc had already deleted train's outputs: restore them with `git checkout -- metrics/learning_curve.csv` "
    "and `dvc checkout train`, and params.yaml with `git checkout -- params.yaml`\n"
)


@pytest.mark.parametrize("under_dvc", [False, True], ids=["run-directly", "run-by-dvc"])
def test_bad_params_under_dvc_say_how_to_get_back_the_outputs_dvc_deleted(tmp_path, under_dvc):
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "params.yaml", repo / "params.yaml")
    set_params(repo, **{"train.model": "resnet"})
    shims = faults.shim_dir(tmp_path / "shim", fake_tensorflow=True)
    stage_env = fault_env(shims, DVC_STAGE="train") if under_dvc else fault_env(shims)
    result = subprocess.run(
        [sys.executable, "-m", "stages.train"], cwd=repo, env=stage_env, capture_output=True, text=True
    )
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    key_error = "error: params.yaml: train.model: expected one of mlp, cnn, deep_cnn, got 'resnet'"
    assert result.stderr == key_error + (RESTORE_TRAIN if under_dvc else "\n")  # run directly, nothing was deleted


@pytest.mark.parametrize(
    ("stage", "restore"),
    [
        ("fetch", "`git checkout -- metrics/dataset.json` and `dvc checkout fetch`"),
        ("preprocess", "`dvc checkout preprocess`"),
        ("plot", "`git checkout -- metrics/plots`"),
    ],
)
def test_the_restore_names_each_stages_own_outputs_by_where_they_are_kept(stage, restore):
    from pipeline.core.errors import ConfigError

    hint = cli.after_dvc_deleted(ConfigError("params.yaml: seed: expected an integer"), {"DVC_STAGE": stage})
    assert hint.startswith(f"; dvc had already deleted {stage}'s outputs: restore them with {restore}, ")
    assert (
        cli.after_dvc_deleted(DataError("data/raw/mnist.npz: truncated"), {"DVC_STAGE": stage}) == ""
    )  # work was done
    assert cli.after_dvc_deleted(ConfigError("params.yaml: seed"), {}) == ""  # not run by DVC: nothing deleted


def test_a_stage_whose_outputs_dvc_keeps_in_place_says_nothing_more():
    from pipeline.core.errors import ConfigError

    # field's scores are `persist: true` in dvc.yaml: DVC leaves them for the stage to replace.
    assert (
        cli.after_dvc_deleted(ConfigError("params.yaml: field.images: expected an integer"), {"DVC_STAGE": "field"})
        == ""
    )


def test_a_temporary_experiment_deletes_nothing_in_the_workspace_so_the_line_says_nothing_more(tmp_path, monkeypatch):
    from pipeline.core.errors import ConfigError

    copy = tmp_path / ".dvc" / "tmp" / "exps" / "standalone" / "tmpab12cd"  # where `dvc exp run --temp` runs
    copy.mkdir(parents=True)
    monkeypatch.chdir(copy)
    assert cli.after_dvc_deleted(ConfigError("params.yaml: seed: expected an integer"), {"DVC_STAGE": "train"}) == ""


def test_the_fake_tensorflow_catches_an_import(tmp_path):
    """The check above can fail: a stage that reaches TensorFlow leaves the marker."""
    shims = faults.shim_dir(tmp_path / "shim", fake_tensorflow=True)
    code = "from pipeline.core.tf import tensorflow; tensorflow()"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=fault_env(shims), capture_output=True, text=True
    )
    assert result.returncode == 1 and faults.tensorflow_imported(shims)


@slow
@pytest.mark.parametrize("fault", BAD_PARAMS)
def test_bad_params_under_dvc_repro(built_repo, tmp_path, fault):
    line = break_params(built_repo, fault)
    shims = faults.shim_dir(tmp_path / "shim", fake_tensorflow=True)
    result = faults.Started(["dvc", "repro"], built_repo, tmp_path / "logs", fault_env(shims))
    assert result.wait(120) != 0
    assert not faults.tensorflow_imported(shims)
    assert "Traceback" not in result.out() + result.err()
    if fault in ("not-yaml", "duplicate-key"):
        # DVC reads params.yaml itself first and refuses with its own message (several lines,
        # with a caret under the spot); no stage starts.
        assert "ERROR: unable to read: 'params.yaml', YAML file structure is corrupted" in result.err()
        where = line.split("at ")[1].split(":")[0]  # "line N, column M", as DVC words it too
        assert where in result.err() and "Running stage" not in result.out()
        if fault == "duplicate-key":
            assert 'found duplicate key "epochs"' in result.err()
    else:
        ours = [line for line in faults.stderr_lines(result.err()) if not line.startswith("ERROR: ")]
        assert len(ours) == 1 and ours[0].startswith(line)
        assert "ERROR: failed to reproduce 'train'" in result.err()


@slow
def test_a_bad_set_param_in_dvc_exp_run_names_the_commands_that_undo_it(built_repo):
    # The run: `dvc exp run -S train.model=resnet` in a built, committed workspace.
    repos.commit_all(built_repo, "built")
    model = (built_repo / "models/model.keras").read_bytes()
    result = run(["dvc", "exp", "run", "-S", "train.model=resnet"], cwd=built_repo, check=False)
    assert result.returncode != 0 and "Traceback" not in result.stdout + result.stderr
    ours = [line for line in faults.stderr_lines(result.stderr) if line.startswith("error: ")]
    assert (
        len(ours) == 1
        and ours[0] + "\n"
        == "error: params.yaml: train.model: expected one of mlp, cnn, deep_cnn, got 'resnet'" + RESTORE_TRAIN
    )
    assert not (built_repo / "models/model.keras").exists()  # DVC's doing, before the stage started
    for restore in re.findall(r"`([^`]+)`", ours[0]):  # exactly what the line says to run
        run(restore.split(), cwd=built_repo)
    assert (built_repo / "models/model.keras").read_bytes() == model
    assert dvc_status(built_repo) == {}
    assert run(["git", "status", "--porcelain"], cwd=built_repo).stdout == ""


# --- a model file that would run code on load --------------------------------------------------

EVIL_MODEL = """
import sys
from pathlib import Path
from pipeline.core.tf import keras

marker = Path(sys.argv[2])
payload = lambda x: (marker.touch(), x)[1]  # what an attacker's function would do on load
evil = keras().Sequential([keras().Input(shape=(28, 28)), keras().layers.Flatten(), keras().layers.Lambda(payload),
                           keras().layers.Dense(10, activation="softmax")])
evil.save(sys.argv[1])
marker.unlink()  # building the model called the payload; only a load may call it again
"""


@slow
def test_a_model_that_runs_code_on_load_is_refused_by_evaluate_and_predict(built_repo, tmp_path):
    repo, marker = built_repo, tmp_path / "payload-ran"
    metrics = (repo / "metrics/metrics.json").read_bytes()
    run([sys.executable, "-c", EVIL_MODEL, "models/model.keras", str(marker)], cwd=repo)
    refusal = (
        "error: models/model.keras: not a loadable Keras model (Requested the deserialization of a "
        "`Lambda` layer whose `function` is a Python lambda."
    )
    evaluate = run([sys.executable, "-m", "stages.evaluate"], cwd=repo, check=False)
    assert evaluate.returncode == 1
    assert evaluate.stderr.startswith(refusal) and evaluate.stderr.count("\n") == 1
    predict = run(
        [sys.executable, "-m", "pipeline.predict", "examples", "--model", "models/model.keras"], cwd=repo, check=False
    )
    assert predict.returncode == 1 and predict.stdout == ""
    assert predict.stderr.startswith(refusal) and predict.stderr.count("\n") == 1
    assert not marker.exists()
    assert (repo / "metrics/metrics.json").read_bytes() == metrics


# --- predict under load ------------------------------------------------------------------------


def digit_files(directory: Path, count: int) -> Path:
    """`count` 64x64 PNG digits, dark on light and light on dark (20 renderings, cycled)."""
    import io

    from testkit.glyphs import glyph

    rendered = []
    for digit in range(10):
        for dark_on_light in (True, False):
            buffer = io.BytesIO()
            glyph(digit, size=32, dark_on_light=dark_on_light).save(buffer, format="PNG")
            rendered.append(buffer.getvalue())
    directory.mkdir()
    for index in range(count):
        (directory / f"{index:05d}.png").write_bytes(rendered[index % len(rendered)])
    return directory


def predict_cost(image_dir: Path, warmup_dir: Path, model: Path) -> dict:
    result = run([sys.executable, "-m", "testkit.faults", str(image_dir), str(warmup_dir), str(model)], cwd=ROOT)
    return json.loads(result.stdout.splitlines()[-1])


@slow
def test_predict_streams_10000_images_in_bounded_memory(tmp_path):
    model = tmp_path / "model.keras"
    save = (
        "from pipeline.train import models; from testkit.glyphs import template_model; import sys; "
        "models.save_model(template_model(), sys.argv[1])"
    )
    run([sys.executable, "-c", save, str(model)], cwd=ROOT)
    warmup = digit_files(tmp_path / "warmup", 256)
    small = predict_cost(digit_files(tmp_path / "small", 1_000), warmup, model)
    large = predict_cost(digit_files(tmp_path / "large", 10_000), warmup, model)
    assert (small["code"], small["lines"]) == (0, 1_000) and (large["code"], large["lines"]) == (0, 10_000)
    print(
        f"\npredict, 10,000 64x64 PNG files: {10_000 / large['seconds']:.0f} images/s,"
        f" peak RSS {large['peak_mb']:.0f} MB "
        f"(+{large['growth_mb']:.1f} MB over the warm-up; 1,000 files: +{small['growth_mb']:.1f} MB)"
    )
    assert large["peak_mb"] / small["peak_mb"] < 1.5
    # Ten times the images may not cost memory in proportion: holding every result (what the CLI
    # did before it streamed) adds ~40 MB for 10,000.
    assert large["growth_mb"] < small["growth_mb"] + 16
