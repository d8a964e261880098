"""The page at GET /, in a real browser: Debian's Chromium, headless, driven by Selenium through
Debian's chromium-driver. Real mouse strokes draw a 1, a 7 and a 0 on the canvas and the page must
show each digit, the 28x28 the model saw and the bars; a PNG is uploaded through the file input
and another dropped on the page; at phone width (390 px) a finger draws a 7 (touch input). It
saves the two screenshots docs/serve.md shows.
A server answering 503 (plain text, as uvicorn's concurrency limit does, or JSON with Retry-After)
is shown as busy, not as a server that did not answer.

The server is the real one, `python -m pipeline.serve`, answering from the template model of
testkit/glyphs.py exported to LiteRT: CI has no models/ (DVC outputs are not in git) and no
MNIST, and that model needs neither. It matches a normalised image against normalised typeset
digits, so plain strokes (a bar, a bar with a foot, an oval) are what it reads; drawing a real
person's 4 is the trained model's job, which `predict`'s tests measure.

No Chromium is a failure, not a skip: every test runs in CI, and `./install-for-tests` (README's
command 2 and `.ci/run` run it) installs it.
"""

import base64
import io
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from pipeline.serve.app import STATIC
from testkit.faults import Started
from testkit.glyphs import glyph
from testkit.page import (
    ANSWER_SECONDS,
    DESKTOP,
    PHONE_WIDTH,
    STROKES,
    answers,
    chromium,
    draw,
    viewport,
    wait_for_answer,
)
from testkit.repos import ROOT, env

SCREENSHOT, PHONE_SCREENSHOT = ROOT / "docs/serve-page.png", ROOT / "docs/serve-page-phone.png"

pytestmark = pytest.mark.slow  # a browser and a server: about 15 s


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def server(tmp_path_factory, template_litert):
    """`python -m pipeline.serve` on a free port with the template model; its base URL."""
    where = tmp_path_factory.mktemp("page")
    command = [sys.executable, "-m", "pipeline.serve", "--model", str(template_litert), "--port", "0"]
    started = Started(command, ROOT, where / "logs", env(PYTHONPATH=str(ROOT)))
    try:
        started.wait_for(lambda: started.out().endswith("\n"), 60, "the line saying where it listens")
        yield started.out().split(" on ")[1].split(";")[0]
    finally:
        started.stop()


@pytest.fixture(scope="module")
def collecting_server(tmp_path_factory, template_litert):
    """As `server`, with `--collect DIR`: its base URL and DIR."""
    where = tmp_path_factory.mktemp("collecting")
    command = [sys.executable, "-m", "pipeline.serve", "--model", str(template_litert), "--port", "0"]
    started = Started(
        [*command, "--collect", str(where / "collected")], ROOT, where / "logs", env(PYTHONPATH=str(ROOT))
    )
    try:
        started.wait_for(lambda: started.out().endswith("\n"), 60, "the line saying where it listens")
        yield started.out().split(" on ")[1].split(",")[0], where / "collected"
    finally:
        started.stop()


def shown(driver) -> dict:
    """What the page shows: the digit, the bars' probabilities, and the 28x28's ink."""
    probabilities = [
        float(row.get_attribute("data-probability")) for row in driver.find_elements(By.CSS_SELECTOR, "#bars li")
    ]
    ink = driver.execute_script(
        "const c = document.getElementById('input');"
        "const d = c.getContext('2d').getImageData(0, 0, 28, 28).data;"
        "let lit = 0; for (let i = 0; i < d.length; i += 4) lit += d[i] > 127; return lit;"
    )
    widths = driver.execute_script(
        "return [...document.querySelectorAll('#bars .fill')].map(f => f.getBoundingClientRect().width);"
    )
    digit = driver.find_element(By.ID, "digit").text
    return {"digit": digit, "probabilities": probabilities, "ink": ink, "widths": widths}


def draw_and_read(driver, digit: int, finger: bool = False) -> dict:
    driver.find_element(By.ID, "clear").click()
    before = answers(driver)
    draw(driver, STROKES[digit], finger)
    wait_for_answer(driver, before)
    return shown(driver)


def note_pointer_kinds(driver) -> None:
    """From now on the pad notes each pointerdown's pointerType in window.kinds (mouse, touch, pen)."""
    driver.execute_script(
        "window.kinds = []; document.getElementById('pad')"
        ".addEventListener('pointerdown', (e) => window.kinds.push(e.pointerType));"
    )


def drop(driver, name: str, content: bytes, kind: str) -> None:
    """Drop a file on the page as a person drags one from their desktop: dragenter, dragover and
    drop events carrying it in a DataTransfer (WebDriver cannot drag from outside the browser)."""
    driver.execute_script(
        """
        const [name, b64, kind] = arguments;
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const carried = new DataTransfer();
        carried.items.add(new File([bytes], name, { type: kind }));
        const zone = document.getElementById("drop");
        for (const type of ["dragenter", "dragover", "drop"]) {
          zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: carried }));
        }
        """,
        name,
        base64.b64encode(content).decode(),
        kind,
    )


def assert_shows(page: dict, digit: int) -> None:
    assert page["digit"] == str(digit), page
    assert len(page["probabilities"]) == 10 and abs(sum(page["probabilities"]) - 1) < 0.01
    assert max(range(10), key=page["probabilities"].__getitem__) == digit
    assert page["widths"][digit] == max(page["widths"]) > 0  # the bar drawn is the answer's
    assert 20 < page["ink"] < 400  # the 28x28 shows a digit: some ink, not all ink


def test_drawing_a_1_a_7_and_a_0_shows_each_and_a_chosen_file_is_read(server, browser, tmp_path):
    viewport(browser, *DESKTOP)
    browser.get(server + "/")
    assert browser.title == "MNIST digits"
    for digit in (1, 0, 7):  # the 7 last: it stays on the page for the screenshot
        assert_shows(draw_and_read(browser, digit), digit)
    browser.save_screenshot(str(SCREENSHOT))

    browser.find_element(By.ID, "clear").click()
    assert shown(browser)["digit"] == "\u2013" and shown(browser)["ink"] == 0
    image = tmp_path / "typeset-4.png"
    glyph(4).save(image)
    before = answers(browser)
    browser.find_element(By.ID, "file").send_keys(str(image))
    wait_for_answer(browser, before)
    assert_shows(shown(browser), 4)
    assert browser.find_element(By.ID, "status").text == "Read from typeset-4.png."


def collected(root) -> list[str]:
    return sorted(str(path.relative_to(root)).split("/")[0] for path in root.rglob("*.png"))


def test_a_wrong_answer_is_corrected_and_a_right_one_confirmed_into_the_collection(collecting_server, browser):
    base, root = collecting_server
    viewport(browser, *DESKTOP)
    browser.get(base + "/")
    assert_shows(draw_and_read(browser, 7), 7)
    correct = browser.find_element(By.ID, "correct")
    WebDriverWait(browser, ANSWER_SECONDS).until(lambda d: correct.is_displayed(), "no correction offered")
    browser.find_element(By.CSS_SELECTOR, '#labels button[data-label="1"]').click()  # "it was a 1"
    thanks = browser.find_element(By.ID, "thanks")
    WebDriverWait(browser, ANSWER_SECONDS).until(lambda d: thanks.text, "no word on the correction")
    assert thanks.text == "Thank you: kept as a 1." and collected(root) == ["1"]

    assert_shows(draw_and_read(browser, 0), 0)
    browser.find_element(By.ID, "right").click()
    WebDriverWait(browser, ANSWER_SECONDS).until(lambda d: thanks.text, "no word on the confirmation")
    assert thanks.text == "Thank you: kept as a 0." and collected(root) == ["0", "1"]


def test_a_service_that_does_not_collect_offers_no_correction(server, browser):
    viewport(browser, *DESKTOP)
    browser.get(server + "/")
    assert_shows(draw_and_read(browser, 1), 1)
    assert not browser.find_element(By.ID, "correct").is_displayed()


def test_a_file_dropped_on_the_page_is_read(server, browser):
    viewport(browser, *DESKTOP)
    browser.get(server + "/")
    buffer = io.BytesIO()
    glyph(2).save(buffer, format="PNG")
    before = answers(browser)
    drop(browser, "dropped-2.png", buffer.getvalue(), "image/png")
    wait_for_answer(browser, before)
    assert_shows(shown(browser), 2)
    assert browser.find_element(By.ID, "status").text == "Read from dropped-2.png."
    assert "dragging" not in browser.find_element(By.ID, "drop").get_attribute("class")


def test_a_non_image_file_says_why(server, browser, tmp_path):
    viewport(browser, *DESKTOP)
    browser.get(server + "/")
    text = tmp_path / "notes.txt"
    text.write_text("not a digit")
    before = answers(browser)
    browser.find_element(By.ID, "file").send_keys(str(text))
    wait_for_answer(browser, before)
    status = browser.find_element(By.ID, "status")
    assert status.text.startswith("notes.txt: not an image") and "error" in status.get_attribute("class")
    assert shown(browser)["digit"] == "\u2013"


class Overloaded(BaseHTTPRequestHandler):
    """The page's own files, and 503 for every POST: what an overloaded service answers, in
    plain text as uvicorn's concurrency limit does, or as a JSON error with Retry-After."""

    json_body = False

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        name = "index.html" if self.path == "/" else self.path.removeprefix("/static/")
        kinds = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
        self.reply(200, (STATIC / name).read_bytes(), kinds[Path(name).suffix])

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.json_body:
            self.reply(503, json.dumps({"error": "overloaded"}).encode(), "application/json", {"Retry-After": "3"})
        else:
            self.reply(503, b"Service Unavailable", "text/plain; charset=utf-8")

    def reply(self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": kind, "Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass  # the test's output stays the test's


@pytest.mark.parametrize(
    ("json_body", "expected"),
    [(False, "The server is busy: try again."), (True, "The server is busy: try again in 3 s.")],
)
def test_a_busy_server_is_shown_as_busy_not_as_no_answer(browser, json_body, expected):
    handler = type("Handler", (Overloaded,), {"json_body": json_body})
    stub = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    try:
        viewport(browser, *DESKTOP)
        browser.get(f"http://127.0.0.1:{stub.server_address[1]}/")
        before = answers(browser)
        draw(browser, STROKES[1])
        wait_for_answer(browser, before)
        status = browser.find_element(By.ID, "status")
        # It used to be "The server did not answer (... is not valid JSON)".
        assert status.text == expected and "error" in status.get_attribute("class")
        assert shown(browser)["digit"] == "\u2013"
    finally:
        stub.shutdown()
        stub.server_close()


def test_the_page_works_at_phone_width(server, browser):
    viewport(browser, PHONE_WIDTH, 844, mobile=True)
    browser.get(server + "/")
    pad, bars = browser.find_element(By.ID, "pad"), browser.find_element(By.ID, "bars")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= PHONE_WIDTH  # no sideways scroll
    assert pad.size["width"] >= 250  # room to draw with a finger
    assert bars.location["y"] > pad.location["y"] + pad.size["height"]  # stacked: the answer under the pad
    note_pointer_kinds(browser)
    assert_shows(draw_and_read(browser, 7, finger=True), 7)
    assert browser.execute_script("return window.kinds;") == ["touch"] * len(STROKES[7])  # a finger drew it
    height = browser.execute_script("return document.documentElement.scrollHeight")
    viewport(browser, PHONE_WIDTH, height, mobile=True)  # the whole page in one picture
    browser.save_screenshot(str(PHONE_SCREENSHOT))


def test_the_screenshots_are_where_docs_serve_md_shows_them():
    text = (ROOT / "docs/serve.md").read_text()
    for picture in (SCREENSHOT, PHONE_SCREENSHOT):
        assert f"({picture.name})" in text, f"docs/serve.md does not show {picture.name}"
        assert Path(picture).is_file(), f"{picture.name}: run tests/system/test_page.py to make it"
