"""The README's recipes against what was measured and what the pipeline accepts.

A reader copies a row of the results table or its `dvc exp run` line and expects to train the
recipe that was measured. Each row is linked to its runs in benchmarks/results.txt by the figure
it reports (mean ± std over seeds 1-3) and must name exactly the -S flags those runs used.
README_UNDER_TEST=path checks another copy of the README, e.g. one written by
`git show HEAD:README.md > /tmp/README.orig.md`.
"""
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline import config
from tests.helpers.repos import BIN, env
from tests.helpers.repos import ROOT

README = Path(os.environ.get("README_UNDER_TEST", ROOT / "README.md"))
RESULTS = ROOT / "benchmarks" / "results.txt"
PARAMS = ROOT / "params.yaml"
OPTION_PREFIX = "train."  # the table's options column is headed `-S train.…`


@dataclass
class Row:
    label: str
    options_text: str  # the cell as written, e.g. "none: batch 512, lr 0.004, cosine, 15 epochs"
    options: dict[str, object]  # dotted key -> value, as `-S` would set it
    parameters: int
    accuracy: str  # "99.33% ± 0.07"
    seconds: int


@dataclass
class Run:
    seeds: list[int]
    flags: dict[str, object]
    accuracy: str | None  # from the "mean test_accuracy" line, when the block has one
    mean_seconds: int | None
    parameters: set[int]


def readme() -> str:
    return README.read_text()


def section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def parse_value(text: str) -> object:
    return yaml.safe_load(text)  # as benchmarks/common.parse_overrides reads -S values


def parse_flags(pairs: list[str]) -> dict[str, object]:
    return {key: parse_value(value) for key, value in (pair.split("=", 1) for pair in pairs)}


def results_rows() -> list[Row]:
    results = section(readme(), "Results")
    lines = [line for line in results.splitlines() if line.startswith("|")]
    assert lines and f"-S {OPTION_PREFIX}" in lines[0], "no results table with an options column `-S train.…`"
    rows = []
    for line in lines[2:]:  # after the header and the |---| line
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        label, options, parameters, accuracy, seconds = cells
        spans = re.findall(r"`([^`]*)`", options)
        assert spans or options.startswith("none"), f"row {label!r}: options neither `...` nor 'none'"
        pairs = [f"{OPTION_PREFIX}{token}" for span in spans for token in span.split()]
        rows.append(
            Row(
                label=label.replace("**", ""),
                options_text=options,
                options=parse_flags(pairs),
                parameters=int(parameters.replace(",", "")),
                accuracy=re.search(r"\d+\.\d+% ± \d+\.\d+", accuracy).group(),
                seconds=int(re.fullmatch(r"(\d+) s", seconds).group(1)),
            )
        )
    return rows


def recorded_runs() -> list[Run]:
    """Each `$ python benchmarks/seeds.py ...` block of results.txt: its flags and what it printed."""
    runs = []
    for block in re.split(r"\n(?=\$ )", RESULTS.read_text()):
        command, *output = block.split("\n")
        if not command.startswith("$ python benchmarks/seeds.py"):
            continue
        ends = [n for n, line in enumerate(output) if not line.strip() or line.startswith("#")]
        output = output[: ends[0] if ends else len(output)]  # what follows is another run's
        args = shlex.split(command[2:])[2:]
        seeds, pairs, index = [], [], 0
        while index < len(args):
            if args[index] == "--seeds":
                index += 1
                while index < len(args) and not args[index].startswith("-"):
                    seeds.append(int(args[index]))
                    index += 1
            elif args[index] in ("-S", "--set"):
                pairs.append(args[index + 1])
                index += 2
            else:
                raise AssertionError(f"results.txt: unexpected argument {args[index]!r} in {command!r}")
        text = "\n".join(output)
        mean = re.search(r"^mean test_accuracy (\S+% ± \S+) \(std, n=\d+\); full repro (\d+) s mean", text, re.M)
        runs.append(
            Run(
                seeds=seeds or [1, 2, 3],  # seeds.py's default
                flags=parse_flags(pairs),
                accuracy=mean.group(1) if mean else None,
                mean_seconds=int(mean.group(2)) if mean else None,
                parameters={int(n) for n in re.findall(r"^seed \d+: .*\bparams (\d+)", text, re.M)},
            )
        )
    return runs


def describe(flags: dict[str, object]) -> str:
    return " ".join(f"{key}={value}" for key, value in sorted(flags.items())) or "(none)"


def runs_behind(row: Row) -> list[Run]:
    return [run for run in recorded_runs() if run.seeds == [1, 2, 3] and run.accuracy == row.accuracy]


def params_yaml() -> dict:
    return yaml.safe_load(PARAMS.read_text())


def with_overrides(params: dict, flags: dict[str, object]) -> dict:
    """params with dotted keys set; an unknown key is an error, as it is for `dvc exp run -S`."""
    params = yaml.safe_load(yaml.safe_dump(params))  # a deep copy
    for dotted, value in flags.items():
        *sections, key = dotted.split(".")
        mapping = params
        for name in sections:
            assert isinstance(mapping.get(name), dict), f"{dotted}: no section {name!r} in params.yaml"
            mapping = mapping[name]
        assert key in mapping, f"{dotted}: not a key of params.yaml"
        mapping[key] = value
    return params


def validate(params: dict) -> config.Params:
    return config.parse(yaml.safe_dump(params, sort_keys=False))


def dvc_exp_run_commands() -> list[str]:
    """Every `dvc exp run ...` in the README: in code spans and in code blocks."""
    commands, in_block = [], False
    for line in readme().splitlines():
        if line.lstrip().startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            command = line.strip().removeprefix("$ ")
            if command.startswith("dvc exp run"):
                commands.append(command)
        else:
            commands += [span for span in re.findall(r"`([^`]*)`", line) if span.startswith("dvc exp run")]
    return commands


def set_params(command: str) -> list[str]:
    words = shlex.split(command, comments=True)
    return [words[i + 1] for i, word in enumerate(words) if word in ("-S", "--set-param")]


def dvc_applies(tmp_path: Path, overrides: list[str]) -> list[dict]:
    """params.yaml after DVC's own `-S` route, once per run of a sweep (`--queue -S 'k=a,b'`)."""
    from dvc.utils.cli_parse import to_path_overrides
    from dvc.utils.hydra import apply_overrides, get_hydra_sweeps

    results = []
    for number, sweep in enumerate(get_hydra_sweeps(to_path_overrides(overrides))):
        assert set(sweep) <= {"params.yaml"}, f"{overrides}: sets a file other than params.yaml"
        path = tmp_path / f"params-{number}.yaml"
        path.write_text(PARAMS.read_text())
        if sweep:
            apply_overrides(path, sweep["params.yaml"])
        results.append(yaml.safe_load(path.read_text()))
    return results


def recipe_bullets() -> dict[str, str]:
    """The Results section's `- **label**: `dvc exp run ...`` lines: label -> the line."""
    bullets = {}
    for line in section(readme(), "Results").splitlines():
        match = re.match(r"- \*\*(.+?)\*\*", line)
        if match and "`dvc " in line:
            bullets[match.group(1)] = line
    return bullets


def test_every_results_row_names_exactly_the_flags_its_runs_used():
    for row in results_rows():
        runs = runs_behind(row)
        assert runs, f"row {row.label!r}: no seeds 1-3 run in results.txt reports {row.accuracy}"
        for run in runs:
            missing = {k: v for k, v in run.flags.items() if row.options.get(k, object()) != v}
            extra = {k: v for k, v in row.options.items() if k not in run.flags}
            assert not missing and not extra, (
                f"row {row.label!r} ({row.accuracy}) was measured with {describe(run.flags)}; "
                f"the row leaves out or changes {describe(missing)} and adds {describe(extra)}"
            )


def test_every_results_row_time_and_size_come_from_runs_of_its_recipe():
    runs = recorded_runs()
    for row in results_rows():
        same = [run for run in runs if run.flags == row.options]
        assert same, f"row {row.label!r}: no run in results.txt used {describe(row.options)}"
        assert row.seconds in {run.mean_seconds for run in same}, (
            f"row {row.label!r}: {row.seconds} s is no mean time of a run with {describe(row.options)}"
        )
        assert all(run.parameters == {row.parameters} for run in same), (
            f"row {row.label!r}: {row.parameters:,} parameters; the runs printed {[run.parameters for run in same]}"
        )


def test_a_row_label_that_names_a_batch_size_names_the_one_its_recipe_uses():
    for row in results_rows():
        said = re.search(r"\bbatch (\d+)", row.label)
        if said:
            used = with_overrides(params_yaml(), row.options)["train"]["batch_size"]
            assert int(said.group(1)) == used, f"row {row.label!r}: its options train at batch {used}"


def test_the_default_row_describes_params_yaml():
    train = params_yaml()["train"]
    [row] = [row for row in results_rows() if not row.options]
    said = {"batch_size": r"batch (\d+)", "learning_rate": r"lr ([\d.]+)", "epochs": r"(\d+) epochs"}
    for key, pattern in said.items():
        found = re.search(pattern, row.options_text)
        assert found, f"the default row no longer says {pattern!r}"
        assert parse_value(found.group(1)) == train[key], f"the default row says {found.group()}; params.yaml: {train[key]}"
    named = [schedule for schedule in config.SCHEDULES if re.search(rf"\b{schedule}\b", row.options_text)]
    assert named == [train["schedule"]], f"the default row names schedule {named}; params.yaml: {train['schedule']}"


def test_every_results_row_sets_real_keys_to_values_the_config_accepts():
    for row in results_rows():
        validate(with_overrides(params_yaml(), row.options))


def test_every_dvc_exp_run_line_sets_real_keys_to_values_the_config_accepts(tmp_path):
    commands = dvc_exp_run_commands()
    assert any(set_params(command) for command in commands), "the README shows no `dvc exp run -S`"
    for command in commands:
        try:
            for params in dvc_applies(tmp_path, set_params(command)):
                validate(params)
        except Exception as error:  # DVC's (unknown key) or the config's (a value it refuses)
            cause = f" ({error.__cause__})".replace("\n", " ") if error.__cause__ else ""
            raise AssertionError(f"{command}: {error}{cause}") from None


def test_each_recipe_bullet_sets_what_its_table_row_sets(tmp_path):
    rows = {row.label.split(" (")[0]: row for row in results_rows()}  # "mlp (default)" -> "mlp"
    bullets = recipe_bullets()
    for label, line in bullets.items():
        assert label in rows, f"the bullet {label!r} has no row in the results table"
        [command] = [span for span in re.findall(r"`([^`]*)`", line) if span.startswith("dvc exp run")]
        overrides = set_params(command)
        keys = {pair.split("=", 1)[0] for pair in overrides}
        assert keys == set(rows[label].options), (
            f"{label}: the bullet sets {sorted(keys)}, the table row {sorted(rows[label].options)}"
        )
        [by_dvc] = dvc_applies(tmp_path, overrides)
        assert by_dvc == with_overrides(params_yaml(), rows[label].options), (
            f"{label}: `{command}` does not give the params of the table row {describe(rows[label].options)}"
        )
    assert set(rows) <= set(bullets), f"rows without a `dvc exp run` bullet: {sorted(set(rows) - set(bullets))}"


def test_yaml_shown_as_params_yaml_is_params_yaml():
    lines = readme().splitlines()
    for number, line in enumerate(lines):
        if line.strip() != "```yaml":
            continue
        before = next((previous for previous in reversed(lines[:number]) if previous.strip()), "")
        end = lines.index("```", number + 1)
        block = "\n".join(lines[number + 1 : end])
        if "params.yaml" in before or "params.yaml" in block.partition("\n")[0]:
            assert yaml.safe_load(block) == params_yaml(), f"README line {number + 1}: not what params.yaml holds"


def test_the_dag_picture_is_what_dvc_dag_prints():
    text = readme()
    start = text.index("\n$ dvc dag\n") + len("\n$ dvc dag\n")
    picture = text[start : text.index("```", start)]
    dag = subprocess.run([BIN / "dvc", "dag"], cwd=ROOT, env=env(), capture_output=True, text=True, check=True)
    printed = dag.stdout
    assert [line.rstrip() for line in picture.splitlines()] == [line.rstrip() for line in printed.splitlines()]
