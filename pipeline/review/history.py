"""Test accuracy across the git history: one row per commit that changed the metrics.

    python -m pipeline.review.history [-n 20] [--rev main] [--out history.png] [--markdown]

Reads metrics/metrics.json and params.yaml at each commit of REV's first-parent line that touched
metrics/metrics.json: both are tracked by git, so nothing is retrained or pulled. Prints a table,
newest first (commit, date, subject, test accuracy and loss, epochs, parameter count, and the
params that differ from the row below), and writes a PNG of test accuracy over the same commits,
oldest to newest. A commit whose params.yaml cannot be read is marked as such, not fatal, and one
whose metrics.json cannot be read is skipped: the reasons go to stderr.
"""

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from pipeline.core import artifacts, cli, config, paths
from pipeline.core.errors import DataError
from pipeline.review import revisions, tables
from pipeline.train import plots

SUBJECT_WIDTH = 50
HEADER = ("commit", "date", "subject", "test acc", "test loss", "epochs", "params", "params changed")
RIGHT = (False, False, False, True, True, True, True, False)


@dataclass(frozen=True)
class Entry:
    commit: revisions.Commit
    metrics: dict
    params: dict | revisions.Unreadable | None


def entries(rev: str, limit: int) -> list[Entry]:
    """Up to `limit` + 1 commits with a metrics file, newest first: the extra one is what the
    oldest shown row's params are compared with."""
    found: list[Entry] = []
    for commit in revisions.log(rev, paths.METRICS):
        try:
            metrics = revisions.read_json(commit.sha, paths.METRICS)
        except DataError as error:  # history cannot be rewritten: say so and go on
            print(f"skipped {commit.sha[:7]}: {error}", file=sys.stderr)
            continue
        if isinstance(metrics, dict):  # a commit that deleted the file has none
            found.append(Entry(commit, metrics, revisions.read_params(commit.sha, paths.PARAMS)))
        if len(found) > limit:
            break
    return found


def params_changed(newer: Entry, older: Entry | None) -> str:
    """`train.model=cnn, train.epochs=10`: dotted keys whose value differs from `older`, or a
    marker where either side's params.yaml is unreadable."""
    if isinstance(newer.params, revisions.Unreadable):
        return revisions.UNREADABLE
    if older is None:
        return "(first)"
    if isinstance(older.params, revisions.Unreadable):
        return f"(not compared: {older.commit.sha[:7]} unreadable)"
    changed = revisions.changed_params(older.params, newer.params)
    return ", ".join(f"{key}={new}" for key, (_, new) in changed.items()) or "—"


def _number(metrics: dict, key: str, form: str) -> str:
    value = metrics.get(key)
    return format(value, form) if config.is_number(value) else "—"


def rows(found: list[Entry], limit: int) -> list[list[str]]:
    """One row per shown entry, newest first, in HEADER's columns."""
    table = []
    for index, entry in enumerate(found[:limit]):
        older = found[index + 1] if index + 1 < len(found) else None
        subject = entry.commit.subject
        if len(subject) > SUBJECT_WIDTH:
            subject = subject[: SUBJECT_WIDTH - 1] + "…"
        table.append(
            [
                entry.commit.sha[:7],
                entry.commit.date,
                subject,
                _number(entry.metrics, "test_accuracy", ".2%"),
                _number(entry.metrics, "test_loss", ".4f"),
                _number(entry.metrics, "epochs", "d"),
                _number(entry.metrics, "params", ",d"),
                params_changed(entry, older),
            ]
        )
    return table


def accuracy_figure(shown: list[Entry], rev: str) -> Figure:
    """Test accuracy (%) per commit, oldest on the left, each point labelled by its short sha."""
    oldest_first = shown[::-1]
    accuracies = [entry.metrics.get("test_accuracy") for entry in oldest_first]
    percents = [100 * value if config.is_number(value) else math.nan for value in accuracies]
    figure = Figure(figsize=(min(16, max(6, 0.45 * len(shown))), 4))
    axes = figure.add_subplot()
    positions = range(len(oldest_first))
    axes.plot(positions, percents, marker="o")
    step = max(1, len(oldest_first) // 40)  # at most ~40 labels stay readable
    axes.set_xticks(
        positions[::step],
        labels=[entry.commit.sha[:7] for entry in oldest_first][::step],
        rotation=45,
        ha="right",
        fontsize=8,
    )
    if len(oldest_first) <= 20:  # beyond that the labels overlap
        for position, percent in zip(positions, percents):
            axes.annotate(
                f"{percent:.2f}",
                (position, percent),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=8,
            )
    axes.set_xlabel(f"commits that changed {paths.METRICS}, oldest → newest")
    axes.set_ylabel("test accuracy (%)")
    axes.set_title(f"Test accuracy on {rev}")
    axes.margins(y=0.15)  # room for the labels above the points
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.review.history", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-n", type=cli.positive, default=20, metavar="N", help="newest N commits (default: %(default)s)"
    )
    parser.add_argument("--rev", help="branch or commit whose history to show (default: main, else HEAD)")
    parser.add_argument("--out", type=Path, default=paths.HISTORY_PLOT, help="the PNG (default: %(default)s)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table instead of plain text")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rev = args.rev or revisions.branch_or_head("main")
    revisions.resolve(rev)  # an unknown name is one clear line, not git's usage text
    artifacts.output_folder(args.out.parent)  # a bad --out is one line before the table, not after
    found = entries(rev, args.n)
    if not found:
        raise DataError(f"no commit of {rev} has {paths.METRICS}: commit the results of `dvc repro` first")
    table = rows(found, args.n)
    print((tables.markdown if args.markdown else tables.plain)(HEADER, table, RIGHT), flush=True)
    for entry in found:
        if isinstance(entry.params, revisions.Unreadable):
            print(f"{paths.PARAMS} at {entry.commit.sha[:7]} is unreadable: {entry.params.reason}", file=sys.stderr)
    artifacts.write_bytes(args.out, plots.to_png(accuracy_figure(found[: args.n], rev)))
    print(f"wrote {args.out}", file=sys.stderr)  # stderr: stdout stays a table to paste


if __name__ == "__main__":
    cli.run(main, interrupted=cli.COMMAND_INTERRUPTED)
