"""How a change moved test accuracy, as Markdown: what a pull request shows its reviewers.

    python -m pipeline.review.report --base origin/main [--head REV] [--out report] [--max-drop 0.005]

Reads metrics/metrics.json, params.yaml, metrics/learning_curve.csv and metrics/predictions.csv at the
base and the head (a revision, or by default the workspace) through git, so it needs neither the
DVC cache nor a retrain (the collected digits aside). Writes OUT/report.md: the headline metrics
with their absolute and relative change, the params that changed (or why a side's params.yaml is
unreadable), the digits whose recall or F1 moved by more than --class-threshold, DVC's own
`metrics diff` and `params diff`, and links to the learning curves and confusion matrices of both
sides, written as PNGs beside it. When either side has collected digits (data/collected/), a
section counts those added, removed and relabelled per label (listed from DVC's cache or remote:
review/collected.py), with the field stage's scores on them, and collected.png draws the added
ones. With --max-drop, it exits 1 after writing the report when test accuracy fell by more than
that.
"""

import argparse
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.core import artifacts, cli, config, paths
from pipeline.core.errors import CheckFailed, DataError, complaint
from pipeline.review import collected, revisions, tables
from pipeline.train import plots

# metrics/learning_curve.csv's name until November 2026, when it could be read as the
# accuracy history across commits that `python -m pipeline.review.history` shows.
FORMER_LEARNING_CURVE = Path("metrics/history.csv")

REPORT = "report.md"
MARKER = "<!-- mnist-pipeline-report -->"  # the workflow finds its own PR comment by this
FIGURES_MARKER = "<!-- figures -->"  # what follows needs the PNGs beside report.md
FIGURES = ("loss", "accuracy", "confusion")
CLASS_SCORES = ("recall", "f1")
DVC_TIMEOUT = 300  # seconds; a metrics diff takes about one


@dataclass(frozen=True)
class Side:
    """One side of the comparison: a commit, or the workspace."""

    name: str  # "base" or "head": the prefix of its figure files
    label: str  # how the report names it, e.g. "`origin/main` (1a2b3c4)"
    rev: str | None  # full sha, or revisions.WORKSPACE
    metrics: dict | None  # None: no metrics.json there
    params: dict | revisions.Unreadable | None
    field: dict | None = None  # metrics/field.json; None where the field stage has not run


def load_side(name: str, given: str | None) -> Side:
    """Metrics and params of revision `given` (None: the workspace); RevisionError if unknown."""
    rev = revisions.WORKSPACE if given is None else revisions.resolve(given)
    if given is None:
        label = "the workspace"
    else:  # the short sha too, unless that is what was given
        label = f"`{given}`" if rev.startswith(given) else f"`{given}` ({rev[:7]})"
    metrics = revisions.read_json(rev, paths.METRICS)
    if metrics is not None and not isinstance(metrics, dict):
        raise DataError(f"{paths.METRICS} at {revisions.describe(rev)}: expected a JSON object")
    field = revisions.read_json(rev, paths.FIELD_METRICS)
    field = field if isinstance(field, dict) else None
    return Side(name, label, rev, metrics, revisions.read_params(rev, paths.PARAMS), field)


def signed(delta: float) -> str:
    """+0.0012, -3, 0: a change with its sign, no trailing zeros."""
    if delta == 0:
        return "0"
    if isinstance(delta, int):
        return f"{delta:+,d}"
    return f"{delta:+.6f}".rstrip("0").rstrip(".")  # metrics carry 6 decimals


def relative(base: float, head: float) -> str:
    if base == 0:
        return "—"
    return "0%" if head == base else f"{(head - base) / abs(base):+.2%}"


def shown(value: float) -> str:
    return f"{value:,d}" if isinstance(value, int) else str(value)


def headline_keys(metrics: dict) -> list[str]:
    """Top-level numeric metrics in file order: test_accuracy, test_loss, train_accuracy, ..."""
    return [k for k, v in metrics.items() if config.is_number(v)]


def metrics_rows(base: dict | None, head: dict) -> list[list[str]]:
    """[metric, base, head, change, relative change] per headline metric; '—' where base lacks it."""
    rows = []
    for key in headline_keys(head):
        old, new = (base or {}).get(key), head[key]
        if config.is_number(old):
            rows.append([key, shown(old), shown(new), signed(new - old), relative(old, new)])
        else:
            rows.append([key, "—", shown(new), "—", "—"])
    return rows


def class_changes(base: dict, head: dict, threshold: float) -> list[list[str]]:
    """[digit, then base → head (change) per score] for digits whose recall or F1 moved by more
    than `threshold` (absolute), in digit order. `base` and `head` are metrics.json's per_class."""
    rows = []
    for digit in sorted(head, key=int):
        before, after = base.get(digit) or {}, head[digit]
        pairs = [(before.get(score), after.get(score)) for score in CLASS_SCORES]
        # rounded: 0.9 - 0.895 is 0.0050000000000000044, not above a threshold of 0.005
        if any(None not in (old, new) and round(abs(new - old), 9) > threshold for old, new in pairs):
            rows.append([digit] + [f"{old} → {new} ({signed(new - old)})" for old, new in pairs])
    return rows


def accuracy_check(base: dict | None, head: dict, max_drop: float) -> tuple[bool, str]:
    """(passed, one line) for the gate `head >= base - max_drop` on test_accuracy. Rounded first,
    so a drop of exactly `max_drop` passes despite float error; no baseline passes."""
    if base is None or "test_accuracy" not in base or "test_accuracy" not in head:
        return True, "no baseline test accuracy to compare with"
    old, new = base["test_accuracy"], head["test_accuracy"]
    passed = round(old - new, 9) <= max_drop
    verdict = "within" if passed else "more than"
    return passed, f"test accuracy {old} → {new} ({signed(new - old)}): {verdict} the allowed drop of {max_drop:g}"


def figures(side: Side, scratch: Path) -> dict[str, bytes]:
    """PNGs by file name (base-loss.png, ...) from the side's learning curve and predictions.csv."""
    rendered = {}
    curve = revisions.export(side.rev, paths.LEARNING_CURVE, scratch)
    if curve is None:  # a base from before the file's rename
        curve = revisions.export(side.rev, FORMER_LEARNING_CURVE, scratch)
    if curve is not None:
        epochs = artifacts.load_learning_curve(curve)
        for metric in ("loss", "accuracy"):
            rendered[f"{side.name}-{metric}.png"] = plots.to_png(plots.learning_curve(epochs, metric))
    predictions = revisions.export(side.rev, paths.PREDICTIONS, scratch)
    if predictions is not None:
        actual, predicted, _ = artifacts.load_predictions(predictions)
        rendered[f"{side.name}-confusion.png"] = plots.to_png(plots.confusion_heatmap(actual, predicted))
    return rendered


def run_dvc(args: list[str]) -> str:
    """DVC's Markdown output, or one italic line saying why there is none: the report still helps."""
    dvc = revisions.tool("dvc")
    if dvc is None:
        return "_dvc is not installed here_"
    try:
        result = subprocess.run([dvc, *args], capture_output=True, text=True, timeout=DVC_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"_no answer within {DVC_TIMEOUT} s_"
    if result.returncode != 0:
        return f"_failed: {complaint(result.stderr, 'no message')}_"
    table = result.stdout.strip()
    return table if len(table.splitlines()) > 2 else "_no changes_"  # a header and its rule alone


def dvc_diffs(base: str, head: str | None) -> dict[str, str]:
    """{command: its output} for `dvc metrics diff --md` and `dvc params diff --md`."""
    revs = [base] if head is None else [base, head]
    commands = [["metrics", "diff", "--md", *revs], ["params", "diff", "--md", *revs]]
    return {"dvc " + " ".join(command): run_dvc(command) for command in commands}


def render(
    base: Side,
    head: Side,
    threshold: float,
    check: tuple[bool, str] | None,
    dvc: dict[str, str],
    images: dict[str, bytes],
    digits: collected.Comparison | None = None,
) -> str:
    """The whole report.md: title, accuracy check, metrics, field and collected digits, params,
    digits whose scores moved, DVC's diffs, figures."""
    parts = [MARKER, title(base, head)]
    if check is not None:
        parts.append(f"**Accuracy check {'passed' if check[0] else 'FAILED'}**: {check[1]}.")
    rows = metrics_rows(base.metrics, head.metrics)
    header = ["metric", "base", "head", "change", "relative"]
    parts.append("### Metrics\n\n" + tables.markdown(header, rows, [False] + [True] * 4))
    if head.field is not None:
        parts.append(field_section(base.field, head.field))
    if digits is not None or any(collected_scores(side.field) for side in (base, head)):
        image = collected.GALLERY if collected.GALLERY in images else None
        parts.append(collected_section(base, head, digits, image))
    parts.append(params_section(base, head))
    if base.metrics is not None:
        per_class = [side.metrics.get("per_class") or {} for side in (base, head)]
        parts.append(classes_section(*per_class, threshold))
    for command, output in dvc.items():  # folded: long, and the tables above say the same
        parts.append(f"<details><summary><code>{command}</code></summary>\n\n{output}\n\n</details>")
    parts += [FIGURES_MARKER, figures_section(base, head, images)]
    if collected.GALLERY in images:
        parts.append(f"### Collected digits added\n\n![collected digits added, a row per label]({collected.GALLERY})")
    return "\n\n".join(parts) + "\n"


def title(base: Side, head: Side) -> str:
    if base.metrics is None:
        return (
            f"## No baseline metrics at {base.label}\n\n"
            f"{base.label} has no `{paths.METRICS}` (a first pull request, or a base that predates "
            f"the metrics): nothing to compare with, so {head.label} is shown alone."
        )
    old, new = base.metrics.get("test_accuracy"), head.metrics.get("test_accuracy")
    headline = f"{old} → {new} ({signed(new - old)})" if None not in (old, new) else "not recorded"
    return f"## Test accuracy: {headline}\n\nHead: {head.label}; base: {base.label}."


def field_section(base: dict | None, head: dict) -> str:
    """Accuracy per source of the field set (metrics/field.json): what users get."""
    count = head.get("images_per_source")
    heading = f"### Field accuracy: the exported model on images users send ({count:,} test digits a source)"
    sources = [key for key in head if key != "images_per_source" and config.is_number(head[key])]
    rows = metrics_rows({key: (base or {}).get(key) for key in sources}, {key: head[key] for key in sources})
    return (
        heading + "\n\n" + tables.markdown(["source", "base", "head", "change", "relative"], rows, [False] + [True] * 4)
    )


def collected_scores(field: dict | None) -> dict:
    """field.json's scores on the collected test digits; {} where there are none."""
    scores = (field or {}).get("collected")
    return scores if isinstance(scores, dict) else {}


def collected_section(base: Side, head: Side, digits: collected.Comparison | None, image: str | None) -> str:
    """The collected digits added, removed and relabelled since the base; the field stage's scores on them."""
    parts = ["### Collected digits"]
    if digits is not None:
        parts.append(collected.summary(digits, base.label, head.label, image))
    before, after = collected_scores(base.field), collected_scores(head.field)
    if before or after:
        parts.append(collected_scores_table(before, after))
    return "\n\n".join(parts)


def collected_scores_table(before: dict, after: dict) -> str:
    """Digits and accuracy base → head, for all the collected test digits and per label."""

    def number(scores: dict, key: str) -> str:
        return shown(scores[key]) if config.is_number(scores.get(key)) else "—"

    def row(name: str, old: dict, new: dict) -> list[str]:
        accuracy = [side.get("accuracy") for side in (old, new)]
        change = signed(accuracy[1] - accuracy[0]) if all(config.is_number(a) for a in accuracy) else "—"
        return [name, *(number(side, key) for key in ("digits", "accuracy") for side in (old, new)), change]

    def labels(scores: dict) -> dict:
        per_label = scores.get("per_label")
        return {k: v for k, v in per_label.items() if isinstance(v, dict)} if isinstance(per_label, dict) else {}

    old_labels, new_labels = labels(before), labels(after)
    names = sorted(old_labels.keys() | new_labels.keys(), key=collected.label_order)
    rows = [row("all", before, after)] + [row(n, old_labels.get(n, {}), new_labels.get(n, {})) for n in names]
    header = ["label", "test digits, base", "head", "accuracy, base", "head", "change"]
    return f"The exported model on the collected test digits (`{paths.FIELD_METRICS}`):\n\n" + tables.markdown(
        header, rows, [False] + [True] * 5
    )


def params_section(base: Side, head: Side) -> str:
    unreadable = [side for side in (base, head) if isinstance(side.params, revisions.Unreadable)]
    if unreadable:
        lines = [f"`{paths.PARAMS}` at {side.label} is unreadable: {code(side.params.reason)}" for side in unreadable]
        return "### Params\n\n" + "\n\n".join(lines) + "\n\nNo params are compared."
    changed = revisions.changed_params(base.params, head.params)
    if not changed:
        return "### Params\n\nNo param changed."
    rows = [[f"`{key}`", str(old), str(new)] for key, (old, new) in changed.items()]
    return "### Params changed\n\n" + tables.markdown(["param", "base", "head"], rows)


def code(text: str) -> str:
    """`text` as inline Markdown code, whatever backticks it holds: YAML's `<block end>` in an
    error message would otherwise vanish as an HTML tag."""
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


def classes_section(base: dict, head: dict, threshold: float) -> str:
    rows = class_changes(base, head, threshold)
    heading = f"### Digits whose recall or F1 moved by more than {threshold:g}"
    if not rows:
        return f"{heading}\n\nNone."
    return f"{heading}\n\n" + tables.markdown(["digit", *(f"{s} base → head" for s in CLASS_SCORES)], rows)


def figures_section(base: Side, head: Side, images: dict[str, bytes]) -> str:
    sides = [side for side in (base, head) if any(name.startswith(f"{side.name}-") for name in images)]
    if not sides:
        return "### Figures\n\nNeither side has `metrics/learning_curve.csv` or `metrics/predictions.csv`."

    def cell(side: Side, figure: str) -> str:
        name = f"{side.name}-{figure}.png"
        return f"![{figure}, {side.name}]({name})" if name in images else "—"

    rows = [[figure, *(cell(side, figure) for side in sides)] for figure in FIGURES]
    return "### Figures\n\n" + tables.markdown(["", *(f"{s.name}: {s.label}" for s in sides)], rows)


def write(out: Path, text: str, images: dict[str, bytes]) -> None:
    """report.md and its PNGs; figures of an earlier report that this one lacks are removed."""
    for name in [f"{side}-{figure}.png" for side in ("base", "head") for figure in FIGURES] + [collected.GALLERY]:
        if name not in images:
            (out / name).unlink(missing_ok=True)
    for name, png in images.items():
        artifacts.write_bytes(out / name, png)
    artifacts.write_bytes(out / REPORT, text.encode())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.review.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, metavar="REV", help="the revision to compare with, e.g. origin/main")
    parser.add_argument("--head", metavar="REV", help="the revision to report on (default: the workspace)")
    parser.add_argument("--out", type=Path, default=paths.REPORT_DIR, metavar="DIR", help="default: %(default)s")
    parser.add_argument(
        "--class-threshold",
        type=float,
        default=0.005,
        metavar="X",
        help="list digits whose recall or F1 changed by more than X (default: %(default)s)",
    )
    parser.add_argument(
        "--max-drop",
        type=float,
        metavar="X",
        help="exit 1 (after writing the report) if test accuracy fell by more than X, e.g. 0.005",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    base, head = load_side("base", args.base), load_side("head", args.head)
    if head.metrics is None:
        raise DataError(f"no {paths.METRICS} in {head.label}: run `dvc repro` or `dvc pull` first")
    check = None if args.max_drop is None else accuracy_check(base.metrics, head.metrics, args.max_drop)
    # Before the figures and DVC's diffs, the slow part: a bad --out costs one line and no wait.
    artifacts.output_folder(args.out)
    with tempfile.TemporaryDirectory() as scratch:
        images = figures(head, Path(scratch))
        if base.metrics is not None:
            images = {**figures(base, Path(scratch)), **images}
    digits = collected.compare(base.rev, head.rev)
    gallery = None if digits is None else collected.draw(digits)
    if gallery is not None:
        images[collected.GALLERY] = gallery
    text = render(base, head, args.class_threshold, check, dvc_diffs(args.base, args.head), images, digits)
    write(args.out, text, images)
    cli.log(f"wrote {args.out / REPORT} and {len(images)} figures")
    if check is not None and not check[0]:
        raise CheckFailed(check[1])


if __name__ == "__main__":
    cli.run(main, interrupted=cli.COMMAND_INTERRUPTED)
