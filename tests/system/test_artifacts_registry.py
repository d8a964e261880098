"""The models by name: two releases tagged as docs/export.md says, fetched as it says.

The shrunken pipeline keeps the project's committed remote, the `shared` directory beside the
clone, and pushes to a bare git origin. `dvc artifacts get` then reads the origin from another
directory: the origin has no DVC cache, so every byte compared came through the DVC remote.
The release and fetch commands are those of docs/export.md's code blocks, run as written.
"""

import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.core import paths
from testkit import repos
from testkit.markdown import code_blocks
from testkit.repos import ROOT, make_pipeline_repo, run, set_params

pytestmark = pytest.mark.slow
DOC = ROOT / "docs" / "export.md"


@dataclass
class Release:
    origin: Path  # the bare git repository users fetch from
    remote: Path  # the directory remote the pipeline pushed to
    first: dict[Path, bytes]  # the models at v1.0.0
    second: dict[Path, bytes]  # the models at v1.1.0, the highest version


def code_block(starting: str) -> list[str]:
    """The lines of the one ``` block in docs/export.md that has a line starting with `starting`."""
    (block,) = [lines for lines in code_blocks(DOC.read_text()) if any(line.startswith(starting) for line in lines)]
    return block


def documented_commands(starting: str, **variables: str) -> list[list[str]]:
    """The dvc and git commands of that block as shell words, "$NAME" given the value passed.

    The block must set each of those variables itself, so that a reader who copies it runs it."""
    lines = code_block(starting)
    for name in variables:
        assert any(line.startswith(f"{name}=") for line in lines), f"the block does not set {name}"
    commands = []
    for line in (line for line in lines if line.startswith(("dvc ", "git "))):
        words = shlex.split(line, comments=True)
        for name, value in variables.items():
            words = [word.replace(f"${name}", value) for word in words]
        commands.append(words)
    return commands


def documented_value(starting: str, name: str) -> str:
    """The value the block assigns to the shell variable `name`."""
    (line,) = [line for line in code_block(starting) if line.startswith(f"{name}=")]
    return shlex.split(line, comments=True)[0].split("=", 1)[1]


def models(repo: Path) -> dict[Path, bytes]:
    return {path: (repo / path).read_bytes() for path in (paths.MODEL, paths.LITERT_INT8)}


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Release:
    base = tmp_path_factory.mktemp("registry")
    origin = base / "origin.git"
    run(["git", "init", "-q", "--bare", "--initial-branch=main", str(origin)], cwd=base)  # HEAD: main, as on GitHub
    repo = make_pipeline_repo(base / "A")  # .dvc/config's `shared`: ../../mnist-dvc-remote from .dvc/
    run(["git", "branch", "-M", "main"], cwd=repo)
    run(["git", "remote", "add", "origin", str(origin)], cwd=repo)

    run(["dvc", "repro"], cwd=repo)
    repos.commit_all(repo, "first release")
    release_commands = documented_commands("git tag -a")
    assert [words[:2] for words in release_commands][0] == ["dvc", "push"]
    for words in release_commands:
        run(words, cwd=repo)
    first = models(repo)

    set_params(repo, **{"train.epochs": 2})
    run(["dvc", "repro"], cwd=repo)
    repos.commit_all(repo, "second release: two epochs")
    run(["dvc", "push"], cwd=repo)
    run(["git", "tag", "-a", "mnist-classifier@v1.1.0", "-m", "mnist-classifier v1.1.0"], cwd=repo)
    run(["git", "push", "--follow-tags", "origin", "main"], cwd=repo)
    second = models(repo)
    assert first[paths.MODEL] != second[paths.MODEL]  # else --rev would prove nothing

    remote = base / "mnist-dvc-remote"
    assert remote.is_dir() and not (origin / ".dvc").exists()
    return Release(origin=origin, remote=remote, first=first, second=second)


def test_documented_commands_fetch_each_release_by_name(release, tmp_path):
    """From a directory that is no clone: the highest version, a version by --rev, an export."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    commands = documented_commands("dvc artifacts get", REPO=str(release.origin), REMOTE=str(release.remote))
    assert len(commands) == 3
    for words in commands:
        run(words, cwd=elsewhere)
    assert (elsewhere / "model.keras").read_bytes() == release.second[paths.MODEL]  # v1.1.0 > v1.0.0
    assert (elsewhere / "model-v1.0.0.keras").read_bytes() == release.first[paths.MODEL]
    assert (elsewhere / "model_int8.tflite").read_bytes() == release.first[paths.LITERT_INT8]
    assert sorted(p.name for p in elsewhere.iterdir()) == ["model-v1.0.0.keras", "model.keras", "model_int8.tflite"]


@pytest.mark.parametrize(
    ("arguments", "missing"),
    [
        (["mnist-clasifier"], "'mnist-clasifier'"),
        (["mnist-classifier", "--rev", "v9.9.9"], "'mnist-classifier @ v9.9.9'"),
        (["mnist-classifier", "--rev", "mnist-classifier@v1.0.0"], "'mnist-classifier @ mnist-classifier@v1.0.0'"),
    ],
)
def test_a_wrong_name_or_version_is_one_line_and_exit_1(release, tmp_path, arguments, missing):
    get = ["dvc", "artifacts", "get", str(release.origin), *arguments, "--remote-config", f"url={release.remote}"]
    result = run(get, cwd=tmp_path, check=False)
    assert result.returncode == 1 and list(tmp_path.iterdir()) == []
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert "Traceback" not in result.stderr and len(lines) <= 2, lines  # DVC's Studio line, then this one
    assert lines[-1].startswith("ERROR: failed to get") and lines[-1].endswith(f"Unable to find artifact {missing}")
    if arguments == ["mnist-clasifier"]:  # the line docs/export.md shows
        documented_repo = documented_value("dvc artifacts get", "REPO")
        (shown,) = [line for line in code_block("ERROR: failed to get") if line.startswith("ERROR:")]
        assert lines[-1] == shown.replace(documented_repo, str(release.origin))
