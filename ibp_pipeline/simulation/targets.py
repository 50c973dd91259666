"""Targets in forecast months, as the Monte Carlo scores its draws against them: s2_triple_aim.targets (targets and
trajectories; when absent, the national registry standards.yaml as flat end targets, every row saying so) extended
over the forecast horizon, and each standard's minimum-improvement rule (s2_triple_aim.standards).

s2_triple_aim.targets runs to each standard's deadline (trajectories) or to the last month with data (flat
standards). A forecast month after an organisation's last target row holds that row's value: a trajectory holds its
end target after the deadline and a flat standard stays flat (the rule step 2 states). The primary row is re-ranked
as step 2 ranks it: a trajectory not past its deadline, else one held after it, else a planning target, else the
constitutional standard; a local standard before a national one; then the later deadline.
"""
from __future__ import annotations

import duckdb
import polars as pl

from ibp_pipeline.lib.duckdb_tables import table_columns

S2 = "s2_triple_aim"

TARGET_COLUMNS = {"org_code": pl.String, "org_level": pl.String, "metric_id": pl.String, "period_start": pl.Date,
                  "standard_id": pl.String,
                  "standard_name": pl.String, "kind": pl.String, "direction": pl.String, "target_value": pl.Float64,
                  "is_trajectory": pl.Boolean, "is_primary": pl.Boolean, "applied": pl.String,
                  "deadline": pl.Date, "baseline_period": pl.Date, "baseline_value": pl.Float64,
                  "end_target_value": pl.Float64, "milestone_deadline": pl.Date, "source_table": pl.String}


def read_targets(con: duckdb.DuckDBPyConnection) -> pl.DataFrame | None:
    """s2_triple_aim.targets in TARGET_COLUMNS (is_primary read from 'is_primary' or 'primary'), None if absent."""
    have = set(table_columns(con, S2, "targets"))
    if not have:
        return None
    sel = []
    for col, dtype in TARGET_COLUMNS.items():
        if col == "is_primary":
            src = "is_primary" if "is_primary" in have else ('"primary"' if "primary" in have else None)
        elif col == "source_table":
            sel.append("'s2_triple_aim.targets' as source_table")
            continue
        else:
            src = col if col in have else None
        sel.append(f"{src} as {col}" if src else f"null as {col}")
    frame = con.sql(f"select {', '.join(sel)} from {S2}.targets where target_value is not null").pl()
    return frame.cast(TARGET_COLUMNS)  # type: ignore[arg-type]


def registry_targets(series: pl.DataFrame) -> pl.DataFrame:
    """Fallback when s2_triple_aim.targets is absent: the national registry's standards as flat lines at their
    (end) target, one row per applicable series at its first forecast month (held from there)."""
    from ibp_pipeline.step2_triple_aim.standards import load_registry  # only for the fallback

    rows = []
    registry = load_registry()
    for s in registry.standards:
        mine = series.filter(pl.col("metric_id") == s.measure_id,
                             pl.col("org_level").is_in(list(s.applies_to)) | pl.col("org_level").is_null())
        for org, level, metric, first in mine.select("org_code", "org_level", "metric_id",
                                                     "first_period").iter_rows():
            rows.append({"org_code": org, "org_level": level, "metric_id": metric, "period_start": first,
                         "standard_id": s.standard_id,
                         "standard_name": s.name, "kind": s.kind, "direction": s.direction,
                         "target_value": float(s.final_target), "is_trajectory": False, "is_primary": None,
                         "applied": "national", "deadline": s.final_deadline, "baseline_period": None,
                         "baseline_value": None, "end_target_value": float(s.final_target),
                         "milestone_deadline": s.final_deadline,
                         "source_table": "standards registry (s2_triple_aim.targets absent): end target, flat"})
    return pl.DataFrame(rows, schema=TARGET_COLUMNS)


def rank_primary(frame: pl.DataFrame) -> pl.DataFrame:
    """is_primary per organisation x metric x month, exactly as step 2 ranks (standards.rank_primary): a
    trajectory not past its deadline, one held after it, a flat planning target, the constitutional standard;
    local before national; then the later deadline, then standard_id. So in a forecast month after March 2026 the
    2026/27 trajectory, not the 2025/26 one held at its end target, is primary."""
    from ibp_pipeline.step2_triple_aim.standards import rank_primary as step2_rank_primary

    return step2_rank_primary(frame)


def extend_targets(targets: pl.DataFrame, cells: pl.DataFrame) -> pl.DataFrame:
    """Targets for every forecast cell (org_code, metric_id, period_start) and every standard the series has: the
    row for that month, else the latest row before it (held). Adds target_period (the row used) and target_basis."""
    stds = targets.select("org_code", "metric_id", "standard_id").unique()
    left = cells.join(stds, on=["org_code", "metric_id"], how="inner").sort("period_start")
    right = targets.rename({"period_start": "target_period"}).with_columns(
        pl.col("target_period").alias("_on")).sort("_on")
    joined = left.join_asof(right, left_on="period_start", right_on="_on",
                            by=["org_code", "metric_id", "standard_id"], strategy="backward",
                            check_sortedness=False).drop("_on")  # both sorted by the key above
    joined = joined.filter(pl.col("target_value").is_not_null())
    basis = (pl.when(pl.col("target_period") == pl.col("period_start"))
             .then(pl.format("{}: row for this month", pl.col("source_table")))
             .otherwise(pl.format("{}: held from {}, the standard's last row before this month",
                                  pl.col("source_table"), pl.col("target_period").dt.strftime("%Y-%m"))))
    return rank_primary(joined.with_columns(target_basis=basis))


STANDARD_COLUMNS = {"standard_id": pl.String, "target": pl.Float64, "minimum_improvement_points": pl.Float64,
                    "minimum_improvement_applies_to": pl.String, "minimum_improvement_cap": pl.Float64}


def read_standards(con: duckdb.DuckDBPyConnection) -> pl.DataFrame | None:
    """The minimum-improvement rule of each standard from s2_triple_aim.standards (for policy overrides), None
    when absent."""
    have = set(table_columns(con, S2, "standards"))
    if "standard_id" not in have:
        return None
    sel = ", ".join(f"{c}" if c in have else f"null as {c}" for c in STANDARD_COLUMNS)
    frame = con.sql(f"select {sel} from {S2}.standards").pl()
    return frame.cast(STANDARD_COLUMNS).unique("standard_id", keep="first")  # type: ignore[arg-type]
