"""Step 5 "risk": how likely each organisation is to meet each standard, month by month, over the forecast horizon.

Why: the ICB analyst's question is not "what is the forecast" but "how sure are we of reaching the target, and
where is the risk greatest". `build_risk` runs the Monte Carlo engine (ibp_pipeline/simulation/engine.py) on the
baseline scenario (ibp_pipeline/documents/scenarios/baseline.yaml: uncertainty about demand, workforce and
productivity around the forecast trends), scores every draw against every applicable target and writes two tables.

Inputs: the simulation package's prepared inputs (ibp_pipeline/simulation/inputs.py: s5_impact.forecasts,
s2_triple_aim.targets or the national registry, s5_impact.effects, s1_current_state.organisations), targets
extended over the forecast months and re-ranked as step 2 ranks them (simulation/targets.py), ratio measures derived
from the forecasts of their two metrics (simulation/forecasts.py), and the baseline scenario's driver settings
(simulation/settings.py).

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

import math
from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl

from ibp_pipeline.lib.duckdb_tables import comment_columns, replace_table
from ibp_pipeline.simulation.engine import (DEFAULT_SEED, Z80, Setting, SimulationChunk, Summary, run_chunked,
                                            split_simulation)
from ibp_pipeline.simulation.inputs import Prepared, method_text, prepare, target_arrays
from ibp_pipeline.simulation.scenarios import load_baseline
from ibp_pipeline.simulation.settings import setting_for
from ibp_pipeline.settings import compute_threads

SCHEMA = "s5_impact"
RISK_BANDS = ((0.10, "very unlikely"), (0.40, "unlikely"), (0.60, "uncertain"), (0.90, "likely"),
              (math.inf, "very likely"))


def write_table(con: duckdb.DuckDBPyConnection, schema: str, table: str, frame: pl.DataFrame,
                comments: dict[str, str] | None = None, table_comment: str | None = None) -> int:
    """Replace schema.table with frame, and document its columns in the database (COMMENT ON COLUMN)."""
    n = replace_table(con, schema, table, frame)
    comment_columns(con, schema, table, comments or {}, table_comment)
    return n


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
        """The simulation cut into independent pieces by organisation (simulation.engine.split_simulation)."""
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
    [summary] = run_chunked(plan.prep.inputs, [plan.setting], draws, seed, chunks, threads=compute_threads())
    return write_risk(con, *plan.tables(summary))
