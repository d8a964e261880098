"""`python -m pipeline.serve`: the command is pipeline/serve/command.py."""

from pipeline.core import cli
from pipeline.serve.command import main

if __name__ == "__main__":
    cli.run(main, interrupted=cli.COMMAND_INTERRUPTED)
