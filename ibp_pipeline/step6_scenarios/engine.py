"""Step 6 engine: a scenario document -> Monte Carlo settings -> results, comparison, driver decomposition and
sensitivity, all on the same draws (common random numbers), so differences between them are not sampling noise.

One run simulates, in one pass over the series (simulation.engine.run_settings; several scenarios can share a pass,
simulate_scenarios, and then the noise, the baseline and identical settings are simulated once):
- baseline: the baseline document's drivers, initiatives and targets (every cell);
- scenario: the scenario's drivers (its own, else the baseline's), initiatives and targets (every cell);
- one component setting per thing the scenario changes, each switched on alone on top of the baseline: a driver
  whose interval differs, an initiative switched on (or off), and the policy overrides (targets) together; the
  decomposition is then exact by construction: own effect of part k = component_k - baseline, interaction = (scenario
  - baseline) - sum_k own effect, so the parts plus the interaction add up to the total change (for a waterfall);
- sensitivity (one at a time, for a tornado): the baseline with one driver fixed at the scenario's 10th percentile,
  then at its 90th (no draw for that driver; the others drawn as in the baseline); likewise each initiative's effect
  at its 10th/90th percentile and the occupancy -> 4-hour relation at its 10th/90th percentile.
Components and sensitivity are summarised at checkpoint months only (each March inside the horizon, each standard's
deadline and overridden deadline inside it, and each series' last forecast month), which is where a board reads a
waterfall or a tornado, and keeps a run within seconds; results and comparison cover every month.

Initiatives are resolved against the step-5 catalogue, and costed, by the simulation package
(ibp_pipeline/simulation/settings.py, whose module doc states how an effect reaches a series); scenario documents are
read by simulation/scenarios.py, and the engine is simulation/engine.py.

Policy overrides: a new target replaces the standard's target (a trajectory's end target, keeping step 2's
minimum-improvement rule where the standard has one: the straight line from the organisation's baseline to the new
end target at the (new) deadline, held after it); a new deadline on a flat standard makes the new target apply from
that month (the old one before it). See apply_policy_overrides.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
import logging

import duckdb
import numpy as np
import polars as pl

from ibp_pipeline.simulation.engine import (DEFAULT_SEED, DRIVER_GROUP, DRIVERS, Z80, Setting, SimulationChunk,
                                            Summary, run_chunked, split_simulation)
from ibp_pipeline.simulation.inputs import Prepared, month_ordinal, prepare, target_arrays
from ibp_pipeline.simulation.scenarios import Scenario, ScenarioConfigError, file_name, load_baseline
from ibp_pipeline.simulation.settings import (InitiativeSpec, initiative_cost, initiative_settings,
                                              resolve_initiatives, setting_for)
from ibp_pipeline.settings import compute_threads

# Metrics simulated beside the standards' measures, so a scenario shows what drives the standards: activity and the
# RTT waiting list. (The diagnostics list has ~440 series, mostly small independent providers; add it with
# `metrics=` when needed.)
RESULT_EXTRA_METRICS = ("ae_attendances", "ae_emergency_admissions", "rtt_waiting_list", "rtt_52wk_waiters")
# what the tables read of the primary target rows (kept small: a plan may travel to another process)
PRIMARY_COLUMNS = ["series_index", "h", "standard_id", "direction", "target_value"]

log = logging.getLogger(__name__)


# ---- policy overrides -----------------------------------------------------------------------------------------
def apply_policy_overrides(targets: pl.DataFrame, scenario: Scenario, standards: pl.DataFrame | None = None
                           ) -> pl.DataFrame:
    """Targets with the scenario's policy overrides applied; ScenarioConfigError naming the field when a
    standard_id is not among the targets' standards.

    A new target is the standard's new end target; where the standard has a minimum-improvement rule
    (s2_triple_aim.standards: minimum_improvement_points, _applies_to, _cap) an organisation of those levels keeps
    it: end = max(new, min(cap, baseline + points)) (min(new, max(cap, baseline - points)) for at_most), as step 2
    sets end targets. A trajectory is then the straight line from the organisation's baseline to that end at the
    (new) deadline, held after it (flat at the end when the baseline already meets it). A flat standard is flat at
    the new target, from the new deadline when one is given (the old target before it)."""
    if not scenario.policy_overrides:
        return targets
    file = file_name(scenario)
    known = set(targets["standard_id"].unique().to_list())
    rules = {} if standards is None else {r["standard_id"]: r for r in standards.iter_rows(named=True)}
    out = targets
    for i, po in enumerate(scenario.policy_overrides):
        if po.standard_id not in known and po.standard_id in rules:
            # a standard of the registry with no series simulated this run (e.g. a measure whose latest month
            # stands alone after a gap, too short to forecast): nothing to override, said rather than failed
            log.warning("%s: policy_overrides[%d] (%s) not applied: no organisation has a forecast of that "
                        "standard's measure in this run", file, i, po.standard_id)
            continue
        if po.standard_id not in known:
            raise ScenarioConfigError(
                f"{file}: policy_overrides[{i}] ({po.standard_id}).standard_id: unknown standard (known: "
                f"{', '.join(sorted(known))})", path=scenario.file)
        mine = pl.col("standard_id") == po.standard_id
        traj = pl.col("is_trajectory").fill_null(False)
        base = pl.col("baseline_value")
        at_least = pl.col("direction") == "at_least"
        if po.target is not None:
            end = pl.lit(po.target)
            rule = rules.get(po.standard_id) or {}
            points = rule.get("minimum_improvement_points")
            if points is not None:
                levels = [x.strip() for x in (rule.get("minimum_improvement_applies_to") or "provider").split(",")]
                cap = rule.get("minimum_improvement_cap")
                up = pl.min_horizontal(pl.lit(100.0 if cap is None else cap), base + points)
                down = pl.max_horizontal(pl.lit(0.0 if cap is None else cap), base - points)
                improved = pl.when(at_least).then(pl.max_horizontal(end, up)).otherwise(pl.min_horizontal(end, down))
                end = pl.when(base.is_not_null() & pl.col("org_level").is_in(levels)).then(improved).otherwise(end)
        else:
            end = pl.col("end_target_value").fill_null(pl.col("target_value"))
        deadline = pl.lit(po.deadline) if po.deadline is not None else pl.col("deadline")
        months = lambda a, b: ((a.dt.year() - b.dt.year()) * 12 + a.dt.month() - b.dt.month()).cast(  # noqa: E731
            pl.Float64)
        share = (months(pl.col("period_start"), pl.col("baseline_period"))
                 / months(deadline, pl.col("baseline_period"))).clip(0.0, 1.0)
        meets = pl.when(at_least).then(base >= end).otherwise(base <= end)
        line = pl.when(base.is_null() | pl.col("baseline_period").is_null() | deadline.is_null() | meets.fill_null(
            True)).then(end).otherwise(base + (end - base) * share)
        if po.deadline is not None:
            flat = pl.when(pl.col("period_start") >= pl.lit(po.deadline)).then(end).otherwise(pl.col("target_value"))
        else:
            flat = end
        new = pl.when(traj).then(line).otherwise(flat)
        note = f"; policy override {po.standard_id}: " + ", ".join(
            x for x in (f"target {po.target:g}" if po.target is not None else "",
                        f"deadline {po.deadline:%Y-%m}" if po.deadline else "") if x)
        out = out.with_columns(
            target_value=pl.when(mine).then(new).otherwise(pl.col("target_value")),
            end_target_value=pl.when(mine).then(end).otherwise(pl.col("end_target_value")),
            deadline=pl.when(mine & deadline.is_not_null()).then(deadline).otherwise(pl.col("deadline")),
            **({"milestone_deadline": pl.when(mine & deadline.is_not_null()).then(deadline)
                .otherwise(pl.col("milestone_deadline"))} if "milestone_deadline" in out.columns else {}),
            target_basis=pl.when(mine).then(pl.col("target_basis") + pl.lit(note)).otherwise(
                pl.col("target_basis")))
    return out


# ---- scenario runs --------------------------------------------------------------------------------------------
def checkpoint_mask(prep: Prepared, extra_deadlines: list[dt.date]) -> np.ndarray:
    """(S, H) True at each March, each deadline inside the horizon and each series' last forecast month."""
    months = {month_ordinal(d) for d in prep.calendar if d.month == 3}
    deadlines = prep.targets["deadline"].drop_nulls().unique().to_list() + list(extra_deadlines)
    months |= {month_ordinal(d) for d in deadlines}
    period = prep.period
    mask = np.isin(period, np.array(sorted(months), dtype=np.int64)) & (period >= 0)
    last = np.where(period >= 0, period, -1).max(axis=1)
    mask |= (period == last[:, None]) & (period >= 0)
    return mask


@dataclass
class Component:
    """One part of the change vs the baseline, switched on alone (or one sensitivity end)."""
    name: str
    group: str
    summary: Summary
    cost: np.ndarray
    detail: str = ""


@dataclass
class SensitivityPair:
    driver: str
    group: str
    low: Summary
    high: Summary
    low_value: np.ndarray  # (S, H) the driver's setting at the low end in the cell's month (% or effect)
    high_value: np.ndarray
    unit: str


@dataclass
class ScenarioRun:
    """Everything one scenario run produced, as arrays over (series, horizon) plus labels in prep."""
    scenario: Scenario
    baseline: Scenario
    prep: Prepared
    base: Summary
    scen: Summary
    cost_base: np.ndarray
    cost_scen: np.ndarray
    targets_base: pl.DataFrame  # primary target rows (PRIMARY_COLUMNS)
    targets_scen: pl.DataFrame
    components: list[Component]
    sensitivity: list[SensitivityPair]
    checkpoints: np.ndarray
    specs: list[InitiativeSpec]
    draws: int
    seed: int
    notes: list[str] = field(default_factory=list)


def _with(setting: Setting, name: str, **changes: object) -> Setting:
    """A checkpoint variant of a setting: only the median (and the probability) is needed for a waterfall or a
    tornado, which halves the cost of the quantiles."""
    return replace(setting, name=name, quantiles=(0.5,), want_mean=False, **changes)


def simulate_scenario(con: duckdb.DuckDBPyConnection, scenario: Scenario, baseline: Scenario | None = None,
                      draws: int = 10_000, seed: int = DEFAULT_SEED, prep: Prepared | None = None,
                      metrics: set[str] | None = None) -> ScenarioRun:
    """Run a scenario against the baseline on common random numbers (see the module doc)."""
    return simulate_scenarios(con, [scenario], baseline, draws, seed, prep, metrics)[0]


def simulate_scenarios(con: duckdb.DuckDBPyConnection, scenarios: list[Scenario], baseline: Scenario | None = None,
                       draws: int = 10_000, seed: int = DEFAULT_SEED, prep: Prepared | None = None,
                       metrics: set[str] | None = None, chunks: int = 1) -> list[ScenarioRun]:
    """Run several scenarios in one pass: the noise, the baseline and every setting they share (e.g. the
    sensitivity of a driver a scenario inherits from the baseline) are simulated once. Each scenario's numbers
    are identical to running it alone; the checkpoint months are the union of the scenarios' (their deadlines).
    In one process; the Dagster asset runs plan, chunks and finish as separate steps (step6_scenarios/assets.py)."""
    plan = plan_scenarios(con, scenarios, baseline, draws, seed, prep, metrics)
    return plan.finish(run_chunked(plan.prep.inputs, plan.settings, draws, seed, chunks, threads=compute_threads()))


@dataclass
class ScenarioPlan:
    """Every setting a set of scenarios needs, built from the warehouse, and how to read their summaries back
    into ScenarioRuns (finish). Holds no connection, so it can be handed to another process."""
    scenarios: list[Scenario]
    baseline: Scenario
    prep: Prepared
    settings: list[Setting]
    plans: list[tuple]
    base_specs: list[InitiativeSpec]
    prim_b: pl.DataFrame
    mask: np.ndarray
    draws: int
    seed: int

    def chunks(self, n: int) -> list[SimulationChunk]:
        """The simulation cut into independent pieces by organisation (simulation.engine.split_simulation)."""
        return split_simulation(self.prep.inputs, self.settings, self.draws, self.seed, n)

    def finish(self, summaries: list[Summary]) -> list[ScenarioRun]:
        return _finish_scenarios(self, summaries)


def plan_scenarios(con: duckdb.DuckDBPyConnection, scenarios: list[Scenario], baseline: Scenario | None = None,
                   draws: int = 10_000, seed: int = DEFAULT_SEED, prep: Prepared | None = None,
                   metrics: set[str] | None = None) -> ScenarioPlan:
    """The settings of simulate_scenarios (see its doc and the module doc), without simulating them."""
    baseline = baseline or load_baseline()
    if prep is None:
        prep = prepare(con, metrics=metrics, include_extra=set(RESULT_EXTRA_METRICS))
    base_notes: list[str] = []
    base_specs = resolve_initiatives(con, prep, baseline, base_notes)
    tb = apply_policy_overrides(prep.targets, baseline, prep.standards)
    tv_b, al_b, prim_b = target_arrays(prep, tb, primary_only=True)
    prim_b = prim_b.select(PRIMARY_COLUMNS)
    base = setting_for(con, prep, baseline, None, "baseline", base_specs)
    base.targets, base.at_least = tv_b, al_b
    is_base = [sc.model_dump() == baseline.model_dump() for sc in scenarios]
    # the comparison needs the baseline's median only, unless the baseline itself is one of the scenarios
    settings: list[Setting] = [base if any(is_base) else replace(base, quantiles=(0.5,), want_mean=False)]
    index: dict[tuple, int] = {("base",): 0}

    def add(key: tuple, make) -> int:
        if key not in index:
            index[key] = len(settings)
            settings.append(make())
        return index[key]

    extra = [po.deadline for sc in scenarios for po in sc.policy_overrides if po.deadline is not None]
    mask = checkpoint_mask(prep, extra)
    plans = []
    for n, scenario in enumerate(scenarios):
        notes = list(prep.notes) + base_notes
        scen_specs = base_specs if is_base[n] else resolve_initiatives(con, prep, scenario, notes)
        ts = apply_policy_overrides(prep.targets, scenario, prep.standards)
        tv_s, al_s, prim_s = target_arrays(prep, ts, primary_only=True)
        prim_s = prim_s.select(PRIMARY_COLUMNS)
        full = setting_for(con, prep, scenario, baseline, scenario.name, scen_specs)
        full.targets, full.at_least = tv_s, al_s
        full_i = 0 if is_base[n] else add(("full", n), lambda full=full: full)
        policy_changed = not (np.array_equal(tv_b, tv_s, equal_nan=True) and np.array_equal(al_b, al_s))
        ids = [s.initiative_id for s in base_specs + scen_specs]
        label = lambda s, ids=ids: (  # noqa: E731
            f"initiative:{s.initiative_id if ids.count(s.initiative_id) == 1 else s.key}")
        roles: list[tuple[str, str, str, list[InitiativeSpec] | None, int]] = []

        # components: each change switched on alone on top of the baseline
        for d_i, d in enumerate(DRIVERS):
            lo_s, hi_s = full.driver_low[d_i], full.driver_high[d_i]
            if np.array_equal(base.driver_low[d_i], lo_s) and np.array_equal(base.driver_high[d_i], hi_s):
                continue

            def make(d_i=d_i, d=d, lo_s=lo_s, hi_s=hi_s) -> Setting:
                low, high = base.driver_low.copy(), base.driver_high.copy()
                low[d_i], high[d_i] = lo_s, hi_s
                return _with(base, d, driver_low=low, driver_high=high, mask=mask)
            roles.append(("component", d, DRIVER_GROUP[d], None,
                          add(("driver", d, lo_s.tobytes(), hi_s.tobytes()), make)))
        base_keys = {s.key: s for s in base_specs}
        scen_keys = {s.key: s for s in scen_specs}
        for key in list(scen_keys) + [k for k in base_keys if k not in scen_keys]:
            if key in base_keys and key in scen_keys and base_keys[key].signature == scen_keys[key].signature:
                continue
            on = [s for k, s in base_keys.items() if k != key] + ([scen_keys[key]] if key in scen_keys else [])
            spec = scen_keys.get(key) or base_keys[key]
            name = label(spec) + ("" if key in scen_keys else " (off)")
            make = lambda name=name, on=on: _with(base, name, initiatives=[  # noqa: E731
                x for s in on for x in initiative_settings(s)], mask=mask)
            roles.append(("component", name, "initiative", on,
                          add(("initiatives", tuple(s.signature for s in on)), make)))
        if policy_changed:
            roles.append(("component", "policy_overrides", "policy", None, add(
                ("policy", n), lambda tv_s=tv_s, al_s=al_s: _with(base, "policy_overrides", targets=tv_s,
                                                                  at_least=al_s, mask=mask))))

        # sensitivity: one driver at a time at the scenario's 10th / 90th percentile, others at the baseline
        sens_meta: list[tuple[str, str, np.ndarray, np.ndarray, str]] = []
        for d_i, d in enumerate(DRIVERS):
            lo_arr, hi_arr = full.driver_low[d_i], full.driver_high[d_i]
            if not (np.any(lo_arr != 0) or np.any(hi_arr != 0)):
                continue
            for end, arr in (("low", lo_arr), ("high", hi_arr)):
                def make(d_i=d_i, d=d, end=end, arr=arr) -> Setting:
                    low, high = base.driver_low.copy(), base.driver_high.copy()
                    low[d_i] = high[d_i] = arr
                    fixed = np.zeros(len(DRIVERS), dtype=bool)
                    fixed[d_i] = True
                    return _with(base, f"{d}:{end}", driver_low=low, driver_high=high, driver_fixed=fixed,
                                 mask=mask)
                roles.append(("sens_" + end, d, DRIVER_GROUP[d], None, add(("fixed", d, arr.tobytes()), make)))
            sens_meta.append((d, DRIVER_GROUP[d], lo_arr, hi_arr, "% vs the baseline forecast"))
        for s in scen_specs:
            if not s.acts:
                continue
            others = [x for x in base_specs if x.key != s.key]
            name = label(s)
            for end in ("low", "high"):
                make = lambda s=s, end=end, others=others, name=name: _with(  # noqa: E731
                    base, f"{name}:{end}", initiatives=[x for o in others for x in initiative_settings(o)]
                    + initiative_settings(s, end), mask=mask)
                roles.append(("sens_" + end, name, "effect size", others + [s], add(
                    ("fixed_initiative", s.signature, end, tuple(o.signature for o in others)), make)))
            p0 = s.parts[0]
            sens_meta.append((name, "effect size", np.array([p0.low]), np.array([p0.high]),
                              f"{p0.metric_id} effect per unit (every effect of the initiative at its 10th / 90th "
                              f"percentile)"))
        if np.isfinite(prep.inputs.link_base).any() and prep.relation.sd > 0:
            r = prep.relation
            for end, val in (("low", r.mean - Z80 * r.sd), ("high", r.mean + Z80 * r.sd)):
                roles.append(("sens_" + end, "occupancy_relation", "effect size", None, add(
                    ("relation", end), lambda end=end, val=val: _with(
                        base, f"occupancy_relation:{end}", beta_mean=val, beta_sd=0.0, mask=mask))))
            sens_meta.append(("occupancy_relation", "effect size", np.array([r.mean - Z80 * r.sd]),
                              np.array([r.mean + Z80 * r.sd]), "points of 4-hour % per point of occupancy"))
        plans.append((scenario, scen_specs, prim_s, full_i, roles, sens_meta, notes))

    return ScenarioPlan(scenarios, baseline, prep, settings, plans, base_specs, prim_b, mask, draws, seed)


def _finish_scenarios(plan: ScenarioPlan, summaries: list[Summary]) -> list[ScenarioRun]:
    """The ScenarioRuns from the summaries of plan.settings (same order)."""
    prep, base_specs, baseline, mask = plan.prep, plan.base_specs, plan.baseline, plan.mask
    draws, seed, prim_b = plan.draws, plan.seed, plan.prim_b
    cost_base = initiative_cost(prep, base_specs)
    S, H = prep.inputs.shape
    cal = prep.inputs.cal
    runs = []
    for scenario, scen_specs, prim_s, full_i, roles, sens_meta, notes in plan.plans:
        components: list[Component] = []
        lows: dict[str, Summary] = {}
        highs: dict[str, Summary] = {}
        for role, name, group, on, i in roles:
            summ = summaries[i]
            if role == "component":
                cost = cost_base if on is None else initiative_cost(prep, on)
                components.append(Component(name, group, summ, cost))
            elif role == "sens_low":
                lows[name] = summ
            else:
                highs[name] = summ
        sensitivity = []
        for name, group, lo_arr, hi_arr, unit in sens_meta:
            if len(lo_arr) == len(prep.calendar) and group != "effect size":
                lo_v = np.where(cal >= 0, lo_arr[np.maximum(cal, 0)], np.nan)
                hi_v = np.where(cal >= 0, hi_arr[np.maximum(cal, 0)], np.nan)
            else:
                lo_v, hi_v = np.full((S, H), float(lo_arr[0])), np.full((S, H), float(hi_arr[0]))
            sensitivity.append(SensitivityPair(name, group, lows[name], highs[name], lo_v, hi_v, unit))
        runs.append(ScenarioRun(scenario, baseline, prep, summaries[0], summaries[full_i], cost_base,
                                initiative_cost(prep, scen_specs), prim_b, prim_s, components, sensitivity, mask,
                                scen_specs, draws, seed, list(dict.fromkeys(notes))))
    return runs
