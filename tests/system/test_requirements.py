"""The requirements against the locks made from them and the code that imports them.

requirements.in (running the pipeline) and requirements-dev.in (tests and benchmarks) pin the
top-level packages exactly; requirements.txt and requirements-dev.txt, made by
./requirements-lock, pin every package with its hashes, and every install command installs a lock
with --require-hashes (the project itself, in development mode, with --no-deps: nothing unlocked
comes in with it). A package the pipeline imports must be a runtime requirement, one only the
tests or benchmarks import a dev requirement, and a pin nothing imports needs a stated reason.
Reads files only: no network, no install.
"""

import ast
import re
import sys
from pathlib import Path

from testkit.repos import ROOT

RUNTIME_IN, DEV_IN = ROOT / "requirements.in", ROOT / "requirements-dev.in"
RUNTIME_LOCK, DEV_LOCK = ROOT / "requirements.txt", ROOT / "requirements-dev.txt"
CONSTRAINTS = ROOT / "requirements-constraints.txt"
LOCK_COMMAND = "./requirements-lock"
README, CI_RUN, WORKFLOW = ROOT / "README.md", ROOT / ".ci/run", ROOT / ".github/workflows/pr-report.yml"
TEST_SCRIPT = ROOT / "install-for-tests"  # what README's command 2 and .ci/run install with

RUNTIME_CODE, DEV_CODE = ("pipeline", "stages"), ("tests", "testkit", "benchmarks")
DISTRIBUTION_OF_MODULE = {"PIL": "pillow", "yaml": "pyyaml", "sklearn": "scikit-learn", "ruamel": "ruamel.yaml"}
NOT_IMPORTED = {  # pins that no code imports, and why they are there all the same
    "h5py": "Keras writes the weights inside models/model.keras with it",
    "dvc": "runs the pipeline; pipeline.review.uptodate and pipeline.review.report call its CLI",
    "python-multipart": "FastAPI (Starlette) parses the service's multipart uploads with it",
    "dvc-s3": "dvc push and pull to S3-compatible remotes through it",
    "moto": "the tests run its S3 server as a process",
    "zizmor": "the tests run it on the workflows as a command",
    "ruff": "tests/system/test_lint.py runs it on the code as a command",
}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[\w,-]+\])?==(\S+)$")  # extras allowed
HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def pins(path: Path, follow_includes: bool = True) -> dict[str, str]:
    """name -> version of a requirements input: `==` pins only, `-r` files included, `-c` not."""
    found = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = re.sub(r"(^|\s)#.*", "", raw).strip()
        if not line or line.startswith("-c "):
            continue
        if line.startswith("-r "):
            if follow_includes:
                found |= pins(path.parent / line[3:].strip())
            continue
        match = PIN.match(line)
        assert match, f"{path.name}:{number}: {raw!r} is not an exact pin (name==version)"
        found[normalise(match.group(1))] = match.group(2)
    return found


def lock(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a lock: `name==version \\` lines, each followed by its hashes."""
    entries, current = {}, None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip().rstrip("\\").strip()
        if not line or line.startswith("#"):
            continue
        if raw[0].isspace():
            assert current, f"{path.name}:{number}: {raw!r} belongs to no package"
            assert HASH.match(line), f"{path.name}:{number}: {line!r} is not a sha256 hash"
            entries[current][1].append(line)
            continue
        match = PIN.match(line)
        assert match, f"{path.name}:{number}: {raw!r} is not an exact pin (name==version)"
        current = normalise(match.group(1))
        assert current not in entries, f"{path.name}:{number}: {current} locked twice"
        entries[current] = (match.group(2), [])
    return entries


def imported(folders: tuple[str, ...]) -> dict[str, set[str]]:
    """distribution -> the files importing it, for third-party imports in these folders."""
    files = [path for folder in folders for path in sorted((ROOT / folder).rglob("*.py"))]
    local = {path.stem for path in ROOT.glob("*/*.py")} | {path.parent.name for path in ROOT.glob("*/*.py")}
    found: dict[str, set[str]] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for top in (name.split(".")[0] for name in names):
                if top not in sys.stdlib_module_names and top not in local:
                    distribution = normalise(DISTRIBUTION_OF_MODULE.get(top, top))
                    found.setdefault(distribution, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_pin_is_in_its_lock_at_that_version():
    for source, target in ((RUNTIME_IN, RUNTIME_LOCK), (DEV_IN, DEV_LOCK), (CONSTRAINTS, RUNTIME_LOCK)):
        locked = lock(target)
        for name, version in pins(source).items():
            assert name in locked, f"{source.name} pins {name}=={version}; {target.name} lacks it: run {LOCK_COMMAND}"
            assert locked[name][0] == version, (
                f"{source.name} pins {name}=={version}; {target.name} has {locked[name][0]}: run {LOCK_COMMAND}"
            )


def test_every_lock_entry_has_a_hash_and_says_how_it_was_made():
    for path in (RUNTIME_LOCK, DEV_LOCK):
        entries = lock(path)
        assert len(entries) > 100, f"{path.name}: {len(entries)} packages; is it still the complete lock?"
        unhashed = sorted(name for name, (_, hashes) in entries.items() if not hashes)
        assert not unhashed, f"{path.name}: no --hash=sha256: for {unhashed}"
        assert f"#    {LOCK_COMMAND}\n" in path.read_text(), f"{path.name}: its header does not name {LOCK_COMMAND}"
    assert re.search(r"^UV_VERSION=\d+\.\d+\.\d+$", (ROOT / LOCK_COMMAND).read_text(), re.M), (
        "uv's version is not pinned"
    )


def test_the_dev_lock_holds_the_runtime_lock_unchanged():
    runtime, dev = lock(RUNTIME_LOCK), lock(DEV_LOCK)
    changed = sorted(name for name, entry in runtime.items() if dev.get(name) != entry)
    assert not changed, f"requirements-dev.txt has other versions or hashes than requirements.txt for {changed}"


def test_runtime_and_dev_pins_are_apart():
    runtime, dev_only = pins(RUNTIME_IN), pins(DEV_IN, follow_includes=False)
    assert not set(runtime) & set(dev_only), f"pinned in both inputs: {sorted(set(runtime) & set(dev_only))}"
    assert "-r requirements.in" in DEV_IN.read_text() and "-c requirements.txt" in DEV_IN.read_text(), (
        "requirements-dev.in must include requirements.in and be held to requirements.txt"
    )


def test_every_import_is_a_requirement_of_its_kind():
    runtime, dev = pins(RUNTIME_IN), pins(DEV_IN)  # dev includes runtime: the tests may import dvc
    for distribution, files in imported(RUNTIME_CODE).items():
        assert distribution in runtime, f"{sorted(files)} import {distribution}: pin it in requirements.in"
    for distribution, files in imported(DEV_CODE).items():
        assert distribution in dev, f"{sorted(files)} import {distribution}: pin it in requirements-dev.in"


def test_every_pin_is_imported_or_says_why():
    used = set(imported(RUNTIME_CODE))
    for name in pins(RUNTIME_IN):
        assert name in used or name in NOT_IMPORTED, (
            f"requirements.in pins {name}, which pipeline/ and stages/ never import"
        )
    used_by_tests = set(imported(DEV_CODE))
    for name in pins(DEV_IN, follow_includes=False):
        assert name in used_by_tests or name in NOT_IMPORTED, (
            f"requirements-dev.in pins {name}, which tests/, testkit/ and benchmarks/ never import"
        )


def pip_installs(text: str) -> list[tuple[str, str]]:
    """(options, file) of each `pip install ... -r FILE` in a text."""
    return re.findall(r"pip install\s+((?:-\S+\s+)*?)-r\s+([\w.-]+)", text)


def test_every_install_is_a_lock_checked_by_hash():
    commands = re.search(r"Two commands.*?```bash\n(.*?)```", README.read_text(), re.S).group(1)
    install, test = [line for line in commands.splitlines() if line and not line.startswith("#")]
    assert pip_installs(install) == [("--require-hashes ", RUNTIME_LOCK.name)], install
    setup, pytest_command = test.split(" && ")
    assert setup == f"./{TEST_SCRIPT.name}", f"the README's command 2 does not install with it: {test}"
    assert pytest_command == '.venv/bin/python -m pytest -m "slow or not slow"', pytest_command
    script = TEST_SCRIPT.read_text()
    assert pip_installs(script) == [("--quiet --require-hashes ", DEV_LOCK.name)], f"{TEST_SCRIPT.name}: no dev lock"
    for arguments in re.findall(r"pip install ([^&\n]*)", commands + script):
        assert " -r " in f" {arguments}" or "--no-deps" in arguments.split(), (
            f"pip install {arguments}: unlocked dependencies"
        )
    ci = CI_RUN.read_text()
    assert pip_installs(ci) == [], f".ci/run installs through ./{TEST_SCRIPT.name}, as the README does"
    assert f"\n./{TEST_SCRIPT.name}\n" in ci, f".ci/run does not run ./{TEST_SCRIPT.name}"
    assert ci.rstrip().splitlines()[-1] == pytest_command, ".ci/run does not end with the README's test command"
    # The project itself is installed from the checkout, with the locked setuptools: nothing unhashed.
    assert re.search(r"pip install (--quiet )?--no-deps --no-build-isolation -e \.", script), script
    workflow = WORKFLOW.read_text()
    assert pip_installs(workflow) == [("--require-hashes ", RUNTIME_LOCK.name)], (
        "the workflow does not install the lock"
    )
    assert f"cache-dependency-path: {RUNTIME_LOCK.name}" in workflow, (
        "the workflow's pip cache is not keyed on the lock"
    )
    for page in (README, *sorted((ROOT / "docs").glob("*.md"))):
        for options, target in pip_installs(page.read_text()):
            where = page.relative_to(ROOT)
            assert "--require-hashes" in options and target in (RUNTIME_LOCK.name, DEV_LOCK.name), (
                f"{where}: -r {target}"
            )
    assert LOCK_COMMAND in README.read_text(), f"the README does not say how to regenerate the locks ({LOCK_COMMAND})"


def test_the_package_counts_the_docs_give_are_the_locks():
    for page in (README, ROOT / "docs/dependencies.md"):
        for lock_file in (RUNTIME_LOCK, DEV_LOCK):
            stated = re.findall(rf"`{re.escape(lock_file.name)}` \((\d+) packages\)", page.read_text())
            assert stated, f"{page.name} does not give {lock_file.name}'s package count"
            assert {int(n) for n in stated} == {len(lock(lock_file))}, (
                f"{page.name}: {lock_file.name} has {len(lock(lock_file))} packages"
            )
