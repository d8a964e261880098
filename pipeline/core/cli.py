"""The one entry point of every command and stage: an expected failure, a full disk or Ctrl-C
becomes one line on stderr and an exit code (1, or 130 for Ctrl-C); anything else is a bug and
keeps its traceback. Also the argparse types the commands share."""

import argparse
import ctypes
import errno
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

from pipeline.core import paths
from pipeline.core.errors import ConfigError, PipelineError

# The machine, not the code, failed. The writers in pipeline.core.artifacts already report these
# naming their file; this catches the rest, e.g. Keras saving its scratch copy of a model.
ENVIRONMENT_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
INTERRUPTED = "interrupted: no output was completed; run `dvc repro` again"
COMMAND_INTERRUPTED = "interrupted"  # the tools users run by hand: nothing to `dvc repro`
INTERRUPT_GRACE = 3.0  # seconds for a KeyboardInterrupt to unwind before the process just exits

# Progress lines, flushed: under `dvc repro` stdout is a pipe, and a line must show when it happens.
log = partial(print, flush=True)


def run(main: Callable[[], int | None], interrupted: str = INTERRUPTED, skip_teardown: bool = False) -> None:
    """Call `main`; a PipelineError, a full disk or Ctrl-C ends the process with one line.

    `main` may return an exit code (predict: 1 when one input of many failed); `interrupted` is
    the line Ctrl-C prints. `skip_teardown`: once `main` has succeeded, end the process at once
    (`leave`); only for a script's own process.
    """
    interrupt = Interrupt(interrupted)
    # A shell starts background jobs with SIGINT ignored; they stay deaf to Ctrl-C.
    listening = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if listening:
        signal.signal(signal.SIGINT, interrupt)
    stop_with_dvc(signal.SIGINT if listening else signal.SIGTERM)
    try:
        code = main()
    except PipelineError as error:
        print(f"error: {error}{after_dvc_deleted(error)}", file=sys.stderr)
        sys.exit(1)
    except OSError as error:
        if error.errno not in ENVIRONMENT_ERRORS:
            raise  # anything else is a bug: keep its traceback
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {where}{error.strerror}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        interrupt.report()
        if listening:  # exiting now: another SIGINT must not raise in the shutdown and print a traceback
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.exit(130)
    finally:
        if listening and not interrupt.armed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    if code:
        sys.exit(code)
    if skip_teardown:
        leave()


def after_dvc_deleted(error: PipelineError, environ: Mapping[str, str] = os.environ) -> str:
    """For bad params in a stage that DVC runs: how to get back the outputs DVC deleted; else "".

    DVC deletes a stage's outputs before it runs the command (`dvc repro`, `dvc exp run -S`), so
    a stage that refuses params.yaml as its first step has built nothing and still lost them. They
    are the ones dvc.lock records, so a checkout brings them back at once where a fixed params.yaml
    and `dvc repro` would retrain. Other errors come after work began: `dvc repro` is their fix.
    """
    stage = environ.get("DVC_STAGE", "")
    # `dvc exp run --temp` and queued runs work in a copy under .dvc/tmp/exps: the workspace keeps all.
    if not isinstance(error, ConfigError) or stage not in paths.STAGE_OUTPUTS or "/.dvc/tmp/exps/" in os.getcwd() + "/":
        return ""
    outputs = [output for output in paths.STAGE_OUTPUTS[stage] if output not in paths.PERSISTED]
    if not outputs:
        return ""
    tracked = [str(output) for output in outputs if paths.tracked_by_git(output)]  # no DVC cache holds these
    restores = [f"`git checkout -- {' '.join(tracked)}`"] if tracked else []
    restores += [f"`dvc checkout {stage}`"] if len(tracked) < len(outputs) else []
    return (
        f"; dvc had already deleted {stage}'s outputs: restore them with {' and '.join(restores)}, "
        f"and {paths.PARAMS} with `git checkout -- {paths.PARAMS}`"
    )


def leave() -> None:
    """End the process with code 0 now, without Python's teardown.

    After TensorFlow, that teardown (its thread pools, thousands of modules) takes over half a
    second, in each of the three stages that import it, every `dvc repro`. A stage's outputs are complete
    files by then (pipeline.core.artifacts writes them whole), so only the output streams need
    flushing. No atexit handler runs.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class Interrupt:
    """A SIGINT handler that raises KeyboardInterrupt once, and ends the process if it is lost.

    Python can lose a KeyboardInterrupt raised inside library code that clears errors, and
    TensorFlow calls back into Python from C++ all through training: about 1 Ctrl-C in 40 let
    training run on to the end. So a watchdog exits on its own after INTERRUPT_GRACE seconds.
    """

    def __init__(self, message: str = INTERRUPTED) -> None:
        self.message = message
        self.lock = threading.Lock()
        self.armed = False
        self.reported = False

    def __call__(self, signum: int, frame: object) -> None:
        with self.lock:
            if self.armed:
                return  # a second Ctrl-C must not interrupt the first one's unwinding
            self.armed = True
        threading.Thread(target=self.exit_later, daemon=True).start()
        raise KeyboardInterrupt

    def exit_later(self) -> None:
        time.sleep(INTERRUPT_GRACE)
        self.report()
        os._exit(130)

    def report(self) -> None:
        with self.lock:
            if not self.reported:
                print(self.message, file=sys.stderr, flush=True)
            self.reported = True


def stop_with_dvc(death_signal: int = signal.SIGINT) -> None:
    """Under `dvc repro` (which sets DVC_STAGE), have this stage get `death_signal` if dvc dies.

    A stage whose dvc was killed would otherwise train on as an orphan, then write outputs that
    no dvc.lock records while the next `dvc repro` rebuilds them. Elsewhere this does nothing.
    """
    if "DVC_STAGE" not in os.environ or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, death_signal)
    # DVC runs `$SHELL -c cmd` (/bin/sh when SHELL is unset, as in CI and containers). bash
    # replaces itself with the command, so the parent is dvc; dash forks and waits, so the parent
    # is a shell that outlives dvc. Then watch the shell's parent instead.
    shell = os.getppid()
    if _executable(shell) == os.path.realpath(os.environ.get("SHELL") or "/bin/sh"):
        dvc = _parent_of(shell)
        threading.Thread(target=_interrupt_when_orphaned, args=(shell, dvc, death_signal), daemon=True).start()


def _executable(pid: int) -> str | None:
    try:
        return os.path.realpath(f"/proc/{pid}/exe", strict=True)
    except OSError:
        return None


def _parent_of(pid: int) -> int | None:
    try:
        # /proc/PID/stat is "pid (comm) state ppid ...", and comm may itself contain spaces.
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _interrupt_when_orphaned(shell: int, dvc: int | None, death_signal: int, every: float = 0.5) -> None:
    while _parent_of(shell) == dvc:
        time.sleep(every)
    os.kill(os.getpid(), death_signal)


def path_argument(text: str) -> Path:
    """argparse type: a path from the command line; an empty one is a mistake (a variable that
    expanded to nothing?), not the current directory, which is what Path("") means."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path (a variable that expanded to nothing?)")
    return Path(text)


def positive(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value
