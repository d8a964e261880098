"""The one place that turns an expected failure into a one-line message and an exit code."""
import ctypes
import errno
import os
import signal
import sys
from typing import Callable

from pipeline.errors import PipelineError

# The machine, not the code, failed. The writers in pipeline.artifacts already report these
# naming their file; this catches the rest, e.g. Keras saving its scratch copy of a model.
ENVIRONMENT_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def run(main: Callable[[], None]) -> None:
    """Call a stage's `main`; a PipelineError, a full disk or Ctrl-C ends the process with one line."""
    stop_with_dvc()
    try:
        main()
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except OSError as error:
        if error.errno not in ENVIRONMENT_ERRORS:
            raise  # anything else is a bug: keep its traceback
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {where}{error.strerror}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted: no output was completed; run `dvc repro` again", file=sys.stderr)
        sys.exit(130)


def stop_with_dvc() -> None:
    """Under `dvc repro` (which sets DVC_STAGE), have Linux interrupt this stage if dvc dies.

    A stage whose dvc was killed would otherwise train on as an orphan, then write outputs that
    no dvc.lock records while the next `dvc repro` rebuilds them. Elsewhere this does nothing.
    """
    if "DVC_STAGE" in os.environ and sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGINT)
