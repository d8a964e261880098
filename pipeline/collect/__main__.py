"""`python -m pipeline.collect`: the command is pipeline/collect/command.py."""

from pipeline.collect.command import main
from pipeline.core import cli

if __name__ == "__main__":
    cli.run(main, interrupted=cli.COMMAND_INTERRUPTED)
