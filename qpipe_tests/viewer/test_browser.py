"""End to end: ``qpipe viewer`` on a free localhost port against a small demo lake, driven by
headless Chromium through every page, with a screenshot of each that must not be an error.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them and sets
``QPIPE_BROWSER_TESTS=required``, which turns a missing browser into a failure, not a skip).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
PAGES = ["Backtests", "Factor lab", "Strategy lab", "Live"]

if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
    reason = (
        "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
    )
    if os.environ.get("QPIPE_BROWSER_TESTS") == "required":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(demo):
    data, cfg = demo
    port = free_port()
    env = {**os.environ, "QPIPE_DATA": str(data)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "qpipe.cli", "--config", str(cfg), "viewer", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"qpipe viewer did not start:\n{proc.stdout.read()}")
        time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def test_every_page_renders_in_chromium(server, browser, tmp_path):
    wait = WebDriverWait(browser, 60)
    browser.get(server)
    for name in PAGES:
        radio = f'//*[@data-testid="stSidebar"]//label[.//p[text()="{name}"]]'
        wait.until(ec.element_to_be_clickable((By.XPATH, radio))).click()
        heading = f'//h2[contains(normalize-space(.), "{name}")]'  # the page's st.header
        wait.until(ec.presence_of_element_located((By.XPATH, heading)))
        if name == "Strategy lab":
            run = (By.XPATH, '//button[.//p[text()="Run"]]')
            wait.until(ec.element_to_be_clickable(run)).click()
            wait.until(ec.presence_of_element_located(
                (By.CSS_SELECTOR, '[data-testid="stPlotlyChart"]')))  # fmt: skip
        wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, '[data-testid="stSpinner"]'))
        time.sleep(1.0)  # let the charts draw
        shot = tmp_path / f"{name.replace(' ', '_').lower()}.png"
        assert browser.save_screenshot(str(shot))
        errors = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
        assert not errors, f"{name}: {errors[0].text}"
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "Traceback" not in body and name in body
        assert shot.stat().st_size > 20_000, f"{name}: the screenshot looks blank"
