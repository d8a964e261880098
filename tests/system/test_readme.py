"""The front page and docs/ against what the pipeline accepts and each other.

The figures themselves are rendered from benchmark records and metrics/ (benchmarks/render.py;
tests/test_rendered_docs.py checks rendered = committed), so what is left to check here is
what a reader copies: every row of the results table (docs/experiments.md) and every
`dvc exp run` line on any page must set real keys to values the config accepts, each recipe
bullet must set what its row sets, and the stage diagram must be what `dvc dag --md` prints.
Parameters are documented once: every key of params.yaml has a comment on its line, and no page
re-types params.yaml in a code block. The pages hold together: every relative link and #anchor
in README.md and docs/*.md resolves, every docs page is linked from the README, the README names
one model to deploy with its command, and it stays a front page (under 200 lines).
"""

import copy
import json
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipeline.core import config
from pipeline.core.config import parse_yaml
from pipeline.review import recipes
from testkit.markdown import code_blocks, outside_code_blocks, section
from testkit.repos import BIN, ROOT, env

README = ROOT / "README.md"
DOCS = ROOT / "docs"
EXPERIMENTS = DOCS / "experiments.md"  # the results table, its recipes, experiments
README_MAX_LINES = 200
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


def readme() -> str:
    return README.read_text()


def pages() -> list[Path]:
    """The README and every docs page."""
    return [README, *sorted(DOCS.glob("*.md"))]


def parse_value(text: str) -> object:
    return parse_yaml(text, "-S")  # as benchmarks/common.parse_overrides reads -S values


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


def describe(flags: dict[str, object]) -> str:
    return " ".join(f"{key}={value}" for key, value in sorted(flags.items())) or "(none)"


def params_yaml() -> dict:
    return parse_yaml(PARAMS.read_text(), "params.yaml")


def with_overrides(params: dict, flags: dict[str, object]) -> dict:
    """params with dotted keys set; an unknown key is an error, as it is for `dvc exp run -S`."""
    params = copy.deepcopy(params)
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
    return config.parse(json.dumps(params))  # JSON is YAML 1.2: read as params.yaml is


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
        results.append(parse_yaml(path.read_text(), str(path)))
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


def test_the_model_to_deploy_is_named_once_with_its_command():
    benchmark = (ROOT / "benchmarks" / "field.py").read_text()
    deployment = re.search(r'^DEPLOYMENT = "(\w+)"', benchmark, re.MULTILINE).group(1)
    lines = [line for line in readme().splitlines() if line.startswith("**The model to deploy**")]
    assert len(lines) == 1, "the README names no model to deploy, or more than one"
    assert f"`{deployment}`, `{RECIPE_COMMAND} {deployment}`" in lines[0]
    assert deployment in recipes.load()
