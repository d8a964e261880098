"""`python -m pipeline.history`: test accuracy across commits. The tool is pipeline/review/history.py."""

from pipeline import cli
from pipeline.review.history import main

if __name__ == "__main__":
    cli.run(main, interrupted=cli.COMMAND_INTERRUPTED)
