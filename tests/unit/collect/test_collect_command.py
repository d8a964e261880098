"""`python -m pipeline.collect ROOT`: a folder of labelled images into the collected store, each
file taken, already collected, or refused with its reason; nothing refused silently."""

import io

import numpy as np
import pytest
from PIL import Image

from pipeline.collect.command import main
from pipeline.collect.store import Store
from testkit.glyphs import glyph
from testkit.repos import ROOT


def write_png(path, image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "phone"
    write_png(root / "3" / "a.png", glyph(3))
    glyph(3, offset=(6, 0)).convert("RGB").save(root / "3" / "b.JPG", format="JPEG", quality=95)
    write_png(root / "7" / "c.png", glyph(7))
    write_png(root / "7" / "blank.png", Image.new("L", (80, 80), 255))
    (root / "7" / "notes.txt").write_text("the 7s from Tuesday")
    (root / "7" / "more").mkdir()
    (root / "7" / "fake.png").write_bytes(b"not a png")
    write_png(root / "x" / "d.png", glyph(1))
    write_png(root / "10" / "e.png", glyph(1))
    (root / "loose.png").write_bytes(png_bytes(glyph(2)))
    return root


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def stored(into) -> list[str]:
    return sorted(str(path.relative_to(into)) for path in into.rglob("*") if path.is_file())


def test_each_file_is_taken_or_refused_by_name_and_the_store_holds_the_digits(tree, tmp_path, capsys):
    into = tmp_path / "collected"
    assert main([str(tree), "--into", str(into)]) == 1
    out, err = capsys.readouterr()
    taken = out.splitlines()
    assert [line.split(": ")[0] for line in taken] == [
        str(tree / "3/a.png"),
        str(tree / "3/b.JPG"),
        str(tree / "7/c.png"),
    ]
    assert all(": taken as a " in line for line in taken)
    refused = {line.removeprefix("error: ").split(": ")[0]: line for line in err.splitlines()[:-1]}
    assert sorted(refused) == sorted(
        str(tree / name) for name in ("10", "loose.png", "7/blank.png", "7/fake.png", "7/more", "7/notes.txt", "x")
    )
    assert "no digit found" in refused[str(tree / "7/blank.png")]
    assert "not an image file name" in refused[str(tree / "7/notes.txt")]
    assert "is not a digit 0 to 9" in refused[str(tree / "x")] and "is not a digit 0 to 9" in refused[str(tree / "10")]
    assert "not in a digit's folder" in refused[str(tree / "loose.png")]
    assert err.splitlines()[-1] == "3 taken, 0 already collected, 7 not taken"
    files = stored(into)
    assert [name.split("/")[0] for name in files] == ["3", "3", "7"]
    for name in files:
        assert np.asarray(Image.open(into / name)).shape == (28, 28)


def test_importing_again_takes_nothing_twice(tree, tmp_path, capsys):
    into = tmp_path / "collected"
    main([str(tree), "--into", str(into)])
    before = stored(into)
    capsys.readouterr()
    assert main([str(tree), "--into", str(into)]) == 1
    out, err = capsys.readouterr()
    assert stored(into) == before and out.count(": already collected as a ") == 3
    assert err.splitlines()[-1] == "0 taken, 3 already collected, 7 not taken"


def test_a_clean_tree_exits_0_and_a_full_store_says_so_per_file(tmp_path, capsys):
    root = tmp_path / "clean"
    for digit in (0, 1, 2):
        write_png(root / str(digit) / f"{digit}.png", glyph(digit))
    assert main([str(root), "--into", str(tmp_path / "a")]) == 0
    assert main([str(root), "--into", str(tmp_path / "b"), "--max-files", "2"]) == 1
    err = capsys.readouterr().err
    assert f"error: {root / '2/2.png'}: the collection holds 2 digits" in err
    assert len(stored(tmp_path / "b")) == 2


def test_the_store_is_the_one_the_service_writes(tmp_path):
    root = tmp_path / "root"
    write_png(root / "5" / "five.png", glyph(5))
    assert main([str(root), "--into", str(tmp_path / "c")]) == 0
    assert Store(tmp_path / "c").files == 1


@pytest.mark.parametrize("into", ["inside", "."])
def test_a_store_inside_the_imported_folder_is_refused(tmp_path, into):
    root = tmp_path / "root"
    write_png(root / "5" / "five.png", glyph(5))
    with pytest.raises(Exception, match="the store must be apart from what it imports"):
        main([str(root), "--into", str(root / into)])


def test_a_root_that_is_not_a_folder_is_one_error(tmp_path):
    with pytest.raises(Exception, match="not a folder"):
        main([str(tmp_path / "absent")])


def test_the_labelled_examples_docs_collecting_md_imports_are_each_taken_under_their_digit(tmp_path, capsys):
    assert main([str(ROOT / "examples/labelled"), "--into", str(tmp_path / "store")]) == 0
    out = capsys.readouterr().out
    for name, label in (("3/test63.jpg", 3), ("4/pen-4.png", 4), ("5/test53.jpg", 5), ("7/marker-7.png", 7)):
        assert f"examples/labelled/{name}: taken as a {label}: " in out
    assert "examples/labelled/8/test146.jpg: taken as an 8: " in out
    assert sorted(path.parent.name for path in (tmp_path / "store").rglob("*.png")) == ["3", "4", "5", "7", "8"]
