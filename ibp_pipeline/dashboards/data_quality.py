"""The Data quality page: how fresh each source is, which checks passed or failed in the latest run, which rows
were quarantined and why, where two sources disagreed, and when the served copy was published.

Freshness is a pure function of the latest period a source covers, its publication calendar and today's date, so
the rule is tested directly and the page can say, in plain English, which month's file was due and on what day."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import plotly.graph_objects as go
import polars as pl

from ..config import get_paths
from ..step1_current_state import freshness
from ..step1_current_state.sources import BY_NAME
from . import theme
from .serving import Serving

STATUS_COLOURS = {"Up to date": theme.NHS_GREEN, "Stale": theme.NHS_ORANGE, "Historical": theme.NHS_MID_GREY,
                  "No period": theme.NHS_MID_GREY}
STATUS_HELP = {
    "Up to date": "The file after the latest one loaded is not due yet.",
    "Stale": "Behind: the file after the latest one loaded was due and has not been loaded: check for a newer "
             "file to drop into the landing folder.",
    "Historical": "A series that is no longer published, kept for its history (such as A&E 2016-2019): it is not "
                  "expected to get newer.",
    "No period": "A reference or one-off source (organisation lists, populations, unit costs, snapshots): it has "
                 "no monthly or quarterly period to age.",
}
CHECK_BLOCKING_HELP = ("A blocking check stops the file from loading when it fails (wrong columns, duplicate keys, "
                       "unknown organisations...), so the published data never includes it. A non-blocking check "
                       "only warns: the data loads and the failure is reported here.")
QUARANTINE_LIMIT = 5000
# Publication families for the "latest month loaded" line on every page: a reader asks how recent the A&E figures
# are, not a source or a measure id. Sources of one family share a publication; a source not listed here is named
# by its registry title. The order is the order of the line.
FAMILIES: dict[str, tuple[str, ...]] = {
    "A&E": ("ae_monthly_official", "ae_trust_monthly", "ae_icb_monthly", "ae_attendances_2016_2019"),
    "RTT waiting times": ("rtt_full_extract", "rtt_incomplete", "rtt_long_waits", "rtt_icb_flows",
                          "rtt_icb_long_waits"),
    "Cancer": ("cancer_combined_workbook", "cancer_combined_workbook_system", "cancer_cwt_crs_extract",
               "cancer_waiting_times"),
    "Diagnostics": ("dm01_web_file", "dm01_diagnostics"),
    "Beds (KH03)": ("kh03_web_file", "beds_kh03", "beds_kh03_specialty"),
    "Beds (sitrep)": ("beds_ga_critical_care",),
    "Discharge delays": ("discharge_daily", "discharge_delay_reasons"),
    "Virtual wards": ("virtual_wards",),
    "Workforce": ("workforce_staff_group", "workforce_total"),
}
FAMILY_OF = {source: family for family, sources in FAMILIES.items() for source in sources}


def source_grain(source: str) -> str:
    """'month', 'quarter', 'year' or 'reference' (no period column) from the source registry; for a source the
    registry does not know, the grain of its publication schedule, else 'month'."""
    spec = BY_NAME.get(source)
    if spec is None:
        return freshness.source_grain(source)
    if spec.reference or spec.period_column is None:
        return "reference"
    return spec.period_grain


def freshness_status(source: str, period_max: date | None, today: date) -> tuple[str, int | None, int | None]:
    """(status, days since the latest period ended, allowance): the allowance rule the Dagster freshness checks
    use (ibp_pipeline.step1_current_state.freshness): a monthly source is stale 45 days after its latest month
    ends. The page's verdict comes from the publication calendar instead (with_freshness); this gives its ages."""
    return freshness.freshness(source, period_max, today)


def and_list(words: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def schedule_text() -> str:
    """The publication calendar in one plain-English paragraph, from the same table the rule uses."""
    seen: dict[str, list[str]] = {}
    for rule in dict.fromkeys(freshness.PUBLICATION_RULES.values()):  # each schedule once, in table order
        seen.setdefault(freshness.schedule(rule), []).append(rule.subject)
    parts = [f"{and_list(subjects)} {'on ' if when.startswith('the ') else ''}{when}"
             for when, subjects in seen.items()]
    return ("NHS England publishes on a calendar: " + "; ".join(parts) + ". A source is behind when the file "
            "for the period after its latest one was due before today. Other sources are expected within "
            f"{freshness.ALLOWANCE_DAYS['month']} days of a month ending ({freshness.ALLOWANCE_DAYS['quarter']} days "
            "for a quarter).")


def name_list(names: list[str], most: int = 5) -> str:
    """'a, b, c and 4 more (see the table)': a long list of sources kept readable in a sentence."""
    if len(names) <= most:
        return ", ".join(names)
    return ", ".join(names[:most]) + f" and {len(names) - most} more (see the table)"


def source_loads(db: Serving) -> pl.DataFrame:
    """One row per source from meta.file_loads: files, rows read, loaded and quarantined, the periods covered,
    when it was last loaded, and the worst status of its files (refused > partial > loaded)."""
    frame = db.query("""
        select source, count(*) as files, sum(rows_read) as rows_read, sum(rows_loaded) as rows_loaded,
               sum(rows_quarantined) as rows_quarantined, min(period_min) as period_min,
               max(period_max) as period_max, max(loaded_at) as loaded_at,
               case when bool_or(status not in ('loaded', 'partial')) then any_value(status)
                         filter (where status not in ('loaded', 'partial'))
                    when bool_or(status = 'partial') then 'partial' else 'loaded' end as status,
               string_agg(distinct file_name, '; ' order by file_name) as file_names
        from meta.file_loads group by source order by source""")
    titles = {name: spec.title for name, spec in BY_NAME.items()}
    return frame.with_columns(
        pl.col("source").replace_strict(titles, default=pl.col("source")).alias("title"),
        pl.col("source").map_elements(source_grain, return_dtype=pl.String).alias("grain"))


def latest_label(source: str, period_max: date | None) -> str:
    """The latest month (or quarter) a source covers as a reader says it: 'December 2024', 'January to March
    2025'; 'No period' for reference data."""
    if period_max is None:
        return "No period"
    return freshness.period_label(period_max, freshness.source_grain(source))


def with_freshness(loads: pl.DataFrame, today: date) -> pl.DataFrame:
    """Add to source_loads() the verdict against the publication calendar (freshness: status; latest_month; the
    next period's due_date and how many files are overdue; next_file: the sentence) and the age in days and
    allowance of the older rule (age_days, max_age_days); stale sources first."""
    sources, latest = loads["source"].to_list(), loads["period_max"].to_list()
    ages = [freshness_status(s, p, today) for s, p in zip(sources, latest)]
    due = [freshness.publication_status(s, p, today) for s, p in zip(sources, latest)]
    order = {"Stale": 0, "Up to date": 1, "Historical": 2, "No period": 3}
    return (loads.with_columns(pl.Series("freshness", [d.status for d in due], dtype=pl.String),
                               pl.Series("latest_month", [latest_label(s, p) for s, p in zip(sources, latest)],
                                         dtype=pl.String),
                               pl.Series("next_file", [d.sentence for d in due], dtype=pl.String),
                               pl.Series("due_date", [d.due_date for d in due], dtype=pl.Date),
                               pl.Series("overdue_files", [d.overdue for d in due], dtype=pl.Int64),
                               pl.Series("age_days", [a[1] for a in ages], dtype=pl.Int64),
                               pl.Series("max_age_days", [a[2] for a in ages], dtype=pl.Int64))
            .sort(pl.col("freshness").replace_strict(order, return_dtype=pl.Int64), "source"))


def next_file_lines(fresh: pl.DataFrame) -> str:
    """A markdown list, one line per dated source: its title, latest month and the next-file sentence."""
    dated = fresh.filter(pl.col("due_date").is_not_null())
    return "\n".join(f"- **{r['title']}** (latest {r['latest_month']}): {r['next_file']}"
                     for r in dated.iter_rows(named=True))


def latest_months(db: Serving, metric_ids: tuple[str, ...] | None = None) -> pl.DataFrame:
    """Per measure (all of them, or those given): its name, the latest period loaded for any organisation and the
    source that supplied it (the first in precedence that has that period), from metric_values: what every
    page's "latest month loaded" line is made of. A rate series '<a>_pct_of_<b>' counts as its two measures.
    Columns: metric_id, name, latest, source."""
    ids = None if metric_ids is None else sorted({part for m in metric_ids for part in m.split("_pct_of_")})
    where = "" if ids is None else "where v.metric_id in (select unnest($ids::varchar[]))"
    return db.query(f"""
        select v.metric_id, coalesce(c.name, v.metric_id) as name, v.period_start as latest,
               split_part(v.source, ', ', 1) as source
        from s1_current_state.metric_values v left join s1_current_state.metric_catalogue c using (metric_id)
        {where}
        qualify row_number() over (partition by v.metric_id
                                   order by v.period_start desc, v.precedence, v.source) = 1
        order by v.metric_id""", {"ids": ids} if ids is not None else None)


def family(source: str) -> str:
    """The publication family a source belongs to ('A&E'), else its registry title, else its name."""
    spec = BY_NAME.get(source)
    return FAMILY_OF.get(source) or (spec.title if spec is not None else source)


def data_as_of(latest: pl.DataFrame, today: date, most: int = 2) -> tuple[str, list[str]]:
    """From latest_months(): the line 'Latest month loaded: A&E December 2025 · RTT waiting times April 2026', one
    item per publication family, naming a measure that ends earlier than its family ('(RTT 52+ week waits:
    February 2025)'); and, for each family that is behind its publication calendar, the Data quality page's
    sentence ('A&E behind: the January 2026 A&E file was due on 12 February 2026 ...'). ('', []) for no rows."""
    if latest.is_empty():
        return "", []
    rows = latest.filter(pl.col("latest").is_not_null()).with_columns(
        pl.col("source").map_elements(family, return_dtype=pl.String).alias("family"))
    order = {name: i for i, name in enumerate(FAMILIES)}
    families = sorted(rows["family"].unique().to_list(), key=lambda f: (order.get(f, len(order)), f))
    items, behind = [], []
    for name in families:
        part = rows.filter(pl.col("family") == name).sort("latest", "metric_id", descending=[True, False])
        top = part.row(0, named=True)
        earlier = part.filter(pl.col("latest") < top["latest"])
        note = [f"{r['name']}: {latest_label(r['source'], r['latest'])}" for r in earlier.head(most).iter_rows(
            named=True)] + ([f"{earlier.height - most} more end earlier"] if earlier.height > most else [])
        items.append(f"{name} {latest_label(top['source'], top['latest'])}"
                     + (f" ({'; '.join(note)})" if note else ""))
        due = freshness.publication_status(top["source"], top["latest"], today)
        if due.status == "Stale":
            behind.append(f"{name} {due.sentence[:1].lower()}{due.sentence[1:]}")
    return "Latest month loaded: " + " · ".join(items), behind


def latest_checks(db: Serving) -> pl.DataFrame:
    """Every check of the latest run (the run with the latest check time), failed ones first, blocking first."""
    return db.query("""
        select run_id, checked_at, source, check_name, expectation, passed, blocking, failing_rows,
               rows_validated, details
        from dq.check_results
        where run_id = (select run_id from dq.check_results order by checked_at desc limit 1)
        order by passed, blocking desc, source, check_name""")


def check_counts(checks: pl.DataFrame) -> dict[str, int]:
    """Counts for the tiles: checks, passed, failed, failed and blocking, sources checked."""
    if checks.is_empty():
        return {"checks": 0, "passed": 0, "failed": 0, "failed_blocking": 0, "sources": 0}
    failed = checks.filter(~pl.col("passed"))
    return {"checks": len(checks), "passed": int(checks["passed"].sum()), "failed": len(failed),
            "failed_blocking": int(failed["blocking"].sum()), "sources": checks["source"].n_unique()}


def quarantine_sources(db: Serving) -> pl.DataFrame:
    """Sources with quarantined rows and how many, for the source filter."""
    return db.query("select source, count(*) as rows from dq.quarantine group by source order by source")


def quarantine(db: Serving, source: str | None) -> pl.DataFrame:
    """Quarantined rows (file, row, column, value, rule, message) of one source or all, newest first; capped at
    QUARANTINE_LIMIT rows so a broken file cannot swamp the page."""
    return db.query("""
        select source, file_name, row_number, column_name, value, rule, message, quarantined_at, run_id
        from dq.quarantine
        where $source::varchar is null or source = $source
        order by quarantined_at desc, source, file_name, row_number
        limit $limit""", {"source": source, "limit": QUARANTINE_LIMIT})


def quarantine_rules(rows: pl.DataFrame) -> pl.DataFrame:
    """Quarantined rows counted by source and rule, most first."""
    if rows.is_empty():
        return pl.DataFrame(schema={"source": pl.String, "rule": pl.String, "rows": pl.UInt32,
                                    "example": pl.String})
    return (rows.group_by("source", "rule").agg(pl.len().alias("rows"), pl.col("message").first().alias("example"))
            .sort("rows", "source", descending=[True, False]))


def conflicts_summary(db: Serving) -> pl.DataFrame:
    """Where two sources gave a figure for the same organisation, month and measure: per measure and pair of
    sources, how often, for how many organisations and months, how far apart, and which rule chose."""
    return db.query("""
        select metric_id, winning_source, other_source, count(*) as conflicts,
               count(distinct org_code) as organisations, min(period_start) as first_month,
               max(period_start) as last_month, avg(abs(difference)) as mean_abs_difference,
               max(abs(difference)) as max_abs_difference, any_value(rule) as rule
        from s1_current_state.source_conflicts
        group by metric_id, winning_source, other_source order by conflicts desc, metric_id""")


def conflicts_for_org(db: Serving, org_code: str) -> pl.DataFrame:
    """The selected organisation's own source conflicts, newest first."""
    return db.query("""
        select period_start, metric_id, winning_source, winning_value, other_source, other_value, difference,
               winning_source_file, other_source_file, rule
        from s1_current_state.source_conflicts where org_code = ? order by period_start desc, metric_id""",
                    [org_code])


def publication(db: Serving) -> pl.DataFrame:
    """When the served copy was published, by which pipeline run."""
    return db.query("select run_id, published_at from meta.publication order by published_at desc")


def data_docs_path() -> Path:
    """Where the pipeline writes the Great Expectations Data Docs (the validation report) for this install."""
    return get_paths().reports / "data_docs" / "index.html"


def freshness_figure(fresh: pl.DataFrame, today: date, height_per_source: int = 22) -> go.Figure:
    """A timeline per dated source: a bar from its first to its latest period, coloured by freshness, and a line
    at today's month; sources without a period are left out (they are in the table)."""
    dated = fresh.filter(pl.col("period_max").is_not_null()).sort("period_max", descending=True)
    fig = go.Figure()
    if dated.is_empty():
        fig.add_annotation(text="No dated sources", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        return fig
    for status, colour in STATUS_COLOURS.items():
        part = dated.filter(pl.col("freshness") == status)
        if part.is_empty():
            continue
        starts = part["period_min"].fill_null(part["period_max"])
        fig.add_trace(go.Bar(
            base=starts.to_list(), x=[(e - s).days * 86400000 + 86400000 * 28 for s, e in
                                      zip(starts.to_list(), part["period_max"].to_list())],
            y=part["title"].to_list(), orientation="h", name=status, marker_color=colour,
            customdata=part.select("latest_month", "next_file").to_numpy(),
            hovertemplate="%{y}<br>latest %{customdata[0]}<br>%{customdata[1]}<extra>" + status + "</extra>"))
    month = today.replace(day=1)
    fig.add_vline(x=month.isoformat(), line=dict(color=theme.NHS_BLACK, dash="dash", width=1))
    fig.update_layout(height=max(260, height_per_source * len(dated) + 90), xaxis=dict(type="date"),
                      yaxis=dict(autorange="reversed"), barmode="overlay", showlegend=True,
                      xaxis_title="Periods covered. Dashed line: this month. Hover over a bar for when its next "
                                  "file is due")
    return fig
