"""The front page and docs/ against what was measured, what the pipeline accepts and each other.

A reader copies a row of the results table (docs/experiments.md) or its `dvc exp run` line and
expects to train the recipe that was measured. Each row is linked to its runs in
benchmarks/results.txt by the figure it reports (mean ± std over seeds 1-3) and must name exactly
the -S flags those runs used, their time and parameter count; the README's headline rows must be
rows of that table, figures included. Every `dvc exp run` line on any page must set real keys to
values the config accepts, and the stage diagram must be what `dvc dag --md` prints. Field
scores are metrics/field.json's (the default's row) or the `benchmarks/field.py` runs in
results.txt (the model to deploy, and the table in docs/predicting.md).
Parameters are documented once: every key of params.yaml has a comment on its line, and no page
re-types params.yaml in a code block. The pages hold together: every relative link and #anchor
in README.md and docs/*.md resolves, every docs page is linked from the README, and the README
stays a front page (under 200 lines).
"""

import json
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.core import config
from pipeline.review import recipes
from testkit.markdown import code_blocks, outside_code_blocks, section
from testkit.repos import BIN, ROOT, env

README = ROOT / "README.md"
DOCS = ROOT / "docs"
EXPERIMENTS = DOCS / "experiments.md"  # the results table, its recipes, experiments
README_MAX_LINES = 200
RESULTS = ROOT / "benchmarks" / "results.txt"
PARAMS = ROOT / "params.yaml"
RECIPES = ROOT / "recipes.yaml"
RECIPE_COMMAND = "python -m pipeline.review.recipes"
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


def pages() -> list[Path]:
    """The README and every docs page."""
    return [README, *sorted(DOCS.glob("*.md"))]


def parse_value(text: str) -> object:
    return yaml.safe_load(text)  # as benchmarks/common.parse_overrides reads -S values


def parse_flags(pairs: list[str]) -> dict[str, object]:
    return {key: parse_value(value) for key, value in (pair.split("=", 1) for pair in pairs)}


def results_rows() -> list[Row]:
    results = section(EXPERIMENTS.read_text(), "Results")
    lines = [line for line in results.splitlines() if line.startswith("|")]
    assert lines and f"-S {OPTION_PREFIX}" in lines[0], "no results table with an options column `-S train.…`"
    rows = []
    for line in lines[2:]:  # after the header and the |---| line
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        label, options, parameters, accuracy, seconds = cells[:5]  # then the CPU it ran on
        spans = re.findall(r"`([^`]*)`", options)
        assert spans or options.startswith("none"), f"row {label!r}: options neither `...` nor 'none'"
        named = re.fullmatch(r"recipe `(\w+)`", options)  # a recipe of recipes.yaml: its values
        pairs = [f"{OPTION_PREFIX}{token}" for span in spans for token in span.split()]
        rows.append(
            Row(
                label=label.replace("**", ""),
                options_text=options,
                options=recipes.overrides(recipes.get(named.group(1), RECIPES)) if named else parse_flags(pairs),
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
        seeds, pairs, recipe, index = [], [], {}, 0
        while index < len(args):
            if args[index] == "--seeds":
                index += 1
                while index < len(args) and not args[index].startswith("-"):
                    seeds.append(int(args[index]))
                    index += 1
            elif args[index] in ("-S", "--set"):
                pairs.append(args[index + 1])
                index += 2
            elif args[index] == "--recipe":  # its values, under any -S, as seeds.py applies them
                recipe = recipes.overrides(recipes.get(args[index + 1], RECIPES))
                index += 2
            else:
                raise AssertionError(f"results.txt: unexpected argument {args[index]!r} in {command!r}")
        text = "\n".join(output)
        mean = re.search(r"^mean test_accuracy (\S+% ± \S+) \(std, n=\d+\); full repro (\d+) s mean", text, re.M)
        runs.append(
            Run(
                seeds=seeds or [1, 2, 3],  # seeds.py's default
                flags={**recipe, **parse_flags(pairs)},
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
    """Every `dvc exp run ...` in the README and docs/: in code spans and in code blocks."""
    commands = []
    for page in pages():
        text = page.read_text()
        for block in code_blocks(text):
            commands += [line.strip().removeprefix("$ ") for line in block]
        for line in outside_code_blocks(text):
            commands += re.findall(r"`([^`]*)`", line)
    return [command for command in commands if command.startswith("dvc exp run")]


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
    """docs/experiments.md's Results section: its `- **label**: `dvc exp run ...`` (or
    `python -m pipeline.review.recipes NAME`) lines: label -> the line."""
    bullets = {}
    for line in section(EXPERIMENTS.read_text(), "Results").splitlines():
        match = re.match(r"- \*\*(.+?)\*\*", line)
        if match and ("`dvc " in line or f"`{RECIPE_COMMAND} " in line):
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
        assert parse_value(found.group(1)) == train[key], (
            f"the default row says {found.group()}; params.yaml: {train[key]}"
        )
    named = [schedule for schedule in config.SCHEDULES if re.search(rf"\b{schedule}\b", row.options_text)]
    assert named == [train["schedule"]], f"the default row names schedule {named}; params.yaml: {train['schedule']}"


def test_every_results_row_sets_real_keys_to_values_the_config_accepts():
    for row in results_rows():
        validate(with_overrides(params_yaml(), row.options))


def test_every_dvc_exp_run_line_sets_real_keys_to_values_the_config_accepts(tmp_path):
    commands = dvc_exp_run_commands()
    assert any(set_params(command) for command in commands), "no page shows a `dvc exp run -S`"
    for command in commands:
        try:
            for params in dvc_applies(tmp_path, set_params(command)):
                validate(params)
        except Exception as error:  # noqa: BLE001 -- DVC's (unknown key) or the config's (a value it refuses)
            cause = f" ({error.__cause__})".replace("\n", " ") if error.__cause__ else ""
            raise AssertionError(f"{command}: {error}{cause}") from None


def test_each_recipe_bullet_sets_what_its_table_row_sets(tmp_path):
    rows = {row.label.split(" (")[0]: row for row in results_rows()}  # "mlp (default)" -> "mlp"
    bullets = recipe_bullets()
    for label, line in bullets.items():
        assert label in rows, f"the bullet {label!r} has no row in the results table"
        [command] = [
            span for span in re.findall(r"`([^`]*)`", line) if span.startswith(("dvc exp run", RECIPE_COMMAND))
        ]
        if command.startswith(RECIPE_COMMAND):  # the command runs `dvc exp run` with these -S
            command = " ".join(recipes.command(command.split()[-1], [], RECIPES))
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


def leaf_keys(params: dict, prefix: str = "") -> list[str]:
    """Dotted keys of the values in params.yaml (not of its sections)."""
    keys = []
    for key, value in params.items():
        keys += leaf_keys(value, f"{prefix}{key}.") if isinstance(value, dict) else [f"{prefix}{key}"]
    return keys


def test_no_page_retypes_params_yaml():
    """params.yaml documents the parameters; a page links to it rather than copying it, since a copy drifts."""
    names = {dotted.rsplit(".", 1)[-1] for dotted in leaf_keys(params_yaml())}
    for page in pages():
        for block in code_blocks(page.read_text()):
            for line in block:
                setting = re.match(r"\s*(\w+):\s*\S", line)
                assert not (setting and setting.group(1) in names), (
                    f"{page.relative_to(ROOT)}: {line.strip()!r} re-types params.yaml; link to it instead"
                )


def test_every_key_of_params_yaml_has_a_comment_on_its_line():
    commented, section = {}, ""
    for line in PARAMS.read_text().splitlines():
        setting = re.match(r"(\s*)(\w+):(.*)", line)
        if not setting:
            continue
        indent, key, rest = setting.groups()
        if not rest.strip() or rest.strip().startswith("#"):  # a section: `train:`
            section = f"{key}."
            continue
        commented[(section if indent else "") + key] = " #" in rest
    assert sorted(commented) == sorted(leaf_keys(params_yaml())), (
        "params.yaml: a key this test did not read line by line"
    )
    uncommented = [key for key, has_comment in commented.items() if not has_comment]
    assert not uncommented, f"params.yaml: no comment saying what {uncommented} mean; it is their only documentation"


def test_the_dag_picture_is_what_dvc_dag_prints():
    # `dvc dag --md`, not the ASCII picture: grandalf lays that out differently from run to run.
    dag = subprocess.run([BIN / "dvc", "dag", "--md"], cwd=ROOT, env=env(), capture_output=True, text=True, check=True)
    assert dag.stdout.startswith("```mermaid\n") and "-->" in dag.stdout
    assert dag.stdout in readme()


def anchors(page: Path) -> set[str]:
    """The #anchors GitHub gives the headings of a page."""
    headings = [line.lstrip("#").strip() for line in outside_code_blocks(page.read_text()) if line.startswith("#")]
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def relative_links(page: Path) -> list[str]:
    """The targets of a page's Markdown links and images that are not URLs."""
    text = "\n".join(outside_code_blocks(page.read_text()))
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [target for target in targets if not re.match(r"[a-z]+:", target)]


def test_every_relative_link_points_to_a_file_and_heading_that_exist():
    for page in pages():
        for target in relative_links(page):
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(ROOT)}: link to {target!r}"
            assert resolved.is_relative_to(ROOT) and resolved.exists(), f"{where}: no such file in the repository"
            if anchor and resolved.suffix == ".md":
                assert anchor in anchors(resolved), f"{where}: no heading #{anchor} in {resolved.relative_to(ROOT)}"


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(README.parent / target.partition("#")[0]).resolve() for target in relative_links(README)}
    unlinked = [page.name for page in DOCS.glob("*.md") if page.resolve() not in linked]
    assert DOCS.is_dir() and not unlinked, f"docs pages the README does not link to: {unlinked}"


def test_the_readme_is_a_front_page():
    lines = len(readme().splitlines())
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move detail to a page in docs/"


def test_the_readme_headline_rows_are_rows_of_the_results_table():
    lines = [line for line in section(readme(), "Results").splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip().strip("|").split("|")]
    full = {row.label: row for row in results_rows()}
    assert len(lines) > 2, "the README shows no headline results"
    for line in lines[2:]:
        cells = dict(zip(header, (cell.strip() for cell in line.strip().strip("|").split("|"))))
        label = cells["model"].replace("**", "")
        assert label in full, f"README row {label!r} is not a row of docs/experiments.md's results table"
        row = full[label]
        said = (
            int(cells["parameters"].replace(",", "")),
            re.search(r"\d+\.\d+% ± \d+\.\d+", cells["test accuracy, seeds 1-3"]).group(),
            int(re.fullmatch(r"(\d+) s", cells["full `dvc repro`"]).group(1)),
        )
        assert said == (row.parameters, row.accuracy, row.seconds), (
            f"README row {label!r} says {said}; docs/experiments.md {(row.parameters, row.accuracy, row.seconds)}"
        )
        assert "docs/experiments.md" in line, f"README row {label!r} does not link to its recipe"


def test_the_readme_field_row_is_metrics_field_json():
    """The field scores are shown as metrics/field.json holds them, never retyped."""
    field = json.loads((ROOT / "metrics/field.json").read_text())
    lines = [line for line in section(readme(), "Deployed models").splitlines() if line.startswith("| arrays")]
    assert lines, "the README shows no field scores"
    table = section(readme(), "Deployed models").split(lines[0])[1].splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    values = [cell.strip() for cell in table[2].strip("|").split("|")]
    assert values == [f"{100 * field[source]:.1f}%" for source in header]
    assert f"{field['images_per_source']} seeded test digits per source" in readme()


FIELD_RUN = re.compile(r"^\$ python benchmarks/field\.py (.+)$")
FIELD_SCORE = re.compile(r"^  (\w+) +(\d\.\d{4})\b")


def field_runs() -> dict[str, dict[str, float]]:
    """benchmarks/results.txt's `python benchmarks/field.py ...` runs: the options given -> the
    scores printed (the last run of each, as a re-run replaces a figure)."""
    runs: dict[str, dict[str, float]] = {}
    current = None
    for line in RESULTS.read_text().splitlines():
        if match := FIELD_RUN.match(line):
            current = runs[match.group(1).strip()] = {}
        elif current is not None and (score := FIELD_SCORE.match(line)):
            current[score.group(1)] = float(score.group(2))
        elif current is not None and line.startswith("$ "):
            current = None
    return runs


def shown(value: float) -> str:
    return f"{100 * value:.1f}%"


def test_the_model_to_deploy_is_named_once_with_its_command_and_measured_field_scores():
    benchmark = (ROOT / "benchmarks" / "field.py").read_text()
    deployment = re.search(r'^DEPLOYMENT = "(\w+)"', benchmark, re.MULTILINE).group(1)
    lines = [line for line in readme().splitlines() if line.startswith("**The model to deploy**")]
    assert len(lines) == 1, "the README names no model to deploy, or more than one"
    assert f"`{deployment}`, `{RECIPE_COMMAND} {deployment}`" in lines[0]
    assert deployment in recipes.load()
    scores = field_runs()[f"--recipe {deployment} --images 1000"]
    said = dict(re.findall(r"(\w+) (\d+\.\d%)", lines[0]))
    assert said == {source: shown(scores[source]) for source in said} and len(said) == 5, said


def test_the_field_table_of_predicting_is_the_benchmark_runs():
    table = section((DOCS / "predicting.md").read_text(), "The model to deploy")
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    runs = field_runs()
    for row in rows[1:]:
        cells = dict(zip(header, (cell.strip() for cell in row.strip("|").split("|"))))
        name = cells["model"].split()[0]
        scores = runs["--images 1000" if name == "mlp" else f"--recipe {name} --images 1000"]
        for source in ("mnist_png", "photos", "drawn", "scans", "app_exports"):
            assert cells[source] == shown(scores[source]), f"{name} {source}: {cells[source]}"


FIELD_COLUMN = "field: photos, drawn"


def test_the_readme_results_field_column_is_the_benchmark_runs():
    lines = [line for line in section(readme(), "Results").splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip().strip("|").split("|")]
    assert FIELD_COLUMN in header, "the README's results table shows no field scores"
    runs = field_runs()
    for line in lines[2:]:
        cells = dict(zip(header, (cell.strip() for cell in line.strip().strip("|").split("|"))))
        label = cells["model"].replace("**", "").split()[0]
        scores = runs["--images 1000" if label == "mlp" else f"--recipe {label} --images 1000"]
        assert cells[FIELD_COLUMN] == f"{shown(scores['photos'])}, {shown(scores['drawn'])}", label
