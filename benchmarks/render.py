"""Rewrite the measured figures of README.md and docs/*.md from the records and metrics/.

Every block between `<!-- rendered: NAME -->` (or `<!-- rendered: NAME ARGUMENT -->`) and
`<!-- /rendered -->` is made by the function registered for NAME below, from the benchmark
records (benchmarks/results/*.json, written by the benchmarks) and the git-tracked outputs of the
pipeline (metrics/*.json, dvc.lock, dvc.yaml, params.yaml): never typed by hand.

    python benchmarks/render.py            # rewrite the blocks that changed
    python benchmarks/render.py --check    # exit 1, one line per stale block; writes nothing

It reads only git-tracked files (and git history, for the history block), so the check runs on a
fresh clone with no data or models.
"""

import argparse
import json
import re
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import records

from pipeline.config import parse_yaml

BLOCK = re.compile(
    r"(?P<open><!-- rendered: (?P<name>[\w-]+)(?: (?P<arg>[^ ]+))? -->\n)(?P<body>.*?)(?P<close><!-- /rendered -->)",
    re.DOTALL,
)
RENDERERS: dict[str, Callable[["Sources", str | None], str]] = {}
SOURCES = ("photos", "drawn")  # the two field sources the headline and the results table show
RECIPES = ("cnn_fast", "cnn_aug", "cnn_best")


class Stale(Exception):
    """A block that cannot be rendered here (a commit this clone does not have): not checked."""


class Sources:
    """What the blocks are rendered from, read once: records and the git-tracked outputs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.records = records.load_all(root / "benchmarks/results")
        self.metrics = self.json("metrics/metrics.json")
        self.export = self.json("metrics/export.json")
        self.field = self.json("metrics/field.json")
        self.dataset = self.json("metrics/dataset.json")
        self.params = self.yaml("params.yaml")
        self.dvc_yaml = self.yaml("dvc.yaml")
        self.lock = self.yaml("dvc.lock")

    def json(self, path: str) -> dict:
        return json.loads((self.root / path).read_text())

    def yaml(self, path: str) -> dict:
        return parse_yaml((self.root / path).read_text(), path)

    def record(self, benchmark: str, *args: str) -> dict:
        name = records.name_for(benchmark, list(args))
        if name not in self.records:
            raise KeyError(f"no record benchmarks/results/{name}.json: run python benchmarks/{benchmark}.py {' '.join(args)}")
        return self.records[name]

    def seeds(self, recipe: str | None) -> dict:
        """The seeds 1-3 record of a recipe (None: the default pipeline)."""
        return self.record("seeds", *(["--recipe", recipe] if recipe else []), "--seeds", "1", "2", "3")

    def field_record(self, recipe: str | None) -> dict:
        return self.record("field", *(["--recipe", recipe] if recipe else []), "--images", "1000")


def renderer(name: str) -> Callable:
    def register(function: Callable) -> Callable:
        RENDERERS[name] = function
        return function

    return register


# Formatting: one place for how a figure is shown.
def pct(value: float, digits: int = 2) -> str:
    return f"{100 * value:.{digits}f}%"


def accuracy_spread(record: dict) -> str:
    """`97.78% ± 0.11`: mean and standard deviation over the record's seeds, in points."""
    values = [seed["test_accuracy"] for seed in record["values"]["seeds"].values()]
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.2f}% ± {100 * spread:.2f}"


def mean_seconds(record: dict) -> float:
    return statistics.mean(seed["seconds"] for seed in record["values"]["seeds"].values())


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 600 else f"{seconds / 60:.0f} minutes"


def cpu(record: dict) -> str:
    """The CPU as the docs name it: 'AMD EPYC' or 'Intel Xeon', from the record's model name."""
    name = record["cpu"]
    short = "AMD EPYC" if "EPYC" in name else "Intel Xeon" if "Xeon" in name else name
    return f"{short}, {record['cores']} cores"


def provenance(record: dict) -> str:
    """Where a record's figures come from: its commit and load, or the raw output it was converted from."""
    when = (record.get("date") or "undated")[:10]
    if record.get("commit") is None:
        return f"{cpu(record)}, {when}; converted from {record['source']}, lines {record.get('lines', '?')}"
    dirty = ", uncommitted changes" if record.get("dirty") else ""
    return f"{cpu(record)}, {when}, commit {record['commit'][:7]}{dirty}, load average {record['load_average']} at the start"


def stage_names(sources: Sources) -> list[str]:
    return list(sources.dvc_yaml["stages"])


def table(header: list[str], rows: list[list[str]], right: list[bool]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---:" if r else "---" for r in right) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# The blocks.
@renderer("headline")
def headline(sources: Sources, _: str | None) -> str:
    vs = sources.record("pipeline_vs_notebook").get("values")
    noop = [row["seconds"] for row in vs["rows"] if row["what"].startswith("pipeline: no-op")]
    field, deploy = sources.field_record(None)["values"]["field"], sources.field_record("cnn_aug")["values"]["field"]
    recipes = ", ".join(
        f"{accuracy_spread(sources.seeds(r))} in {duration(mean_seconds(sources.seeds(r)))}" for r in RECIPES
    )
    return (
        f"**Result of the default pipeline** (the notebook's MLP, {sources.metrics['params']:,} parameters, "
        f"{sources.params['train']['epochs']} epochs): **{pct(sources.metrics['test_accuracy'])} test accuracy** "
        f"with the committed seed ({accuracy_spread(sources.seeds(None))} over seeds 1-3, `benchmarks/seeds.py`); "
        f"a full `dvc repro` from scratch, all {len(stage_names(sources))} stages, takes "
        f"**{vs['median_pipeline_s']:.0f} s** wall time against {vs['median_notebook_s']:.0f} s for the notebook's "
        f"own code in the same run ({vs['median_pipeline_s'] / vs['median_notebook_s']:.2f}×, "
        f"`benchmarks/pipeline_vs_notebook.py`, median of {vs['rounds']}), and a no-op `dvc repro` "
        f"{statistics.median(noop):.1f} s. Through the path users take (image files, the normaliser, the exported "
        f"model: the `field` stage) it reads {pct(field['photos'], 1)} of photographed digits and "
        f"{pct(field['drawn'], 1)} of page drawings ({field['images_per_source']:,} test digits a source); "
        f"`cnn_aug`, the model to deploy, {pct(deploy['photos'], 1)} and {pct(deploy['drawn'], 1)}. Three "
        f"convolutional recipes, each one command (`python -m pipeline.recipes NAME`), trade time for accuracy: "
        f"{recipes}. (Commands and records in [experiments](docs/experiments.md) and [speed](docs/speed.md); "
        "the notebook reported 97.72%.)"
    )


@renderer("results-readme")
def results_readme(sources: Sources, _: str | None) -> str:
    rows = []
    for recipe in (None, *RECIPES):
        seeds, field = sources.seeds(recipe), sources.field_record(recipe)["values"]["field"]
        params = next(iter(seeds["values"]["seeds"].values()))["params"]
        command = f"`python -m pipeline.recipes {recipe}`" if recipe else "`dvc repro`"
        anchor = "recipes" if recipe else "results"
        rows.append(
            [
                recipe or "mlp (default)",
                f"{params:,}",
                accuracy_spread(seeds),
                f"{mean_seconds(seeds):.0f} s",
                ", ".join(pct(field[source], 1) for source in SOURCES),
                f"[{command}](docs/experiments.md#{anchor})",
            ]
        )
    header = ["model", "parameters", "test accuracy, seeds 1-3", "full `dvc repro`", "field: photos, drawn", "command"]
    cpus = sorted({cpu(sources.seeds(recipe)) for recipe in (None, *RECIPES)})
    return (
        "Full `dvc repro` from scratch on full MNIST (`python benchmarks/seeds.py [--recipe NAME] --seeds 1 2 3`: "
        f"mean ± standard deviation over the seeds, mean time; {' and '.join(cpus)}); the field column is the "
        "exported model read from photos and page drawings of 1,000 test digits each (seed 42, "
        "`python benchmarks/field.py [--recipe NAME] --images 1000`). Each run's record and CPU: "
        "[docs/experiments.md](docs/experiments.md#results).\n\n" + table(header, rows, [False, True, False, True, True, False])
    )


CNN_42 = (
    "--seeds",
    "42",
    "-S",
    "train.model=cnn",
    "-S",
    "train.epochs=10",
    "-S",
    "train.batch_size=64",
    "-S",
    "train.learning_rate=0.002",
    "-S",
    "train.schedule=cosine",
    "-S",
    "train.dropout=0.4",
)


def export_rows(sources: Sources) -> list[tuple[str, float, dict, str]]:
    """(model, Keras test accuracy, the export stage's scores, where from): the committed MLP and the cnn's record."""
    cnn = sources.record("seeds", *CNN_42)
    seed = cnn["values"]["seeds"]["42"]
    return [
        ("mlp", sources.metrics["test_accuracy"], sources.export, "`metrics/export.json` of this commit"),
        ("cnn", seed["test_accuracy"], seed["export"], f"`python benchmarks/seeds.py {' '.join(CNN_42)}` ({provenance(cnn)})"),
    ]


@renderer("deployed")
def deployed(sources: Sources, _: str | None) -> str:
    rows = []
    for name, keras, scores, _where in export_rows(sources):
        float32, int8 = scores["litert_float32"], scores["litert_int8"]
        rows.append(
            [
                name,
                pct(keras),
                pct(float32["agreement"]),
                f"{pct(int8['test_accuracy'])}, {pct(int8['agreement'])}, {int8['size_bytes'] / 1000:.0f} KB "
                f"({int8['size_bytes'] / float32['size_bytes']:.0%} of float32)",
            ]
        )
    header = ["model", "Keras", "LiteRT float32: same digit as Keras", "LiteRT int8: accuracy, same digit, size"]
    return table(header, rows, [False, True, True, False])


@renderer("field-committed")
def field_committed(sources: Sources, _: str | None) -> str:
    names = ["arrays", "mnist_png", "photos", "drawn", "scans", "app_exports"]
    return (
        f"LiteRT float32 through the `Predictor`, from encoded files made of {sources.field['images_per_source']:,} "
        "seeded test digits per source (`dvc repro`):\n\n"
        + table(names, [[pct(sources.field[name], 1) for name in names]], [True] * len(names))
    )


@renderer("deploy-field")
def deploy_field(sources: Sources, _: str | None) -> str:
    field = sources.field_record("cnn_aug")["values"]["field"]
    scores = ", ".join(f"{name} {pct(field[name], 1)}" for name in ("mnist_png", "photos", "drawn", "scans", "app_exports"))
    return f"Its field scores, {field['images_per_source']:,} digits a source: {scores}."


EXPERIMENT_ROWS = (  # (label, options shown, the record's seeds.py arguments)
    ("cnn", "model=cnn epochs=10 batch_size=64 learning_rate=0.002 schedule=cosine dropout=0.4"),
    ("cnn, batch 512", "model=cnn epochs=10 learning_rate=0.003 schedule=cosine dropout=0.4"),
    ("cnn, width 2, augmented", "model=cnn width=2 epochs=20 learning_rate=0.003 schedule=cosine dropout=0.3 augment=true"),
    (
        "deep_cnn, augmented",
        "model=deep_cnn epochs=20 batch_size=128 learning_rate=0.003 schedule=cosine dropout=0.3 augment=true",
    ),
)


def option_args(options: str) -> list[str]:
    return [word for option in options.split() for word in ("-S", f"train.{option}")]


@renderer("experiments-results")
def experiments_results(sources: Sources, _: str | None) -> str:
    rows = []
    train = sources.params["train"]
    default = f"none: batch {train['batch_size']}, lr {train['learning_rate']}, {train['schedule']}, {train['epochs']} epochs"
    for recipe in (None, *RECIPES):
        record = sources.seeds(recipe)
        params = next(iter(record["values"]["seeds"].values()))["params"]
        options = f"recipe `{recipe}`" if recipe else default
        rows.append([recipe or "mlp (default)", options, f"{params:,}", accuracy_spread(record), f"{mean_seconds(record):.0f} s", provenance(record)])
    for label, options in EXPERIMENT_ROWS:
        record = sources.record("seeds", "--seeds", "1", "2", "3", *option_args(options))
        params = next(iter(record["values"]["seeds"].values()))["params"]
        rows.append([label, f"`{options}`", f"{params:,}", accuracy_spread(record), f"{mean_seconds(record):.0f} s", f"{provenance(record)}; {record.get('note', '')}"])
    header = ["model", "options (`-S train.…`)", "parameters", "test accuracy, seeds 1-3", "full `dvc repro`", "measured on"]
    return table(header, rows, [False, False, True, False, True, False])


@renderer("experiments-compute")
def experiments_compute(sources: Sources, _: str | None) -> str:
    chosen = [
        ("mlp (default)", sources.seeds(None)),
        ("cnn_fast", sources.seeds("cnn_fast")),
        ("cnn_aug", sources.seeds("cnn_aug")),
        (
            "cnn, 40 epochs augmented (the earlier `cnn_best`)",
            sources.record("seeds", "--recipe", "cnn_aug", "-S", "train.epochs=40", "-S", "train.warmup=0.05", "--seeds", "1", "2", "3"),
        ),
        ("cnn_best", sources.seeds("cnn_best")),
    ]
    rows = []
    for label, record in chosen:
        compute = record["values"]["seeds"]["1"]["compute"]
        rows.append(
            [
                label,
                f"{compute['forward_flops'] / 1e6:.2f} MFLOP",
                f"{compute['train_flops'] / 1e12:.2f} TFLOP",
                f"{compute['epoch_seconds']:.0f} s",
                f"{compute['gflops']:.0f} GFLOP/s",
                f"{compute['gflops'] / compute['peak_gflops']:.0%} of {compute['peak_gflops']:.0f} GFLOP/s",
                cpu(record),
            ]
        )
    header = ["recipe", "forward pass per image", "training", "epochs' wall time", "reached", "of the peak", "CPU"]
    return "Seed 1 of each record:\n\n" + table(header, rows, [False, True, True, True, True, True, False])


@renderer("speed")
def speed(sources: Sources, _: str | None) -> str:
    record = sources.record("pipeline_vs_notebook")
    values = record["values"]
    lines = [f"$ {record['command']}", f"{provenance(record)}", f"{'what':40} {'wall s':>8} {'peak RSS MB':>12} {'test acc':>9}"]
    for row in values["rows"]:
        accuracy = f"{row['test_accuracy']:.4f}" if row["test_accuracy"] is not None else ""
        lines.append(f"{row['what']:40} {row['seconds']:8.1f} {row['peak_rss_mb']:12.0f} {accuracy:>9}".rstrip())
    pipeline, notebook = values["median_pipeline_s"], values["median_notebook_s"]
    lines.append(f"median wall: pipeline {pipeline:.1f} s, notebook {notebook:.1f} s, ratio {pipeline / notebook:.2f}")
    return "```\n" + "\n".join(lines) + "\n```"


@renderer("repro-time")
def repro_time(sources: Sources, _: str | None) -> str:
    values = sources.record("pipeline_vs_notebook")["values"]
    return f"{values['median_pipeline_s']:.0f} s (`benchmarks/pipeline_vs_notebook.py`, [speed](speed.md))"


def serve_row(row: dict) -> str:
    return (
        f"{row['workers']:>7} {row['clients']:>7} {row['requests_per_s']:>7,.0f} {row['p50']:>7.1f} {row['p99']:>7.1f}"
        f" {row['shed']:>5} {row['errors']:>6} {row['healthz_p99']:>8.1f} {row['healthz_max']:>8.1f}"
        f" {row['accuracy']:>8.2%}"
    )


@renderer("serve-load")
def serve_load(sources: Sources, _: str | None) -> str:
    record = sources.record("serve")
    values = record["values"]
    lines = [
        f"$ {record['command']}",
        provenance(record),
        f"one MNIST test digit per request ({values['body']}, PNG), {values['requests_per_client']} requests per client; ms",
        f"{'workers':>7} {'clients':>7} {'req/s':>7} {'p50':>7} {'p99':>7} {'503':>5} {'errors':>6} {'healthz':>8} {'':>8} {'accuracy':>8}",
        f"{'':>7} {'':>7} {'':>7} {'':>7} {'':>7} {'':>5} {'':>6} {'p99':>8} {'max':>8}".rstrip(),
    ]
    lines += [serve_row(row) for row in values["load"]]
    lines += [
        "",
        f"beside one more client sending the crafted JPEG ({values['crafted_scans']:,} scans, "
        f"{values['crafted_bytes'] / 1e6:.1f} MB) in a loop:",
    ]
    for row in values["beside_crafted"]:
        lines.append(serve_row(row))
        lines.append(
            f"{'':>15} crafted: {row['crafted_sent']} sent, answered {row['crafted_statuses']},"
            f" p50 {row['crafted_p50']:.1f} ms, p99 {row['crafted_p99']:.1f} ms"
        )
    every = values["load"] + values["beside_crafted"]
    beside = values["beside_crafted"]
    summary = (
        f"In this run: {sum(r['errors'] for r in every)} errors and {sum(r['shed'] for r in every)} requests shed; "
        f"`/healthz` at most {max(r['healthz_max'] for r in every):.1f} ms at any load (target 50 ms); beside the "
        f"crafted JPEG, the other clients' p99 {min(r['p99'] for r in beside):.1f} to {max(r['p99'] for r in beside):.1f} ms "
        f"(target 100 ms), each crafted request answered {sorted({s for r in beside for s in r['crafted_statuses']})} "
        f"in {min(r['crafted_p50'] for r in beside):.0f} to {max(r['crafted_p50'] for r in beside):.0f} ms at p50."
    )
    return "```\n" + "\n".join(lines) + "\n```\n\n" + summary


@renderer("serve-model")
def serve_model(sources: Sources, _: str | None) -> str:
    """GET /model as benchmarks/serve.py recorded it, checked against the committed dvc.lock and metrics."""
    record = sources.record("serve")
    answer = record["values"]["model"]
    lock_md5 = {out["path"]: out["md5"] for stage in sources.lock["stages"].values() for out in stage.get("outs", [])}
    if lock_md5.get(answer["file"]) != answer["md5"]:
        raise KeyError(f"the serve record's model ({answer['md5']}) is not dvc.lock's {answer['file']}: rerun benchmarks/serve.py")
    key = answer["metrics"].split(":")[1]
    if answer["test_accuracy"] != sources.export[key]["test_accuracy"]:
        raise KeyError(f"the serve record's test_accuracy is not metrics/export.json's {key}: rerun benchmarks/serve.py")
    return "```\n$ curl -s localhost:8765/model\n" + json.dumps(answer, separators=(",", ":")) + "\n```"


@renderer("predict-litert")
def predict_litert(sources: Sources, _: str | None) -> str:
    record = sources.record("predict")
    v = record["values"]
    float32, int8 = (v["litert"][f"models/model_{kind}.tflite"] for kind in ("float32", "int8"))
    rows = [
        ["cold start, one image (`python -m pipeline.predict x.jpg [--model …]`)", f"{v['cold_start_keras_s']:.2f} s", f"{v['cold_start_default_s']:.2f} s", ""],
        ['`python -c "import tensorflow"` alone, same run', f"{v['tensorflow_import_s']:.2f} s", "", ""],
        ["accuracy on the realistic photos", pct(v["photos_accuracy"]), pct(float32["photos_accuracy"]), pct(int8["photos_accuracy"])],
        ["same digit as Keras on the photos", "", f"{pct(float32['agreement'])} ({float32['differ']} differ)", f"{pct(int8['agreement'])} ({int8['differ']} differ)"],
        ["model on 28×28 arrays", f"{v['arrays_per_s']:,.0f} images/s", f"{float32['arrays_per_s']:,.0f} images/s", f"{int8['arrays_per_s']:,.0f} images/s"],
    ]
    header = [f"{v['digits']:,} photos; cold starts median of {v['repeats']}", "Keras", "LiteRT float32", "LiteRT int8"]
    return f"`{record['command']}` ({provenance(record)}):\n\n" + table(header, rows, [False, True, True, True])


@renderer("int8-agreement")
def int8_agreement(sources: Sources, _: str | None) -> str:
    predict = sources.record("predict")["values"]["litert"]["models/model_int8.tflite"]
    float32 = sources.export["litert_float32"]["agreement"]
    return (
        f"it gives the Keras model's digit on {pct(float32)} of the MNIST test set (`metrics/export.json`), "
        f"int8 on {pct(sources.export['litert_int8']['agreement'])}; on the realistic photos of `benchmarks/predict.py`, "
        f"int8 on {pct(predict['agreement'])}"
    )


@renderer("predict-photos")
def predict_photos(sources: Sources, _: str | None) -> str:
    record = sources.record("predict")
    v = record["values"]
    rows = [
        ["accuracy on MNIST test digits", pct(v["mnist_accuracy"])],
        ["on the same digits as photos", f"{pct(v['photos_accuracy'])} (gap {100 * (v['mnist_accuracy'] - v['photos_accuracy']):.2f} points)"],
        ["the notebook's literal recipe on the photos", pct(v["literal_recipe_accuracy"])],
        ["model on 28×28 arrays (`Predictor.probabilities`)", f"{v['arrays_per_s']:,.0f} images/s"],
        ["photos in memory: decode, normalise, model", f"{v['photos_in_memory_per_s']:,.0f} images/s"],
        ["JPEG files on disk, 1,000 files", f"{v['jpeg_files_per_s']:,.0f} images/s"],
        ["single image, file to digit", f"{v['latency_ms_median']:.1f} ms median"],
        ["CLI cold start, one image, Keras", f"{v['cold_start_keras_s']:.2f} s"],
    ]
    return f"`{record['command']}`, model `{v['model']}` ({provenance(record)}):\n\n" + table(
        [f"{v['digits']:,} test digits, seed {v['seed']}", "mlp"], rows, [False, True]
    )


@renderer("predict-field")
def predict_field(sources: Sources, _: str | None) -> str:
    names = ["mnist_png", "photos", "drawn", "scans", "app_exports"]
    rows = []
    for label, recipe in (("mlp (default)", None), ("cnn_aug", "cnn_aug")):
        record = sources.field_record(recipe)
        values = record["values"]
        rows.append([label, pct(values["test_accuracy"]), *(pct(values["field"][name], 1) for name in names), cpu(record)])
    return table(["model", "test (arrays)", *names, "CPU"], rows, [False, True, True, True, True, True, True, False])


@renderer("export-scores")
def export_scores(sources: Sources, _: str | None) -> str:
    rows, notes = [], []
    kinds = (("saved_model", "SavedModel"), ("litert_float32", "LiteRT float32"), ("litert_int8", "LiteRT int8"))
    for name, keras, scores, where in export_rows(sources):
        rows.append([name, "Keras", pct(keras), "", ""])
        for key, label in kinds:
            score = scores[key]
            accuracy = pct(score["test_accuracy"])
            size = f"{score['size_bytes']:,} B"
            if key == "litert_int8":
                accuracy += f" ({100 * (score['test_accuracy'] - keras):+.2f})"
                size += f" ({score['size_bytes'] / scores['litert_float32']['size_bytes']:.0%} of float32)"
            rows.append([name, label, accuracy, pct(score["agreement"]), size])
        notes.append(f"{name}: {where}")
    header = ["model", "format", "test accuracy", "same digit as Keras", "size"]
    return table(header, rows, [False, False, True, True, True]) + "\n\n" + "; ".join(notes) + "."


@renderer("history")
def history(sources: Sources, rev: str | None) -> str:
    """`python -m pipeline.history --markdown --rev REV`: fixed at REV, the newest commit that changed the metrics
    when it was rendered (a table cannot hold the hash of the commit it is committed in)."""
    if subprocess.run(["git", "cat-file", "-e", f"{rev}^{{commit}}"], cwd=sources.root, capture_output=True).returncode:
        raise Stale(f"commit {rev} is not in this clone")
    from pipeline.review import history as tool, tables

    found = tool.entries(rev, 20)
    command = f"```\n$ python -m pipeline.history --markdown --rev {rev}\n```\n\n"
    return command + tables.markdown(tool.HEADER, tool.rows(found, 20), tool.RIGHT)


def cached_outs(sources: Sources) -> list[dict]:
    """dvc.lock's outputs that DVC caches (and so pushes and pulls): not those dvc.yaml marks `cache: false`."""
    uncached = set()
    for stage in sources.dvc_yaml["stages"].values():
        for out in stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", []):
            if isinstance(out, dict):
                (path, options), = out.items()
                if options and options.get("cache") is False:
                    uncached.add(path)
    return [out for stage in sources.lock["stages"].values() for out in stage.get("outs", []) if out["path"] not in uncached]


def cache_files(sources: Sources) -> int:
    """Files in the cache for those outputs: one per file, a directory's files plus its listing."""
    return sum(out["nfiles"] + 1 if out["md5"].endswith(".dir") else 1 for out in cached_outs(sources))


def cached_files(sources: Sources) -> int:
    """Files checked out from the cache: one per file output, each file of a directory output."""
    return sum(out["nfiles"] if out["md5"].endswith(".dir") else 1 for out in cached_outs(sources))


def has_cached_outs(sources: Sources, stage: str) -> bool:
    paths = {out["path"] for out in cached_outs(sources)}
    return any(out["path"] in paths for out in sources.lock["stages"][stage].get("outs", []))


@renderer("remote-push")
def remote_push(sources: Sources, _: str | None) -> str:
    """`dvc push` in a clone whose cache holds the outputs dvc.lock names (the counts as DVC 3.67 prints them)."""
    lines = [
        "$ dvc remote list",
        "shared  /tmp/mnist-dvc-remote   (default)",
        "$ dvc repro                          # then commit dvc.lock and metrics/ as usual",
        "$ dvc push",
        f"{cache_files(sources)} files pushed",
    ]
    return "```\n" + "\n".join(lines) + "\n```"


@renderer("remote-pull")
def remote_pull(sources: Sources, _: str | None) -> str:
    """`dvc pull`, `dvc status` and `dvc repro` in a second clone: every stage's outputs from the remote."""
    outs = cached_outs(sources)
    directories = sorted(out["path"].rstrip("/") + "/" for out in outs if out["md5"].endswith(".dir"))
    files = sorted(out["path"] for out in outs if not out["md5"].endswith(".dir"))
    lines = [
        "$ git clone mnist teammate && cd teammate",
        "$ dvc pull",
        *(f"A       {path}" for path in directories + files),
        f"{cache_files(sources)} files fetched and {cached_files(sources)} files added",
        "$ dvc status",
        "Data and pipelines are up to date.",
        "$ dvc repro",
        *(f"Stage '{name}' didn't change, skipping" for name in stage_names(sources)),
        "Data and pipelines are up to date.",
    ]
    return "```\n" + "\n".join(lines) + "\n```"


@renderer("remote-repro-pull")
def remote_repro_pull(sources: Sources, _: str | None) -> str:
    lines = ["$ dvc repro --pull"]
    for name in stage_names(sources):
        pulled = has_cached_outs(sources, name)
        lines.append(f"Pulling data for stage: '{name}'" if pulled else f"Stage '{name}' didn't change, skipping")
    lines.append("Data and pipelines are up to date.")
    return "```\n" + "\n".join(lines) + "\n```"


@renderer("stage-count")
def stage_count(sources: Sources, _: str | None) -> str:
    return str(len(stage_names(sources)))


def documents(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def render_text(text: str, sources: Sources, where: str) -> tuple[str, list[str], list[str]]:
    """`text` with every block rendered; the blocks that changed, and those not checked (and why)."""
    changed, skipped = [], []

    def replace(match: re.Match) -> str:
        name, arg = match["name"], match["arg"]
        label = f"{name} {arg}" if arg else name
        if name not in RENDERERS:
            changed.append(f"{where}: block '{label}': no such block (known: {', '.join(sorted(RENDERERS))})")
            return match[0]
        try:
            body = RENDERERS[name](sources, arg).rstrip("\n") + "\n"
        except Stale as why:
            skipped.append(f"{where}: block '{label}' not checked: {why}")
            return match[0]
        except KeyError as error:
            changed.append(f"{where}: block '{label}' cannot be rendered: {error.args[0]}")
            return match[0]
        if body != match["body"]:
            changed.append(f"{where}: block '{label}' is stale")
        return match["open"] + body + match["close"]

    return BLOCK.sub(replace, text), changed, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if any block differs from its rendering; write nothing")
    parser.add_argument("--root", type=Path, default=records.ROOT, help="the repository (default: this one)")
    args = parser.parse_args(argv)
    sources = Sources(args.root)
    problems = []
    for path in documents(args.root):
        text = path.read_text()
        rendered, changed, skipped = render_text(text, sources, str(path.relative_to(args.root)))
        for line in skipped:
            print(line, file=sys.stderr)
        problems += changed
        if not args.check and rendered != text:
            records.dump_text(rendered, path)
    for line in problems:
        print(line)
    return 1 if problems and (args.check or any("cannot be rendered" in p or "no such block" in p for p in problems)) else 0


if __name__ == "__main__":
    sys.exit(main())
