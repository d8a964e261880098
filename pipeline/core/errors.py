"""Errors a user can cause and fix: bad params, bad data, an unreachable source.

Stages report these as one line and exit non-zero (see `pipeline.core.cli.run`); anything else is a
bug and keeps its traceback.
"""


class PipelineError(Exception):
    """An expected failure, reported to the user as one line."""


class ConfigError(PipelineError):
    """params.yaml is not valid YAML, or a key is unknown, missing, mistyped or out of range."""


class DataError(PipelineError):
    """An input file is missing, truncated, malformed, or not the data it claims to be."""


class ImageError(PipelineError):
    """An input image is missing, unreadable, too small or too large, or holds no digit."""


class RevisionError(PipelineError):
    """A git revision that does not exist, or git itself could not run."""


class CheckFailed(PipelineError):
    """A quality gate failed, e.g. test accuracy dropped by more than the allowed margin."""


def first_line(error: Exception) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    # A KeyError's str() is its key quoted; its argument reads better.
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return (str(text).strip().splitlines() or [type(error).__name__])[0]


def complaint(stderr: str, fallback: str, first: bool = False) -> str:
    """The line of a failed command's stderr that says what went wrong, for a one-line error.

    The last line for pip and dvc, which end with their error; the first for git, whose
    "fatal: ..." line is followed by hints. `fallback` when the command said nothing.
    """
    lines = stderr.strip().splitlines()
    return (lines[0] if first else lines[-1]) if lines else fallback
