"""Step 5 "risk": how likely each organisation is to meet each standard, month by month, over the forecast horizon.

Why: the ICB analyst's question is not "what is the forecast" but "how sure are we of reaching the target, and
where is the risk greatest". `build_risk` runs the Monte Carlo engine (montecarlo.py) on the baseline scenario
(ibp_pipeline/step6_scenarios/scenarios/baseline.yaml: uncertainty about demand, workforce and productivity around
the forecast trends), scores every draw against every applicable target and writes two tables.

Inputs (by table): s5_impact.forecasts (required; latest forecast_origin per series), s2_triple_aim.targets
(targets and trajectories; when absent, the national registry standards.yaml is used as flat end targets and every
row says so), s5_impact.effects (the learned occupancy -> 4-hour relation; when absent an assumed one, said so),
s1_current_state.organisations (names, levels, parent ICB).

Targets in forecast months: s2_triple_aim.targets runs to each standard's deadline (trajectories) or to the last
month with data (flat standards). A forecast month after an organisation's last target row holds that row's value:
a trajectory holds its end target after the deadline and a flat standard stays flat (the rule step 2 states). The
primary row is re-ranked as step 2 ranks it: a trajectory not past its deadline, else one held after it, else a
planning target, else the constitutional standard; a local standard before a national one; then the later
deadline. Ratio measures (e.g. rtt_52wk_waiters_pct_of_rtt_waiting_list) that the forecasts do not carry are
derived from the forecasts of their two metrics: mean 100 x a / b, and an 80% interval from the delta method on the
log scale assuming independent errors. Percentages are simulated on their
own forecast distribution (whose interval the forecasts derive from numerator and denominator) and kept within
0-100; num_mean/den_mean are read but not needed.

Tables (schema s5_impact)
- risk: one row per organisation x standard x forecast month.
  org_code, org_name, org_level, parent_icb_code; metric_id (the measured series), standard_id, standard_name, kind
  (constitutional | planning_target), direction (at_least | at_most), is_primary (the row step 2 ranks first),
  deadline; period_start, horizon (months after forecast_origin), forecast_origin, forecast_model (the model that
  made the forecast); target_value and target_basis (where the target came from, in words); p10, p50, p90 and mean
  of the simulated value (the metric's unit; percentages 0-100); prob_meet_target (share of draws meeting the
  target: value >= target for at_least, <= for at_most); is_deadline_month; draws, seed, scenario,
  scenario_version; method (the formula: forecast model, split normal, the metric's driver elasticities, the
  occupancy relation used).
- risk_register: one row per organisation x standard, assessed at the standard's next milestone inside the forecast
  horizon (a multi-year standard of the Medium Term Planning Framework is judged at March 2027, the planning year's
  milestone, not at its March 2029 end), else at its deadline when that falls inside the horizon, else at the last
  forecast month (assessed_basis says which); the ranks put the standards least
  likely to be met first: rank_in_org (within the organisation), rank_in_icb (the ICB's own rows and its trusts'
  together, icb_code), rank_in_level (all organisations of that level in England). Ties in probability (often at
  0%) are broken by how far p50 falls short of the target in standard deviations of the simulated value,
  (p90 - p10) / 2.563 (further = higher risk). risk_band: 'very unlikely' (< 10%),
  'unlikely' (10-40%), 'uncertain' (40-60%), 'likely' (60-90%), 'very likely' (>= 90%). gap_p50 = p50 - target
  (negative = short for at_least; positive = over for at_most) and p10/p50/p90 at the assessed month.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl

from ibp_pipeline.lib.duckdb_tables import replace_table
from ibp_pipeline.step5_impact.montecarlo import (ASSUMED_OCCUPANCY_BETA, DEFAULT_SEED, OCCUPANCY_METRIC, Z80,
                                                  SeriesInputs, Setting, SimulationChunk, Summary, response_for,
                                                  run_chunked, split_normal_scales, split_simulation)

SCHEMA = "s5_impact"
S1 = "s1_current_state"
S2 = "s2_triple_aim"
OCCUPANCY_OUTCOME = "ae_4hr_pct"
MAX_SCALE_RATIO = 50.0  # a forecast sd over 50 x the mean is a degenerate model, capped (said in the run's notes)
LEVEL_OF_TYPE = {"nhs_trust": "provider", "independent_or_other_provider": "provider", "icb": "icb",
                 "region": "region", "country": "england"}
RISK_BANDS = ((0.10, "very unlikely"), (0.40, "unlikely"), (0.60, "uncertain"), (0.90, "likely"),
              (math.inf, "very likely"))


class MissingInputError(RuntimeError):
    """A table the risk model cannot run without is absent."""


# ---- small database helpers -----------------------------------------------------------------------------------
def table_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    """Column names of schema.table, [] when it does not exist."""
    rows = con.sql(f"select column_name from duckdb_columns() where schema_name = '{schema}' "
                   f"and table_name = '{table}' order by column_index").fetchall()
    return [r[0] for r in rows]


def write_table(con: duckdb.DuckDBPyConnection, schema: str, table: str, frame: pl.DataFrame,
                comments: dict[str, str] | None = None, table_comment: str | None = None) -> int:
    """Replace schema.table with frame, and document its columns in the database (COMMENT ON COLUMN)."""
    n = replace_table(con, schema, table, frame)
    comment_columns(con, schema, table, comments or {}, table_comment)
    return n


def comment_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str, comments: dict[str, str],
                    table_comment: str | None = None) -> None:
    have = set(table_columns(con, schema, table))
    if table_comment:
        con.execute(f"comment on table {schema}.{table} is '{table_comment.replace(chr(39), chr(39) * 2)}'")
    for col, text in comments.items():
        if col in have:
            con.execute(f"comment on column {schema}.{table}.{col} is '{text.replace(chr(39), chr(39) * 2)}'")


def _ordinal(d: dt.date) -> int:
    return d.year * 12 + d.month - 1


def _from_ordinal(o: int) -> dt.date:
    return dt.date(o // 12, o % 12 + 1, 1)


def is_percent(metric_id: str) -> bool:
    """Percentages (0-100) by the catalogue's naming: *_pct and ratio measures *_pct_of_*."""
    return metric_id.endswith("_pct") or "_pct_of_" in metric_id


# ---- forecasts ------------------------------------------------------------------------------------------------
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


# ---- targets --------------------------------------------------------------------------------------------------
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


# ---- the learned relation -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Relation:
    """The occupancy -> 4-hour relation used: beta ~ N(mean, sd) points of 4-hour % per point of occupancy."""
    mean: float
    sd: float
    relation_id: str | None
    text: str


def read_relation(con: duckdb.DuckDBPyConnection) -> Relation:
    """The learned relation from s5_impact.effects: a single-driver relation of ae_4hr_pct on G&A occupancy with a
    standard error (the one marked preferred if that column exists, else the most precise); else the assumption."""
    assumed = Relation(ASSUMED_OCCUPANCY_BETA[0], ASSUMED_OCCUPANCY_BETA[1], None,
                       f"assumed beta ~ N({ASSUMED_OCCUPANCY_BETA[0]:g}, {ASSUMED_OCCUPANCY_BETA[1]:g}) points of "
                       f"4-hour % per point of G&A occupancy (no learned relation in s5_impact.effects)")
    have = set(table_columns(con, SCHEMA, "effects"))
    need = {"relation_id", "outcome_metric_id", "driver", "coefficient", "std_error"}
    if not need <= have:
        return assumed
    pref = "coalesce(preferred, false)" if "preferred" in have else "false"
    q = f"""
    with e as (select *, count(*) over (partition by relation_id) as n_drivers from {SCHEMA}.effects)
    select relation_id, coefficient, std_error from e
    where outcome_metric_id = '{OCCUPANCY_OUTCOME}' and driver = '{OCCUPANCY_METRIC}' and n_drivers = 1
      and coefficient is not null and std_error is not null and isfinite(coefficient) and isfinite(std_error)
    order by {pref} desc, std_error, relation_id limit 1"""
    rows = con.sql(q).fetchall()
    if not rows:
        return assumed
    rid, coef, se = rows[0]
    if not (-5.0 < coef < 1.0) or se < 0:
        return Relation(assumed.mean, assumed.sd, None,
                        f"{assumed.text}; learned {rid} (b = {coef:.3g}) is outside the plausible range -5 to 1")
    return Relation(float(coef), float(se), rid,
                    f"beta ~ N({coef:.3f}, {se:.3f}) points of 4-hour % per point of G&A occupancy, from "
                    f"s5_impact.effects relation {rid}")


# ---- assembling the engine's inputs ---------------------------------------------------------------------------
def read_orgs(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    schema = {"org_code": pl.String, "org_name": pl.String, "org_level": pl.String, "parent_icb_code": pl.String}
    if not table_columns(con, S1, "organisations"):
        return pl.DataFrame(schema=schema)
    cases = " ".join(f"when '{k}' then '{v}'" for k, v in LEVEL_OF_TYPE.items())
    return con.sql(f"""select org_code, any_value(org_name) as org_name,
                              any_value(case org_type {cases} end) as org_level,
                              any_value(parent_icb_code) as parent_icb_code
                       from {S1}.organisations group by org_code""").pl().cast(schema)  # type: ignore[arg-type]


@dataclass
class Prepared:
    """The engine's inputs plus what is needed to label its outputs.

    series: one row per series index (series_index, org_code, metric_id, org_name, org_level, parent_icb_code,
    model, forecast_origin, first_period, last_period); period: (S, H) month ordinals (-1 none); calendar: the run's
    months; targets: extend_targets rows with series_index and h (0-based horizon index)."""
    inputs: SeriesInputs
    series: pl.DataFrame
    period: np.ndarray
    calendar: list[dt.date]
    targets: pl.DataFrame
    relation: Relation
    notes: list[str] = field(default_factory=list)
    standards: pl.DataFrame | None = None

    def period_date(self, i: np.ndarray, h: np.ndarray) -> list[dt.date]:
        return [_from_ordinal(int(o)) for o in self.period[i, h]]


def standard_measures(targets: pl.DataFrame | None) -> set[str]:
    if targets is not None and targets.height:
        return set(targets["metric_id"].unique().to_list())
    from ibp_pipeline.step2_triple_aim.standards import load_registry
    return {s.measure_id for s in load_registry().standards}


def prepare(con: duckdb.DuckDBPyConnection, metrics: set[str] | None = None,
            forecasts: pl.DataFrame | None = None, targets: pl.DataFrame | None = None,
            include_extra: set[str] | None = None) -> Prepared:
    """Read forecasts, targets, the learned relation and organisations, and build the engine's arrays.

    metrics: the measured series to simulate (default: every measure that has a standard); include_extra: more
    metrics (e.g. activity and waiting lists for scenario results). forecasts/targets may be passed in (tests,
    benchmarks); otherwise they are read from the database."""
    notes: list[str] = []
    if targets is None:
        targets = read_targets(con)
    wanted = set(metrics) if metrics is not None else standard_measures(targets)
    wanted |= set(include_extra or ())
    needed = set(wanted) | {OCCUPANCY_METRIC}
    for m in list(wanted):
        parts = ratio_parts(m)
        if parts:
            needed |= set(parts)
    fc = read_forecasts(con, needed) if forecasts is None else forecasts.filter(pl.col("metric_id").is_in(needed))
    for m in sorted(wanted):
        parts = ratio_parts(m)
        if parts and fc.filter(pl.col("metric_id") == m).height == 0:
            derived = derive_ratio_forecasts(fc, m)
            if derived.height:
                fc = pl.concat([fc, derived.select(fc.columns).cast(dict(fc.schema))])  # type: ignore[arg-type]
                notes.append(f"{m}: derived from the forecasts of {parts[0]} and {parts[1]}")
    occupancy = fc.filter(pl.col("metric_id") == OCCUPANCY_METRIC).select(
        "org_code", "period_start", pl.col("mean").alias("occupancy_mean"))
    nan_rows = fc.filter(pl.col("metric_id").is_in(wanted), pl.col("mean").is_nan())
    if nan_rows.height:
        notes.append(f"{nan_rows.height} forecast rows with a NaN mean left out ("
                     + ", ".join(sorted(set(f"{o} {m}" for o, m in nan_rows.select("org_code", "metric_id")
                                            .iter_rows()))) + ")")
    fc = fc.filter(pl.col("metric_id").is_in(wanted), pl.col("mean").is_not_null(), pl.col("mean").is_not_nan(),
                   pl.col("horizon") >= 1)
    if fc.height == 0:
        raise MissingInputError("no forecasts for the measures to simulate (" + ", ".join(sorted(wanted)) + ")")

    orgs = read_orgs(con)
    series = (fc.group_by("org_code", "metric_id")
              .agg(model=pl.col("model").sort_by("horizon").first(), forecast_origin=pl.col("forecast_origin").max(),
                   first_period=pl.col("period_start").min(), last_period=pl.col("period_start").max())
              .sort("metric_id", "org_code")
              .with_row_index("series_index")
              .join(orgs, on="org_code", how="left"))
    S = series.height
    H = int(fc["horizon"].max())  # type: ignore[arg-type]
    fc = fc.join(series.select("org_code", "metric_id", "series_index"), on=["org_code", "metric_id"])
    fc = fc.join(occupancy, on=["org_code", "period_start"], how="left")
    i = fc["series_index"].to_numpy().astype(np.int64)
    h = fc["horizon"].to_numpy().astype(np.int64) - 1
    ordinal = (fc["period_start"].dt.year().to_numpy().astype(np.int64) * 12
               + fc["period_start"].dt.month().to_numpy().astype(np.int64) - 1)
    cal0, cal1 = int(ordinal.min()), int(ordinal.max())
    calendar = [_from_ordinal(o) for o in range(cal0, cal1 + 1)]

    period = np.full((S, H), -1, dtype=np.int64)
    period[i, h] = ordinal
    cal = np.where(period >= 0, period - cal0, -1)
    median = np.full((S, H), np.nan)
    median[i, h] = fc["mean"].to_numpy()
    s_lo, s_hi = split_normal_scales(fc["mean"].to_numpy(), fc["lo80"].to_numpy(), fc["hi80"].to_numpy(),
                                     fc["lo95"].to_numpy(), fc["hi95"].to_numpy())
    # a degenerate interval (a scale over MAX_SCALE_RATIO x the mean, or over 100 points for a percentage) is capped
    pct_rows = np.array([is_percent(m) for m in fc["metric_id"].to_list()], dtype=bool)
    cap = np.where(pct_rows, 100.0, MAX_SCALE_RATIO * np.maximum(np.abs(fc["mean"].to_numpy()), 1.0))
    wild = ~(np.isfinite(s_lo) & np.isfinite(s_hi)) | (s_lo > cap) | (s_hi > cap)
    if wild.any():
        bad = fc.filter(pl.Series(wild)).select("org_code", "metric_id").unique()
        notes.append(f"{int(wild.sum())} forecast months of {bad.height} series with an 80% interval wider than "
                     f"{MAX_SCALE_RATIO:g} x the mean (100 points for a percentage) were capped there")
    s_lo = np.minimum(np.nan_to_num(s_lo, nan=0.0, posinf=np.inf), cap)
    s_hi = np.minimum(np.nan_to_num(s_hi, nan=0.0, posinf=np.inf), cap)
    scale_lo = np.zeros((S, H))
    scale_hi = np.zeros((S, H))
    scale_lo[i, h], scale_hi[i, h] = s_lo, s_hi

    metric_of = series["metric_id"].to_list()
    response_metrics = sorted(set(metric_of) | {OCCUPANCY_METRIC})
    row_of = {m: r for r, m in enumerate(response_metrics)}
    elasticities = np.stack([response_for(m).vector() for m in response_metrics])
    kind = np.array([response_for(m).kind for m in metric_of], dtype=np.int8)
    upper = np.array([100.0 if is_percent(m) else np.inf for m in metric_of])
    link = np.array([response_for(m).occupancy_link for m in metric_of])
    link_base = np.full((S, H), np.nan)
    occ = fc["occupancy_mean"].to_numpy()
    on = link[i] & np.isfinite(occ)
    link_base[i[on], h[on]] = occ[on]

    inputs = SeriesInputs(keys=list(zip(series["org_code"].to_list(), metric_of)), cal=cal, median=median,
                          scale_lo=scale_lo, scale_hi=scale_hi, lower=np.zeros(S), upper=upper, kind=kind,
                          response_row=np.array([row_of[m] for m in metric_of], dtype=np.int64),
                          elasticities=elasticities, link_base=link_base, n_calendar=len(calendar),
                          occupancy_row=row_of[OCCUPANCY_METRIC])

    cells = fc.select("org_code", "metric_id", "period_start", "series_index", (pl.col("horizon") - 1).alias("h"))
    if targets is None or targets.height == 0:
        notes.append("s2_triple_aim.targets absent: targets are the national registry's (end) targets as flat lines")
        targets = registry_targets(series)
    ext = extend_targets(targets, cells)
    relation = read_relation(con)
    return Prepared(inputs, series, period, calendar, ext, relation, notes, read_standards(con))


def target_arrays(prep: Prepared, targets: pl.DataFrame | None = None, primary_only: bool = False
                  ) -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
    """(targets (S, H, m), at_least (S, H, m), slots) for the engine: one slot per standard a series has (sorted by
    standard_id), or one slot holding the primary target when primary_only. slots: the target rows with their slot."""
    t = prep.targets if targets is None else targets
    if primary_only:
        t = t.filter(pl.col("is_primary")).with_columns(slot=pl.lit(0, dtype=pl.Int64))
    else:
        order = t.select("series_index", "standard_id").unique().sort("series_index", "standard_id").with_columns(
            slot=pl.int_range(pl.len()).over("series_index").cast(pl.Int64))
        t = t.join(order, on=["series_index", "standard_id"])
    S, H = prep.inputs.shape
    m = int(t["slot"].max()) + 1 if t.height else 0  # type: ignore[operator]
    tv = np.full((S, H, m), np.nan)
    al = np.ones((S, H, m), dtype=bool)
    if t.height:
        si, hh, sl = (t[c].to_numpy().astype(np.int64) for c in ("series_index", "h", "slot"))
        tv[si, hh, sl] = t["target_value"].to_numpy()
        al[si, hh, sl] = (t["direction"] == "at_least").to_numpy()
    return tv, al, t


def method_text(prep: Prepared, metric_id: str) -> str:
    """The simulation of a metric in one line (the full statement is montecarlo.py's module doc)."""
    r = response_for(metric_id)
    text = f"split normal on the forecast's 80% bounds; drivers: {r.text()}"
    if r.occupancy_link:
        rel = prep.relation
        text += (f" (beta ~ N({rel.mean:.3f}, {rel.sd:.3f}), "
                 f"{'s5_impact.effects ' + rel.relation_id if rel.relation_id else 'assumed'})")
    if is_percent(metric_id):
        text += "; within 0-100"
    return text


# ---- risk -----------------------------------------------------------------------------------------------------
RISK_COMMENTS = {
    "org_code": "ODS code of the organisation (trust, ICB Q-code, region Y-code or ENGLAND)",
    "org_level": "provider, icb, region or england",
    "parent_icb_code": "the ICB a trust belongs to (s1_current_state.organisations)",
    "metric_id": "the measured series the standard is scored on",
    "standard_id": "the standard (s2_triple_aim.standards)",
    "is_primary": "the row step 2 ranks first for this organisation, series and month",
    "period_start": "the forecast month",
    "horizon": "months after forecast_origin",
    "forecast_origin": "last actual month the forecast used",
    "forecast_model": "the model that made the baseline forecast (s5_impact.forecasts.model)",
    "target_value": "the target or trajectory value that month (metric unit; percentages 0-100)",
    "target_basis": "where the target came from: the targets row for the month, or the last row held",
    "p10": "10th percentile of the simulated value", "p50": "median of the simulated value",
    "p90": "90th percentile of the simulated value", "mean": "mean of the simulated value",
    "prob_meet_target": "share of draws meeting the target: value >= target (at_least) or <= target (at_most)",
    "is_deadline_month": "true in the standard's deadline month",
    "draws": "Monte Carlo draws", "seed": "seed of the run (same seed, same inputs -> identical results)",
    "scenario": "the driver assumptions used (step-6 scenario document)",
    "method": "how the value was simulated: forecast distribution, driver elasticities, relation used",
}
REGISTER_COMMENTS = {
    "assessed_period": "month the risk is assessed: the next milestone inside the forecast horizon, else the "
                       "deadline if inside it, else the last forecast month",
    "milestone_deadline": "the milestone this month's target heads for (a multi-year standard has several)",
    "assessed_basis": "why that month",
    "prob_meet_target": "probability of meeting the target in the assessed month",
    "gap_p50": "p50 - target at the assessed month (negative = short for at_least; positive = over for at_most)",
    "rank_in_org": "1 = the organisation's standard least likely to be met",
    "rank_in_icb": "rank among the ICB's own rows and its trusts' rows (icb_code)",
    "rank_in_level": "rank among all organisations of the same level in England",
    "risk_band": "very unlikely (< 10%), unlikely (10-40%), uncertain (40-60%), likely (60-90%), very likely",
}


def risk_frame(prep: Prepared, summary: Summary, slots: pl.DataFrame, draws: int, seed: int, scenario: str,
               scenario_version: str) -> pl.DataFrame:
    """One row per organisation x standard x forecast month (the slots of target_arrays)."""
    si = slots["series_index"].to_numpy().astype(np.int64)
    hh = slots["h"].to_numpy().astype(np.int64)
    sl = slots["slot"].to_numpy().astype(np.int64)
    methods = {m: method_text(prep, m) for m in prep.series["metric_id"].unique().to_list()}
    meta = prep.series.select("series_index", "org_name", "org_level", "parent_icb_code",
                              pl.col("model").alias("forecast_model"), "forecast_origin")
    frame = slots.with_columns(
        p10=summary.p10[si, hh], p50=summary.p50[si, hh], p90=summary.p90[si, hh], mean=summary.mean[si, hh],
        prob_meet_target=summary.prob[si, hh, sl], horizon=pl.Series(hh + 1, dtype=pl.Int32),
    ).join(meta, on="series_index", how="left").with_columns(
        is_deadline_month=(pl.col("period_start") == pl.col("deadline")).fill_null(False),
        draws=pl.lit(draws, dtype=pl.Int64), seed=pl.lit(seed, dtype=pl.Int64),
        scenario=pl.lit(scenario), scenario_version=pl.lit(scenario_version),
        method=pl.col("metric_id").replace_strict(methods, default=None))
    return frame.select(
        "org_code", "org_name", "org_level", "parent_icb_code", "metric_id", "standard_id", "standard_name", "kind",
        "direction", "is_primary", "deadline", "milestone_deadline", "period_start", "horizon", "forecast_origin",
        "forecast_model", "target_value", "target_basis", "p10", "p50", "p90", "mean", "prob_meet_target", "is_deadline_month",
        "draws", "seed", "scenario", "scenario_version", "method",
    ).sort("org_code", "metric_id", "standard_id", "period_start")


def risk_band(p: pl.Expr) -> pl.Expr:
    expr = pl.when(p.is_null()).then(pl.lit(None, dtype=pl.String))
    for upper, name in RISK_BANDS:
        expr = expr.when(p < upper).then(pl.lit(name))
    return expr.otherwise(pl.lit(RISK_BANDS[-1][1]))


def register_frame(risk: pl.DataFrame) -> pl.DataFrame:
    """The ranked risk register: one row per organisation x standard at its assessed month (see module doc)."""
    if risk.height == 0:
        return risk.head(0).select("org_code", "standard_id")
    if "milestone_deadline" not in risk.columns:
        risk = risk.with_columns(milestone_deadline=pl.col("deadline"))
    span = risk.group_by("org_code", "standard_id").agg(first=pl.col("period_start").min(),
                                                       last=pl.col("period_start").max())
    milestone = pl.col("milestone_deadline")
    r = risk.join(span, on=["org_code", "standard_id"]).with_columns(
        next_milestone=milestone.filter((milestone >= pl.col("first")) & (milestone <= pl.col("last"))
                                        & (milestone < pl.col("deadline"))).min().over("org_code", "standard_id"))
    in_window = pl.col("deadline").is_not_null() & (pl.col("deadline") >= pl.col("first")) & (
        pl.col("deadline") <= pl.col("last"))
    r = r.with_columns(assessed_period=pl.coalesce(pl.col("next_milestone"),
                                                   pl.when(in_window).then(pl.col("deadline")), pl.col("last")),
                       assessed_basis=pl.when(pl.col("next_milestone").is_not_null())
                       .then(pl.format("the next milestone ({}); the standard runs to {}",
                                       pl.col("next_milestone").dt.strftime("%B %Y"),
                                       pl.col("deadline").dt.strftime("%B %Y")))
                       .when(in_window).then(pl.lit("the standard's deadline"))
                       .when(pl.col("deadline").is_not_null() & (pl.col("deadline") < pl.col("first")))
                       .then(pl.lit("deadline before the forecast horizon: last forecast month (target held)"))
                       .when(pl.col("deadline").is_not_null())
                       .then(pl.lit("deadline after the forecast horizon: last forecast month"))
                       .otherwise(pl.lit("no deadline (a flat standard): last forecast month")))
    r = r.filter(pl.col("period_start") == pl.col("assessed_period"))
    gap = pl.col("p50") - pl.col("target_value")
    sd = (pl.col("p90") - pl.col("p10")) / (2 * Z80)
    shortfall = pl.when(pl.col("direction") == "at_least").then(-gap).otherwise(gap) / pl.max_horizontal(
        sd, pl.lit(1e-6))
    r = r.with_columns(gap_p50=gap, _short=shortfall,
                       icb_code=pl.when(pl.col("org_level") == "icb").then(pl.col("org_code"))
                       .otherwise(pl.col("parent_icb_code")))
    key = ["prob_meet_target", "_short"]
    desc = [False, True]

    def ranked(frame: pl.DataFrame, by: list[str], name: str) -> pl.DataFrame:
        valid = frame.filter(pl.col("prob_meet_target").is_not_null() & pl.all_horizontal(
            [pl.col(c).is_not_null() for c in by]))
        ordered = valid.sort(by + key + ["org_code", "standard_id"], descending=[False] * len(by) + desc + [False,
                                                                                                            False],
                             nulls_last=True)
        ordered = ordered.with_columns(pl.int_range(1, pl.len() + 1).over(by).cast(pl.Int32).alias(name))
        return frame.join(ordered.select("org_code", "standard_id", name), on=["org_code", "standard_id"],
                          how="left")

    r = ranked(r, ["org_code"], "rank_in_org")
    r = ranked(r, ["icb_code"], "rank_in_icb")
    r = ranked(r, ["org_level"], "rank_in_level")
    r = r.with_columns(risk_band=risk_band(pl.col("prob_meet_target")),
                       months_to_assessed=pl.col("horizon"))
    return r.select(
        "org_code", "org_name", "org_level", "parent_icb_code", "icb_code", "standard_id", "standard_name",
        "metric_id", "kind", "direction", "is_primary", "deadline", "assessed_period", "assessed_basis",
        "forecast_origin", "months_to_assessed", "target_value", "p10", "p50", "p90", "gap_p50",
        "prob_meet_target", "risk_band", "rank_in_org", "rank_in_icb", "rank_in_level", "draws", "seed",
        "scenario", "scenario_version",
    ).sort("org_code", "rank_in_org", nulls_last=True)


@dataclass
class RiskPlan:
    """Everything the risk model reads from the warehouse, ready to simulate (possibly in chunks elsewhere)."""
    prep: Prepared
    setting: Setting
    slots: pl.DataFrame
    scenario: str
    scenario_version: str
    draws: int
    seed: int

    def chunks(self, n: int) -> list[SimulationChunk]:
        """The simulation cut into independent pieces by organisation (montecarlo.split_simulation)."""
        return split_simulation(self.prep.inputs, [self.setting], self.draws, self.seed, n)

    def tables(self, summary: Summary) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(risk, risk_register) from the whole run's summary."""
        risk = risk_frame(self.prep, summary, self.slots, self.draws, self.seed, self.scenario,
                          self.scenario_version)
        return risk, register_frame(risk)


def plan_risk(con: duckdb.DuckDBPyConnection, draws: int = 10_000, seed: int = DEFAULT_SEED,
              scenario_file: str | None = None) -> RiskPlan:
    """Read the inputs and build the baseline setting with every target (the only step that needs the database
    before the write)."""
    from ibp_pipeline.step6_scenarios.config import load_baseline
    from ibp_pipeline.step6_scenarios.engine import setting_for

    scenario = load_baseline(scenario_file)
    prep = prepare(con)
    tv, al, slots = target_arrays(prep)
    setting = setting_for(con, prep, scenario, None, name="baseline")
    setting.targets, setting.at_least = tv, al
    return RiskPlan(prep, setting, slots, scenario.name, scenario.version, draws, seed)


def write_risk(con: duckdb.DuckDBPyConnection, risk: pl.DataFrame, register: pl.DataFrame) -> int:
    """Replace s5_impact.risk and s5_impact.risk_register (documented); returns the risk row count."""
    write_table(con, SCHEMA, "risk", risk, RISK_COMMENTS,
                "Probability of meeting each standard per organisation and month (Monte Carlo, baseline scenario)")
    write_table(con, SCHEMA, "risk_register", register, {**RISK_COMMENTS, **REGISTER_COMMENTS},
                "Standards least likely to be met by their deadline, ranked per organisation, ICB and level")
    return risk.height


def build_risk(con: duckdb.DuckDBPyConnection, draws: int = 10_000, seed: int = DEFAULT_SEED,
               scenario_file: str | None = None, chunks: int = 1) -> int:
    """Simulate every organisation x standard x forecast month under the baseline scenario and write
    s5_impact.risk and s5_impact.risk_register in one process; returns the risk row count. The Dagster asset runs
    the same plan, chunks and write as separate steps (step5_impact/assets.py)."""
    plan = plan_risk(con, draws, seed, scenario_file)
    [summary] = run_chunked(plan.prep.inputs, [plan.setting], draws, seed, chunks)
    return write_risk(con, *plan.tables(summary))
