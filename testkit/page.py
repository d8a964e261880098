"""The page in a real browser for the system tests: Debian's Chromium, headless, driven by
Selenium through Debian's chromium-driver, and a person's strokes drawn on its pad.

No Chromium is a failure, not a skip: every test runs in CI, and `./install-for-tests` (README's
command 2 and `.ci/run` run it) installs it.
"""

import contextlib
import math
import shutil
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions import interaction
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.actions.pointer_input import PointerInput
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"  # Debian's packages
DESKTOP, PHONE_WIDTH = (1000, 700), 390  # CSS pixels; 390 is an iPhone 12-15's width
ANSWER_SECONDS = 20  # a stroke's answer: a pause, a PNG, one model call; generous for a busy CI

# The digits, as strokes in fractions of the pad's side (x right, y down): what a person draws.
OVAL = [(0.5 + 0.22 * math.sin(t / 16 * 2 * math.pi), 0.5 - 0.32 * math.cos(t / 16 * 2 * math.pi)) for t in range(17)]
STROKES = {
    1: [[(0.5, 0.15), (0.5, 0.85)]],
    7: [[(0.28, 0.2), (0.72, 0.2), (0.42, 0.85)]],
    0: [OVAL],
}


@contextlib.contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    """Headless Chromium driven by Debian's chromium-driver, at DESKTOP size; a failure, not a skip, when missing."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} missing: the page test needs Debian's chromium and chromium-driver; "
            "./install-for-tests installs them (apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def viewport(driver, width: int, height: int, mobile: bool = False) -> None:
    """Exactly width x height CSS pixels, as a phone's screen is, whatever the window's chrome."""
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


def answers(driver) -> int:
    return int(driver.find_element(By.ID, "answer").get_attribute("data-answers"))


def wait_for_answer(driver, before: int) -> None:
    WebDriverWait(driver, ANSWER_SECONDS).until(lambda d: answers(d) > before, "the page showed no new answer")


def draw(driver, strokes: list[list[tuple[float, float]]], finger: bool = False) -> None:
    """Each stroke with the mouse (or a finger on a touch screen): press, move through its points
    in small steps, lift."""
    pad = driver.find_element(By.ID, "pad")
    side = pad.size["width"]

    def at(x: float, y: float) -> tuple[int, int]:  # offsets from the pad's centre
        return round((x - 0.5) * side), round((y - 0.5) * side)

    for stroke in strokes:
        points = (
            [stroke[0]]
            + [
                (x0 + (x1 - x0) * step / 4, y0 + (y1 - y0) * step / 4)  # a drag arrives as many small moves
                for (x0, y0), (x1, y1) in zip(stroke, stroke[1:])
                for step in range(1, 5)
            ]
        )
        if finger:  # touch input: Chromium turns it into pointer events of pointerType "touch"
            builder = ActionBuilder(driver, mouse=PointerInput(interaction.POINTER_TOUCH, "finger"), duration=10)
            builder.pointer_action.move_to(pad, *at(*points[0])).pointer_down()
            for point in points[1:]:
                builder.pointer_action.move_to(pad, *at(*point))
            builder.pointer_action.pointer_up()
            builder.perform()
            continue
        actions = ActionChains(driver, duration=10)
        actions.move_to_element_with_offset(pad, *at(*points[0])).click_and_hold()
        for point in points[1:]:
            actions.move_to_element_with_offset(pad, *at(*point))
        actions.release().perform()
