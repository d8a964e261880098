"""`python -m pipeline.predict`: the command is pipeline/predict/command.py."""

from pipeline.core import cli
from pipeline.predict.command import main

if __name__ == "__main__":
    cli.run(main, interrupted=cli.COMMAND_INTERRUPTED)
