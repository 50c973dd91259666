"""The step-5 forecasts as the Monte Carlo engine reads them (s5_impact.forecasts, the latest forecast_origin of each
series), ratio measures derived from the forecasts of their two metrics, and a stand-in for benchmarks and tests.

Ratio measures (e.g. rtt_52wk_waiters_pct_of_rtt_waiting_list) that the forecasts do not carry are derived from the
forecasts of their two metrics: mean 100 x a / b, and an 80% interval from the delta method on the log scale
assuming independent errors. Percentages are simulated on their own forecast distribution (whose interval the
forecasts derive from numerator and denominator) and kept within 0-100; num_mean/den_mean are read but not needed.
"""
from __future__ import annotations

import duckdb
import polars as pl

from ibp_pipeline.lib.duckdb_tables import table_columns
from ibp_pipeline.simulation.engine import Z80

SCHEMA = "s5_impact"
S1 = "s1_current_state"


class MissingInputError(RuntimeError):
    """A table the simulation cannot run without is absent."""


FORECAST_COLUMNS = ["org_code", "metric_id", "period_start", "forecast_origin", "horizon", "model", "mean", "lo80",
                    "hi80", "lo95", "hi95"]


def read_forecasts(con: duckdb.DuckDBPyConnection, metrics: set[str] | None = None) -> pl.DataFrame:
    """The latest forecast of every series in s5_impact.forecasts (optionally only some metrics)."""
    have = table_columns(con, SCHEMA, "forecasts")
    if not have:
        raise MissingInputError("s5_impact.forecasts is absent: build the step-5 forecasts before the risk model")
    missing = [c for c in FORECAST_COLUMNS if c not in have]
    if missing:
        raise MissingInputError(f"s5_impact.forecasts lacks column(s) {', '.join(missing)}")
    extra = [c for c in ("num_mean", "den_mean") if c in have]
    where = ""
    if metrics is not None:
        where = "where metric_id in (" + ", ".join(f"'{m}'" for m in sorted(metrics)) + ")"
    q = f"""select {', '.join(FORECAST_COLUMNS + extra)} from {SCHEMA}.forecasts {where}
            qualify forecast_origin = max(forecast_origin) over (partition by org_code, metric_id)"""
    frame = con.sql(q).pl()
    for c in ("num_mean", "den_mean"):
        if c not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias(c))
    return frame.with_columns(pl.col("horizon").cast(pl.Int32),
                              *(pl.col(c).cast(pl.Float64) for c in ("mean", "lo80", "hi80", "lo95", "hi95")))


def ratio_parts(measure_id: str) -> tuple[str, str] | None:
    """'a_pct_of_b' -> ('a', 'b')."""
    if "_pct_of_" not in measure_id:
        return None
    a, b = measure_id.split("_pct_of_", 1)
    return a, b


def derive_ratio_forecasts(forecasts: pl.DataFrame, measure_id: str) -> pl.DataFrame:
    """Forecast of 100 x a / b from the forecasts of a and b (same organisation and month): mean 100 x mean_a /
    mean_b; sd by the delta method with independent errors, 100 x sqrt((sd_a / mean_b)^2 + (mean_a sd_b /
    mean_b^2)^2), each sd from its forecast's 80% interval; bounds mean -/+ 1.2816 / 1.96 sd, not clipped (the
    engine keeps draws within 0-100). In absolute terms, so a numerator near 0 does not blow the interval up."""
    parts = ratio_parts(measure_id)
    if parts is None:
        return forecasts.clear()
    a, b = parts
    fa = forecasts.filter(pl.col("metric_id") == a)
    fb = forecasts.filter(pl.col("metric_id") == b).select(
        "org_code", "period_start", pl.col("mean").alias("mean_b"), pl.col("lo80").alias("lo80_b"),
        pl.col("hi80").alias("hi80_b"), pl.col("model").alias("model_b"))
    j = fa.join(fb, on=["org_code", "period_start"], how="inner").filter(
        pl.col("mean_b") > 0, pl.col("mean") >= 0, pl.col("mean").is_not_nan(), pl.col("mean_b").is_not_nan())
    sd = lambda lo, hi: ((pl.col(hi) - pl.col(lo)) / (2 * Z80)).fill_null(0.0).fill_nan(0.0)  # noqa: E731
    sd_r = 100.0 * ((sd("lo80", "hi80") / pl.col("mean_b")) ** 2
                    + (pl.col("mean") * sd("lo80_b", "hi80_b") / pl.col("mean_b") ** 2) ** 2).sqrt()
    ratio = 100.0 * pl.col("mean") / pl.col("mean_b")
    return j.with_columns(_r=ratio, _s=sd_r).select(
        "org_code", pl.lit(measure_id).alias("metric_id"), "period_start", "forecast_origin", "horizon",
        pl.format("ratio of forecasts: 100 x {} [{}] / {} [{}] (delta method, independent errors)",
                  pl.lit(a), pl.col("model"), pl.lit(b), pl.col("model_b")).alias("model"),
        pl.col("_r").alias("mean"),
        (pl.col("_r") - Z80 * pl.col("_s")).alias("lo80"), (pl.col("_r") + Z80 * pl.col("_s")).alias("hi80"),
        (pl.col("_r") - 1.959963984540054 * pl.col("_s")).alias("lo95"),
        (pl.col("_r") + 1.959963984540054 * pl.col("_s")).alias("hi95"),
        pl.col("mean").alias("num_mean"), pl.col("mean_b").alias("den_mean"))


def stand_in_forecasts(con: duckdb.DuckDBPyConnection, horizon: int = 24, metrics: set[str] | None = None,
                       min_points: int = 6, active_within_months: int = 3) -> pl.DataFrame:
    """A stand-in for s5_impact.forecasts, for benchmarks and tests only (never used by build_risk): each monthly
    series' last 12 months' mean as a flat forecast, its sd as the forecast sd at every horizon (80% and 95% bounds
    mean -/+ 1.2816 / 1.96 sd), model 'stand-in: mean and sd of the last 12 months'. Series must have >= min_points
    values in their last 12 months and their last month within active_within_months of the metric's latest."""
    where = "" if metrics is None else "and metric_id in (" + ", ".join(f"'{m}'" for m in sorted(metrics)) + ")"
    q = f"""
    with v as (select org_code, metric_id, period_start, value, numerator, denominator
               from {S1}.metric_values where period_grain = 'month' and value is not null {where}),
    last as (select org_code, metric_id, max(period_start) as origin from v group by all),
    ends as (select metric_id, max(origin) as metric_end from last group by all),
    w as (select v.*, l.origin from v join last l using (org_code, metric_id) join ends e using (metric_id)
          where v.period_start > l.origin - interval 12 month
            and date_diff('month', l.origin, e.metric_end) < {active_within_months})
    select org_code, metric_id, origin as forecast_origin, avg(value) as mu, coalesce(stddev_samp(value), 0) as sd,
           avg(numerator) as num_mean, avg(denominator) as den_mean, count(*) as n
    from w group by all having count(*) >= {min_points}"""
    base = con.sql(q).pl()
    h = pl.DataFrame({"horizon": list(range(1, horizon + 1))}, schema={"horizon": pl.Int32})
    out = base.join(h, how="cross").with_columns(
        period_start=pl.col("forecast_origin").dt.offset_by(pl.format("{}mo", pl.col("horizon"))),
        model=pl.lit("stand-in: mean and sd of the last 12 months"))
    pct = pl.col("metric_id").str.ends_with("_pct")
    lo = lambda z: pl.when(pct).then((pl.col("mu") - z * pl.col("sd")).clip(0, 100)).otherwise(  # noqa: E731
        (pl.col("mu") - z * pl.col("sd")).clip(lower_bound=0))
    hi = lambda z: pl.when(pct).then((pl.col("mu") + z * pl.col("sd")).clip(0, 100)).otherwise(  # noqa: E731
        pl.col("mu") + z * pl.col("sd"))
    return out.select("org_code", "metric_id", "period_start", "forecast_origin", "horizon", "model",
                      pl.col("mu").alias("mean"), lo(Z80).alias("lo80"), hi(Z80).alias("hi80"),
                      lo(1.959963984540054).alias("lo95"), hi(1.959963984540054).alias("hi95"),
                      pl.when(pct).then(pl.col("num_mean")).alias("num_mean"),
                      pl.when(pct).then(pl.col("den_mean")).alias("den_mean")
                      ).sort("org_code", "metric_id", "horizon")
