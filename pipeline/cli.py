"""The one place that turns an expected failure into a one-line message and an exit code."""
import sys
from typing import Callable

from pipeline.errors import PipelineError


def run(main: Callable[[], None]) -> None:
    """Call a stage's `main`; a PipelineError or Ctrl-C ends the process with one line."""
    try:
        main()
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted: no output was completed; run `dvc repro` again", file=sys.stderr)
        sys.exit(130)
