"""The predict CLI and API, with a model that reads typeset digits (imports TensorFlow)."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pipeline import models, predict
from pipeline.predict import Predictor
from tests.conftest import ROOT
from tests.glyphs import glyph, template_model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.keras"
    models.save_model(template_model(), path)
    return path


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
    assert predict.main([str(digits_dir), "--model", str(model_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10
    for digit, line in enumerate(lines):
        path, guess = line.split(": ", 1)
        assert path.endswith(f"digit{digit}" + path[path.rindex(".") :])
        assert re.fullmatch(rf"{digit} \(\d+\.\d%\)(, or \d \(\d+\.\d%\))?", guess), line


def test_json_lines_carry_probabilities(model_path, digits_dir, capsys):
    assert predict.main([str(digits_dir / "digit3.bmp"), "--model", str(model_path), "--json", "--top", "3"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["path"].endswith("digit3.bmp") and record["digit"] == 3
    assert len(record["probabilities"]) == 10 and sum(record["probabilities"]) == pytest.approx(1, abs=1e-4)
    assert record["confidence"] == max(record["probabilities"])
    assert [t["digit"] for t in record["top"]][0] == 3 and len(record["top"]) == 3


def test_top_k_and_runner_up_when_unsure(model_path, digits_dir, capsys):
    predict.main([str(digits_dir / "digit5.jpg"), "--model", str(model_path), "--top", "3"])
    assert capsys.readouterr().out.count(", or ") == 2
    unsure = predict.Prediction("x.png", probabilities=np.array([0.5, 0.4] + [0.0125] * 8))
    assert predict.describe(unsure, top=1) == "x.png: 0 (50.0%), or 1 (40.0%)"
    sure = predict.Prediction("x.png", probabilities=np.array([0.91, 0.09] + [0.0] * 8))
    assert predict.describe(sure, top=1) == "x.png: 0 (91.0%)"


def test_bad_inputs_cost_one_line_each_and_the_rest_still_run(model_path, digits_dir, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.png").write_text("not an image")
    (bad / "empty.png").write_bytes(b"")
    Image.new("L", (1, 1)).save(bad / "dot.png")
    Image.new("L", (64, 64), 255).save(bad / "blank.png")
    good = digits_dir / "digit7.png"
    inputs = [bad / "notes.png", good, bad / "missing.png", bad / "empty.png", bad / "dot.png", bad / "blank.png"]
    assert predict.main([*map(str, inputs), "--model", str(model_path)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{good}: 7 ({out.split('(')[1].split(')')[0]})"]
    errors = err.splitlines()
    assert len(errors) == 5
    expected = ["not an image", "no such file", "empty file", "too small", "no digit found"]
    for line, path, problem in zip(errors, [inputs[0], *inputs[2:]], expected):
        assert line.startswith(f"error: {path}: ") and problem in line


def test_json_reports_errors_as_objects(model_path, tmp_path, capsys):
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8 truncated")
    assert predict.main([str(tmp_path / "junk.jpg"), "--model", str(model_path), "--json"]) == 1
    record = json.loads(capsys.readouterr().out)
    assert record["path"].endswith("junk.jpg") and "junk.jpg" in record["error"]


def test_save_preprocessed_writes_what_the_model_saw(model_path, digits_dir, tmp_path):
    out_dir = tmp_path / "seen"
    assert predict.main([str(digits_dir), "--model", str(model_path), "--save-preprocessed", str(out_dir)]) == 0
    saved = sorted(p.name for p in out_dir.iterdir())
    assert saved == [f"digit{d}.png" for d in range(10)]
    seen = np.asarray(Image.open(out_dir / "digit4.png"))
    assert seen.shape == (28, 28) and seen.max() == 255 and seen[0].max() == 0  # light on black


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "no such model; train one with `dvc repro` or fetch it with `dvc pull`"),
        (lambda p: p.write_text("weights?"), "not a loadable Keras model"),
    ],
    ids=["missing", "not-keras"],
)
def test_model_problems_are_one_line(tmp_path, digits_dir, capsys, make, message):
    path = tmp_path / "model.keras"
    make(path)
    assert predict.main([str(digits_dir), "--model", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and message in err


def test_model_that_would_run_code_on_load_is_refused(tmp_path, digits_dir, capsys):
    from pipeline.tf import keras

    evil = keras().Sequential([keras().Input(shape=(28, 28)), keras().layers.Lambda(lambda x: x * 2)])
    path = tmp_path / "evil.keras"
    evil.save(path)
    assert predict.main([str(digits_dir), "--model", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: not a loadable Keras model") and "safe" in err.lower()


def test_api_takes_paths_pil_images_and_arrays_alike(model_path, digits_dir):
    predictor = Predictor.from_path(model_path)
    image = Image.open(digits_dir / "digit2.png")
    results = predictor.predict([digits_dir / "digit2.png", str(digits_dir / "digit2.png"), image, np.asarray(image)])
    assert [r.digit for r in results] == [2, 2, 2, 2]
    assert all(np.allclose(r.probabilities, results[0].probabilities) for r in results)
    assert predictor.predict([object()])[0].error.endswith("expected a file path, a PIL image or an array")


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
