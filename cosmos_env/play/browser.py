"""Headless Chromium driven by selenium, for the play page's browser test and its speed
benchmark: Debian's ``chromium`` and ``chromedriver`` (apt-get install chromium
chromium-driver); selenium is a dev dependency."""

from __future__ import annotations

import shutil
from typing import Any


def chromium_paths() -> tuple[str, str] | None:
    """(browser, driver) executables, or None where either is not installed."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


MISSING = "no headless Chromium here: apt-get install chromium chromium-driver (.ci/run does)"


def headless_chromium() -> Any:
    """A selenium ``webdriver.Chrome`` on headless Chromium; a RuntimeError naming the
    packages to install where it is missing."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    paths = chromium_paths()
    if paths is None:
        raise RuntimeError(MISSING)
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    driver.set_script_timeout(30)
    return driver


def wait_for(driver: Any, script: str, timeout: float = 30.0) -> Any:
    """Poll the JS expression ``script`` until it is truthy; return its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: d.execute_script(f"return {script};")
    )
