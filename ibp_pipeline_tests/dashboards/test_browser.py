"""The dashboards in a real headless Chromium: `ibp dashboard` started as a user would, every page visited,
no Streamlit error on any, a screenshot of each saved under test-artifacts/screenshots/, and a real download.

Needs Debian's chromium (installed by .ci/run); skipped, saying why, on a machine without it."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import polars as pl
import pytest

from ibp_pipeline.config import PROJECT_ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
PAGES = [("", "Overview"), ("performance", "Performance"), ("benchmarking", "Benchmarking"),
         ("resources", "Resources"), ("gaps", "Gaps and needs"), ("forecasts", "Forecasts and risk"),
         ("scenarios", "Scenarios"), ("plan", "Plan"), ("workforce", "Workforce plan"),
         ("data-quality", "Data quality")]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian chromium is not installed (.ci/run installs it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dashboard(served_db: Path, tmp_path_factory: pytest.TempPathFactory):
    """`ibp dashboard` on a free port, in local mode, over the suite's served database."""
    port = _free_port()
    env = {**os.environ, "IBP_SERVING": str(served_db),
           "IBP_USERS_FILE": str(tmp_path_factory.mktemp("nousers") / "users.yaml")}
    log = tmp_path_factory.mktemp("dashlog") / "dashboard.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ibp_pipeline.cli", "dashboard", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"ibp dashboard did not start: {log.read_text()[-2000:]}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS, accept_downloads=True,
            viewport={"width": 1366, "height": 2600})  # laptop width; tall, so a screenshot holds the page
        yield context
        context.close()


def _settle(page, title: str) -> None:
    """Wait until the page's title is drawn and Streamlit has stopped running the script."""
    page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=90_000)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=90_000)
    page.wait_for_timeout(1500)  # plotly draws after the script ends


def test_every_page_renders_without_error_and_is_captured(dashboard, browser):
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    page = browser.new_page()
    problems = []
    for path, title in PAGES:
        page.goto(f"{dashboard}/{path}?org=RXL", wait_until="domcontentloaded")
        _settle(page, title)
        errors = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
        if errors.count():
            problems.append(f"{path}: {errors.first.inner_text()[:300]}")
        if page.get_by_text("Page not found").count():
            problems.append(f"{path}: Streamlit says 'Page not found'")
        assert "Blackpool Teaching Hospitals" in page.locator('[data-testid="stMain"]').inner_text(), path
        page.screenshot(path=str(ARTIFACTS / f"{path or 'overview'}.png"), full_page=True)
    page.close()
    assert not problems, problems
    assert sorted(p.name for p in ARTIFACTS.glob("*.png")) == sorted(f"{p or 'overview'}.png" for p, _ in PAGES)


def test_selection_is_kept_across_pages_and_a_table_downloads(dashboard, browser, tmp_path):
    page = browser.new_page()
    page.goto(f"{dashboard}/?org=QE1", wait_until="domcontentloaded")
    _settle(page, "Overview")
    page.get_by_role("link", name="Gaps and needs").click()
    _settle(page, "Gaps and needs")
    assert "org=QE1" in page.url and "(QE1)" in page.locator('[data-testid="stMain"]').inner_text()
    page.get_by_role("link", name="Overview").click()
    _settle(page, "Overview")
    page.get_by_text("The figures behind the tiles").click()
    button = page.get_by_role("button", name="Download CSV").first
    button.wait_for(state="visible", timeout=30_000)
    page.wait_for_timeout(1000)  # the expander finishes opening
    download = None
    for _attempt in range(3):  # a click during a rerun can be swallowed; a real reader clicks again too
        try:
            with page.expect_download(timeout=20_000) as info:
                button.click()
            download = info.value
            break
        except Exception:
            page.screenshot(path=str(ARTIFACTS.parent / "download-retry.png"), full_page=True)
    assert download is not None, "no download after three clicks (see test-artifacts/download-retry.png)"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    frame = pl.read_csv(saved)
    assert saved.name.startswith("key-standards-qe1") and frame.height > 0 and "measure" in frame.columns
    page.close()
