"""dvc.yaml must agree with the code: commands, script and module deps, data deps, outs, params.

A stage whose deps miss a module it imports would not re-run when that module changes; one whose
outs differ from what the code writes would be reported as changed forever.
"""

import ast
import re
from pathlib import Path

import pytest
import yaml

from pipeline.core import paths
from testkit.repos import ROOT

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGES = DVC["stages"]
# Modules that shape no output bytes: changing them must not re-run the pipeline.
# (the __init__.py files of pipeline/, core/ and train/ are docstrings: they mark the packages.)
INFRASTRUCTURE = {
    "pipeline/__init__.py",
    "pipeline/core/__init__.py",
    "pipeline/train/__init__.py",
    "pipeline/core/cli.py",
    "pipeline/core/config.py",
    "pipeline/core/errors.py",
    "pipeline/core/paths.py",
}


def imported_modules(source: Path) -> set[str]:
    """Files of the `pipeline` package imported by `source`, directly or through each other."""
    found: set[str] = set()
    pending = [source]
    while pending:
        tree = ast.parse(pending.pop().read_text())
        for node in ast.walk(tree):
            dotted = []
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "pipeline":
                # `from pipeline.x import y`: y may be a module of the package pipeline.x
                dotted = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
            elif isinstance(node, ast.Import):
                dotted = [a.name for a in node.names if a.name.startswith("pipeline.")]
            for name in dotted:
                module = module_file(name)
                if module and module not in found:
                    found.add(module)
                    pending.append(ROOT / module)
    return found


def module_file(dotted: str) -> str | None:
    """pipeline/x/y.py or pipeline/x/y/__init__.py for `pipeline.x.y`; None for a name in a module."""
    base = dotted.replace(".", "/")
    for candidate in (f"{base}.py", f"{base}/__init__.py"):
        if (ROOT / candidate).is_file():
            return candidate
    return None


def referenced_paths(source: Path) -> set[str]:
    """Files a stage names through `paths`: attributes like paths.MODEL, and paths.prepared(...)."""
    found = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "paths":
            value = getattr(paths, node.attr)
            if isinstance(value, Path):
                found.add(value.as_posix())
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "prepared":
            argument = node.args[0]
            splits = [argument.value] if isinstance(argument, ast.Constant) else paths.SPLITS
            found.update(paths.prepared(split).as_posix() for split in splits)
    return found


def out_names(stage: dict) -> list[str]:
    entries = stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", [])
    return [next(iter(entry)) if isinstance(entry, dict) else entry for entry in entries]


def is_cached(stage: dict, name: str) -> bool:
    for entry in stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", []):
        if isinstance(entry, dict) and name in entry:
            return entry[name].get("cache", True)
    return True


def test_one_stage_per_module_in_pipeline_order():
    modules = sorted(p.stem for p in (ROOT / "stages").glob("*.py") if p.stem != "__init__")
    assert sorted(STAGES) == modules
    assert list(STAGES) == ["fetch", "preprocess", "collected", "train", "evaluate", "plot", "export", "field"]
    assert list(STAGES) == list(paths.STAGE_OUTPUTS)


@pytest.mark.parametrize("name", list(STAGES))
def test_command_and_code_deps(name):
    stage = STAGES[name]
    script = ROOT / "stages" / f"{name}.py"
    assert stage["cmd"] == f"python -m stages.{name}"
    code_deps = {d for d in stage["deps"] if d.endswith(".py")}
    assert code_deps == {f"stages/{name}.py"} | (imported_modules(script) - INFRASTRUCTURE)


@pytest.mark.parametrize("name", list(STAGES))
def test_outs_and_data_deps(name):
    stage = STAGES[name]
    outs = {p.as_posix() for p in paths.STAGE_OUTPUTS[name]}
    assert set(out_names(stage)) == outs
    script = ROOT / "stages" / f"{name}.py"
    data_deps = {d for d in stage["deps"] if not d.endswith(".py")}
    assert data_deps == referenced_paths(script) - outs
    for out in outs:  # models and data arrays go to the DVC cache; what git tracks does not
        assert is_cached(stage, out) == (Path(out) not in paths.GIT_TRACKED), out


@pytest.mark.parametrize("name", list(STAGES))
def test_params_by_key(name):
    script = (ROOT / "stages" / f"{name}.py").read_text()
    # A whole section, or one key of collected's (train and field each read one of its two).
    used = set(re.findall(r"\bparams\.(seed|fetch|preprocess|train|plot|export|field|collected\.\w+)\b", script))
    assert set(STAGES[name].get("params", [])) == used


def test_git_tracked_outputs_are_exactly_the_uncached_ones():
    # uptodate counts a deleted one as a change, and the restore hint says `git checkout`.
    uncached = {name for stage in STAGES.values() for name in out_names(stage) if not is_cached(stage, name)}
    assert uncached == {path.as_posix() for path in paths.GIT_TRACKED}
    assert len(paths.GIT_TRACKED) == len(uncached)  # each once


def test_persisted_outputs_are_the_ones_the_code_names():
    # A stage's error under DVC says which outputs DVC deleted before running it: all but these.
    persisted = {
        name
        for stage in STAGES.values()
        for entry in stage.get("outs", []) + stage.get("metrics", [])
        if isinstance(entry, dict)
        for name, options in entry.items()
        if options.get("persist")
    }
    assert persisted == {path.as_posix() for path in paths.PERSISTED}


def test_metrics_and_plots_point_at_outputs():
    assert out_names({"metrics": STAGES["evaluate"]["metrics"]}) == [paths.METRICS.as_posix()]
    all_outs = {o for stage in STAGES.values() for o in out_names(stage)}
    for entry in DVC["plots"]:
        if isinstance(entry, str):
            assert entry in all_outs
        else:
            (definition,) = entry.values()
            assert set(definition["y"]) <= all_outs


def test_every_model_is_an_artifact_named_for_dvc_artifacts_get():
    """Each cached output under models/ is declared once, as a model with a description and
    labels, under a name DVC accepts; the trained Keras model is `mnist-classifier`."""
    from dvc.repo.artifacts import name_is_compatible

    artifacts = DVC["artifacts"]
    assert artifacts["mnist-classifier"]["path"] == paths.MODEL.as_posix()
    cached = {name for stage in STAGES.values() for name in out_names(stage) if is_cached(stage, name)}
    models = {name for name in cached if name.startswith("models/")}
    declared = [artifact["path"] for artifact in artifacts.values()]
    assert sorted(declared) == sorted(models)  # every model once, and nothing a stage does not write
    for name, artifact in artifacts.items():
        assert name_is_compatible(name), f"{name!r} is not a valid artifact name"
        assert artifact["type"] == "model" and artifact["desc"].strip(), name
        assert artifact["labels"] and all(isinstance(label, str) for label in artifact["labels"]), name
