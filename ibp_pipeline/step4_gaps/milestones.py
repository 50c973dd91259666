"""Step 4: each organisation's milestones judged, past and to come: did it meet March 2026, is March 2027 due?

Why: a planning round is judged at its milestones, not month by month. The 2025/26 targets stay as history ("did
each organisation meet March 2026, where the data exists?") and the Medium Term Planning Framework's milestones
(March 2027, 2028, 2029) are what the plan is held to; one of them, A&E 85% nationally "as the average across
2028/29", is judged on the mean of the financial year's 12 months (standards.meets_year_average), not on March.

s4_gaps.milestone_outcomes: one row per organisation x measured series x standard x milestone (the
milestone_deadline and milestone_target_value of s2_triple_aim.targets, which already carry each organisation's
minimum-improvement rule). judged_value is the value in the milestone month, or the financial year's average
for a year-average milestone; status is 'met' or 'missed' when it can be judged, else why not: 'not yet due'
(the milestone month, or its year, is after the latest month loaded and has not ended), 'not loaded' (the month
has ended but no value is loaded: the bundle stops earlier), or 'year incomplete' (a year-average milestone with
months missing). latest_value and latest_period give the series' latest value at or before the milestone.
"""
from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from ibp_pipeline.lib.duckdb_tables import replace_table
from ibp_pipeline.step2_triple_aim.standards import (financial_year, financial_year_start, meets_year_average,
                                                     read_measure_values, year_average)

SCHEMA = "s4_gaps"
S1 = "s1_current_state"
S2 = "s2_triple_aim"

OUTCOMES_SCHEMA = {
    "org_code": pl.String, "org_name": pl.String, "org_level": pl.String, "metric_id": pl.String,
    "standard_id": pl.String, "standard_name": pl.String, "kind": pl.String, "direction": pl.String,
    "milestone_deadline": pl.Date, "milestone_target_value": pl.Float64, "averaged_over_financial_year": pl.Boolean,
    "judged_on": pl.String, "judged_value": pl.Float64, "months_with_data": pl.Int64, "met": pl.Boolean,
    "status": pl.String, "latest_period": pl.Date, "latest_value": pl.Float64, "method": pl.String,
}
METHOD = ("met = judged_value >= milestone_target_value (at_least) or <= (at_most); judged_value = the value in "
          "the milestone month, or the mean of the 12 months of the milestone's financial year for a year-average "
          "milestone (not judged until all 12 are loaded)")


def _month_end(month: dt.date) -> dt.date:
    nxt = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def judge_milestone(series: dict[dt.date, float], deadline: dt.date, target: float, direction: str,
                    averaged: bool, today: dt.date) -> dict[str, object]:
    """One milestone judged on a monthly series {month: value}: judged_on, judged_value, months_with_data, met,
    status, latest_period and latest_value (the latest month at or before the milestone)."""
    before = [m for m in series if m <= deadline]
    latest = max(before) if before else None
    out: dict[str, object] = {"latest_period": latest, "latest_value": series[latest] if latest else None}
    if averaged:
        year = financial_year(deadline)
        start = financial_year_start(year)
        out["judged_on"] = f"the average of {start:%B %Y} to {deadline:%B %Y}"
        out["months_with_data"] = sum(1 for m in series if start <= m <= deadline)
        out["judged_value"] = year_average(series, year)
        out["met"] = meets_year_average(series, year, target, direction)
    else:
        out["judged_on"] = f"the {deadline:%B %Y} value"
        out["months_with_data"] = int(deadline in series)
        out["judged_value"] = series.get(deadline)
        value = out["judged_value"]
        out["met"] = None if value is None else (value >= target if direction == "at_least" else value <= target)
    if out["met"] is not None:
        out["status"] = "met" if out["met"] else "missed"
    elif _month_end(deadline) >= today:
        out["status"] = "not yet due"
    elif averaged and out["months_with_data"]:
        out["status"] = "year incomplete"
    else:
        out["status"] = "not loaded"
    return out


def milestone_outcomes_frame(values: pl.DataFrame, targets: pl.DataFrame, today: dt.date,
                             org_names: dict[str, str] | None = None) -> pl.DataFrame:
    """values: org_code, metric_id, period_start, value (monthly measured series, as read_measure_values);
    targets: s2_triple_aim.targets rows with milestone_deadline, milestone_target_value and
    averaged_over_financial_year."""
    keys = ["org_code", "metric_id", "standard_id", "milestone_deadline"]
    milestones = (targets.filter(pl.col("milestone_deadline").is_not_null()
                                 & pl.col("milestone_target_value").is_not_null())
                  .sort(*keys, "period_start")
                  .group_by(keys, maintain_order=True)
                  .agg(pl.col("org_level", "standard_name", "kind", "direction", "milestone_target_value",
                              "averaged_over_financial_year").last()))
    series: dict[tuple[str, str], dict[dt.date, float]] = {}
    for org, metric, month, value in values.select("org_code", "metric_id", "period_start", "value").iter_rows():
        if value is not None:
            series.setdefault((org, metric), {})[month] = value
    rows = []
    for m in milestones.iter_rows(named=True):
        judged = judge_milestone(series.get((m["org_code"], m["metric_id"]), {}), m["milestone_deadline"],
                                 m["milestone_target_value"], m["direction"],
                                 bool(m["averaged_over_financial_year"]), today)
        rows.append({**m, **judged, "org_name": (org_names or {}).get(m["org_code"]), "method": METHOD})
    return (pl.DataFrame(rows, schema=OUTCOMES_SCHEMA) if rows else pl.DataFrame(schema=OUTCOMES_SCHEMA)).sort(keys)


def build_milestone_outcomes(con: duckdb.DuckDBPyConnection, today: dt.date | None = None) -> int:
    """Write s4_gaps.milestone_outcomes from s2_triple_aim.targets and standards and step-1 values."""
    standards = con.sql(f"select distinct measure_id, metric_id, ratio_of from {S2}.standards").pl()
    values = read_measure_values(con, {m: (metric, ratio) for m, metric, ratio in standards.iter_rows()})
    targets = con.sql(f"""select org_code, org_level, metric_id, standard_id, standard_name, kind, direction,
                                 period_start, milestone_deadline, milestone_target_value,
                                 averaged_over_financial_year
                          from {S2}.targets where milestone_deadline is not null""").pl()
    names = dict(con.sql(f"select org_code, any_value(org_name) from {S1}.organisations group by 1").fetchall())
    frame = milestone_outcomes_frame(values, targets, today or dt.date.today(), names)
    replace_table(con, SCHEMA, "milestone_outcomes", frame)
    return frame.height
