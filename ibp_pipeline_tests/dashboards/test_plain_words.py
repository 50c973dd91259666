"""No machine words on any page: every page of the real app, for England, an ICB and a trust, has every visible
string (titles, markdown, captions, metrics, table headings and text cells, pickers' options, expander and tab
labels, chart titles, axis titles, legend names and notes) checked by jargon.leaks against the metric catalogue
and the warehouse's table names. A failure names the page, the organisation and the offending text. Table cells
may hold large bare numbers and the name of the NHS England file a row came from (the Data quality page's
audit tables), never a path, a table name or an identifier."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ibp_pipeline import warehouse_tables
from ibp_pipeline.dashboards import jargon
from ibp_pipeline.dashboards.serving import Serving

from .conftest import APP

PAGES = ["overview.py", "performance.py", "ipr.py", "benchmarking.py", "resources.py", "gaps.py", "forecasts.py",
         "scenarios.py", "plan.py", "workforce.py", "data_quality.py"]
ORGS = ["ENGLAND", "QE1", "RXL"]  # England, an ICB (NHS Lancashire and South Cumbria), a trust (Blackpool)


def _chart_strings(spec: dict) -> list[str]:
    layout = spec.get("layout", {})
    out = []

    def title(obj: dict | None) -> None:
        t = (obj or {}).get("title")
        text = t.get("text") if isinstance(t, dict) else t
        if text:
            out.append(str(text))

    title(layout)
    for key, axis in layout.items():
        if key.startswith(("xaxis", "yaxis")) and isinstance(axis, dict):
            title(axis)
            out += [str(t) for t in axis.get("ticktext") or []]
    out += [str(a.get("text")) for a in layout.get("annotations", []) if a.get("text")]
    for trace in spec.get("data", []):
        if trace.get("name"):
            out.append(str(trace["name"]))
        for k in ("x", "y"):
            values = trace.get(k)
            if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
                out += values  # category labels, not dates or numbers
    return out


def visible_strings(at: AppTest) -> list[tuple[str, str]]:
    """(kind, text) for every string a reader can see on the page as run."""
    out: list[tuple[str, str]] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "error", "warning", "info", "success"):
        for el in getattr(at, kind):
            text = str(el.value)
            if "<" in text and ">" in text:  # HTML: its words and its tooltips, not its tags and styles
                out += [(f"{kind} (html)", t) for t in jargon.visible_html(text)]
            else:
                out.append((kind, text))
    out += [("metric", f"{m.label} {m.value}") for m in at.metric]
    out += [("metric tooltip", m.proto.help) for m in at.metric if m.proto.help]
    for kind in ("selectbox", "multiselect", "radio", "select_slider"):
        for widget in getattr(at, kind):
            out.append((kind, str(widget.label)))
            if getattr(widget, "help", None):
                out.append((f"{kind} tooltip", str(widget.help)))
            out += [(f"{kind} option", str(o)) for o in widget.options]
    out += [("expander", str(e.label)) for e in at.expander]
    out += [("tab", str(t.label)) for t in at.tabs]
    out += [("button", str(b.label)) for b in at.button]
    for frame in at.dataframe:
        value = frame.value
        out += [("table heading", str(c)) for c in value.columns]
        for col in value.columns:
            if value[col].dtype == object or str(value[col].dtype) in ("str", "string"):
                texts = dict.fromkeys(v for v in value[col].dropna() if isinstance(v, str))  # lists (trends) skipped
                out += [("table cell", v) for v in list(texts)[:200]]
    for chart in at.get("plotly_chart"):
        out += [("chart", s) for s in _chart_strings(json.loads(chart.proto.spec))]
    return out


@pytest.fixture(scope="module")
def page_strings(served_db: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """{(org, page): [(kind, text)]}, each page run once per organisation (one AppTest per organisation)."""
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IBP_SERVING", str(served_db))
        mp.setenv("IBP_USERS_FILE", str(tmp_path_factory.mktemp("plain") / "no-users.yaml"))
        for org in ORGS:
            at = AppTest.from_file(str(APP), default_timeout=180)
            at.query_params["org"] = org
            at.run()
            assert not at.exception, at.exception
            for page in PAGES:
                at.switch_page(f"app_pages/{page}").run()
                assert not at.exception, (org, page, at.exception)
                out[(org, page)] = visible_strings(at)
    return out


@pytest.fixture(scope="module")
def vocabulary(served_db: Path) -> tuple[set[str], set[str]]:
    """(metric ids from the served catalogue, schema.table names of the warehouse)."""
    ids = set(Serving(served_db).query("select metric_id from s1_current_state.metric_catalogue")["metric_id"])
    tables = {t.qualified for t in warehouse_tables.BY_NAME.values()}
    return ids, tables


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("org", ORGS)
def test_no_machine_words_on_any_page(page_strings, vocabulary, org, page):
    ids, tables = vocabulary
    strings = page_strings[(org, page)]
    assert len(strings) > 5, f"{page} for {org} showed almost nothing: {strings}"
    found = [f"{kind}: {leak}" for kind, text in strings
             for leak in jargon.leaks(text, ids, tables, numbers=kind != "table cell",
                                      file_names=kind != "table cell")]
    assert not found, f"{page} for {org}:\n" + "\n".join(dict.fromkeys(found))
