"""`python -m pipeline.report`: a pull request's report. The tool is pipeline/review/report.py."""

from pipeline import cli
from pipeline.review.report import main

if __name__ == "__main__":
    cli.run(main, interrupted=cli.COMMAND_INTERRUPTED)
