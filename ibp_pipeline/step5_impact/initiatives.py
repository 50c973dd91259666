"""Step 5: the initiatives catalogue: levers, their cost, ramp-up and effect as an 80% interval.

Why a config file: what an extra ward or a virtual ward is expected to achieve is a judgement that planners own,
write down once with its evidence and version with the code. `initiatives.yaml` (in ibp_pipeline/documents/) is validated
by strict pydantic models; a bad entry stops the build with ONE line naming the file, the initiative and the
field (InitiativesConfigError).

Effects are stated per unit as the 10th and 90th percentiles (effect_low, effect_high), as planners state
uncertain effects. Where the data support it, a learned effect is written beside the configured one
(source='learned'): the relation of A&E 4-hour performance to G&A bed occupancy (and delayed discharges) fitted
in s5_impact.effects is applied to the initiative's configured bed effects at the reference trust:

    occupancy after = (occupied beds + change in occupied beds) / (beds + change in beds available) x 100
    change in 4-hour % = b_occupancy x change in occupancy [+ b_nctr x change in NCTR patients per 100 beds]

by Monte Carlo (LEARNED_DRAWS draws, seed LEARNED_SEED): the initiative's configured effects move together
(one standard normal per draw, each effect normal with its 80% interval), the coefficients are drawn jointly
normal with their clustered covariance; effect_low/high are the 10th/90th percentiles of the result.
A driver whose coefficient's 95% interval includes zero is left out (the relation without it is used).

use_for_simulation: for each initiative and effect metric exactly one row is used. The learned row is used when
it exists (its relation is significant at 95%); otherwise the configured row. use_reason says why.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ibp_pipeline.config import DOCUMENTS, PROJECT_ROOT
from ibp_pipeline.lib.config_errors import error_line, id_label, loc_text
from ibp_pipeline.lib.duckdb_tables import table_exists
from ibp_pipeline.step1_current_state.catalogue import BY_ID

SCHEMA = "s5_impact"
CATALOGUE_PATH = DOCUMENTS / "initiatives.yaml"
LEVERS: tuple[str, ...] = ("beds", "nursing_fte", "virtual_ward_places", "theatre_productivity",
                           "demand_management", "discharge")
FLOW_METRICS: dict[str, str] = {
    "rtt_clock_starts": "RTT clock starts (new pathways) a month",
    "rtt_clock_stops": "RTT clock stops (completed pathways) a month",
    "ga_beds_occupied": "occupied G&A beds on an average day",
}
Z90 = 1.2815515655446004  # standard normal 90th percentile: an 80% interval is mid +- Z90 x sd
LEARNED_DRAWS = 20_000
LEARNED_SEED = 20240501
OCCUPANCY_RELATION = "ae4hr_occupancy_twoway_fe"
OCCUPANCY_NCTR_RELATION = "ae4hr_occupancy_nctr_twoway_fe"
OUTCOME = "ae_4hr_pct"


class InitiativesConfigError(ValueError):
    """The initiatives file is unreadable or invalid; the message is one line naming file, item and field."""

    def __init__(self, message: str, errors: list[str] | None = None, path: Path | None = None):
        super().__init__(message)
        self.errors = errors or [message]
        self.path = path


def _field_error(field: str, message: str) -> PydanticCustomError:
    return PydanticCustomError("initiative_field", "{field}: {message}", {"field": field, "message": message})


class Cost(BaseModel):
    """Cost of one unit: one-off capital and recurrent revenue, with the basis in words."""
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    capital_gbp: float = Field(ge=0)
    revenue_gbp_per_year: float = Field(ge=0)
    asset_life_years: float | None = Field(default=None, gt=0, le=100)
    basis: str = Field(min_length=10)

    @model_validator(mode="after")
    def _life(self) -> "Cost":
        if self.capital_gbp > 0 and self.asset_life_years is None:
            raise _field_error("asset_life_years", "required when capital_gbp > 0 (to annualise the capital)")
        return self

    @property
    def annual_equivalent(self) -> float:
        """Revenue a year + capital spread straight-line over the asset life (undiscounted)."""
        capital = self.capital_gbp / self.asset_life_years if self.capital_gbp > 0 and self.asset_life_years else 0.0
        return self.revenue_gbp_per_year + capital


class Effect(BaseModel):
    """The effect of one unit on one metric, as an 80% interval (low = p10, high = p90)."""
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    metric_id: str
    low: float
    high: float
    unit: str = Field(min_length=3)
    scales_with_trust_beds: bool = False
    evidence: str = Field(min_length=10)

    @field_validator("metric_id")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in BY_ID and v not in FLOW_METRICS:
            raise PydanticCustomError("unknown_metric", "unknown metric id {value}: not in the step-1 metric "
                                      "catalogue nor one of {flows}",
                                      {"value": repr(v), "flows": ", ".join(FLOW_METRICS)})
        return v

    @field_validator("low", "high")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise PydanticCustomError("finite", "must be a finite number")
        return v

    @model_validator(mode="after")
    def _ordered(self) -> "Effect":
        if self.low > self.high:
            raise _field_error("high", f"must be >= low ({self.low:g}), got {self.high:g} (low is the 10th "
                                       "percentile, high the 90th; a fall is written as negative numbers)")
        return self


class Initiative(BaseModel):
    """One lever: what a unit is, what it costs, how fast it works and what it changes."""
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    initiative_id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str = Field(min_length=1)
    lever: Literal["beds", "nursing_fte", "virtual_ward_places", "theatre_productivity", "demand_management",
                   "discharge"]
    unit: str = Field(min_length=3)
    ramp_up_months: int = Field(ge=0, le=60)
    cost: Cost
    effects: list[Effect] = Field(min_length=1)
    notes: str = ""

    @model_validator(mode="after")
    def _one_effect_per_metric(self) -> "Initiative":
        seen: set[str] = set()
        for e in self.effects:
            if e.metric_id in seen:
                raise _field_error("effects", f"metric {e.metric_id!r} appears twice; give one interval per metric")
            seen.add(e.metric_id)
        return self


class ReferenceTrust(BaseModel):
    """The trust that bed-dependent effects are stated for."""
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    ga_beds: float = Field(gt=0)
    ga_bed_occupancy_pct: float = Field(gt=0, le=100)


class Catalogue(BaseModel):
    """The whole initiatives file."""
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    version: str = Field(min_length=1)
    reference_trust: ReferenceTrust
    initiatives: list[Initiative] = Field(min_length=1)
    config_file: str = ""

    @model_validator(mode="after")
    def _unique(self) -> "Catalogue":
        seen: set[str] = set()
        for i, item in enumerate(self.initiatives):
            if item.initiative_id in seen:
                raise PydanticCustomError("duplicate", "initiatives[{i}] ({id}).initiative_id: duplicate: already "
                                          "used by an earlier entry", {"i": i, "id": item.initiative_id})
            seen.add(item.initiative_id)
        return self

    def by_id(self) -> dict[str, Initiative]:
        return {i.initiative_id: i for i in self.initiatives}


# ---- loading with one-line errors -----------------------------------------------------------------------------
_LABEL = id_label({"initiatives": "initiative_id"})
_HINTS = {"model_type": "a mapping of fields", "dict_type": "a mapping of fields"}


def _loc_text(loc: tuple[Any, ...], raw: Any) -> str:
    return loc_text(loc, raw, _LABEL)


def _error_line(file: str, err: dict[str, Any], raw: Any) -> str:
    etype = err.get("type", "")
    if etype == "initiative_field":
        return f"{file}: {_loc_text(tuple(err.get('loc', ())), raw)}.{err['ctx']['field']}: {err['ctx']['message']}"
    if etype == "duplicate":
        return f"{file}: {err['msg']}"
    return error_line(file, err, raw, label=_LABEL, hints=_HINTS, strip=("Value error, ",),
                      no_value_types=("unknown_metric",),
                      fields_hint="the allowed fields are listed at the top of initiatives.yaml")


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def load_initiatives(path: str | Path = CATALOGUE_PATH) -> Catalogue:
    """Read and validate an initiatives file; raise InitiativesConfigError with one line on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InitiativesConfigError(f"{path.name}: file not found ({path})", path=path) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InitiativesConfigError(f"{path.name}: not valid YAML{where}: {problem}", path=path) from None
    if not isinstance(raw, dict):
        raise InitiativesConfigError(f"{path.name}: (top level): must be a mapping with 'version', "
                                     f"'reference_trust' and 'initiatives', got {type(raw).__name__}", path=path)
    if "config_file" in raw:
        raise InitiativesConfigError(f"{path.name}: config_file: unknown field (set by the loader)", path=path)
    try:
        catalogue = Catalogue.model_validate({**raw, "config_file": _display_path(path)})
    except ValidationError as exc:
        lines = [_error_line(path.name, e, raw) for e in exc.errors()]
        more = f" (and {len(lines) - 1} more error{'s' if len(lines) > 2 else ''})" if len(lines) > 1 else ""
        raise InitiativesConfigError(lines[0] + more, lines, path) from None
    return catalogue


# ---- learned effects ------------------------------------------------------------------------------------------
def _relation(effects: pl.DataFrame, relation_id: str) -> dict[str, dict]:
    rows = effects.filter(pl.col("relation_id") == relation_id).to_dicts()
    return {r["driver"]: r for r in rows}


def _significant(row: dict) -> bool:
    lo, hi = row.get("ci_low"), row.get("ci_high")
    return lo is not None and hi is not None and not (math.isnan(lo) or math.isnan(hi)) and (lo > 0 or hi < 0)


def learned_4hr_effect(initiative: Initiative, reference: ReferenceTrust, effects: pl.DataFrame,
                       draws: int = LEARNED_DRAWS, seed: int = LEARNED_SEED) -> dict | None:
    """The initiative's effect on ae_4hr_pct at the reference trust implied by the learned relations, as
    {low, high, median, relation_id, drivers, text}; None when it has no bed or delay effect or no usable relation."""
    by_metric = {e.metric_id: e for e in initiative.effects}
    bed_metrics = [m for m in ("ga_beds_available", "ga_beds_occupied") if m in by_metric]
    wants_nctr = "discharge_nctr_avg" in by_metric
    if not bed_metrics and not wants_nctr:
        return None
    candidates: list[tuple[str, list[str]]] = []
    if wants_nctr:
        candidates.append((OCCUPANCY_NCTR_RELATION, (["ga_bed_occupancy_pct"] if bed_metrics else [])
                           + ["nctr_per_100_beds"]))
    if bed_metrics:
        candidates.append((OCCUPANCY_RELATION, ["ga_bed_occupancy_pct"]))
    chosen: tuple[str, list[str], dict[str, dict]] | None = None
    dropped: list[str] = []
    for rid, drivers in candidates:
        rel = _relation(effects, rid)
        if not all(d in rel for d in drivers):
            continue
        insignificant = [d for d in drivers if not _significant(rel[d])]
        if insignificant:
            dropped += [f"{d} ({rid}: 95% CI {rel[d]['ci_low']:+.3f} to {rel[d]['ci_high']:+.3f})"
                        for d in insignificant]
            continue
        chosen = (rid, drivers, rel)
        break
    if chosen is None:
        return None
    rid, drivers, rel = chosen
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(draws)  # one shared normal: an initiative's effects move together

    def draw(metric: str) -> np.ndarray:
        e = by_metric.get(metric)
        if e is None:
            return np.zeros(draws)
        return (e.low + e.high) / 2 + z * (e.high - e.low) / (2 * Z90)

    beds, occ = reference.ga_beds, reference.ga_bed_occupancy_pct
    changes: dict[str, np.ndarray] = {}
    if "ga_bed_occupancy_pct" in drivers:
        added, occupied = draw("ga_beds_available"), draw("ga_beds_occupied")
        changes["ga_bed_occupancy_pct"] = 100 * (occ / 100 * beds + occupied) / (beds + added) - occ
    if "nctr_per_100_beds" in drivers:
        changes["nctr_per_100_beds"] = 100 * draw("discharge_nctr_avg") / beds
    mean = np.array([rel[d]["coefficient"] for d in drivers])
    cov = np.diag([rel[d]["std_error"] ** 2 for d in drivers])
    if len(drivers) == 2 and rel[drivers[0]].get("covariance_with_other") is not None:
        cov[0, 1] = cov[1, 0] = rel[drivers[0]]["covariance_with_other"]
    beta = rng.multivariate_normal(mean, cov, size=draws, method="cholesky")
    delta = sum(beta[:, j] * changes[d] for j, d in enumerate(drivers))
    lo, med, hi = (float(v) for v in np.percentile(delta, [10, 50, 90]))
    parts = []
    for j, d in enumerate(drivers):
        c = changes[d]
        parts.append(f"{d} changes by {np.median(c):+.2f} (p10 {np.percentile(c, 10):+.2f}, p90 "
                     f"{np.percentile(c, 90):+.2f}) x b = {mean[j]:+.3f} (95% CI {rel[d]['ci_low']:+.3f} to "
                     f"{rel[d]['ci_high']:+.3f})")
    text = (f"Learned: the configured effects at the reference trust ({beds:g} G&A beds, {occ:g}% occupied): "
            + "; ".join(parts) + f", from s5_impact.effects relation {rid} (n = {rel[drivers[0]]['n_obs']}, "
            f"{rel[drivers[0]]['n_groups']} trusts); Monte Carlo {draws:,} draws, seed {seed}; median {med:+.2f}."
            + (f" Left out as not significant: {'; '.join(dropped)}." if dropped else ""))
    return {"low": lo, "high": hi, "median": med, "relation_id": rid, "drivers": drivers, "text": text}


# ---- table --------------------------------------------------------------------------------------------------
def _read_effects(con: duckdb.DuckDBPyConnection) -> pl.DataFrame | None:
    return con.sql(f"select * from {SCHEMA}.effects").pl() if table_exists(con, SCHEMA, "effects") else None


def initiatives_frame(catalogue: Catalogue, effects: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per initiative x effect metric x source ('config' | 'learned'), with use_for_simulation."""
    ref = catalogue.reference_trust
    rows: list[dict] = []
    for item in catalogue.initiatives:
        c = item.cost
        base = dict(
            initiative_id=item.initiative_id, name=item.name, lever=item.lever, unit=item.unit,
            cost_per_unit_gbp=c.annual_equivalent, capital_cost_per_unit_gbp=c.capital_gbp,
            revenue_cost_per_unit_gbp_per_year=c.revenue_gbp_per_year, asset_life_years=c.asset_life_years,
            cost_formula=("revenue a year + capital / asset life (equivalent annual cost, straight line, "
                          "undiscounted)"),
            cost_basis=c.basis, ramp_up_months=item.ramp_up_months, reference_ga_beds=ref.ga_beds,
            reference_ga_bed_occupancy_pct=ref.ga_bed_occupancy_pct, notes=item.notes,
            config_file=catalogue.config_file, catalogue_version=catalogue.version)
        learned = learned_4hr_effect(item, ref, effects) if effects is not None and effects.height else None
        for e in item.effects:
            rows.append(dict(base, effect_metric_id=e.metric_id, effect_low=e.low, effect_high=e.high,
                             effect_unit=e.unit, scales_with_trust_beds=e.scales_with_trust_beds,
                             evidence=e.evidence, source="config", relation_id=None))
        if learned is not None:
            configured = next((e for e in item.effects if e.metric_id == OUTCOME), None)
            unit = (configured.unit if configured is not None else
                    f"percentage points of 4-hour performance {item.unit} at the reference trust "
                    f"({ref.ga_beds:g} beds, {ref.ga_bed_occupancy_pct:g}% occupied)")
            rows.append(dict(base, effect_metric_id=OUTCOME, effect_low=learned["low"], effect_high=learned["high"],
                             effect_unit=unit, scales_with_trust_beds=True, evidence=learned["text"],
                             source="learned", relation_id=learned["relation_id"]))
    frame = pl.DataFrame(rows, infer_schema_length=None)
    learned_keys = {(r["initiative_id"], r["effect_metric_id"]) for r in rows if r["source"] == "learned"}
    use, reason = [], []
    for r in rows:
        key = (r["initiative_id"], r["effect_metric_id"])
        if r["source"] == "learned":
            use.append(True)
            reason.append("learned from the data (relation significant at 95%); preferred over the planner's figure")
        elif key in learned_keys:
            use.append(False)
            reason.append("a learned effect on the same metric is used instead (kept for comparison)")
        else:
            use.append(True)
            reason.append("configured by planners; no learned effect for this metric")
    return frame.with_columns(pl.Series("use_for_simulation", use), pl.Series("use_reason", reason),
                              pl.lit("p10-p90").alias("effect_interval")).select(
        "initiative_id", "name", "lever", "unit", "cost_per_unit_gbp", "capital_cost_per_unit_gbp",
        "revenue_cost_per_unit_gbp_per_year", "asset_life_years", "cost_formula", "cost_basis", "ramp_up_months",
        "effect_metric_id", "effect_low", "effect_high", "effect_interval", "effect_unit", "scales_with_trust_beds",
        "reference_ga_beds", "reference_ga_bed_occupancy_pct", "evidence", "source", "relation_id",
        "use_for_simulation", "use_reason", "notes", "config_file", "catalogue_version")


def build_initiatives(con: duckdb.DuckDBPyConnection, catalogue: Catalogue | None = None,
                      effects: pl.DataFrame | None = None) -> int:
    """Write s5_impact.initiatives from the catalogue (default: initiatives.yaml) and the learned effects
    (default: s5_impact.effects when it exists; without it only configured rows)."""
    from ibp_pipeline.step5_impact.effects import write_table

    catalogue = catalogue if catalogue is not None else load_initiatives()
    effects = effects if effects is not None else _read_effects(con)
    return write_table(con, "initiatives", initiatives_frame(catalogue, effects))
