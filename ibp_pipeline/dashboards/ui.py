"""What every dashboard page shares: cached read-only queries, the reader's selection, tiles and downloads.

Pages call `selection()` for the organisation and period chosen in the sidebar (already checked against what
the logged-in user may see), `query()` for data, and `table()` to show a frame with its CSV and Excel downloads."""
from __future__ import annotations

import html
import importlib
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable, Iterable, Sequence

import polars as pl
import streamlit as st

from ibp_pipeline.dashboards import data_quality, exports, jargon, theme
from ibp_pipeline.access import User
from ibp_pipeline.dashboards.formatting import fmt_value  # noqa: F401 (the pages call ui.fmt_value)
from ibp_pipeline.dashboards.serving import Serving, serving_for, serving_from_env


@dataclass(frozen=True)
class Selection:
    """The reader's choice, kept across pages: one organisation and a span of months."""
    org_code: str
    org_name: str
    org_level: str  # england, region, icb, provider
    parent_icb_code: str | None
    region_code: str | None
    period_from: date
    period_to: date
    visible: frozenset[str] | None  # organisations this user may see; None = all
    user: User | None

    def may_see(self, org_code: str) -> bool:
        return self.visible is None or org_code in self.visible

    @property
    def title(self) -> str:
        return self.org_name if self.org_level == "england" else f"{self.org_name} ({self.org_code})"

    @property
    def span(self) -> str:
        return f"{month_label(self.period_from)} to {month_label(self.period_to)}"


def month_label(d: date | None) -> str:
    return d.strftime("%b %Y") if d else "-"


def db() -> Serving:
    """The served tables: data/serving.duckdb, or PostgreSQL with IBP_DASHBOARD_SOURCE=postgres."""
    return serving_from_env()


@st.cache_data(ttl=6 * 3600, max_entries=1024, show_spinner=False)
def _cached_query(locator: str, version: str, sql: str, params: tuple) -> pl.DataFrame:
    return serving_for(locator).query(sql, list(params) if params else None)


def query(sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
    """A cached read-only query with bound parameters; the cache key includes the served copy's identity, so a
    new publish is read at once and an old copy's results are never mixed with the new one's."""
    serving = db()
    return _cached_query(serving.locator, serving.version(), sql, tuple(params))


@st.cache_data(ttl=6 * 3600, max_entries=1024, show_spinner=False)
def _cached_call(module: str, name: str, locator: str, version: str, args: tuple, kwargs: tuple) -> Any:
    fn = getattr(importlib.import_module(module), name)
    return fn(serving_for(locator), *args, **dict(kwargs))


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """fn(serving, *args, **kwargs), cached like query(): for the data functions of ibp_pipeline.dashboards,
    which take the served database first. Arguments must be hashable (codes, dates, tuples, frozensets)."""
    serving = db()
    return _cached_call(fn.__module__, fn.__name__, serving.locator, serving.version(), args,
                        tuple(sorted(kwargs.items())))


def selection() -> Selection:
    """The current selection (set by the app's sidebar before any page runs)."""
    sel = st.session_state.get("ibp_selection")
    if sel is None:
        st.error("Open the dashboards with `ibp dashboard`: this page needs the app's organisation selector.")
        st.stop()
    return sel


def restrict(frame: pl.DataFrame, sel: Selection, column: str = "org_code") -> pl.DataFrame:
    """Keep only rows of organisations this user may see (all rows in local mode or for an admin)."""
    if sel.visible is None or frame.is_empty():
        return frame
    return frame.filter(pl.col(column).is_in(list(sel.visible)))


def header(title: str, sel: Selection, intro: str) -> None:
    st.title(title)
    st.caption(f"{sel.title} · {sel.span}")
    st.markdown(intro)


def data_as_of(metric_ids: Iterable[str] | None = None, behind: bool = True) -> None:
    """The page's "Latest month loaded" caption for the measures it shows (None: every measure), by publication
    family, and, with behind, the Data quality page's sentence for each family whose next file is overdue."""
    ids = None if metric_ids is None else tuple(sorted(set(metric_ids)))
    if ids == ():
        return
    line, late = data_quality.data_as_of(call(data_quality.latest_months, ids), date.today())
    if line:
        st.caption(line, help="The latest period loaded for any organisation, by publication. A file is behind "
                              "when NHS England's publication day for the next one has passed: see the Data "
                              "quality page.")
    if line and late and behind:  # one line on the page; the sentences, one a publication, on request
        with st.expander(f"{len(late)} of these publications {'is' if len(late) == 1 else 'are'} behind: "
                         "when the next file was due"):
            st.markdown("\n".join(f"- {s}" for s in late))


def thousands_columns(frame: pl.DataFrame, at_least: float = 10_000) -> list[str]:
    """Decimal columns holding figures of at_least 10,000: the grid would show '1543333.0', so they are shown
    '1,543,333' (whole numbers; a page's own column settings still win)."""
    out = []
    for c, t in frame.schema.items():
        if t.is_float() and frame.height:
            top = frame[c].abs().max()
            if top is not None and top >= at_least:
                out.append(c)
    return out


def plain_frame(frame: pl.DataFrame, keep: Iterable[str] = ()) -> pl.DataFrame:
    """Every text column through plain() (each distinct value once), except those in keep and those named for
    files ('File', 'File names', 'File used': there the NHS England file name is the information)."""
    keep = set(keep)
    columns = [c for c, t in frame.schema.items() if t == pl.String and c not in keep and "File" not in c]
    if not columns or frame.is_empty():
        return frame
    names = metric_names()
    out = []
    for c in columns:
        values = frame[c].drop_nulls().unique().to_list()
        mapping = {v: jargon.in_words(v, names) for v in values}
        out.append(pl.col(c).replace_strict(mapping, default=None, return_dtype=pl.String))
    return frame.with_columns(out)


def table(frame: pl.DataFrame, name: str, sel: Selection, *, column_config: dict | None = None,
          height: int | str = "auto", key: str | None = None, plain_text: bool = True,
          keep: Iterable[str] = ()) -> None:
    """Show a table with CSV and Excel download buttons named after the table, organisation and period.
    Date columns show as months ('May 2025'): every period here is a month, a quarter or a year start. Times are
    kept to the second: Excel holds milliseconds at best, and nobody reads a load time to the microsecond.
    Text cells are in a reader's words (plain_frame: no metric ids, table names or model reprs) unless
    plain_text=False; columns in keep are shown as stored."""
    frame = frame.with_columns(pl.col(pl.Datetime).dt.truncate("1s"))
    if plain_text:
        frame = plain_frame(frame, keep)
    months = {c: st.column_config.DateColumn(format="MMM YYYY") for c, t in frame.schema.items() if t == pl.Date}
    big = {c: st.column_config.NumberColumn(format="%,.0f") for c in thousands_columns(frame)}
    st.dataframe(frame, hide_index=True, column_config=big | months | (column_config or {}), height=height,
                 width="stretch")
    base = exports.safe_filename(f"{name} {sel.org_code} {sel.period_to:%Y-%m}")
    downloads = st.session_state.setdefault("ibp_downloads", {})
    downloads[base] = frame  # what the buttons below deliver; tests read the files back from here
    left, right, _ = st.columns([1, 1, 4])
    left.download_button("Download CSV", data=lambda f=frame: exports.csv_bytes(f), file_name=f"{base}.csv",
                         mime="text/csv", key=f"csv-{key or base}", on_click="ignore", icon=":material/download:")
    right.download_button("Download Excel", data=lambda f=frame, n=name: exports.excel_bytes(f, n),
                          file_name=f"{base}.xlsx", key=f"xlsx-{key or base}", on_click="ignore",
                          mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                          icon=":material/table_view:")


def measure_select(metrics: pl.DataFrame, key: str, help_text: str,
                   default: str = "ae_4hr_pct") -> dict[str, Any]:
    """A measure picker over a frame with metric_id and name; keeps the reader's choice while it stays on offer
    (else the default, else the first) and returns the chosen row as a dict."""
    ids = metrics["metric_id"].to_list()
    names = dict(zip(ids, metrics["name"].to_list()))
    if st.session_state.get(key) not in ids:
        st.session_state[key] = default if default in ids else ids[0]
    metric = st.selectbox("Measure", ids, format_func=lambda m: names.get(m, m), key=key, help=help_text)
    return metrics.row(ids.index(metric), named=True)


def icon(label: str, colour: str, tooltip: str = "") -> str:
    """A small coloured pill (HTML) with a hover explanation; text and fill from theme.pill_colours, so the label
    meets 4.5:1 whatever the meaning colour."""
    background, text = theme.pill_colours(colour)
    return (f'<span class="ibp-icon" style="background:{background};color:{text}" '
            f'title="{html.escape(tooltip)}">{html.escape(label)}</span>')


def tile(title: str, value: str, lines: Sequence[str], pills: Sequence[str] = (), help_text: str = "",
         colour: str = theme.NHS_BLUE) -> None:
    """One key-standard tile: title, big value, pills (already HTML from icon()) and plain lines."""
    body = "".join(f'<div class="meta">{html.escape(line)}</div>' for line in lines)
    help_text = plain(help_text) if help_text else ""  # a tooltip is read too: no warehouse words in it
    st.markdown(
        f'<div class="ibp-tile" style="border-left-color:{colour}" title="{html.escape(help_text)}">'
        f"<h4>{html.escape(title)}</h4><div class=\"value\">{html.escape(value)}</div>"
        f"<div>{''.join(pills)}</div>{body}</div>", unsafe_allow_html=True)


def metric_names() -> dict[str, str]:
    """metric_id -> the catalogue's plain name, for turning warehouse text into a reader's words."""
    frame = query("select metric_id, name from s1_current_state.metric_catalogue")
    return dict(zip(frame["metric_id"].to_list(), frame["name"].to_list()))


def plain(text: str | None) -> str:
    """Warehouse text (a method, formula, source or rule) in a reader's words (jargon.in_words with the
    catalogue's names): no metric ids, table names, file names or model reprs on a page."""
    return jargon.in_words(text, metric_names())


def metric_catalogue() -> pl.DataFrame:
    return query("select metric_id, name, definition, unit, triple_aim_domain, higher_is_better, source, formula "
                 "from s1_current_state.metric_catalogue order by name")


def plan_version(sel: Selection, key: str, what: str, example_note: str) -> dict:
    """The Plan and Workforce pages' version picker: the organisation's plan versions, opening on the plan of
    record, with the example banner; stops the page (saying how to make a plan) when there is none."""
    from ibp_pipeline.dashboards import plan

    found = call(plan.versions, sel.org_code)
    if found.is_empty():
        st.info(f"No plan for {sel.title} yet{what}. An analyst drafts one with `ibp plan draft --org "
                f"{sel.org_code} --out plan.xlsx`, the planners edit the workbook, and `ibp plan load plan.xlsx` "
                "stores it as a version.")
        st.stop()
    rows = list(found.iter_rows(named=True))
    chosen = st.selectbox("Plan version", range(len(rows)), index=plan.tracked(found),
                          format_func=lambda i: plan.version_label(rows[i]), key=key,
                          help="Every version loaded is kept. The plan of record is the latest approved version; "
                               "the page opens on it.")
    version = rows[chosen]
    if version["example"]:
        st.warning(f"This is an **example** plan, not the organisation's own: {example_note}", icon=":material/info:")
    return version
