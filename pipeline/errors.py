"""Errors a user can cause and fix: bad params, bad data, an unreachable source.

Stages report these as one line and exit non-zero (see `pipeline.cli.run`); anything else is a
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
