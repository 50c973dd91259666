"""Performance: any measure of one organisation over the chosen months as a Making Data Count SPC chart.

Everything shown comes from s2_triple_aim.spc (one row per month: value, mean, process limits, the variation of
that point), s2_triple_aim.spc_summary (the series' assurance against its target, how many points the limits
rest on, the limits formula), the primary targets of s2_triple_aim.targets and the metric catalogue."""
from __future__ import annotations

from datetime import date

import polars as pl

from . import theme
from .serving import Serving

DEFAULT_METRIC = "ae_4hr_pct"
MIN_POINTS = 12  # Making Data Count: limits from fewer points are provisional (spc_summary.settings min_points)

# Making Data Count rule names (as NHSRplotthedots writes them) in words a board member reads without training.
RULES = {
    "Above UCL": "above the upper process limit",
    "Below LCL": "below the lower process limit",
    "7 Points Above CL": "part of a run of 7 or more months above the mean",
    "7 Points Below CL": "part of a run of 7 or more months below the mean",
    "7 Point Trend (Increasing)": "part of 7 or more months rising one after another",
    "7 Point Trend (Decreasing)": "part of 7 or more months falling one after another",
    "2 in 3 Above CL": "2 of 3 months close to the upper limit (beyond the 2-sigma line)",
    "2 in 3 Below CL": "2 of 3 months close to the lower limit (beyond the 2-sigma line)",
    "Common Cause": "within the expected range",
}


def metric_choices(db: Serving, org_code: str, period_from: date, period_to: date) -> pl.DataFrame:
    """The measures this organisation has SPC points for inside the period, with their plain names, so the
    picker never offers a measure that would draw an empty chart. Columns: metric_id, name, unit, n_points."""
    return db.query("""
        select s.metric_id, coalesce(any_value(c.name), s.metric_id) as name, any_value(c.unit) as unit,
               count(*) as n_points
        from s2_triple_aim.spc s
        left join s1_current_state.metric_catalogue c using (metric_id)
        where s.org_code = $org and s.period_start between $from and $to and s.value is not null
        group by s.metric_id
        order by name""", {"org": org_code, "from": period_from, "to": period_to})


def default_metric(metric_ids: list[str]) -> str | None:
    """A&E four-hour performance when the organisation has it (the measure most boards open with), else the
    first in the list; None when there is nothing to choose."""
    if DEFAULT_METRIC in metric_ids:
        return DEFAULT_METRIC
    return metric_ids[0] if metric_ids else None


def spc_series(db: Serving, org_code: str, metric_id: str, period_from: date, period_to: date) -> pl.DataFrame:
    """The SPC rows of one series inside the period, oldest first (what charts.spc_figure draws)."""
    return db.query("""
        select period_start, value, mean, lpl, upl, lower_2sigma, upper_2sigma, mean_moving_range, point_type,
               special_cause_type, provisional, baseline_points, rebase_group, baseline_start, baseline_end,
               period_reason, improvement_direction, source, limits_formula
        from s2_triple_aim.spc
        where org_code = $org and metric_id = $metric and period_start between $from and $to
          and value is not null
        order by period_start""", {"org": org_code, "metric": metric_id, "from": period_from, "to": period_to})


def series_coverage(db: Serving, org_code: str, metric_id: str, period_from: date,
                    period_to: date) -> pl.DataFrame:
    """period_start, coverage of one series (metric_values): which providers an England, region or ICB total
    covers each month, so a chart marks where that changes (null for a trust's own figures)."""
    return db.query("""
        select period_start, coverage from s1_current_state.metric_values
        where org_code = $org and metric_id = $metric and period_start between $from and $to
        order by period_start""", {"org": org_code, "metric": metric_id, "from": period_from, "to": period_to})


def primary_targets(db: Serving, org_code: str, metric_id: str, period_from: date,
                    period_to: date) -> pl.DataFrame:
    """The primary target of each month in the period: a flat standard or a month-by-month trajectory."""
    return db.query("""
        select period_start, target_value, standard_name, standard_id, is_trajectory, direction, deadline
        from s2_triple_aim.targets
        where org_code = $org and metric_id = $metric and is_primary
          and period_start between $from and $to
        order by period_start""", {"org": org_code, "metric": metric_id, "from": period_from, "to": period_to})


def series_facts(db: Serving, org_code: str, metric_id: str) -> pl.DataFrame:
    """One row: what the measure is (catalogue) and how its SPC limits and assurance were judged (spc_summary).
    Empty when the measure is not in the catalogue."""
    return db.query("""
        select c.metric_id, c.name, c.definition, c.unit, c.formula, c.aggregation, c.source, c.higher_is_better,
               c.triple_aim_domain, s.n_points, s.first_period, s.last_period, s.n_missing_months,
               s.baseline_points, s.baseline_start, s.baseline_end, s.baseline_reason, s.rebases,
               s.variation_type, s.assurance_type, s.target_value, s.provisional,
               s.n_special_cause_improvement, s.n_special_cause_concern, s.n_special_cause_neutral,
               s.limits_formula, s.rules, s.reference, s.improvement_direction
        from s1_current_state.metric_catalogue c
        left join s2_triple_aim.spc_summary s on s.metric_id = c.metric_id and s.org_code = $org
        where c.metric_id = $metric""", {"org": org_code, "metric": metric_id})


def formula_text(formula: str | None, aggregation: str | None = None) -> str:
    """The catalogue's kind of formula in words: 'percent' -> 'a percentage: 100 x numerator / denominator ...'."""
    above = {"sum": "; for an ICB, region or England the providers' numerators and denominators are summed first",
             "sum_of_values": "; for an ICB, region or England the providers' values are added up"}
    kinds = {"percent": "a percentage: 100 x numerator / denominator",
             "count": "a count of the month",
             "ratio": "a ratio: numerator / denominator"}
    if not formula:
        return "-"
    return kinds.get(formula, formula) + above.get(aggregation or "", "")


def rule_text(special_cause_type: str | None) -> str:
    """'7 Points Below CL' -> 'part of a run of 7 or more months below the mean'."""
    if not special_cause_type:
        return ""
    return RULES.get(special_cause_type, special_cause_type)


def special_cause_months(spc: pl.DataFrame) -> pl.DataFrame:
    """The months with special-cause variation, in words: month, value, what kind and which rule flagged it."""
    if spc.is_empty():
        return pl.DataFrame(schema={"period_start": pl.Date, "value": pl.Float64, "variation": pl.String,
                                    "reason": pl.String})
    special = spc.filter(pl.col("point_type").str.starts_with("special_cause")).sort("period_start")
    return special.select(
        "period_start", "value",
        pl.col("point_type").map_elements(lambda c: theme.variation_label(c)[0], return_dtype=pl.String)
        .alias("variation"),
        pl.col("special_cause_type").map_elements(rule_text, return_dtype=pl.String).alias("reason"))


def points_table(spc: pl.DataFrame) -> pl.DataFrame:
    """The chart's points as a table a leader can take away, with plain column names."""
    return spc.sort("period_start").select(
        pl.col("period_start").alias("Month"),
        pl.col("value").alias("Value"),
        pl.col("mean").alias("Mean"),
        *([pl.format("{} to {}", pl.col("baseline_start").dt.strftime("%b %Y"),
                     pl.col("baseline_end").dt.strftime("%b %Y")).alias("Baseline")]
          if "baseline_start" in spc.columns else []),
        pl.col("lpl").alias("Lower process limit"),
        pl.col("upl").alias("Upper process limit"),
        pl.col("point_type").map_elements(lambda c: theme.variation_label(c)[0], return_dtype=pl.String)
        .alias("Variation"),
        pl.col("special_cause_type").map_elements(rule_text, return_dtype=pl.String).alias("Why"),
    )


def month_runs(months: list[date]) -> str:
    """Consecutive months collapsed into spans: [Jan, Feb, Mar, Jun 2024] -> 'Jan 2024 to Mar 2024, Jun 2024'."""
    if not months:
        return ""
    months = sorted(months)
    spans: list[tuple[date, date]] = []
    start = prev = months[0]
    for m in months[1:]:
        if (m.year - prev.year) * 12 + m.month - prev.month == 1:
            prev = m
            continue
        spans.append((start, prev))
        start = prev = m
    spans.append((start, prev))
    return ", ".join(f"{a:%b %Y}" if a == b else f"{a:%b %Y} to {b:%b %Y}" for a, b in spans)


def baseline_sentence(baseline_start: date | None, baseline_end: date | None, baseline_points: int | None,
                      reason: str | None, min_months: int = 20) -> str:
    """Where the latest limits come from: 'The limits come from April 2024 to December 2025 (21 months). Why then:
    the organisations this total covers changed (a new source).'"""
    if baseline_start is None or baseline_end is None or not baseline_points:
        return "No baseline: the limits are computed from the whole series."
    months = f"{baseline_points} month{'s' if baseline_points != 1 else ''}"
    text = (f"The limits come from {baseline_start:%B %Y} to {baseline_end:%B %Y} ({months}). Why then: "
            f"{reason or 'start of the series'}.")
    if baseline_points < min_months:
        text += f" That is fewer than the {min_months} months Making Data Count asks for, so read them with care."
    return text


def provisional_sentence(baseline_points: int | None) -> str:
    """Why fewer than 12 points matters, in one sentence."""
    if baseline_points is None:
        return "No process limits have been computed for this series."
    if baseline_points < MIN_POINTS:
        return (f"Provisional: the limits rest on only {baseline_points} months. Making Data Count asks for at "
                f"least {MIN_POINTS} before the limits are trusted, so they may move as more months arrive.")
    return f"The limits rest on {baseline_points} months (at least {MIN_POINTS} are needed), so they are not " \
           "provisional."
