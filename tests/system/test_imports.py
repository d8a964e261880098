"""The packages' imports point one way: predicting and serving never import training code.

Beside the run-time checks that the predict and serve commands never import TensorFlow
(test_predict.py, test_serve.py), this reads every module's imports, so a training import in a
branch that the tests do not take fails too.
"""

import ast
from pathlib import Path

from testkit.repos import ROOT

# What each package of pipeline/ may import besides itself.
ALLOWED = {
    "core": set(),
    "render": set(),
    "predict": {"core"},
    "collect": {"core", "predict"},
    "serve": {"core", "predict", "collect"},
    "train": {"core", "predict", "render"},
    "review": {"core", "train"},
}


def imported_packages(path: Path) -> set[str]:
    """The pipeline packages a module imports (`pipeline.X...` -> X), at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found |= {name.split(".")[1] for name in names if name.startswith("pipeline.")}
    return found


def test_every_module_lives_in_a_package_of_a_known_role():
    loose = sorted(p.name for p in (ROOT / "pipeline").glob("*.py") if p.name != "__init__.py")
    assert loose == []
    packages = sorted(p.name for p in (ROOT / "pipeline").iterdir() if (p / "__init__.py").exists())
    assert packages == sorted(ALLOWED)


def test_imports_point_one_way():
    against = [
        f"{path.relative_to(ROOT)} imports pipeline.{package}"
        for role, allowed in ALLOWED.items()
        for path in sorted((ROOT / "pipeline" / role).rglob("*.py"))
        for package in imported_packages(path) - allowed - {role}
    ]
    assert against == []


def test_the_check_sees_an_import_against_the_direction(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("def late():\n    from pipeline.train.models import build_model\n")
    assert imported_packages(module) == {"train"}
    module.write_text("from pipeline import train\nimport pipeline.core.paths\n")
    assert imported_packages(module) == {"train", "core"}
