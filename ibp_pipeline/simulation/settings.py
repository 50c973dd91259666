"""A scenario document -> the Monte Carlo engine's Setting (engine.py), for step 5's baseline and step 6's
scenarios alike: the driver intervals per month (a driver the scenario leaves out takes the baseline's interval),
the learned occupancy -> 4-hour relation, and the scenario's initiatives resolved against the catalogue, with their
cost. Policy overrides (new targets) are step 6's (step6_scenarios/engine.py); targets are set by the caller.

Initiatives (s5_impact.initiatives, by id, or by lever for the catalogue's one initiative of that lever): every
catalogue row the simulation uses (use_for_simulation; else the learned row before the configured one per effect
metric) is an effect of ONE unit as an 80% interval (effect_low/effect_high = 10th/90th percentiles); the scenario's
scale is the number of units at each organisation it is switched on for (org_codes, else every organisation of
org_level). An effect on a simulated series acts directly: effect_unit with 'point' (or a count) adds, 'pct' /
'percent' / '%' without 'point' scales by that percent; scales_with_trust_beds multiplies by reference_ga_beds /
the trust's G&A beds (its mean ga_beds_available over its last 3 months). Effects on quantities that are not
series reach a series by an identity: beds available -> occupancy x beds / (beds + added); occupied beds ->
occupancy + 100 x change / beds; RTT clock starts / stops a month -> the RTT waiting list + / - their cumulative
sum (a stock and its flows). The effect ramps up in equal steps over ramp_up_months from the start month. All
effects of one initiative share one normal per draw (the same draws in every setting). An initiative acts only
through its catalogue effects (the 4-hour effect of extra beds is the catalogue's 4-hour row, learned from the
occupancy relation; the engine's occupancy -> 4-hour link carries the drivers only, so nothing is counted twice).
ICB, region and England rows are separate forecasts, changed only where the initiative is switched on for them.
Cost: units x cost_per_unit_gbp (an equivalent annual cost) / 12 a month from the start month, put once per
organisation on the series of its first effect that reaches one (so cost_gbp summed over metrics counts each
initiative once).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl

from ibp_pipeline.lib.duckdb_tables import table_columns
from ibp_pipeline.simulation.engine import DRIVERS, InitiativeSetting, Setting, ramp_share
from ibp_pipeline.simulation.inputs import Prepared, month_ordinal
from ibp_pipeline.simulation.scenarios import DriverSpec, Scenario, ScenarioConfigError, file_name


# ---- driver arrays --------------------------------------------------------------------------------------------
def effective_drivers(scenario: Scenario, baseline: Scenario | None) -> dict[str, DriverSpec | None]:
    """Each driver's spec in this scenario: its own, else the baseline's, else None (exactly 0)."""
    out = {}
    for d in DRIVERS:
        spec = scenario.driver(d)
        if spec is None and baseline is not None:
            spec = baseline.driver(d)
        out[d] = spec
    return out


def driver_arrays(specs: dict[str, DriverSpec | None], calendar: list[dt.date]) -> tuple[np.ndarray, np.ndarray]:
    """(low, high), each (len(DRIVERS), len(calendar)), the 10th and 90th percentiles per calendar month in %."""
    low = np.zeros((len(DRIVERS), len(calendar)))
    high = np.zeros((len(DRIVERS), len(calendar)))
    for i, d in enumerate(DRIVERS):
        spec = specs.get(d)
        if spec is None:
            continue
        for j, month in enumerate(calendar):
            low[i, j], high[i, j] = spec.interval_for(month)
    return low, high


# ---- initiatives ----------------------------------------------------------------------------------------------
INITIATIVE_COLUMNS = ("initiative_id", "name", "lever", "unit", "cost_per_unit_gbp", "ramp_up_months",
                      "effect_metric_id", "effect_low", "effect_high", "effect_unit")
OPTIONAL_INITIATIVE_COLUMNS = ("source", "evidence", "use_for_simulation", "scales_with_trust_beds",
                               "reference_ga_beds")
# Catalogue effects on quantities that are not forecast series, carried to the series they change by an identity:
#   ga_beds_available +b beds -> G&A occupancy x beds / (beds + b)            ('div', weight 1 / beds)
#   ga_beds_occupied  +o beds -> G&A occupancy + 100 x o / beds points        ('add', weight 100 / beds)
#   rtt_clock_starts  +s a month -> RTT waiting list + cumulative s           ('add', weight = months so far)
#   rtt_clock_stops   +s a month -> RTT waiting list - cumulative s
OCCUPANCY, WAITING_LIST = "ga_bed_occupancy_pct", "rtt_waiting_list"
FLOW_SIGN = {"rtt_clock_starts": 1.0, "rtt_clock_stops": -1.0}


def read_initiatives(con: duckdb.DuckDBPyConnection) -> pl.DataFrame | None:
    """s5_impact.initiatives, the rows the simulation uses (use_for_simulation where that column exists, else the
    learned row before the configured one for each initiative and effect metric); None when absent."""
    have = table_columns(con, "s5_impact", "initiatives")
    if not have:
        return None
    cols = [c for c in INITIATIVE_COLUMNS if c in have] + [c for c in OPTIONAL_INITIATIVE_COLUMNS if c in have]
    frame = con.sql(f"select {', '.join(cols)} from s5_impact.initiatives").pl()
    defaults = {"source": pl.lit("config"), "evidence": pl.lit(None, pl.String),
                "scales_with_trust_beds": pl.lit(False), "reference_ga_beds": pl.lit(None, pl.Float64)}
    frame = frame.with_columns(*(v.alias(k) for k, v in defaults.items() if k not in frame.columns))
    frame = frame.with_row_index("_order")
    if "use_for_simulation" in frame.columns:
        frame = frame.filter(pl.col("use_for_simulation").fill_null(True))
    else:
        frame = (frame.sort("_order").with_columns(_l=(pl.col("source") == "learned"))
                 .sort(["initiative_id", "effect_metric_id", "_l"], descending=[False, False, True])
                 .unique(["initiative_id", "effect_metric_id"], keep="first").drop("_l"))
    return frame.sort("_order")


def read_ga_beds(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Each organisation's G&A beds now: the mean of its last 3 months of ga_beds_available (step 1)."""
    if not table_columns(con, "s1_current_state", "metric_values"):
        return {}
    q = """select org_code, avg(value) from (
             select org_code, value, row_number() over (partition by org_code order by period_start desc) as r
             from s1_current_state.metric_values where metric_id = 'ga_beds_available' and value > 0)
           where r <= 3 group by org_code"""
    return {org: float(v) for org, v in con.sql(q).fetchall()}


def effect_kind(unit: str | None) -> str:
    """'add' or 'rel' from an effect_unit: 'percentage points ...' and counts add; 'pct ...', 'percent ...' and
    '% ...' without 'point' change the value by that percent."""
    text = (unit or "").lower()
    if "point" in text:
        return "add"
    return "rel" if re.search(r"\bpct\b|\bpercent|%", text) else "add"


@dataclass(frozen=True)
class EffectPart:
    """One catalogue effect of an initiative as it acts on a simulated series: the per-unit interval and the
    weight (S, calendar) = units x ramp-up share (cumulated for flows) x per-organisation factor."""
    metric_id: str
    kind: str
    low: float
    high: float
    weight: np.ndarray = field(compare=False, repr=False)
    text: str = ""


@dataclass(frozen=True)
class InitiativeSpec:
    """An initiative switched on in a scenario, resolved against the catalogue."""
    key: str  # initiative_id @ where: unique within a scenario
    initiative_id: str
    name: str
    scale: float
    start: dt.date
    ramp_up_months: float
    cost_per_unit_gbp: float
    parts: tuple[EffectPart, ...] = field(compare=False)
    cost_mask: np.ndarray = field(compare=False, repr=False)  # (S,) the series that carry its cost

    @property
    def signature(self) -> tuple:
        return (self.key, self.scale, self.start)

    @property
    def acts(self) -> bool:
        return any(p.weight.any() for p in self.parts)

    def text(self) -> str:
        return (f"{self.initiative_id} x {self.scale:g} units from {self.start:%Y-%m} at {self.key.split('@')[1]}: "
                + "; ".join(p.text for p in self.parts))


def _parts(prep: Prepared, row_frame: pl.DataFrame, at: np.ndarray, scale: float, start: dt.date,
           ramp_up: float, beds: dict[str, float], notes: list[str]) -> list[EffectPart]:
    """The simulated effects of one initiative's catalogue rows at the organisations `at` (S,) bool."""
    cal0 = month_ordinal(prep.calendar[0])
    since = np.arange(len(prep.calendar)) + cal0 - month_ordinal(start)
    ramp = ramp_share(since, ramp_up)
    cum = np.cumsum(ramp)  # months of full effect so far: a flow's effect on a stock
    orgs = prep.series["org_code"].to_list()
    metrics = prep.series["metric_id"].to_numpy()
    b = np.array([beds.get(o, np.nan) for o in orgs])
    has_beds = np.isfinite(b) & (b > 0)
    parts = []
    for row in row_frame.iter_rows(named=True):
        m, lo, hi = row["effect_metric_id"], row["effect_low"], row["effect_high"]
        if lo is None or hi is None:
            continue
        lo, hi = float(min(lo, hi)), float(max(lo, hi))
        factor = np.ones(len(orgs))
        if row.get("scales_with_trust_beds"):
            ref = row.get("reference_ga_beds")
            if ref:
                factor = np.where(has_beds, float(ref) / np.where(has_beds, b, 1.0), 1.0)
        direct = at & (metrics == m)
        if direct.any():
            parts.append(EffectPart(m, effect_kind(row.get("effect_unit")), lo, hi,
                                    np.outer(direct * factor, ramp) * scale,
                                    f"{m} {lo:+g} to {hi:+g} per unit ({row.get('source', 'config')})"))
        if m == "ga_beds_available":
            on = at & (metrics == OCCUPANCY) & has_beds
            if on.any():
                parts.append(EffectPart(OCCUPANCY, "div", lo, hi,
                                        np.outer(np.where(on, 1.0 / np.where(has_beds, b, 1.0), 0.0), ramp) * scale,
                                        f"{OCCUPANCY} x beds / (beds + {lo:g} to {hi:g} beds per unit)"))
        elif m == "ga_beds_occupied":
            on = at & (metrics == OCCUPANCY) & has_beds
            if on.any():
                parts.append(EffectPart(OCCUPANCY, "add", lo, hi,
                                        np.outer(np.where(on, 100.0 / np.where(has_beds, b, 1.0), 0.0), ramp)
                                        * scale, f"{OCCUPANCY} + 100 x ({lo:g} to {hi:g} occupied beds per unit) "
                                                 f"/ beds"))
        elif m in FLOW_SIGN:
            on = at & (metrics == WAITING_LIST)
            if on.any():
                parts.append(EffectPart(WAITING_LIST, "add", lo, hi, np.outer(on * FLOW_SIGN[m], cum) * scale,
                                        f"{WAITING_LIST} {'+' if FLOW_SIGN[m] > 0 else '-'} cumulative {m} "
                                        f"({lo:+g} to {hi:+g} a month per unit)"))
        if m in ("ga_beds_available", "ga_beds_occupied") and (at & (metrics == OCCUPANCY) & ~has_beds).any():
            notes.append(f"initiative {row['initiative_id']}: no G&A bed count for some organisations, so its "
                         f"{m} effect does not reach their occupancy")
    return parts


def resolve_initiatives(con: duckdb.DuckDBPyConnection, prep: Prepared, scenario: Scenario,
                        notes: list[str] | None = None) -> list[InitiativeSpec]:
    """The scenario's initiatives against s5_impact.initiatives; ScenarioConfigError (one line) when an id or lever
    is unknown or the catalogue is absent."""
    if not scenario.initiatives:
        return []
    notes = [] if notes is None else notes
    file = file_name(scenario)
    catalogue = read_initiatives(con)
    beds = read_ga_beds(con)
    specs = []
    orgs = prep.series["org_code"].to_numpy()
    levels = prep.series["org_level"].to_numpy()
    for i, sw in enumerate(scenario.initiatives):
        field_name = "id" if sw.id is not None else "lever"
        where = f"{file}: initiatives[{i}] ({sw.id or 'lever ' + str(sw.lever)}).{field_name}"
        if catalogue is None or catalogue.height == 0:
            raise ScenarioConfigError(f"{where}: s5_impact.initiatives is absent or empty; build the step-5 "
                                      f"initiatives catalogue first", path=scenario.file)
        if sw.id is not None:
            rows = catalogue.filter(pl.col("initiative_id") == sw.id)
            if rows.height == 0:
                known = ", ".join(sorted(set(catalogue["initiative_id"].to_list())))
                raise ScenarioConfigError(f"{where}: unknown initiative {sw.id!r} (known: {known})",
                                          path=scenario.file)
        else:
            rows = catalogue.filter(pl.col("lever") == sw.lever)
            ids = sorted(set(rows["initiative_id"].to_list()))
            if not ids:
                raise ScenarioConfigError(f"{where}: no initiative of lever {sw.lever!r} in s5_impact.initiatives",
                                          path=scenario.file)
            if len(ids) > 1:
                raise ScenarioConfigError(f"{where}: lever {sw.lever!r} matches several initiatives "
                                          f"({', '.join(ids)}); name one by id", path=scenario.file)
        first = rows.row(0, named=True)
        at = np.isin(orgs, sw.org_codes) if sw.org_codes else (levels == sw.org_level)
        parts = _parts(prep, rows, at, sw.scale, sw.start, float(first.get("ramp_up_months") or 0), beds, notes)
        # the cost sits once per organisation: on its series of the first effect that reaches one
        cost_mask = np.zeros(len(orgs), dtype=bool)
        costed: set[str] = set()
        for p in parts:
            for j in np.flatnonzero(p.weight.any(axis=1)):
                if orgs[j] not in costed:
                    costed.add(orgs[j])
                    cost_mask[j] = True
        where_key = ",".join(sw.org_codes) if sw.org_codes else sw.org_level
        spec = InitiativeSpec(f"{first['initiative_id']}@{where_key}", first["initiative_id"],
                              first.get("name") or first["initiative_id"], sw.scale, sw.start,
                              float(first.get("ramp_up_months") or 0), float(first.get("cost_per_unit_gbp") or 0.0),
                              tuple(parts), cost_mask)
        if not spec.acts:
            notes.append(f"initiative {spec.initiative_id}: none of its effects "
                         f"({', '.join(rows['effect_metric_id'].to_list())}) reaches a simulated series at "
                         f"{where_key}; it changes no result and carries no cost")
        specs.append(spec)
    return specs


def initiative_settings(spec: InitiativeSpec, end: str | None = None) -> list[InitiativeSetting]:
    """The engine's view of an initiative: one setting per effect part, all drawn from one normal per draw (keyed
    by the initiative, so its effects move together and are the same draws in every setting); end 'low'/'high'
    fixes every part at its 10th/90th percentile instead."""
    return [InitiativeSetting(spec.initiative_id, p.low, p.high, p.kind, p.weight,
                              None if end is None else (p.low if end == "low" else p.high)) for p in spec.parts]


def initiative_cost(prep: Prepared, specs: list[InitiativeSpec]) -> np.ndarray:
    """(S, H) cost in GBP a month: units x cost_per_unit_gbp (a year) / 12 from the start month, on each
    organisation's cost-carrying series (InitiativeSpec.cost_mask)."""
    cost = np.zeros(prep.inputs.shape)
    valid = prep.period >= 0
    for s in specs:
        active = (prep.period >= month_ordinal(s.start)) & valid & s.cost_mask[:, None]
        cost += np.where(active, s.scale * s.cost_per_unit_gbp / 12.0, 0.0)
    return cost


# ---- settings -------------------------------------------------------------------------------------------------
def setting_for(con: duckdb.DuckDBPyConnection, prep: Prepared, scenario: Scenario, baseline: Scenario | None,
                name: str | None = None, specs: list[InitiativeSpec] | None = None) -> Setting:
    """The Monte Carlo setting of a scenario: driver intervals per month (inherited from the baseline where the
    scenario is silent), the occupancy relation, and its initiatives (targets are set by the caller)."""
    low, high = driver_arrays(effective_drivers(scenario, baseline), prep.calendar)
    if specs is None:
        specs = resolve_initiatives(con, prep, scenario)
    return Setting(name or scenario.name, low, high, prep.relation.mean, prep.relation.sd,
                   [x for s in specs for x in initiative_settings(s)])
