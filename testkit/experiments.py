"""DVC experiments as `dvc exp show --json` describes them, and the queue's background processes.

DVC 3.67 has no `dvc queue wait`: `dvc queue start` spawns celery workers and returns at once.
A test waits until the process records DVC keeps in `.dvc/tmp/exps/` show every queued run
finished, reads the outcome from `dvc exp show --json`, then stops the workers and checks from
the same records that none is left running.
"""

import json
import subprocess
import time
from pathlib import Path

import psutil

from testkit.repos import env, run

EXPS = Path(".dvc/tmp/exps")  # DVC's queue state: celery/ (workers) and run/<task>/ (one per experiment)
FINISHED = {"success", "failed"}


def show(repo: Path) -> dict[str, dict]:
    """The experiments of every baseline in `dvc exp show --json`, by name: their `revs[0]`
    (params and metrics under `data`) plus `state` ("queued", "running", "success", "failed")."""
    experiments = {}
    for baseline in json.loads(run(["dvc", "exp", "show", "--json"], cwd=repo).stdout):
        for experiment in baseline.get("experiments") or []:
            executor = experiment.get("executor") or {}
            # An experiment pulled from another machine has no executor here: it is a finished commit.
            experiments[experiment["name"]] = {**experiment["revs"][0], "state": executor.get("state", "success")}
    return experiments


def params(experiment: dict) -> dict:
    return experiment["data"]["params"]["params.yaml"]["data"]


def metrics(experiment: dict, path: str = "metrics/metrics.json") -> dict:
    return experiment["data"]["metrics"][path]["data"]


def wait_for(repo: Path, names: list[str], timeout: float) -> dict[str, dict]:
    """Wait until every named experiment has finished; return them as `show` gives them.

    Waits on DVC's process records first (file reads, where each `dvc exp show` costs a second
    of CPU that the runs need), then on `dvc exp show --json` while the workers collect the
    results into git; fails on an experiment that failed, with its log.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = [record for name, record in processes(repo).items() if not name.startswith("dvc-exp-worker")]
        if len(tasks) >= len(names) and all(task["returncode"] is not None for task in tasks):
            break
        time.sleep(2)
    while True:
        experiments = show(repo)
        states = {name: experiments.get(name, {}).get("state", "absent") for name in names}
        failed = [name for name, state in states.items() if state == "failed"]
        if failed:
            logs = "\n".join(run(["dvc", "queue", "logs", name], cwd=repo, check=False).stdout for name in failed)
            raise AssertionError(f"experiments {failed} failed:\n{logs}")
        if all(state in FINISHED for state in states.values()):
            return {name: experiments[name] for name in names}
        if time.monotonic() > deadline:
            status = run(["dvc", "queue", "status"], cwd=repo, check=False).stdout
            raise AssertionError(f"the queue did not finish in {timeout:.0f} s: {states}\n{status}")
        time.sleep(2)


def start(repo: Path, command: list[str]) -> str:
    """Run `dvc queue start ...`; return its output.

    The workers it spawns inherit its stdout and stderr: read through a pipe (as `run` does),
    the call would return only when the last worker exits, after the whole queue.
    """
    log = repo / ".dvc/tmp/queue-start.log"  # DVC's git-ignored scratch folder
    with log.open("w") as out:
        result = subprocess.run(command, cwd=repo, env=env(), stdout=out, stderr=subprocess.STDOUT, timeout=60)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{log.read_text()}")
    return log.read_text()


def processes(repo: Path) -> dict[str, dict]:
    """DVC's record of each process the queue spawned (workers and experiments): name -> {pid, returncode}.

    `returncode` stays null while the process runs.
    """
    records = [*(repo / EXPS / "celery").glob("*.json"), *(repo / EXPS / "run").glob("*/*.json")]
    return {record.stem: json.loads(record.read_text()) for record in records}


def running(repo: Path) -> list[psutil.Process]:
    """The recorded processes still alive, checked to be this repo's (not a pid reused since)."""
    alive = []
    for record in processes(repo).values():
        try:
            process = psutil.Process(record["pid"])
            if process.status() != psutil.STATUS_ZOMBIE and Path(process.cwd()).is_relative_to(repo):
                alive.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return alive


def wait_until_stopped(repo: Path, timeout: float) -> list[psutil.Process]:
    """Wait for the queue's processes to exit; return those still running after `timeout`."""
    deadline = time.monotonic() + timeout
    while (alive := running(repo)) and time.monotonic() < deadline:
        time.sleep(1)
    return alive


def stop_queue(repo: Path, timeout: float = 30) -> None:
    """Teardown: `dvc queue stop --kill`, then kill by pid whatever of this repo's queue still runs."""
    run(["dvc", "queue", "stop", "--kill"], cwd=repo, check=False)
    for process in wait_until_stopped(repo, timeout):
        process.kill()
