"""The Monte Carlo engine's prepared inputs, shared by step 5 (risk of missing each standard) and step 6 (scenarios):
the step-5 forecasts (forecasts.py), targets extended over the forecast months (targets.py), the learned occupancy ->
4-hour relation and the organisations, assembled into the engine's arrays (`prepare` -> `Prepared`), plus the target
arrays a setting is scored against and the one-line statement of how each metric is simulated.

Inputs (by table): s5_impact.forecasts (required; latest forecast_origin per series), s2_triple_aim.targets
(targets and trajectories; when absent, the national registry standards.yaml is used as flat end targets and every
row says so), s5_impact.effects (the learned occupancy -> 4-hour relation; when absent an assumed one, said so),
s1_current_state.organisations (names, levels, parent ICB).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl

from ibp_pipeline.lib.duckdb_tables import table_columns
from ibp_pipeline.simulation.engine import (ASSUMED_OCCUPANCY_BETA, OCCUPANCY_METRIC, SeriesInputs, response_for,
                                            split_normal_scales)
from ibp_pipeline.simulation.forecasts import (MissingInputError, derive_ratio_forecasts, ratio_parts,
                                               read_forecasts)
from ibp_pipeline.simulation.targets import extend_targets, read_standards, read_targets, registry_targets

SCHEMA = "s5_impact"
S1 = "s1_current_state"
OCCUPANCY_OUTCOME = "ae_4hr_pct"
MAX_SCALE_RATIO = 50.0  # a forecast sd over 50 x the mean is a degenerate model, capped (said in the run's notes)
LEVEL_OF_TYPE = {"nhs_trust": "provider", "independent_or_other_provider": "provider", "icb": "icb",
                 "region": "region", "country": "england"}


def month_ordinal(d: dt.date) -> int:
    """A month as a number (year x 12 + month - 1): the unit of Prepared.period."""
    return d.year * 12 + d.month - 1


def _from_ordinal(o: int) -> dt.date:
    return dt.date(o // 12, o % 12 + 1, 1)


def is_percent(metric_id: str) -> bool:
    """Percentages (0-100) by the catalogue's naming: *_pct and ratio measures *_pct_of_*."""
    return metric_id.endswith("_pct") or "_pct_of_" in metric_id


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
    """The simulation of a metric in one line (the full statement is engine.py's module doc)."""
    r = response_for(metric_id)
    text = f"split normal on the forecast's 80% bounds; drivers: {r.text()}"
    if r.occupancy_link:
        rel = prep.relation
        text += (f" (beta ~ N({rel.mean:.3f}, {rel.sd:.3f}), "
                 f"{'s5_impact.effects ' + rel.relation_id if rel.relation_id else 'assumed'})")
    if is_percent(metric_id):
        text += "; within 0-100"
    return text
