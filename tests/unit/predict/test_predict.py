"""The predict CLI and API, with a model that reads typeset digits (imports TensorFlow)."""

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from pipeline.core import cli, paths
from pipeline.core.errors import DataError
from pipeline.predict import Prediction, Predictor, command, predictor
from pipeline.predict.runners import LiteRTModel
from pipeline.train import export, models
from testkit.faults import Started
from testkit.glyphs import glyph, template_model
from testkit.repos import ROOT, env


def predict_main(argv: list[str]) -> int:
    """`python -m pipeline.predict ARGV` in this process: its exit code, its lines on stdout/stderr."""
    try:
        cli.run(lambda: command.main(argv), interrupted=cli.COMMAND_INTERRUPTED)
    except SystemExit as exit:
        return exit.code
    return 0


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.keras"
    models.save_model(template_model(), path)
    return path


@pytest.fixture(scope="module")
def litert_path(template_litert):
    """The same model as the export stage writes it: LiteRT float32."""
    return template_litert


@pytest.fixture
def digits_dir(tmp_path):
    """Digits 0-9 in every supported format, dark-on-light and light-on-dark, off-centre."""
    formats = ["png", "tiff", "png", "bmp", "gif", "jpg", "png", "png", "png", "webp"]
    for digit, suffix in enumerate(formats):
        image = glyph(digit, size=60 + 20 * digit, offset=(10 * digit, 0), dark_on_light=digit % 3 != 0)
        if digit == 8:
            image = image.convert("RGBA")
        image.convert("RGB" if suffix == "jpg" else image.mode).save(tmp_path / f"digit{digit}.{suffix}")
    return tmp_path


def test_cli_names_every_digit_in_a_directory(model_path, digits_dir, capsys):
    assert predict_main([str(digits_dir), "--model", str(model_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10
    for digit, line in enumerate(lines):
        path, guess = line.split(": ", 1)
        assert path.endswith(f"digit{digit}" + path[path.rindex(".") :])
        assert re.fullmatch(rf"{digit} \(\d+\.\d%\)(, or \d \(\d+\.\d%\))?", guess), line


def test_json_lines_carry_probabilities(model_path, digits_dir, capsys):
    assert predict_main([str(digits_dir / "digit3.bmp"), "--model", str(model_path), "--json", "--top", "3"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["path"].endswith("digit3.bmp") and record["digit"] == 3
    assert len(record["probabilities"]) == 10 and sum(record["probabilities"]) == pytest.approx(1, abs=1e-4)
    assert record["confidence"] == max(record["probabilities"])
    assert [t["digit"] for t in record["top"]][0] == 3 and len(record["top"]) == 3


def test_top_k_and_runner_up_when_unsure(model_path, digits_dir, capsys):
    predict_main([str(digits_dir / "digit5.jpg"), "--model", str(model_path), "--top", "3"])
    assert capsys.readouterr().out.count(", or ") == 2
    unsure = Prediction("x.png", probabilities=np.array([0.5, 0.4] + [0.0125] * 8))
    assert command.describe(unsure, top=1) == "x.png: 0 (50.0%), or 1 (40.0%)"
    sure = Prediction("x.png", probabilities=np.array([0.91, 0.09] + [0.0] * 8))
    assert command.describe(sure, top=1) == "x.png: 0 (91.0%)"


def test_bad_inputs_cost_one_line_each_and_the_rest_still_run(model_path, digits_dir, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.png").write_text("not an image")
    (bad / "empty.png").write_bytes(b"")
    Image.new("L", (1, 1)).save(bad / "dot.png")
    Image.new("L", (64, 64), 255).save(bad / "blank.png")
    good = digits_dir / "digit7.png"
    inputs = [bad / "notes.png", good, bad / "missing.png", bad / "empty.png", bad / "dot.png", bad / "blank.png"]
    assert predict_main([*map(str, inputs), "--model", str(model_path)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{good}: 7 ({out.split('(')[1].split(')')[0]})"]
    errors = err.splitlines()
    assert len(errors) == 5
    expected = ["not an image", "no such file", "empty file", "too small", "no digit found"]
    for line, path, problem in zip(errors, [inputs[0], *inputs[2:]], expected):
        assert line.startswith(f"error: {path}: ") and problem in line


def test_json_reports_errors_as_objects(model_path, tmp_path, capsys):
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8 truncated")
    assert predict_main([str(tmp_path / "junk.jpg"), "--model", str(model_path), "--json"]) == 1
    record = json.loads(capsys.readouterr().out)
    assert record["path"].endswith("junk.jpg") and "junk.jpg" in record["error"]


def test_save_preprocessed_writes_what_the_model_saw(model_path, digits_dir, tmp_path):
    out_dir = tmp_path / "seen"
    inputs = sorted(digits_dir.iterdir())
    assert predict_main([str(digits_dir), "--model", str(model_path), "--save-preprocessed", str(out_dir)]) == 0
    assert sorted(out_dir.iterdir()) == sorted(out_dir / command.output_name(path) for path in inputs)
    seen = np.asarray(Image.open(out_dir / command.output_name(digits_dir / "digit4.gif")))
    assert seen.shape == (28, 28) and seen.max() == 255 and seen[0].max() == 0  # light on black


def files_in(directory) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


def test_save_preprocessed_into_the_input_folder_keeps_the_inputs(model_path, digits_dir):
    inputs = files_in(digits_dir)
    args = [str(digits_dir), "--model", str(model_path), "--save-preprocessed", str(digits_dir)]
    assert predict_main(args) == 0
    after = files_in(digits_dir)
    assert {name: after[name] for name in inputs} == inputs  # byte for byte
    assert sorted(set(after) - set(inputs)) == sorted(command.output_name(digits_dir / name) for name in inputs)


def test_save_preprocessed_refuses_up_front_if_any_output_exists(model_path, digits_dir, tmp_path, capsys):
    out_dir = tmp_path / "seen"
    out_dir.mkdir()
    names = [command.output_name(digits_dir / name) for name in ("digit3.bmp", "digit5.jpg")]
    for name in names:
        (out_dir / name).write_bytes(b"an earlier run's, or the user's")
    before = files_in(out_dir)
    assert predict_main([str(digits_dir), "--model", str(model_path), "--save-preprocessed", str(out_dir)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1  # nothing predicted: one line, and no work done
    assert err.startswith(f"error: {out_dir / names[0]}: already exists (and 1 more")
    assert files_in(out_dir) == before


def test_save_preprocessed_into_a_file_is_one_line(model_path, digits_dir, tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert predict_main([str(digits_dir), "--model", str(model_path), "--save-preprocessed", str(target)]) == 1
    assert capsys.readouterr().err == f"error: {target}: is a file, not a folder\n"
    assert target.read_text() == "mine"


def test_every_input_gets_its_own_output_name_from_its_own_path_alone(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    inputs = [Path(name) for name in ("a b.png", "a-b.png", "a/x.png", "b/x.png", "x.jpg", "X.jpg", "a_b.png")]
    names = command.output_names(inputs)
    assert len({name.lower() for name in names}) == len(inputs)  # apart even on a case-insensitive disk
    # Whatever else is given, and in whatever order: no name can go to another image
    assert names == [command.output_name(path) for path in inputs] == command.output_names(inputs[::-1])[::-1]
    assert command.output_name(Path("./a b.png")) == command.output_name(tmp_path / "a b.png") == names[0]
    assert names[0].startswith("a-b-") and names[2].startswith("x-") and all(n.endswith(".28x28.png") for n in names)


def test_save_preprocessed_prints_each_source_with_the_file_that_holds_its_digit(model_path, tmp_path, capsys):
    # The pair: "a b.png" and "a-b.png" once mapped to a-b.28x28.png and a-b-1.28x28.png.
    glyph(3, size=90).save(tmp_path / "a b.png")
    glyph(7, size=90).save(tmp_path / "a-b.png")
    out_dir = tmp_path / "seen"
    for order in (["a-b.png", "a b.png"], ["a b.png", "a-b.png"]):
        shutil.rmtree(out_dir, ignore_errors=True)
        inputs = [str(tmp_path / name) for name in order]
        assert predict_main([*inputs, "--model", str(model_path), "--save-preprocessed", str(out_dir)]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert [line.split(": ")[0] for line in lines] == inputs
        for line, source in zip(lines, inputs):
            saved = Path(line.rsplit("; saved as ", 1)[1])
            assert saved == out_dir / command.output_name(Path(source))
            expected = Predictor.from_path(model_path).predict([source])[0].digit28
            assert np.array_equal(np.asarray(Image.open(saved)), np.round(expected * 255).astype(np.uint8))
    source = tmp_path / "a b.png"
    assert (
        predict_main([str(source), "--model", str(model_path), "--json", "--save-preprocessed", str(tmp_path / "j")])
        == 0
    )
    record = json.loads(capsys.readouterr().out)
    assert record["path"] == str(source) and record["saved"] == str(tmp_path / "j" / command.output_name(source))


def test_one_image_given_twice_is_saved_once_and_both_lines_say_where(model_path, digits_dir, tmp_path, capsys):
    source = str(digits_dir / "digit2.png")
    args = [source, source, "--model", str(model_path), "--save-preprocessed", str(tmp_path / "seen")]
    assert predict_main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0] == lines[1] and lines[0].endswith(command.output_name(Path(source)))
    assert len(list((tmp_path / "seen").iterdir())) == 1


def test_results_and_folder_errors_come_in_the_order_of_the_arguments(model_path, digits_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    inputs = [digits_dir / "digit1.tiff", empty, tmp_path / "missing.png", digits_dir / "digit2.png", empty]
    assert predict_main([*map(str, inputs), "--model", str(model_path), "--json"]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [record["path"] for record in records] == list(map(str, inputs))
    assert ["error" in record for record in records] == [False, True, True, False, True]


def test_lines_on_stdout_and_stderr_interleave_in_argument_order(model_path, digits_dir, tmp_path):
    # What `predict ... 2>&1 | less` shows: each line written as its input comes, not per chunk.
    empty = tmp_path / "empty"
    empty.mkdir()
    inputs = [digits_dir / "digit1.tiff", empty, digits_dir / "digit2.png", tmp_path / "missing.png"]
    command_line = [sys.executable, "-m", "pipeline.predict", *map(str, inputs), "--model", str(model_path)]
    result = subprocess.run(command_line, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert [line.removeprefix("error: ").split(": ")[0] for line in lines] == list(map(str, inputs))


def no_hard_links(source, destination):
    raise PermissionError(errno.EPERM, "Operation not permitted")  # as on FAT or some network shares


@pytest.mark.parametrize("hard_links", [True, False], ids=["linked", "no-hard-links"])
def test_a_file_that_appears_after_the_check_is_not_overwritten(tmp_path, monkeypatch, hard_links):
    if not hard_links:
        monkeypatch.setattr(command.os, "link", no_hard_links)
    fresh, taken = tmp_path / "fresh.28x28.png", tmp_path / "taken.28x28.png"
    taken.write_bytes(b"someone else's")
    command.write_new(fresh, b"ours")
    with pytest.raises(DataError, match="taken.28x28.png: appeared while predicting; not overwriting it"):
        command.write_new(taken, b"ours")
    assert files_in(tmp_path) == {"fresh.28x28.png": b"ours", "taken.28x28.png": b"someone else's"}  # no temporaries


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "model.keras: no such model\n"),
        (lambda p: p.write_text("weights?"), "not a loadable Keras model"),
    ],
    ids=["missing", "not-keras"],
)
def test_model_problems_are_one_line(tmp_path, digits_dir, capsys, make, message):
    path = tmp_path / "model.keras"
    make(path)
    assert predict_main([str(digits_dir), "--model", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and message in err


def saved_model(folder: Path) -> Path:
    """The export stage's TF Serving layout, as far as a path check sees it: VERSION/saved_model.pb."""
    (folder / "1" / "variables").mkdir(parents=True)
    (folder / "1" / "saved_model.pb").write_bytes(b"\x08\x01")
    return folder


@pytest.mark.parametrize("given", ["saved_model/1", "saved_model", "saved_model/1/saved_model.pb"])
def test_a_saved_model_is_named_as_a_format_model_does_not_take_not_as_damaged(tmp_path, digits_dir, capsys, given):
    saved_model(tmp_path / "saved_model")
    path = tmp_path / given
    assert predict_main([str(digits_dir), "--model", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith(
        f"error: {path}: a TF Serving SavedModel, not a --model format; --model takes a .keras or .tflite file"
    )
    assert "damaged" not in err and "checkout" not in err and "folder, not a file" not in err


def test_the_pipelines_saved_model_is_named_so_even_before_it_is_built(tmp_path, digits_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a fresh clone: models/saved_model is a path of the export stage, absent
    assert predict_main([str(digits_dir), "--model", "models/saved_model/1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: models/saved_model/1: a TF Serving SavedModel, not a --model format")


@pytest.mark.parametrize(
    ("name", "problem"), [("weights.h5", "not a --model format"), ("models", "a folder, not a --model format")]
)
def test_other_formats_and_folders_name_the_formats_model_takes(tmp_path, digits_dir, capsys, name, problem):
    path = tmp_path / name
    path.mkdir() if "." not in name else path.write_bytes(b"\x89HDF\r\n")
    assert predict_main([str(digits_dir), "--model", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: {problem}; --model takes a .keras or .tflite file") and err.count("\n") == 1
    assert "damaged" not in err and "checkout" not in err


def test_model_that_would_run_code_on_load_is_refused(tmp_path, digits_dir, capsys):
    from pipeline.core.tf import keras

    evil = keras().Sequential([keras().Input(shape=(28, 28)), keras().layers.Lambda(lambda x: x * 2)])
    path = tmp_path / "evil.keras"
    evil.save(path)
    assert predict_main([str(digits_dir), "--model", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: not a loadable Keras model") and "safe" in err.lower()


def test_api_takes_paths_pil_images_and_arrays_alike(model_path, digits_dir):
    predictor = Predictor.from_path(model_path)
    image = Image.open(digits_dir / "digit2.png")
    results = predictor.predict([digits_dir / "digit2.png", str(digits_dir / "digit2.png"), image, np.asarray(image)])
    assert [r.digit for r in results] == [2, 2, 2, 2]
    assert all(np.allclose(r.probabilities, results[0].probabilities) for r in results)
    assert predictor.predict([object()])[0].error.endswith("expected a file path, an Upload, a PIL image or an array")


def test_stream_keeps_order_across_chunks(model_path, digits_dir):
    predictor = Predictor.from_path(model_path)
    files = [digits_dir / f"digit{d}.png" for d in (0, 6, 8)] * 3
    chunks = list(predictor.stream(files, chunk=2))
    assert [len(c) for c in chunks] == [2, 2, 2, 2, 1]
    assert [p.digit for c in chunks for p in c] == [0, 6, 8] * 3


def test_command_line_entry_point(model_path, digits_dir, tmp_path):
    args = [sys.executable, "-m", "pipeline.predict", str(digits_dir / "digit1.tiff"), str(tmp_path / "nope.png")]
    result = subprocess.run([*args, "--model", str(model_path)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stdout.startswith(f"{digits_dir / 'digit1.tiff'}: 1 (")
    assert result.stderr == f"error: {tmp_path / 'nope.png'}: no such file\n"  # no traceback, no TF log noise


def test_ctrl_c_is_one_line_and_exit_130_like_every_command(model_path, digits_dir, tmp_path):
    # predict goes through cli.run as the stages and review tools do; it names no `dvc repro`.
    many = [str(digits_dir / "digit1.tiff")] * 20_000  # far more than it reads before the signal
    command_line = [sys.executable, "-m", "pipeline.predict", *many, "--model", str(model_path)]
    predicting = Started(command_line, cwd=ROOT, logs=tmp_path / "logs")
    predicting.wait_for(lambda: predicting.out(), timeout=120, what="the first prediction")
    os.kill(predicting.pid, signal.SIGINT)
    assert predicting.wait(60) == 130
    assert predicting.out().startswith(f"{many[0]}: 1 (")
    assert predicting.err() == f"{cli.COMMAND_INTERRUPTED}\n"  # no traceback
    assert len(predicting.out().splitlines()) < len(many)


def two_tone_seven() -> Image.Image:
    """The typeset 7 with every pixel pure ink or pure paper, as a paint program or a fax has it."""
    return glyph(7).point(lambda v: 0 if v < 128 else 255)


@pytest.fixture
def two_tone_dir(tmp_path):
    """The two-tone 7 in every two-tone form, and a blurred copy to compare with."""
    seven = two_tone_seven()
    ink_on_glass = Image.new("RGBA", seven.size, (0, 0, 0, 0))  # hard-edged ink, transparent paper
    ink_on_glass.putalpha(seven.point(lambda v: 255 - v))
    seven.save(tmp_path / "gray.png")
    seven.convert("1").save(tmp_path / "bilevel.png")
    seven.convert("1").save(tmp_path / "fax.tif", compression="group4")
    seven.convert("P").save(tmp_path / "two-colour.gif")
    seven.convert("P").save(tmp_path / "palette.png")
    ink_on_glass.save(tmp_path / "transparent.png")
    seven.filter(ImageFilter.GaussianBlur(3)).save(tmp_path / "blurred.png")
    modes = {"gray.png": "L", "bilevel.png": "1", "fax.tif": "1", "two-colour.gif": "P", "palette.png": "P"}
    assert {p.name: mode_of(p) for p in tmp_path.iterdir()} == {**modes, "transparent.png": "RGBA", "blurred.png": "L"}
    return tmp_path


def mode_of(path) -> str:
    with Image.open(path) as image:
        return image.mode


def test_two_tone_images_read_as_their_blurred_copies_do(model_path, two_tone_dir, capsys):
    assert predict_main([str(two_tone_dir), "--model", str(model_path), "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 7 and {r["digit"] for r in records} == {7}


def test_two_tone_arrays_read_through_the_api(model_path):
    pixels = np.asarray(two_tone_seven())
    ink = pixels < 128
    arrays = [pixels, ink, ink.astype(np.uint8) * 255, pixels.astype(np.float32) / 255, ink.astype(np.float64)]
    results = Predictor.from_path(model_path).predict(arrays)
    assert [(r.error, r.digit) for r in results] == [(None, 7)] * len(arrays)


def test_an_unexpected_failure_costs_one_line_and_no_other_answer(model_path, digits_dir, monkeypatch, capsys):
    inputs = [digits_dir / f"digit{d}.png" for d in (0, 2, 6)]
    real = predictor.to_mnist

    def fails_on_the_second(gray, name):
        if name == str(inputs[1]):
            raise ValueError("zero-size array to reduction operation maximum\nwhich has no identity")
        return real(gray, name)

    monkeypatch.setattr(predictor, "to_mnist", fails_on_the_second)
    assert predict_main([*map(str, inputs), "--model", str(model_path)]) == 1
    out, err = capsys.readouterr()
    assert [line.split(": ")[0] for line in out.splitlines()] == [str(inputs[0]), str(inputs[2])]
    assert err == (
        f"error: {inputs[1]}: could not read this image "
        "(ValueError: zero-size array to reduction operation maximum which has no identity)\n"
    )


@pytest.mark.parametrize("empty", ["IMAGE_OR_DIR", "--save-preprocessed", "--model"])
def test_an_empty_path_is_an_error_not_the_current_folder(model_path, digits_dir, monkeypatch, capsys, empty):
    monkeypatch.chdir(digits_dir)  # what Path("") would have meant
    argv = {
        "IMAGE_OR_DIR": ["", "--model", str(model_path)],
        "--save-preprocessed": ["digit0.png", "--model", str(model_path), "--save-preprocessed", ""],
        "--model": ["digit0.png", "--model", ""],
    }[empty]
    before = files_in(digits_dir)
    assert predict_main(argv) == 2  # argparse's usage error
    assert "an empty path" in capsys.readouterr().err
    assert files_in(digits_dir) == before


def nan_model():
    """A model of the right shape whose weights are NaN: every probability it gives is NaN."""
    from pipeline.core.tf import keras

    model = keras().Sequential(
        [keras().Input(shape=(28, 28)), keras().layers.Flatten(), keras().layers.Dense(10, activation="softmax")]
    )
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([np.full_like(kernel, np.nan), bias])
    return model


def strict_json(line: str) -> dict:
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


def test_non_finite_probabilities_are_an_error_never_a_digit(digits_dir, tmp_path_factory, capsys):
    path = tmp_path_factory.mktemp("nan") / "nan.keras"
    models.save_model(nan_model(), path)
    inputs = [str(digits_dir / "digit0.png"), str(digits_dir / "digit1.tiff")]
    assert predict_main([*inputs, "--model", str(path), "--json"]) == 1
    records = [strict_json(line) for line in capsys.readouterr().out.splitlines()]
    expected = "the model gave non-finite probabilities (NaN weights?)"
    assert records == [{"path": name, "error": f"{name}: {expected}"} for name in inputs]
    assert predict_main([*inputs, "--model", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == [f"error: {name}: {expected}" for name in inputs]


def digit_files(directory) -> list[Path]:
    return [next(directory.glob(f"digit{d}.*")) for d in range(10)]


def test_litert_gives_the_keras_models_digits(model_path, litert_path, digits_dir):
    files = digit_files(digits_dir)
    keras_answers = Predictor.from_path(model_path).predict(files)
    litert = Predictor.from_path(litert_path)
    litert_answers = litert.predict(files)
    assert (litert.format, litert.source) == (predictor.LITERT, str(litert_path))
    assert [p.digit for p in litert_answers] == [p.digit for p in keras_answers] == list(range(10))
    both = [(a.probabilities, b.probabilities) for a, b in zip(litert_answers, keras_answers)]
    assert all(np.allclose(a, b, atol=1e-5) for a, b in both)


def test_a_model_object_still_makes_a_predictor(litert_path):
    keras_model = template_model()
    assert (Predictor(keras_model).format, Predictor(keras_model).source) == (predictor.KERAS, None)
    litert = Predictor(LiteRTModel.from_path(litert_path))
    assert (litert.format, litert.source) == (predictor.LITERT, str(litert_path))
    assert litert.probabilities(np.zeros((3, 28, 28))).shape == (3, 10)


@pytest.fixture
def repo_models(tmp_path, monkeypatch, model_path, litert_path):
    """A working directory with the Keras model and its LiteRT export where the pipeline puts them."""
    repo = tmp_path / "repo"
    (repo / paths.MODEL.parent).mkdir(parents=True)
    shutil.copy(model_path, repo / paths.MODEL)
    shutil.copy(litert_path, repo / paths.LITERT_FLOAT32)
    monkeypatch.chdir(repo)
    return repo


def test_the_exported_litert_model_is_the_default_when_there_is_one(repo_models):
    chosen = Predictor.from_path()
    assert (chosen.format, chosen.source) == (predictor.LITERT, str(paths.LITERT_FLOAT32))
    paths.LITERT_FLOAT32.unlink()
    chosen = Predictor.from_path()
    assert (chosen.format, chosen.source) == (predictor.KERAS, str(paths.MODEL))
    paths.MODEL.unlink()
    with pytest.raises(DataError, match="models/model.keras: no such model; build it with `dvc repro`"):
        Predictor.from_path()


@pytest.mark.parametrize("left", [paths.LITERT_FLOAT32, paths.MODEL], ids=["litert-only", "keras-only"])
def test_the_command_finds_whichever_model_there_is(repo_models, digits_dir, capsys, left):
    # With only one of the two present, a wrong default is "no such model".
    for model in (paths.LITERT_FLOAT32, paths.MODEL):
        if model != left:
            model.unlink()
    assert predict_main([str(digits_dir / "digit3.bmp")]) == 0
    assert capsys.readouterr().out.startswith(f"{digits_dir / 'digit3.bmp'}: 3 (")


# `python -m pipeline.predict ARGS` that writes, at exit, which of TensorFlow and Keras it imported.
# At exit, not from -X importtime: the Keras loader imports TensorFlow with stderr held back.
IMPORTS_AT_EXIT = """
import atexit, json, runpy, sys
record = sys.argv.pop(1)
heavy = lambda: sorted({"tensorflow", "keras"} & set(sys.modules))
atexit.register(lambda: open(record, "w").write(json.dumps(heavy())))
runpy.run_module("pipeline.predict", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize(
    ("model", "imported"),
    [(None, []), ("litert", []), (str(paths.MODEL), ["keras", "tensorflow"])],
    ids=["default", "tflite", "keras"],
)
def test_the_litert_path_never_imports_tensorflow(repo_models, litert_path, digits_dir, tmp_path, model, imported):
    record = tmp_path / "imported.json"
    options = [] if model is None else ["--model", str(litert_path) if model == "litert" else model]
    run = [sys.executable, "-c", IMPORTS_AT_EXIT, str(record), str(digits_dir / "digit1.tiff"), *options]
    result = subprocess.run(run, cwd=repo_models, env=env(PYTHONPATH=str(ROOT)), capture_output=True, text=True)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith(f"{digits_dir / 'digit1.tiff'}: 1 (")
    assert json.loads(record.read_text()) == imported  # the Keras run shows the check sees an import


def wrong_shape_litert() -> bytes:
    """A LiteRT model from 28x28 images to 5 outputs, not 10."""
    from pipeline.core.tf import keras

    layers = keras().layers
    five = keras().Sequential([keras().Input(shape=(28, 28)), layers.Flatten(), layers.Dense(5, activation="softmax")])
    return export.to_litert(five)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda good: None, "no such model"),
        (lambda good: b"", "not a loadable LiteRT model (empty file)"),
        (lambda good: b"weights?", "not a loadable LiteRT model (The model is not a valid Flatbuffer buffer)"),
        (lambda good: good[:1000], "not a loadable LiteRT model (The model is not a valid Flatbuffer buffer)"),
        (lambda good: wrong_shape_litert(), "expected a model from 28x28 images to 10 digit probabilities"),
    ],
    ids=["missing", "empty", "text", "truncated", "wrong-shape"],
)
def test_litert_model_problems_are_one_line(litert_path, digits_dir, tmp_path, capfd, make, message):
    path = tmp_path / "model.tflite"
    content = make(litert_path.read_bytes())
    if content is not None:
        path.write_bytes(content)
    capfd.readouterr()  # the converter's notes, printed past tf.quiet() under capfd
    assert predict_main([str(digits_dir / "digit1.tiff"), "--model", str(path)]) == 1
    out, err = capfd.readouterr()  # the file descriptors: the interpreter's own C++ lines too
    assert out == "" and err.count("\n") == 1
    assert err.startswith(f"error: {path}: ") and message in err
