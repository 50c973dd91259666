"""The board pack in a real headless browser: at laptop width for the screen, and as printed on A4 (nothing wider
than the page, several pages), for a trust and for an ICB; screenshots and PDFs kept under test-artifacts/."""
from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest

from ibp_pipeline.config import PROJECT_ROOT
from ibp_pipeline.dashboards import board_pack
from ibp_pipeline.dashboards.serving import Serving

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "board-packs"
A4_CONTENT_PX = 718  # 210 mm less the pack's 12 mm margins each side, at 96 pixels an inch

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian chromium is not installed (.ci/run installs it)")


@pytest.mark.parametrize("org", ["RXL", "QE1"])
def test_board_pack_on_screen_and_on_a4(org: str, served_db: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("IBP_RECORDS_STORE", str(tmp_path / "records.duckdb"))
    db = Serving(served_db)
    start, end = board_pack.default_period(db)
    html = tmp_path / f"pack-{org}.html"
    html.write_text(board_pack.build(db, org, start, end, today=dt.date(2026, 12, 7)), encoding="utf-8")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.goto(html.as_uri())
        page.wait_for_timeout(1500)  # plotly draws
        assert page.get_by_role("heading", name="Integrated Performance Report").count() == 1
        page.get_by_role("heading", name="Integrated Performance Report").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / f"{org}-screen-ipr.png"))
        # printed: A4 portrait, nothing wider than the page, and more than one page
        page.set_viewport_size({"width": A4_CONTENT_PX, "height": 1000})
        page.emulate_media(media="print")
        page.wait_for_timeout(800)
        wide = page.evaluate("""() => Array.from(document.querySelectorAll('body *'))
            .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
            .map(e => e.tagName + ' ' + (e.textContent || '').slice(0, 40))""")
        assert wide == [], wide[:5]
        page.screenshot(path=str(ARTIFACTS / f"{org}-print-first-page.png"))
        pdf = ARTIFACTS / f"{org}.pdf"
        page.pdf(path=str(pdf), format="A4", print_background=True)
        browser.close()
    assert len(re.findall(rb"/Type\s*/Page(?!s)", pdf.read_bytes())) >= 3
