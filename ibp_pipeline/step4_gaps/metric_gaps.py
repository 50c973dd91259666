"""Step 4 "identifying gaps": how far each organisation is from the target that applies, and how long its trend
would take to close the gap.

Why: a leader's first question after "where are we" is "how far off are we, and at this rate when do we get
there?". Every row of s4_gaps.metric_gaps carries the value, the target and the standard it came from (national or
local), the gap in points and percent, the gap to the constitutional standard alongside a planning trajectory, the
months to the target at the current trend with the formula in words, and the gap to the peer and national top
quartile when s2_triple_aim.benchmarks and peer_groups exist.

Definitions (also written in the rows: gap_method, trend_method, benchmark_method)
- gap_points = target - value for an at_least standard, value - target for at_most: positive = short of target.
- gap_pct = 100 x gap_points / target (NULL when the target is 0); meets_target = gap_points <= 0.
- Trend: least-squares slope of value on month number over the periods in the 12 months up to and including the
  row's period (at least 3 points; flagged provisional below 12 monthly or 4 quarterly points).
- months_to_target: months for the trend to close the gap to the END target of the primary standard (the
  trajectory's end point for the organisation, or the flat target): gap / improvement per month, improvement =
  slope (at_least) or -slope (at_most); 0 when the end target is already met; NULL, trend_status
  'not_at_current_trend', when the trend is flat or moving away.
- Peer top-quartile gap: top_quartile - value (at_least) or value - top_quartile (at_most), positive = behind the
  top quartile; benchmarks' top_quartile is read as the best-performing quartile boundary for the metric.
"""
from __future__ import annotations

import duckdb
import numpy as np
import polars as pl

from ibp_pipeline.lib.duckdb_tables import replace_table, table_columns, table_exists

from ibp_pipeline.step2_triple_aim.standards import SCHEMA as S2
from ibp_pipeline.step2_triple_aim.standards import read_measure_values

SCHEMA = "s4_gaps"
S1 = "s1_current_state"
TREND_WINDOW_MONTHS = 12
MIN_TREND_POINTS = 3
FULL_WINDOW_POINTS = {"month": 12, "quarter": 4}

GAP_METHOD = ("gap_points = target_value - value (at_least) or value - target_value (at_most), positive = short of "
              "the target; gap_pct = 100 x gap_points / target_value; meets_target = gap_points <= 0")
TREND_METHOD = (f"least-squares slope of value on month number over the periods in the {TREND_WINDOW_MONTHS} months "
                "up to and including this one: slope = (n Sxy - Sx Sy) / (n Sxx - Sx^2), n = trend_points (at "
                f"least {MIN_TREND_POINTS}; provisional below 12 monthly or 4 quarterly points); months_to_target = "
                "(gap to end_target_value) / improvement per month, improvement = slope (at_least) or -slope "
                "(at_most); 0 when the end target is met; NULL (not_at_current_trend) when the trend is flat or "
                "moving away")
BENCHMARK_METHOD = ("peer_top_quartile_gap_points = peer_top_quartile - value (at_least) or value - "
                    "peer_top_quartile (at_most), positive = behind the top quartile of the organisation's peer "
                    "group (s2_triple_aim.peer_groups, benchmarks scope 'peer'); national_* the same against "
                    "benchmarks scope 'national'")


# ---- pure maths ---------------------------------------------------------------------------------------------
def gap_points(value: float, target: float, direction: str) -> float:
    """Signed gap: positive = short of the target, whichever way the standard points."""
    return target - value if direction == "at_least" else value - target


def gap_points_expr(value: str | pl.Expr, target: str | pl.Expr, direction: str | pl.Expr = "direction") -> pl.Expr:
    """gap_points as a polars expression over columns (value, target, direction)."""
    v = pl.col(value) if isinstance(value, str) else value
    t = pl.col(target) if isinstance(target, str) else target
    d = pl.col(direction) if isinstance(direction, str) else direction
    return pl.when(d == "at_least").then(t - v).otherwise(v - t)


def least_squares_slope(months: np.ndarray | list[float], values: np.ndarray | list[float]) -> float:
    """Slope (value units per month) of the ordinary least-squares line through (month, value); the reference
    the rolling computation in add_trend is tested against."""
    x, y = np.asarray(months, dtype=float), np.asarray(values, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0:
        return float("nan")
    return float(np.polyfit(x, y, 1)[0])


def months_to_target(gap_to_end: float, slope: float, direction: str) -> float | None:
    """Months for a trend of `slope` per month to close a gap (positive = short); 0 when already met; None when
    the trend is flat or moving away."""
    if gap_to_end <= 0:
        return 0.0
    improvement = slope if direction == "at_least" else -slope
    if not np.isfinite(improvement) or improvement <= 0:
        return None
    return gap_to_end / improvement


def add_trend(values: pl.DataFrame, window_months: int = TREND_WINDOW_MONTHS) -> pl.DataFrame:
    """Add the rolling least-squares trend of each organisation x metric series.

    values: org_code, metric_id, period_start (date), value (+ anything). Adds trend_points (n in the window),
    trend_window_start and trend_slope_per_month (NULL below MIN_TREND_POINTS points). Sums over a time window
    rather than a fixed count of rows, so a missing month shortens the window instead of stretching it."""
    keys = ["org_code", "metric_id"]
    window = f"{window_months}mo"
    x = ((pl.col("period_start").dt.year().cast(pl.Float64) - 2000.0) * 12.0
         + pl.col("period_start").dt.month().cast(pl.Float64))
    frame = (values.filter(pl.col("value").is_not_null()).sort(*keys, "period_start")
             .with_columns(_x=x, _one=pl.lit(1.0)))
    roll = {name: expr.rolling_sum_by("period_start", window_size=window).over(keys) for name, expr in {
        "_n": pl.col("_one"), "_sx": pl.col("_x"), "_sy": pl.col("value"), "_sxx": pl.col("_x") * pl.col("_x"),
        "_sxy": pl.col("_x") * pl.col("value")}.items()}
    frame = frame.with_columns(**roll, trend_window_start=pl.col("period_start").rolling_min_by(
        "period_start", window_size=window).over(keys))
    denominator = pl.col("_n") * pl.col("_sxx") - pl.col("_sx") ** 2
    slope = (pl.col("_n") * pl.col("_sxy") - pl.col("_sx") * pl.col("_sy")) / denominator
    return (frame.with_columns(
        trend_points=pl.col("_n").cast(pl.Int64),
        trend_slope_per_month=pl.when((pl.col("_n") >= MIN_TREND_POINTS) & (denominator > 0)).then(slope)
        .otherwise(None))
        .drop("_x", "_one", "_n", "_sx", "_sy", "_sxx", "_sxy"))


def months_to_target_expr(gap_to_end: pl.Expr, slope: pl.Expr, direction: pl.Expr) -> pl.Expr:
    """months_to_target as a polars expression (same rule as months_to_target)."""
    improvement = pl.when(direction == "at_least").then(slope).otherwise(-slope)
    return (pl.when(gap_to_end <= 0).then(0.0)
            .when(improvement > 0).then(gap_to_end / improvement)
            .otherwise(None))


# ---- the table ----------------------------------------------------------------------------------------------
GAPS_SCHEMA = {
    "org_code": pl.String, "org_name": pl.String, "org_level": pl.String, "metric_id": pl.String,
    "metric_name": pl.String, "period_start": pl.Date, "period_grain": pl.String, "value": pl.Float64,
    "numerator": pl.Float64, "denominator": pl.Float64,
    "standard_id": pl.String, "standard_name": pl.String, "kind": pl.String, "applied": pl.String,
    "config_file": pl.String, "direction": pl.String, "target_value": pl.Float64, "is_trajectory": pl.Boolean,
    "end_target_value": pl.Float64, "deadline": pl.Date, "target_method": pl.String,
    "gap_points": pl.Float64, "gap_pct": pl.Float64, "meets_target": pl.Boolean, "gap_method": pl.String,
    "constitutional_standard_id": pl.String, "constitutional_target_value": pl.Float64,
    "constitutional_gap_points": pl.Float64, "constitutional_gap_pct": pl.Float64,
    "meets_constitutional": pl.Boolean,
    "trend_points": pl.Int64, "trend_window_start": pl.Date, "trend_slope_per_month": pl.Float64,
    "trend_provisional": pl.Boolean, "gap_to_end_target_points": pl.Float64, "trend_status": pl.String,
    "months_to_target": pl.Float64, "projected_period_reaching_target": pl.Date,
    "on_track_for_deadline": pl.Boolean, "trend_method": pl.String,
    "peer_group_id": pl.String, "peer_n_orgs": pl.Int64, "peer_median": pl.Float64,
    "peer_top_quartile": pl.Float64, "peer_top_quartile_gap_points": pl.Float64,
    "national_top_quartile": pl.Float64, "national_top_quartile_gap_points": pl.Float64,
    "benchmark_method": pl.String,
}
BENCHMARK_COLUMNS = ["metric_id", "period_start", "scope", "peer_group_id", "n_orgs", "median", "top_quartile"]


def _pct(gap: pl.Expr, target: pl.Expr) -> pl.Expr:
    return pl.when(target != 0).then(100.0 * gap / target).otherwise(None)


def _benchmarks(gaps: pl.DataFrame, benchmarks: pl.DataFrame | None,
                peer_groups: pl.DataFrame | None) -> pl.DataFrame:
    """Attach peer and national benchmark columns (NULL where the tables are absent or hold no match)."""
    empty = {"peer_group_id": pl.String, "peer_n_orgs": pl.Int64, "peer_median": pl.Float64,
             "peer_top_quartile": pl.Float64, "national_top_quartile": pl.Float64}
    if benchmarks is None or benchmarks.is_empty():
        return gaps.with_columns(pl.lit(None, dtype=t).alias(c) for c, t in empty.items())
    bench = benchmarks.with_columns(pl.col("peer_group_id").cast(pl.String),
                                    pl.col("period_start").cast(pl.Date))
    if peer_groups is not None and not peer_groups.is_empty():
        peers = (peer_groups.select("org_code", pl.col("peer_group_id").cast(pl.String))
                 .sort("org_code", "peer_group_id").unique("org_code", keep="first"))
        gaps = gaps.join(peers, on="org_code", how="left")
    else:
        gaps = gaps.with_columns(peer_group_id=pl.lit(None, dtype=pl.String))
    peer = (bench.filter(pl.col("scope") == "peer")
            .select("metric_id", "period_start", "peer_group_id", peer_n_orgs=pl.col("n_orgs").cast(pl.Int64),
                    peer_median=pl.col("median").cast(pl.Float64),
                    peer_top_quartile=pl.col("top_quartile").cast(pl.Float64))
            .unique(["metric_id", "period_start", "peer_group_id"], keep="first"))
    gaps = gaps.join(peer, on=["metric_id", "period_start", "peer_group_id"], how="left")
    # national benchmarks compare organisations of one level; without an org_level column they are read as
    # trust benchmarks and given to provider rows only
    national_keys = ["metric_id", "period_start"] + (["org_level"] if "org_level" in bench.columns else [])
    national = (bench.filter(pl.col("scope") == "national")
                .select(*national_keys, national_top_quartile=pl.col("top_quartile").cast(pl.Float64))
                .unique(national_keys, keep="first"))
    if "org_level" not in bench.columns:
        national = national.with_columns(org_level=pl.lit("provider"))
    return gaps.join(national, on=["metric_id", "period_start", "org_level"], how="left")


def metric_gaps_frame(values: pl.DataFrame, targets: pl.DataFrame, *, metric_names: dict[str, str] | None = None,
                      org_names: dict[str, str] | None = None, benchmarks: pl.DataFrame | None = None,
                      peer_groups: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per organisation x metric x period that has a value and a primary target.

    values: org_code, org_level, metric_id, period_start, period_grain, value, numerator, denominator.
    targets: s2_triple_aim.targets rows (org_code, metric_id, period_start, standard_id, standard_name, kind,
    applied, config_file, direction, target_value, is_trajectory, is_primary, end_target_value, deadline,
    target_method)."""
    keys = ["org_code", "metric_id", "period_start"]
    trended = add_trend(values)
    primary = targets.filter(pl.col("is_primary")).select(
        *keys, "standard_id", "standard_name", "kind", "applied", "config_file", "direction", "target_value",
        "is_trajectory", "end_target_value", "deadline", "target_method")
    constitutional = (targets.filter(pl.col("kind") == "constitutional")
                      .sort(*keys, pl.col("applied") != "local", "standard_id")
                      .unique(keys, keep="first")
                      .select(*keys, constitutional_standard_id="standard_id",
                              constitutional_target_value="target_value", _c_direction="direction"))
    gaps = (trended.join(primary, on=keys, how="inner")
            .join(constitutional, on=keys, how="left"))
    gap = gap_points_expr("value", "target_value")
    c_gap = gap_points_expr("value", "constitutional_target_value", "_c_direction")
    end_gap = gap_points_expr("value", "end_target_value")
    full = pl.col("period_grain").replace_strict(FULL_WINDOW_POINTS, default=12, return_dtype=pl.Int64)
    gaps = gaps.with_columns(
        gap_points=gap, gap_pct=_pct(gap, pl.col("target_value")), meets_target=gap <= 0, gap_method=pl.lit(GAP_METHOD),
        constitutional_gap_points=c_gap, constitutional_gap_pct=_pct(c_gap, pl.col("constitutional_target_value")),
        meets_constitutional=c_gap <= 0,
        trend_provisional=pl.col("trend_points") < full,
        gap_to_end_target_points=end_gap,
        months_to_target=months_to_target_expr(end_gap, pl.col("trend_slope_per_month"), pl.col("direction")),
    )
    gaps = gaps.with_columns(
        trend_status=pl.when(pl.col("gap_to_end_target_points") <= 0).then(pl.lit("meets_end_target"))
        .when(pl.col("trend_slope_per_month").is_null()).then(pl.lit("too_few_points"))
        .when(pl.col("months_to_target").is_not_null()).then(pl.lit("improving"))
        .otherwise(pl.lit("not_at_current_trend")),
        months_to_target=pl.when(pl.col("trend_slope_per_month").is_null() & (pl.col("gap_to_end_target_points") > 0))
        .then(None).otherwise(pl.col("months_to_target")),
    )
    whole = pl.col("months_to_target").ceil().cast(pl.Int64)
    gaps = gaps.with_columns(
        projected_period_reaching_target=pl.when(pl.col("months_to_target").is_not_null() & (whole <= 1200))
        .then(pl.col("period_start").dt.offset_by(pl.format("{}mo", whole))).otherwise(None),
    )
    gaps = gaps.with_columns(
        on_track_for_deadline=pl.when(~pl.col("is_trajectory") | pl.col("deadline").is_null()).then(None)
        .when(pl.col("trend_status") == "meets_end_target").then(True)
        .when(pl.col("trend_status") == "too_few_points").then(None)
        .when(pl.col("projected_period_reaching_target").is_null()).then(False)
        .otherwise(pl.col("projected_period_reaching_target") <= pl.col("deadline")),
        trend_method=pl.lit(TREND_METHOD),
        metric_name=pl.col("metric_id").replace_strict(metric_names or {}, default=None, return_dtype=pl.String),
        org_name=pl.col("org_code").replace_strict(org_names or {}, default=None, return_dtype=pl.String),
    )
    gaps = _benchmarks(gaps, benchmarks, peer_groups)
    gaps = gaps.with_columns(
        peer_top_quartile_gap_points=gap_points_expr("value", "peer_top_quartile"),
        national_top_quartile_gap_points=gap_points_expr("value", "national_top_quartile"),
        benchmark_method=pl.lit(BENCHMARK_METHOD),
    )
    return gaps.select([pl.col(c).cast(t) for c, t in GAPS_SCHEMA.items()]).sort(keys)


# ---- database -----------------------------------------------------------------------------------------------
def _read_benchmarks(con: duckdb.DuckDBPyConnection) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    """s2_triple_aim.benchmarks and peer_groups when both are there with the agreed columns, else None."""
    bench = peers = None
    if table_exists(con, S2, "benchmarks"):
        cols = set(table_columns(con, S2, "benchmarks"))
        if set(BENCHMARK_COLUMNS) <= cols:
            wanted = BENCHMARK_COLUMNS + (["org_level"] if "org_level" in cols else [])
            bench = con.sql(f"select {', '.join(wanted)} from {S2}.benchmarks").pl()
    if table_exists(con, S2, "peer_groups") and {"org_code", "peer_group_id"} <= set(table_columns(con, S2, "peer_groups")):
        peers = con.sql(f"select distinct org_code, peer_group_id from {S2}.peer_groups").pl()
    return bench, peers


def build_metric_gaps(con: duckdb.DuckDBPyConnection) -> int:
    """Write s4_gaps.metric_gaps from s2_triple_aim.standards and targets and step-1 values; return its rows."""
    for table in ("standards", "targets"):
        if not table_exists(con, S2, table):
            raise RuntimeError(f"{S2}.{table} is missing: build the standards and targets first")
    standards = con.sql(f"select distinct measure_id, metric_id, ratio_of, measure_name from {S2}.standards").pl()
    measures = {m: (metric, ratio) for m, metric, ratio, _ in standards.iter_rows()}
    names = {m: name for m, _, _, name in standards.iter_rows()}
    values = read_measure_values(con, measures)
    targets = con.sql(f"select * from {S2}.targets").pl()
    org_names: dict[str, str] = {}
    if table_exists(con, S1, "organisations"):
        org_names = dict(con.sql(f"select org_code, any_value(org_name) from {S1}.organisations "
                                 "group by org_code").fetchall())
    benchmarks, peer_groups = _read_benchmarks(con)
    frame = metric_gaps_frame(values, targets, metric_names=names, org_names=org_names, benchmarks=benchmarks,
                              peer_groups=peer_groups)
    replace_table(con, SCHEMA, "metric_gaps", frame)
    return frame.height
