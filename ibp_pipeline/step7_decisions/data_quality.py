"""The Data quality page: how fresh each source is, which checks passed or failed in the latest run, which rows
were quarantined and why, where two sources disagreed, and when the served copy was published.

Freshness is a pure function of the latest period a source covers, its grain and today's date, so the rule is
tested directly and the page can show the age of every source in days against its expected cadence."""
from __future__ import annotations

from datetime import date, timedelta
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
    "Up to date": "The latest period is within the expected publication lag.",
    "Stale": "The latest period is older than expected for how often the source is published: check for a newer "
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


def source_grain(source: str) -> str:
    """'month', 'quarter', 'year' or 'reference' (no period column) from the source registry; 'month' for a
    source the registry no longer knows but that has periods."""
    spec = BY_NAME.get(source)
    if spec is None:
        return "month"
    if spec.reference or spec.period_column is None:
        return "reference"
    return spec.period_grain


def freshness_status(source: str, period_max: date | None, today: date) -> tuple[str, int | None, int | None]:
    """(status, days since the latest period ended, allowance): the same rule as the Dagster freshness checks
    (ibp_pipeline.step1_current_state.freshness): a monthly source is stale 45 days after its latest month ends."""
    return freshness.freshness(source, period_max, today)


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


def with_freshness(loads: pl.DataFrame, today: date) -> pl.DataFrame:
    """Add freshness (status, age in days, allowance) to source_loads(); stale sources first."""
    results = [freshness_status(s, p, today) for s, p in zip(loads["source"].to_list(),
                                                             loads["period_max"].to_list())]
    order = {"Stale": 0, "Up to date": 1, "Historical": 2, "No period": 3}
    return (loads.with_columns(pl.Series("freshness", [r[0] for r in results], dtype=pl.String),
                               pl.Series("age_days", [r[1] for r in results], dtype=pl.Int64),
                               pl.Series("max_age_days", [r[2] for r in results], dtype=pl.Int64))
            .sort(pl.col("freshness").replace_strict(order, return_dtype=pl.Int64), "source"))


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
            customdata=part.select(pl.col("period_max").dt.strftime("%b %Y"), "age_days").to_numpy(),
            hovertemplate="%{y}<br>latest period %{customdata[0]}, %{customdata[1]} days since it ended"
                          "<extra>" + status + "</extra>"))
    month = today.replace(day=1)
    fig.add_vline(x=month.isoformat(), line=dict(color=theme.NHS_BLACK, dash="dash", width=1))
    fig.add_vline(x=(today - timedelta(days=freshness.ALLOWANCE_DAYS["month"])).isoformat(),
                  line=dict(color=theme.NHS_ORANGE, dash="dot", width=1.5))
    fig.update_layout(height=max(260, height_per_source * len(dated) + 90), xaxis=dict(type="date"),
                      yaxis=dict(autorange="reversed"), barmode="overlay", showlegend=True,
                      xaxis_title="Periods covered. Dashed line: this month; dotted: a monthly source whose latest "
                                  "month ended before this line is stale")
    return fig
