"""The play page in a real browser: headless Chromium (Debian's chromium and chromedriver,
driven by selenium) loads the page, a held key drives an action dimension, and the world
model's frames change. Skipped, with the reason, where no browser is installed."""

from __future__ import annotations

import pytest

from cosmos_env.play.browser import MISSING, chromium_paths, headless_chromium, wait_for
from cosmos_env.play.server import PlayConfig, PlayServer

pytestmark = pytest.mark.skipif(chromium_paths() is None, reason=MISSING)


@pytest.fixture(scope="module")
def server(tiny_world_model_dir):
    server = PlayServer(PlayConfig(checkpoint=str(tiny_world_model_dir), port=0)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    driver = headless_chromium()
    yield driver
    driver.quit()


def test_a_held_key_drives_the_world_model_and_its_frames_change(server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get(server.url)
    wait_for(browser, "window.play.hello && window.play.last && window.play.last.t === 0")
    hello = browser.execute_script("return window.play.hello;")
    assert hello["actions"][0] == "dx" and hello["has_simulator"]
    first = browser.execute_script("return window.play.last.world_model;")

    step = browser.find_element(By.ID, "step")
    ActionChains(browser).key_down("q").perform()  # q holds dimension 0 (dx) at +1
    step.click()
    wait_for(browser, "window.play.last.t === 1")
    ActionChains(browser).key_up("q").perform()
    last = browser.execute_script("return window.play.last;")
    assert last["action"][0] == 1.0 and all(a == 0.0 for a in last["action"][1:])
    assert last["world_model"] != first  # the world model predicted a new frame
    assert last["simulator"] and last["psnr"] is not None  # the simulator stepped beside it

    browser.find_element(By.ID, "run").click()  # run: frames stream until paused
    wait_for(browser, "window.play.last.t >= 6")
    browser.find_element(By.ID, "run").click()
    assert browser.execute_script("return window.play.errors.length;") == 0
    assert browser.find_element(By.ID, "error").text == ""
