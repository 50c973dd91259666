"""Step 6 tables: run a scenario and keep its results beside every other scenario's and run's.

Why keyed rows: an analyst compares scenarios and re-runs them as assumptions change; a run must never overwrite
another scenario or another run. Every table is keyed by (scenario, run_id): a run deletes only the rows of its own
scenario and run_id and inserts its new ones, in one transaction (a failed run leaves the old rows).

`run_scenario_file(db_path, file)` is what `ibp scenario run FILE` and a Dagster run config call; a bad file raises
ScenarioConfigError whose message is one line naming the file, the item and the field.

Tables (schema s6_scenarios); every table starts with scenario, run_id:
- runs: one row per scenario run: scenario_version, scenario_file, scenario_sha256 (of the file's bytes),
  description, baseline_version, baseline_sha256, draws, seed, run_at, seconds (its share when several scenarios
  ran in one pass), row counts, initiatives (as resolved: units, start, effects), policy_overrides, notes (inputs
  derived or assumed, initiatives that change nothing).
- results: per organisation x metric x forecast month (every month): p10, p50, p90, mean of the simulated value
  (metric unit; percentages 0-100); the primary target that month (standard_id, direction, target_value, after
  the scenario's policy overrides) and prob_meet_target (share of draws meeting it); cost_gbp: the monthly cost of
  the scenario's initiatives acting on this organisation and metric; plus org and forecast labels and method.
- comparison: the same cells, scenario vs baseline on common random numbers: p50_baseline, p50_scenario,
  delta_p50; prob_baseline, prob_scenario, delta_prob; cost_baseline, cost_scenario, delta_cost;
  target_baseline, target_scenario.
- drivers: at checkpoint months (each March, each deadline, each series' last month), the change vs the baseline
  split into parts: one row per part (component: a driver name, 'initiative:<id>', 'policy_overrides', and
  'interaction'), component_group (internal, external, initiative, policy, interaction), step (waterfall order),
  delta_p50 / delta_prob / delta_cost of that part, and on every row the totals (total_delta_p50, ...) and the
  baseline and scenario values, so sum(delta_p50 over the parts) = total_delta_p50 exactly (likewise prob, cost).
- sensitivity: at checkpoint months, one row per organisation x metric x month x driver: the driver (or effect
  size) at the scenario's 10th percentile (low_setting) and 90th percentile (high_setting) with everything else at
  the baseline: p50_at_low, p50_at_high, prob_at_low, prob_at_high, beside p50_baseline and prob_baseline;
  swing_p50 = |p50_at_high - p50_at_low|, swing_prob likewise; rank_by_swing (1 = the widest bar of the tornado).
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from ibp_pipeline.lib.duckdb_tables import comment_columns, table_columns
from ibp_pipeline.simulation.engine import DEFAULT_SEED, Summary, run_chunked
from ibp_pipeline.simulation.inputs import Prepared, method_text
from ibp_pipeline.simulation.scenarios import Scenario, load_baseline, load_scenario
from ibp_pipeline.settings import compute_threads
from ibp_pipeline.step6_scenarios.engine import ScenarioPlan, ScenarioRun, plan_scenarios

SCHEMA = "s6_scenarios"
TABLES = ("runs", "results", "comparison", "drivers", "sensitivity")

COMMENTS = {
    "scenario": "scenario name (the document's name field); with run_id the key of every row",
    "run_id": "run identifier given when running (default v<version>); re-running replaces only its own rows",
    "scenario_version": "the document's version field",
    "p10": "10th percentile of the simulated value", "p50": "median of the simulated value",
    "p90": "90th percentile of the simulated value",
    "prob_meet_target": "share of draws meeting the primary target that month",
    "cost_gbp": "monthly cost (GBP) of the scenario's initiatives on this organisation and metric",
    "delta_p50": "scenario p50 - baseline p50 (same draws)",
    "delta_prob": "scenario probability - baseline probability of meeting the target",
    "delta_cost": "scenario cost - baseline cost (GBP a month)",
    "component": "part of the change: a driver, an initiative, the policy overrides, or the interaction remainder",
    "step": "waterfall order (interaction last)",
    "low_setting": "the driver's 10th percentile (% vs baseline forecast) or effect size at the low end",
    "high_setting": "the driver's 90th percentile or effect size at the high end",
    "swing_p50": "|p50_at_high - p50_at_low|: the bar length of a tornado chart",
    "rank_by_swing": "1 = the driver that moves this result most",
}


@dataclass
class RunSummary:
    """What a scenario run wrote."""
    scenario: str
    run_id: str
    version: str
    rows: dict[str, int]
    seconds: float
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        counts = ", ".join(f"{k} {v:,}" for k, v in self.rows.items())
        return f"scenario {self.scenario} (version {self.version}) run {self.run_id}: {counts} in {self.seconds:.1f} s"


# ---- frames ---------------------------------------------------------------------------------------------------
def _cells(prep: Prepared, mask: np.ndarray) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Labels of the cells in mask: (frame, series index array, horizon index array)."""
    si, hh = np.nonzero(mask)
    o = prep.period[si, hh]
    meta = prep.series.select("series_index", "org_code", "org_name", "org_level", "parent_icb_code", "metric_id",
                              "forecast_origin", pl.col("model").alias("forecast_model"))
    frame = pl.DataFrame({"series_index": si.astype(np.uint32), "h": hh.astype(np.int64),
                          "horizon": (hh + 1).astype(np.int32), "_y": (o // 12).astype(np.int32),
                          "_m": (o % 12 + 1).astype(np.int8)})
    frame = frame.with_columns(period_start=pl.date(pl.col("_y"), pl.col("_m"), 1)).drop("_y", "_m")
    frame = frame.with_columns(pl.col("series_index").cast(meta.schema["series_index"]))
    return frame.join(meta, on="series_index", how="left"), si, hh


def _nan_to_null(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col(pl.Float64).fill_nan(None))


def _primary(frame: pl.DataFrame, targets: pl.DataFrame, suffix: str = "") -> pl.DataFrame:
    t = targets.select(pl.col("series_index").cast(frame.schema["series_index"]), pl.col("h").cast(pl.Int64),
                       pl.col("standard_id").alias(f"standard_id{suffix}"),
                       pl.col("direction").alias(f"direction{suffix}"),
                       pl.col("target_value").alias(f"target_value{suffix}"))
    return frame.join(t, on=["series_index", "h"], how="left")


def _keys(run: ScenarioRun, run_id: str) -> list[pl.Expr]:
    return [pl.lit(run.scenario.name).alias("scenario"), pl.lit(run_id).alias("run_id")]


def results_frame(run: ScenarioRun, run_id: str) -> pl.DataFrame:
    prep, s = run.prep, run.scen
    cells, si, hh = _cells(prep, prep.inputs.valid)
    methods = {m: method_text(prep, m) for m in prep.series["metric_id"].unique().to_list()}
    frame = cells.with_columns(p10=s.p10[si, hh], p50=s.p50[si, hh], p90=s.p90[si, hh], mean=s.mean[si, hh],
                               prob_meet_target=s.prob[si, hh, 0] if s.prob.shape[2] else np.full(len(si), np.nan),
                               cost_gbp=run.cost_scen[si, hh])
    frame = _primary(frame, run.targets_scen)
    frame = frame.with_columns(*_keys(run, run_id), scenario_version=pl.lit(run.scenario.version),
                               draws=pl.lit(run.draws, dtype=pl.Int64), seed=pl.lit(run.seed, dtype=pl.Int64),
                               method=pl.col("metric_id").replace_strict(methods, default=None))
    return _nan_to_null(frame.select(
        "scenario", "run_id", "scenario_version", "org_code", "org_name", "org_level", "parent_icb_code",
        "metric_id", "period_start", "horizon", "forecast_origin", "forecast_model", "p10", "p50", "p90", "mean",
        "standard_id", "direction", "target_value", "prob_meet_target", "cost_gbp", "draws", "seed", "method",
    ).sort("org_code", "metric_id", "period_start"))


def _prob(s: Summary, si: np.ndarray, hh: np.ndarray) -> np.ndarray:
    return s.prob[si, hh, 0] if s.prob.shape[2] else np.full(len(si), np.nan)


def comparison_frame(run: ScenarioRun, run_id: str) -> pl.DataFrame:
    prep, b, s = run.prep, run.base, run.scen
    cells, si, hh = _cells(prep, prep.inputs.valid)
    pb, ps = _prob(b, si, hh), _prob(s, si, hh)
    frame = cells.with_columns(
        p50_baseline=b.p50[si, hh], p50_scenario=s.p50[si, hh], delta_p50=s.p50[si, hh] - b.p50[si, hh],
        prob_baseline=pb, prob_scenario=ps, delta_prob=ps - pb,
        cost_baseline=run.cost_base[si, hh], cost_scenario=run.cost_scen[si, hh],
        delta_cost=run.cost_scen[si, hh] - run.cost_base[si, hh])
    frame = _primary(_primary(frame, run.targets_base, "_baseline"), run.targets_scen, "_scenario")
    frame = frame.with_columns(*_keys(run, run_id), baseline_scenario=pl.lit(run.baseline.name),
                               baseline_version=pl.lit(run.baseline.version),
                               scenario_version=pl.lit(run.scenario.version))
    return _nan_to_null(frame.select(
        "scenario", "run_id", "scenario_version", "baseline_scenario", "baseline_version", "org_code", "org_level",
        "parent_icb_code", "metric_id", "period_start", "horizon", "standard_id_scenario",
        "target_value_baseline", "target_value_scenario", "p50_baseline", "p50_scenario", "delta_p50",
        "prob_baseline", "prob_scenario", "delta_prob", "cost_baseline", "cost_scenario", "delta_cost",
    ).rename({"standard_id_scenario": "standard_id", "target_value_baseline": "target_baseline",
              "target_value_scenario": "target_scenario"}).sort("org_code", "metric_id", "period_start"))


def decompose(total: np.ndarray, parts: list[np.ndarray]) -> np.ndarray:
    """The interaction remainder: total - sum(parts), so parts + interaction add up to the total exactly (float64,
    NaN where the total is NaN)."""
    acc = np.zeros_like(total, dtype=np.float64)
    for p in parts:
        acc = acc + np.nan_to_num(p, nan=0.0)
    return total - acc


def drivers_frame(run: ScenarioRun, run_id: str) -> pl.DataFrame:
    prep, b, s = run.prep, run.base, run.scen
    mask = run.checkpoints & prep.inputs.valid
    cells, si, hh = _cells(prep, mask)
    schema_frame = cells.head(0)
    if not run.components or cells.height == 0:
        return _empty_drivers(run, run_id, schema_frame)
    tot_p50 = s.p50[si, hh] - b.p50[si, hh]
    tot_prob = _prob(s, si, hh) - _prob(b, si, hh)
    tot_cost = run.cost_scen[si, hh] - run.cost_base[si, hh]
    frames = []
    parts_p50, parts_prob, parts_cost = [], [], []
    for step, c in enumerate(run.components, start=1):
        d_p50 = c.summary.p50[si, hh] - b.p50[si, hh]
        d_prob = _prob(c.summary, si, hh) - _prob(b, si, hh)
        d_cost = c.cost[si, hh] - run.cost_base[si, hh]
        parts_p50.append(d_p50)
        parts_prob.append(d_prob)
        parts_cost.append(d_cost)
        frames.append(cells.with_columns(component=pl.lit(c.name), component_group=pl.lit(c.group),
                                         step=pl.lit(step, dtype=pl.Int32), delta_p50=d_p50, delta_prob=d_prob,
                                         delta_cost=d_cost))
    frames.append(cells.with_columns(
        component=pl.lit("interaction"), component_group=pl.lit("interaction"),
        step=pl.lit(len(run.components) + 1, dtype=pl.Int32), delta_p50=decompose(tot_p50, parts_p50),
        delta_prob=decompose(tot_prob, parts_prob), delta_cost=decompose(tot_cost, parts_cost)))
    n = len(frames)
    frame = pl.concat(frames).with_columns(
        total_delta_p50=np.tile(tot_p50, n), total_delta_prob=np.tile(tot_prob, n),
        total_delta_cost=np.tile(tot_cost, n), p50_baseline=np.tile(b.p50[si, hh], n),
        p50_scenario=np.tile(s.p50[si, hh], n), prob_baseline=np.tile(_prob(b, si, hh), n),
        prob_scenario=np.tile(_prob(s, si, hh), n))
    frame = frame.with_columns(*_keys(run, run_id), scenario_version=pl.lit(run.scenario.version))
    return _nan_to_null(frame.select(*DRIVER_COLUMNS).sort("org_code", "metric_id", "period_start", "step"))


DRIVER_COLUMNS = ("scenario", "run_id", "scenario_version", "org_code", "org_level", "parent_icb_code", "metric_id",
                  "period_start", "horizon", "component", "component_group", "step", "delta_p50", "delta_prob",
                  "delta_cost", "total_delta_p50", "total_delta_prob", "total_delta_cost", "p50_baseline",
                  "p50_scenario", "prob_baseline", "prob_scenario")


def _empty_drivers(run: ScenarioRun, run_id: str, cells: pl.DataFrame) -> pl.DataFrame:
    f64 = pl.Float64
    frame = cells.with_columns(
        component=pl.lit(None, pl.String), component_group=pl.lit(None, pl.String), step=pl.lit(None, pl.Int32),
        **{c: pl.lit(None, f64) for c in DRIVER_COLUMNS[12:]})
    return frame.with_columns(*_keys(run, run_id), scenario_version=pl.lit(run.scenario.version)).select(
        *DRIVER_COLUMNS)


def sensitivity_frame(run: ScenarioRun, run_id: str) -> pl.DataFrame:
    prep, b = run.prep, run.base
    mask = run.checkpoints & prep.inputs.valid
    cells, si, hh = _cells(prep, mask)
    frames = []
    for pair in run.sensitivity:
        lo, hi = pair.low, pair.high
        frames.append(cells.with_columns(
            driver=pl.lit(pair.driver), driver_group=pl.lit(pair.group), setting_unit=pl.lit(pair.unit),
            low_setting=pair.low_value[si, hh], high_setting=pair.high_value[si, hh],
            p50_baseline=b.p50[si, hh], p50_at_low=lo.p50[si, hh], p50_at_high=hi.p50[si, hh],
            prob_baseline=_prob(b, si, hh), prob_at_low=_prob(lo, si, hh), prob_at_high=_prob(hi, si, hh)))
    cols = ("scenario", "run_id", "scenario_version", "org_code", "org_level", "parent_icb_code", "metric_id",
            "period_start", "horizon", "driver", "driver_group", "setting_unit", "low_setting", "high_setting",
            "p50_baseline", "p50_at_low", "p50_at_high", "prob_baseline", "prob_at_low", "prob_at_high",
            "swing_p50", "swing_prob", "rank_by_swing")
    if not frames:
        frames = [cells.with_columns(driver=pl.lit(None, pl.String), driver_group=pl.lit(None, pl.String),
                                     setting_unit=pl.lit(None, pl.String),
                                     **{c: pl.lit(None, pl.Float64) for c in cols[12:20]}).head(0)]
    frame = _nan_to_null(pl.concat(frames)).with_columns(
        swing_p50=(pl.col("p50_at_high") - pl.col("p50_at_low")).abs(),
        swing_prob=(pl.col("prob_at_high") - pl.col("prob_at_low")).abs())
    frame = frame.with_columns(rank_by_swing=pl.col("swing_p50").rank("ordinal", descending=True).over(
        "series_index", "h").cast(pl.Int32))
    frame = frame.with_columns(*_keys(run, run_id), scenario_version=pl.lit(run.scenario.version))
    return frame.select(*cols).sort("org_code", "metric_id", "period_start", "rank_by_swing")


def runs_frame(run: ScenarioRun, run_id: str, seconds: float, rows: dict[str, int]) -> pl.DataFrame:
    return pl.DataFrame([{
        "scenario": run.scenario.name, "run_id": run_id, "scenario_version": run.scenario.version,
        "scenario_file": run.scenario.file or None, "scenario_sha256": run.scenario.sha256 or None,
        "description": run.scenario.description, "baseline_version": run.baseline.version,
        "baseline_sha256": run.baseline.sha256 or None, "draws": run.draws, "seed": run.seed,
        "run_at": dt.datetime.now().replace(microsecond=0), "seconds": round(seconds, 2),
        "rows_results": rows.get("results", 0), "rows_comparison": rows.get("comparison", 0),
        "rows_drivers": rows.get("drivers", 0), "rows_sensitivity": rows.get("sensitivity", 0),
        "initiatives": "; ".join(s.text() for s in run.specs) or None,
        "policy_overrides": "; ".join(f"{p.standard_id}: target {p.target}, deadline {p.deadline}"
                                      for p in run.scenario.policy_overrides) or None,
        "notes": "; ".join(run.notes) or None,
    }], schema=RUNS_SCHEMA)


RUNS_SCHEMA = {
    "scenario": pl.String, "run_id": pl.String, "scenario_version": pl.String, "scenario_file": pl.String,
    "scenario_sha256": pl.String, "description": pl.String, "baseline_version": pl.String,
    "baseline_sha256": pl.String, "draws": pl.Int64, "seed": pl.Int64, "run_at": pl.Datetime("us"),
    "seconds": pl.Float64, "rows_results": pl.Int64, "rows_comparison": pl.Int64, "rows_drivers": pl.Int64,
    "rows_sensitivity": pl.Int64, "initiatives": pl.String, "policy_overrides": pl.String, "notes": pl.String,
}


# ---- keyed writes ---------------------------------------------------------------------------------------------
def replace_rows(con: duckdb.DuckDBPyConnection, frames: dict[str, pl.DataFrame], scenario: str,
                 run_id: str) -> None:
    """For each table: delete this scenario's rows of this run_id and insert the new ones, all in one transaction;
    other scenarios and runs are untouched. Tables are created on first use (and documented)."""
    con.execute(f"create schema if not exists {SCHEMA}")
    names = []
    try:
        con.execute("begin transaction")
        for table, frame in frames.items():
            name = f"_s6_{table}_frame"
            con.register(name, frame.to_arrow())
            names.append(name)
            if not table_columns(con, SCHEMA, table):
                con.execute(f"create table {SCHEMA}.{table} as select * from {name} limit 0")
            con.execute(f"delete from {SCHEMA}.{table} where scenario = ? and run_id = ?", [scenario, run_id])
            con.execute(f"insert into {SCHEMA}.{table} by name select * from {name}")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        for name in names:
            con.unregister(name)
    for table in frames:
        comment_columns(con, SCHEMA, table, COMMENTS)


def run_scenario(con: duckdb.DuckDBPyConnection, scenario: Scenario | str | Path, run_id: str | None = None,
                 draws: int = 10_000, seed: int = DEFAULT_SEED, baseline: Scenario | str | Path | None = None,
                 prep: Prepared | None = None) -> RunSummary:
    """Simulate a scenario against the baseline and write its rows of s6_scenarios.{runs, results, comparison,
    drivers, sensitivity}, keyed by (scenario, run_id); run_id defaults to 'v<version>'."""
    return run_scenarios(con, [scenario], run_id, draws, seed, baseline, prep)[0]


def run_scenarios(con: duckdb.DuckDBPyConnection, scenarios: list[Scenario | str | Path], run_id: str | None = None,
                  draws: int = 10_000, seed: int = DEFAULT_SEED, baseline: Scenario | str | Path | None = None,
                  prep: Prepared | None = None, chunks: int = 1) -> list[RunSummary]:
    """Several scenarios in one Monte Carlo pass (shared noise, baseline and shared settings; each scenario's
    numbers as if run alone), each written under its own (scenario, run_id). Names must be distinct."""
    started = time.time()
    plan = plan_scenario_run(con, scenarios, draws, seed, baseline, prep)
    summaries = run_chunked(plan.prep.inputs, plan.settings, draws, seed, chunks, threads=compute_threads())
    return write_scenario_runs(con, plan, summaries, run_id, started)


def plan_scenario_run(con: duckdb.DuckDBPyConnection, scenarios: list[Scenario | str | Path], draws: int = 10_000,
                      seed: int = DEFAULT_SEED, baseline: Scenario | str | Path | None = None,
                      prep: Prepared | None = None) -> ScenarioPlan:
    """Load the documents (names must be distinct) and build every setting (engine.plan_scenarios)."""
    docs = [s if isinstance(s, Scenario) else load_scenario(s) for s in scenarios]
    names = [d.name for d in docs]
    if len(set(names)) != len(names):
        raise ValueError(f"scenario names must be distinct in one run: {', '.join(names)}")
    base = baseline if isinstance(baseline, Scenario) else load_baseline(baseline)
    return plan_scenarios(con, docs, base, draws=draws, seed=seed, prep=prep)


def write_scenario_runs(con: duckdb.DuckDBPyConnection, plan: ScenarioPlan, summaries: list[Summary],
                        run_id: str | None, started: float) -> list[RunSummary]:
    """Each scenario's rows of s6_scenarios.{runs, results, comparison, drivers, sensitivity}, keyed by (scenario,
    run_id or 'v<version>'); `started` (time.time() when the run began) gives the seconds the runs table shows,
    the shared simulation split evenly between the scenarios."""
    runs = plan.finish(summaries)
    seconds = (time.time() - started) / len(plan.scenarios)
    out = []
    for sc, run in zip(plan.scenarios, runs):
        t1 = time.perf_counter()
        rid = run_id or f"v{sc.version}"
        frames = {"results": results_frame(run, rid), "comparison": comparison_frame(run, rid),
                  "drivers": drivers_frame(run, rid), "sensitivity": sensitivity_frame(run, rid)}
        rows = {k: v.height for k, v in frames.items()}
        frames = {"runs": runs_frame(run, rid, seconds + time.perf_counter() - t1, rows), **frames}
        replace_rows(con, frames, sc.name, rid)
        out.append(RunSummary(sc.name, rid, sc.version, rows, seconds + time.perf_counter() - t1, run.notes))
    return out


def run_scenario_file(db_path: str | Path, file: str | Path, run_id: str | None = None, draws: int = 10_000,
                      seed: int = DEFAULT_SEED, baseline_file: str | Path | None = None) -> RunSummary:
    """`ibp scenario run FILE`: validate the file (ScenarioConfigError, one line, before the database is opened),
    then run it on the warehouse at db_path."""
    scenario = load_scenario(file)
    baseline = load_baseline(baseline_file)
    con = duckdb.connect(str(db_path))
    try:
        return run_scenario(con, scenario, run_id=run_id, draws=draws, seed=seed, baseline=baseline)
    finally:
        con.close()
