"""Experiments shared across machines, the team's recipe (docs/experiments.md#a-sweep-on-several-machines).

The team's commit to sweep is reproduced and pushed: its commit to a bare git origin, its
outputs to a DVC directory remote. Clone A pulls those outputs, queues a sweep of three learning
rates, runs the queue on two workers and pushes the experiments. Clone B, a fresh `git clone` of
the origin with its own DVC cache, pulls them, compares them and applies the best. The docs page
shows each command run here, word for word (the last test checks).
"""

import json
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from testkit import experiments
from testkit.markdown import section
from testkit.repos import ROOT, commit_all, dvc_status, make_pipeline_repo, ran_stages, run

pytestmark = pytest.mark.slow

# On the shrunken data the two larger rates both reach test accuracy 1.0 in one epoch; the
# smallest does not. Best is highest test accuracy, then lowest test loss, as on real runs.
RATES = [0.0001, 0.001, 0.01]
NAMES = ["lr-1", "lr-2", "lr-3"]  # `-n lr` with a sweep numbers its runs in the order of the values
OUTPUTS = ["dvc", "pull"]  # the commit's outputs: the runs skip the stages the sweep leaves alone
SWEEP = ["dvc", "exp", "run", "--queue", "-n", "lr", "-S", f"train.learning_rate={','.join(map(str, RATES))}"]
START = ["dvc", "queue", "start", "-j", "2"]
STATUS = ["dvc", "queue", "status"]
STOP = ["dvc", "queue", "stop"]
PUSH = ["dvc", "exp", "push", "origin", *NAMES]  # the git refs to origin, the outputs to the default DVC remote
LIST = ["dvc", "exp", "list", "origin", "--name-only"]
PULL = ["dvc", "exp", "pull", "origin"]  # every experiment of HEAD, with its outputs
SHOW = ["dvc", "exp", "show", "--json"]
TABLE = [
    "dvc",
    "exp",
    "show",
    "--only-changed",
    "--drop",
    "per_class",
    "--sort-by",
    "test_accuracy",
    "--sort-order",
    "desc",
]
PLOTS = ["dvc", "plots", "diff", *NAMES]
QUEUE_TIMEOUT = 900  # seconds; the three runs on two workers took 70 s on 2 shared cores
DOCS = ROOT / "docs/experiments.md"
SECTION = "A sweep on several machines"


@dataclass
class Sweep:
    base: Path  # the temporary folder holding A, origin.git and remote/
    repo: Path  # clone A
    branch: str
    experiments: dict[str, dict]  # A's `dvc exp show --json`, by name
    status: str  # A's `dvc queue status` once they had finished
    logs: dict[str, str]  # each experiment's `dvc queue logs`


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Iterator[Sweep]:
    """Clone A: the commit's outputs pulled, the sweep queued, run on two workers until done,
    workers stopped, pushed."""
    base = tmp_path_factory.mktemp("team")
    team = make_pipeline_repo(base / "team")  # the commit to sweep, reproduced, as main is
    run(["git", "init", "-q", "--bare", str(base / "origin.git")], cwd=base)
    run(["git", "remote", "add", "origin", str(base / "origin.git")], cwd=team)
    run(["dvc", "remote", "add", "-d", "-f", "shared", str(base / "remote")], cwd=team)  # -f: main has one
    run(["dvc", "repro"], cwd=team)
    commit_all(team, "a shared DVC remote; dvc.lock and metrics of a full run")
    run(["dvc", "push"], cwd=team)
    run(["git", "push", "-q", "origin", "HEAD"], cwd=team)
    branch = run(["git", "branch", "--show-current"], cwd=team).stdout.strip()
    repo = git_clone(base, branch, "A")
    try:
        run(OUTPUTS, cwd=repo)
        run(SWEEP, cwd=repo)
        assert "Started '2' new experiments task queue workers" in experiments.start(repo, START)
        done = experiments.wait_for(repo, NAMES, timeout=QUEUE_TIMEOUT)
        status = run(STATUS, cwd=repo).stdout
        logs = {name: run(["dvc", "queue", "logs", name], cwd=repo).stdout for name in NAMES}
        run(STOP, cwd=repo)
        left = experiments.wait_until_stopped(repo, timeout=60)
        assert not left, f"queue processes still running after `dvc queue stop`: {left}"
        run(PUSH, cwd=repo)
        yield Sweep(base, repo, branch, done, status, logs)
    finally:
        experiments.stop_queue(repo)  # after a failure above: nothing may outlive the test


def git_clone(base: Path, branch: str, name: str) -> Path:
    """A fresh clone of the origin, its own (empty) DVC cache, the committed remote config."""
    path = base / name
    run(["git", "clone", "-q", "-b", branch, str(base / "origin.git"), str(path)], cwd=base)
    assert not (path / ".dvc/cache").exists()
    return path


def clone(sweep: Sweep, name: str) -> Path:
    return git_clone(sweep.base, sweep.branch, name)


@pytest.fixture(scope="module")
def pulled(sweep) -> Path:
    """Clone B with the sweep pulled: `dvc exp pull origin`."""
    repo = clone(sweep, "B")
    run(PULL, cwd=repo)
    return repo


def committed(repo: Path, name: str, path: str) -> str:
    """A file as experiment `name` committed it: DVC keeps it at refs/exps/<baseline>/<name>."""
    refs = run(["git", "for-each-ref", "--format=%(refname)", "refs/exps/"], cwd=repo).stdout.split()
    [ref] = [ref for ref in refs if ref.endswith(f"/{name}")]
    return run(["git", "show", f"{ref}:{path}"], cwd=repo).stdout


def best(found: dict[str, dict]) -> str:
    """The name of the highest test accuracy, ties to the lowest test loss."""
    score = {name: experiments.metrics(e) for name, e in found.items()}
    return max(score, key=lambda name: (score[name]["test_accuracy"], -score[name]["test_loss"]))


def test_the_sweep_ran_each_rate_on_two_workers_and_left_no_process(sweep):
    for name, rate in zip(NAMES, RATES):
        experiment = sweep.experiments[name]
        assert experiment["state"] == "success", name
        assert experiments.params(experiment)["train"]["learning_rate"] == rate, name
        assert 0 <= experiments.metrics(experiment)["test_accuracy"] <= 1, name
    tasks = [line.split() for line in sweep.status.splitlines() if any(name in line.split() for name in NAMES)]
    assert sorted((task[1], task[-1]) for task in tasks) == [(name, "Success") for name in NAMES], sweep.status
    records = experiments.processes(sweep.repo)
    assert {"dvc-exp-worker-1", "dvc-exp-worker-2"} <= set(records)  # -j 2: two workers
    assert len(records) == 2 + len(NAMES)  # and one process per experiment, no more
    assert all(record["returncode"] == 0 for record in records.values()), records
    assert experiments.running(sweep.repo) == []
    worked = [
        log.name
        for log in (sweep.repo / experiments.EXPS / "celery").glob("dvc-exp-worker-*.out")
        if "run_exp[" in log.read_text()
    ]
    assert len(worked) == 2, "both workers should have run an experiment"


def test_each_run_of_the_sweep_skips_the_stages_the_rate_does_not_change(sweep):
    # With the commit's outputs in the cache no two runs write the same new cache object at
    # once, which DVC's cache does not survive (docs/experiments.md#a-sweep-on-several-machines).
    for name in NAMES:
        log = sweep.logs[name]
        for stage in ("fetch", "preprocess", "collected"):
            assert f"Stage '{stage}' didn't change, skipping" in log, f"{name} ran {stage}:\n{log}"
        assert ran_stages(log) == ["train", "evaluate", "plot", "export", "field"], f"{name}:\n{log}"


def test_push_sends_the_commits_to_the_git_origin_and_the_outputs_to_the_dvc_remote(sweep):
    refs = run(["git", "ls-remote", "origin", "refs/exps/*"], cwd=sweep.repo).stdout.split()
    assert sorted(ref.rsplit("/", 1)[-1] for ref in refs if ref.startswith("refs/exps/")) == NAMES
    remote = sweep.base / "remote/files/md5"
    for name in NAMES:
        lock = yaml.safe_load(committed(sweep.repo, name, "dvc.lock"))
        for stage, entry in lock["stages"].items():
            for out in entry.get("outs", []):
                digest = out["md5"]
                cached = (remote / digest[:2] / digest[2:]).exists()
                uncached = not out["path"].startswith(("data/", "models/"))  # cache: false outputs live in git
                assert cached or uncached, f"{name}: {stage}'s {out['path']} is not on the DVC remote"


def test_a_fresh_clone_pulls_the_three_with_their_test_accuracy(sweep, pulled):
    assert sorted(run(LIST, cwd=pulled).stdout.split()) == NAMES
    found = experiments.show(pulled)
    assert sorted(found) == NAMES
    table = [line for line in run(TABLE, cwd=pulled).stdout.splitlines() if "[lr-" in line]
    assert len(table) == 3 and "[lr-1]" in table[-1]  # sorted by test accuracy, the smallest rate last
    for name in NAMES:
        ours, theirs = experiments.metrics(found[name]), experiments.metrics(sweep.experiments[name])
        assert ours["test_accuracy"] == theirs["test_accuracy"], name
        assert experiments.params(found[name]) == experiments.params(sweep.experiments[name]), name


def test_plots_diff_draws_the_experiments_side_by_side(pulled, tmp_path):
    run([*PLOTS, "-o", str(tmp_path / "plots")], cwd=pulled)
    page = (tmp_path / "plots/index.html").read_text()
    for name in NAMES:
        assert f'"rev": "{name}"' in page, f"{name} is not drawn"


def test_a_fresh_clone_applies_the_best_with_a_clean_status_and_the_metrics_of_a(sweep):
    repo = clone(sweep, "C")
    run(PULL, cwd=repo)
    found = json.loads(run(SHOW, cwd=repo).stdout)  # parsed here as a reader of the docs would
    named = {e["name"]: e["revs"][0] for baseline in found for e in baseline.get("experiments") or []}
    name = best(named)
    assert name == best(sweep.experiments) == NAMES[-1]  # the docs apply lr-3: it is the best here, every time
    run(["dvc", "exp", "apply", name], cwd=repo)
    assert dvc_status(repo) == {}  # `dvc exp pull` brought the outputs; apply checked them out
    for path in ("metrics/metrics.json", "metrics/export.json"):
        assert json.loads((repo / path).read_text()) == experiments.metrics(sweep.experiments[name], path), path
    assert (repo / "dvc.lock").read_text() == committed(sweep.repo, name, "dvc.lock")
    rate = yaml.safe_load((repo / "params.yaml").read_text())["train"]["learning_rate"]
    assert rate == RATES[NAMES.index(name)]


def test_the_docs_show_exactly_the_commands_run_here():
    lines = [line.split("  #")[0].strip() for line in section(DOCS.read_text(), SECTION).splitlines()]
    commands = [OUTPUTS, SWEEP, START, STATUS, STOP, PUSH, LIST, PULL, TABLE, PLOTS, ["dvc", "exp", "apply", NAMES[-1]]]
    for command in map(shlex.join, commands):
        assert command in lines, f"{DOCS.name}: no line `{command}` in {SECTION!r}"
