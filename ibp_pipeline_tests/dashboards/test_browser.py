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
PAGES = [("", "Overview"), ("performance", "Performance"), ("report", "Performance report"),
         ("benchmarking", "Benchmarking"),
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


LAPTOP = PROJECT_ROOT / "test-artifacts" / "laptop"  # 1366 x 768 viewport screenshots (what a board member sees)

# Every visible text element's colour against the background it sits on (alpha and ancestors' fills blended
# over white), and plotly's SVG text against the white plot; disabled controls are exempt (WCAG 1.4.3).
_CONTRAST_SCAN = """() => {
  const parse = c => { const m = (c || '').match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(parseFloat);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const blend = (top, base) => base.map((v, i) => v * (1 - top[3]) + top[i] * top[3]);
  const background = el => { const layers = []; const r = el.getBoundingClientRect();
    const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
    for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor);
      const box = e.getBoundingClientRect();  // a fill counts only where the text actually sits on it
      const under = box.left <= cx && cx <= box.right && box.top <= cy && cy <= box.bottom;
      if (c && c[3] > 0 && under) { layers.push(c); if (c[3] >= 1) break; } }
    return layers.reverse().reduce((base, c) => blend(c, base), [255, 255, 255]); };
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || style.display === 'none') continue;
    if (el.closest('[disabled], [aria-disabled="true"], .modebar, .hoverlayer')) continue;
    const svg = el.namespaceURI === 'http://www.w3.org/2000/svg';
    if (svg && el.closest('.heatmaplayer, .barlayer, .textpoint')) continue;  // text drawn on its own mark
    let fg = parse(svg ? style.fill : style.color);  // computed: what the cascade (and !important) paints
    if (!fg) continue;
    let opacity = 1; for (let e = el; e; e = e.parentElement) opacity *= parseFloat(getComputedStyle(e).opacity || 1);
    if (opacity < 0.1 || fg[3] === 0) continue;  // not shown (Streamlit fades slider ends in on hover)
    const icon = !!el.closest('[data-testid="stIconMaterial"]');  // an icon: WCAG 1.4.11, 3:1
    const bg = svg ? [255, 255, 255] : background(el);
    fg = blend([fg[0], fg[1], fg[2], fg[3] * opacity], bg);
    const [a, b] = [lum(fg), lum(bg)];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < (icon ? 3 : 4.5)) out.push({text: el.textContent.trim().slice(0, 60),
      ratio: Math.round(ratio * 100) / 100,
      opacity: Math.round(opacity * 100) / 100,
      fg: fg.map(Math.round).join(','), bg: bg.map(Math.round).join(','),
      where: (el.closest('[data-testid]') || el).getAttribute('data-testid') || el.tagName});
  }
  return out;
}"""


def test_header_names_product_and_organisation_focus_is_visible_and_text_meets_aa(dashboard, browser):
    from ibp_pipeline.dashboards import contrast, theme

    LAPTOP.mkdir(parents=True, exist_ok=True)
    page = browser.new_page()
    page.set_viewport_size({"width": 1366, "height": 768})
    low = []
    for path, title in PAGES:
        page.goto(f"{dashboard}/{path}?org=RXL", wait_until="domcontentloaded")
        _settle(page, title)
        masthead = page.locator(".ibp-masthead")
        assert masthead.is_visible(), path
        words = masthead.inner_text()
        assert theme.PRODUCT_NAME in words and "Blackpool Teaching Hospitals" in words and "(RXL)" in words, words
        box, header = masthead.bounding_box(), page.locator('header[data-testid="stHeader"]').bounding_box()
        assert box["y"] < header["y"] + header["height"] and box["y"] + box["height"] <= header["height"] + 1
        page.screenshot(path=str(LAPTOP / f"{path or 'overview'}.png"))  # the viewport: what fits on a laptop
        low += [dict(item, page=path or "overview") for item in page.evaluate(_CONTRAST_SCAN)]
    assert not low, "text under 4.5:1:\n" + "\n".join(map(str, low[:40]))

    page.goto(f"{dashboard}/?org=RXL", wait_until="domcontentloaded")
    _settle(page, "Overview")
    seen = []
    for _ in range(8):  # keyboard only: Tab until something focusable has the focus
        page.keyboard.press("Tab")
        focus = page.evaluate("""() => { const e = document.activeElement; if (!e || e === document.body) return null;
            const s = getComputedStyle(e); return {tag: e.tagName, style: s.outlineStyle, width: s.outlineWidth,
            colour: s.outlineColor, shadow: s.boxShadow, visible: e.matches(':focus-visible')}; }""")
        if focus:
            seen.append(focus)
    assert seen, "Tab never moved the focus"
    yellow = "rgb({}, {}, {})".format(*(round(c * 255) for c in contrast.rgb(theme.FOCUS_RING[0])))
    ringed = [f for f in seen if f["visible"] and f["style"] != "none" and float(f["width"].rstrip("px")) >= 2
              and f["colour"] == yellow]
    assert ringed, f"no focused element showed the yellow focus ring: {seen}"
    page.screenshot(path=str(LAPTOP / "focus-ring.png"))
    page.close()
