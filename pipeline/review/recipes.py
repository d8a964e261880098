"""Named training recipes, each run as a DVC experiment in one short command:

    python -m pipeline.review.recipes cnn_fast              # = dvc exp run -S train.model=... (every key)
    python -m pipeline.review.recipes cnn_aug -S seed=2 --queue   # anything after the name goes to dvc

A recipe in recipes.yaml sets every key of params.yaml's `train` section, so nothing is
inherited from the default MLP (its batch size and learning rate suit no conv net). The command
passes each value to `dvc exp run` as `-S train.KEY=VALUE`: the experiment's params.yaml holds
them all, and `dvc params diff` and `dvc exp show` list them. Why not DVC's Hydra composition:
with it enabled, every `dvc exp run` rewrites params.yaml whole from conf/, so a value a user
edited in params.yaml is silently replaced and its comments, the only documentation of each
parameter, are dropped.
"""

import argparse
import os
import re
import subprocess
from pathlib import Path

from pipeline.core import cli, config, paths
from pipeline.core.config import TrainConfig
from pipeline.core.errors import ConfigError
from pipeline.review import revisions


def load(path: Path = paths.RECIPES) -> dict[str, dict[str, object]]:
    """Every recipe in recipes.yaml, by name: the `train` values it sets, each one validated as
    params.yaml's are (a missing, unknown, mistyped or out-of-range key is a ConfigError)."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    raw = config.parse_yaml(text, str(path))
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{path}: expected a mapping of recipe names to train values, got {raw!r}")
    for name, values in raw.items():
        config.build_section(TrainConfig, values, "train.", f"{path}: recipe {name}")
    return raw


def get(name: str, path: Path = paths.RECIPES) -> dict[str, object]:
    """The train values of recipe `name`; ConfigError naming the known recipes if there is none."""
    recipes = load(path)
    if name not in recipes:
        raise ConfigError(f"{path}: no recipe {name!r} (known: {', '.join(recipes)})")
    return recipes[name]


def overrides(values: dict[str, object]) -> dict[str, object]:
    """{"model": "cnn"} -> {"train.model": "cnn"}: the dotted keys `-S` and the benchmarks take."""
    return {f"train.{key}": value for key, value in values.items()}


def set_flags(values: dict[str, object]) -> list[str]:
    """`-S train.KEY=VALUE` for each value, written so that DVC reads back the same value."""
    flags = []
    for key, value in overrides(values).items():
        flags += ["-S", f"{key}={set_value(value, key)}"]
    return flags


def set_value(value: object, key: str = "value") -> str:
    """`value` as the text `dvc exp run -S` reads back as the same value and type.

    DVC parses `-S` values with Hydra's override grammar: `true` is a bool, `10` an int, and a
    string that would read as something else (`'10'`, `'a b'`) goes in quotes.
    """
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if not _reads_back(text, value):
        # Hydra's quoted strings: a quote is escaped by a backslash, and so is a run of backslashes
        # only where it comes before a quote or the end.
        escaped = re.sub(r"(\\+)(?='|$)", lambda run: run.group(1) * 2, str(value)).replace("'", "\\'")
        text = f"'{escaped}'"
        if not _reads_back(text, value):
            raise ConfigError(f"{paths.RECIPES}: {key}: {value!r} cannot be passed to `dvc exp run -S`")
    return text


def _reads_back(text: str, value: object) -> bool:
    from dvc.utils.hydra import to_hydra_overrides  # how `dvc exp run -S` parses its values

    try:
        (override,) = to_hydra_overrides([f"key={text}"])
        parsed = override.value()
    except Exception:  # noqa: BLE001 -- Hydra's OverrideParseException: text its grammar refuses
        return False
    return parsed == value and type(parsed) is type(value)


def command(name: str, dvc_args: list[str], path: Path = paths.RECIPES) -> list[str]:
    """The `dvc exp run` command that runs recipe `name`, as a user would type it; `dvc_args`
    follow the recipe's flags, so a later `-S train.epochs=3` there wins over the recipe's."""
    return ["dvc", "exp", "run", *set_flags(get(name, path)), *dvc_args]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.review.recipes",
        description="Run a named recipe from recipes.yaml as a DVC experiment (dvc exp run -S ...).",
    )
    parser.add_argument("name", nargs="?", help="the recipe; without it, list the recipes")
    parser.add_argument("dvc_args", nargs=argparse.REMAINDER, help="more `dvc exp run` options, e.g. -S seed=2 --queue")
    args = parser.parse_args(argv)
    if args.name is None:
        for name, values in load().items():
            print(f"{name}: {' '.join(f'{key}={set_value(value, key)}' for key, value in values.items())}")
        return 0
    run = command(args.name, args.dvc_args)
    # Not the bare `dvc` printed: this virtualenv's, and its python for the stages, whether or not
    # the shell activated it (a bare name is a FileNotFoundError there, or another install's dvc).
    dvc = revisions.dvc()
    print(" ".join(run), flush=True)
    return subprocess.run([dvc, *run[1:]], env=revisions.activated(os.environ)).returncode


if __name__ == "__main__":
    cli.run(main, interrupted=cli.COMMAND_INTERRUPTED)
