"""`python -m pipeline.uptodate`: are the committed results this code's?. The tool is pipeline/review/uptodate.py."""

from pipeline import cli
from pipeline.review.uptodate import main

if __name__ == "__main__":
    cli.run(main, interrupted=cli.COMMAND_INTERRUPTED)
