"""The same artifacts through an S3-compatible object store: moto's S3 server on 127.0.0.1.

As a team would use one: the remote is added with `dvc remote add` and `endpointurl` (committed;
MinIO, Ceph and moto all need the endpoint), the keys come from the environment or from the
git-ignored `.dvc/config.local`, each clone has its own cache. Checked: a pull gives another
clone the artifacts without running anything; a store that dies in the middle of a push fails
the push with DVC's error lines, and after it comes back a second push completes and a third
clone gets every object intact; a wrong bucket or wrong keys cost one error line and change
nothing, locally or in the store.
"""

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from testkit import faults, repos, s3
from testkit.repos import dvc_status, env, make_pipeline_repo, ran_stages, run

pytestmark = pytest.mark.slow
BUCKET = "team-store"
FOLDER = "mnist"  # the remote's folder in the bucket
URL = f"s3://{BUCKET}/{FOLDER}"
REMOTE = "storage"
# What DVC appends to an error it did not expect; the error itself is the line before it.
SUPPORT = "Having any troubles? Hit us up at https://dvc.org/support, we are always happy to help!"
MANY_FILES = 300  # enough small uploads that a kill after the first lands with hundreds to go


@pytest.fixture(scope="module")
def keys_in_environment(tmp_path_factory):
    """The test keys in this process's environment, which every command the tests run inherits."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in s3.credentials_env(tmp_path_factory.mktemp("aws")).items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            patch.delenv(name, raising=False)
        yield


@pytest.fixture(scope="module")
def store(keys_in_environment, tmp_path_factory):
    """One S3 server for the module, with the team's bucket."""
    with s3.started(tmp_path_factory.mktemp("store")) as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture(scope="module")
def published(store, tmp_path_factory) -> Path:
    """Clone A: the shrunken pipeline with the S3 remote as default, run, committed and pushed."""
    repo = make_pipeline_repo(tmp_path_factory.mktemp("machines") / "A")
    use_store(repo, store.url)
    run(["dvc", "repro"], cwd=repo)
    repos.commit_all(repo, "run, with the team's S3 remote")
    assert "files pushed" in run(["dvc", "push"], cwd=repo).stdout
    return repo


def use_store(repo: Path, endpoint: str) -> None:
    """The remote as the docs add it (-f: the copied config already has a default remote)."""
    run(["dvc", "remote", "add", "-d", "-f", REMOTE, URL], cwd=repo)
    run(["dvc", "remote", "modify", REMOTE, "endpointurl", endpoint], cwd=repo)


def clone(source: Path, destination: Path, with_cache: bool = False) -> Path:
    """A git clone; with_cache: plus a copy of the source's DVC cache and its files checked out."""
    run(["git", "clone", "-q", str(source), str(destination)], cwd=destination.parent)
    if with_cache:
        shutil.copytree(source / ".dvc/cache", destination / ".dvc/cache")
        run(["dvc", "checkout"], cwd=destination)
    return destination


def snapshot(repo: Path) -> dict[str, str]:
    """Every file of the clone (workspace and DVC cache) and its MD5, except git's and DVC's
    bookkeeping (.git/, .dvc/tmp/), which any command touches, and .dvc/config.local, which the
    tests edit."""
    files = {}
    for path in sorted(repo.rglob("*")):
        name = path.relative_to(repo).as_posix()
        if path.is_file() and not name.startswith((".git/", ".dvc/tmp/", ".dvc/config.local")):
            files[name] = faults.md5(path)
    return files


def artifacts(repo: Path) -> dict[str, str]:
    """The MD5 of each file the pipeline writes under data/ and models/ (DVC's, not git's)."""
    paths = [path for folder in ("data", "models") for path in sorted((repo / folder).rglob("*"))]
    return {
        path.relative_to(repo).as_posix(): faults.md5(path)
        for path in paths
        if path.is_file() and path.name != ".gitignore"
    }


def cache_names(repo: Path) -> set[str]:
    """The names (ab/cdef…) of the data objects in repo's DVC cache, as the store names them too."""
    root = repo / ".dvc/cache/files/md5"
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}


def stored_names(server: s3.S3Server) -> set[str]:
    """The names (ab/cdef…) of the objects DVC stored under URL."""
    return {key.removeprefix(f"{FOLDER}/files/md5/") for key in server.objects(BUCKET)}


def error_line(result) -> str:
    """The one line a failed DVC command printed, after checking it failed without a traceback."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip() and line != SUPPORT]
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), output
    return lines[0]


def assert_push_cut_off(output: str) -> None:
    """DVC's lines for a push whose store went away: one per file it could not upload, then the
    failure, and nothing else (no traceback).

    The last line has one of two forms, by where the push was. Among a directory's files or the
    plain files, DVC goes on to try each one and sums up ("failed to push data to the cloud - N
    files failed to upload"). Between two directories, its look-up of the next directory's
    listing in the store fails and DVC stops there ("unexpected error - Could not connect …").
    """
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip() and line != SUPPORT]
    *transfers, last = lines
    unreachable = "Could not connect to the endpoint URL"
    assert all(line.startswith("ERROR: failed to transfer '") and unreachable in line for line in transfers), lines
    summary = re.fullmatch(r"ERROR: failed to push data to the cloud - (\d+) files failed to upload", last)
    if summary:  # the count includes the listings of directories left incomplete, which have no line
        assert int(summary.group(1)) >= len(transfers) > 0, lines
    else:
        assert last.startswith(f"ERROR: unexpected error - {unreachable}"), lines


def test_pull_gives_a_clone_the_same_artifacts_without_running_anything(published, tmp_path):
    other = clone(published, tmp_path / "B")
    assert not (other / ".dvc/cache").exists() and not (other / "models/model.keras").exists()
    run(["dvc", "pull"], cwd=other)
    assert dvc_status(other) == {}
    assert ran_stages(run(["dvc", "repro"], cwd=other).stdout) == []
    assert (other / "models/model.keras").read_bytes() == (published / "models/model.keras").read_bytes()
    assert artifacts(other) == artifacts(published)  # and every other output of the pipeline


def test_a_push_cut_off_by_the_store_fails_and_a_second_push_completes(published, tmp_path):
    """The store is killed once the first object of a push has arrived; it comes back (same port,
    with what it had stored) and a second push uploads the rest; a third clone gets it all."""
    with s3.started(tmp_path / "store", persist=True) as server:
        server.create_bucket(BUCKET)
        repo = clone(published, tmp_path / "A2", with_cache=True)
        use_store(repo, server.url)
        images = repo / "images"  # a folder of many small files, as a dataset of image files is
        images.mkdir()
        for index in range(MANY_FILES):
            (images / f"{index:03}.bin").write_bytes(hashlib.sha256(str(index).encode()).digest() * 64)
        run(["dvc", "add", "-q", "images"], cwd=repo)
        repos.commit_all(repo, "the new store, and a folder of many files")

        # One upload at a time, so that the kill lands with hundreds still to go; one attempt a
        # file, as botocore would retry a refused connection 4 more times with backoff (about 7 s
        # a file), and DVC tries every file before it gives up.
        command = ["dvc", "push", "--jobs", "1"]
        push = faults.Started(command, cwd=repo, logs=tmp_path / "push", environment=env(AWS_MAX_ATTEMPTS="1"))
        try:
            push.wait_for(lambda: server.objects(BUCKET), timeout=120, what="a first object in the store")
            server.kill()
            assert push.wait(120) != 0
        finally:
            push.stop()
        assert_push_cut_off(push.out() + push.err())

        server.start()
        kept = stored_names(server)
        second = run(["dvc", "push"], cwd=repo).stdout
        stored = stored_names(server)
        assert kept and kept < stored  # cut off in the middle: some objects were stored, not all
        assert f"{len(stored - kept)} files pushed" in second  # only what was missing

        third = clone(repo, tmp_path / "C")
        run(["dvc", "pull"], cwd=third)
        assert dvc_status(third) == {}
        assert json.loads(run(["dvc", "status", "--cloud", "--json"], cwd=third).stdout) == {}
        assert cache_names(third) == stored and stored <= cache_names(repo)
        assert faults.bad_cache_objects(third) == []
        assert artifacts(third) == artifacts(repo)
        assert all((third / "images" / path.name).read_bytes() == path.read_bytes() for path in images.iterdir())


def test_a_wrong_bucket_costs_one_line_and_changes_nothing(published, store, tmp_path):
    repo = clone(published, tmp_path / "A3", with_cache=True)
    run(["dvc", "remote", "modify", "--local", REMOTE, "url", "s3://no-such-bucket/mnist"], cwd=repo)
    stored, before = store.objects(BUCKET), snapshot(repo)
    line = error_line(run(["dvc", "push"], cwd=repo, check=False))
    assert "The specified bucket does not exist" in line and "NoSuchBucket" in line, line
    assert snapshot(repo) == before
    assert store.buckets() == [BUCKET] and store.objects(BUCKET) == stored

    empty = clone(published, tmp_path / "B3")
    run(["dvc", "remote", "modify", "--local", REMOTE, "url", "s3://no-such-bucket/mnist"], cwd=empty)
    before = snapshot(empty)
    line = error_line(run(["dvc", "pull"], cwd=empty, check=False))
    assert "NoSuchBucket" in line, line
    assert snapshot(empty) == before


def test_wrong_keys_cost_one_line_and_change_nothing(published, store, tmp_path):
    """A store that checks keys (moto's IAM checks on) refuses the environment's unknown key and
    a known key with a wrong secret; the right pair in .dvc/config.local then pushes."""
    with s3.started(tmp_path / "store") as server:
        server.create_bucket(BUCKET)
        keys = server.user_with_keys("teammate")
        server.require_keys()
        repo = clone(published, tmp_path / "A4", with_cache=True)
        run(["dvc", "remote", "modify", "--local", REMOTE, "endpointurl", server.url], cwd=repo)
        before = snapshot(repo)

        line = error_line(run(["dvc", "push"], cwd=repo, check=False))  # the environment's keys
        assert "(403)" in line and "Forbidden" in line, line
        local = ["dvc", "remote", "modify", "--local", REMOTE]
        run([*local, "access_key_id", keys["access_key_id"]], cwd=repo)
        run([*local, "secret_access_key", "not-" + keys["secret_access_key"]], cwd=repo)
        line = error_line(run(["dvc", "push"], cwd=repo, check=False))
        assert "(403)" in line and "Forbidden" in line, line
        assert snapshot(repo) == before
        server.accept_any_keys()  # to look into the bucket
        assert server.objects(BUCKET) == {}

        server.require_keys()
        run([*local, "secret_access_key", keys["secret_access_key"]], cwd=repo)
        run(["dvc", "push"], cwd=repo)
        server.accept_any_keys()
        assert stored_names(server) == stored_names(store)  # all that clone A pushed
