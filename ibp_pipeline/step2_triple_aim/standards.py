"""Step 2 "where do we want to be": the standards registry, local ambitions, and the monthly targets they imply.

Why a registry file: a target a board is held to must be written down once, with its source and dates, and be
checked before any number is built on it. `standards.yaml` (beside this module, versioned with the code) holds
the national constitutional standards and planning targets; an ICB or trust adds its own ambitions in
`data/config/local_ambitions.yaml` (or the file named by IBP_LOCAL_AMBITIONS), which may replace a national
standard for the organisations it names. Both files are validated by strict pydantic models; a bad entry stops
the build with ONE line naming the file, the standard and the field.

Tables (schema s2_triple_aim)
- standards: every national and local standard with its fields and origin ('national' | 'local').
- targets: one row per organisation x measured series x period x standard: the target value that period, whether
  it is a trajectory, which standard applied (national or local, and from which file) and which row is primary.

Trajectories: a planning target with a deadline moves in a straight line, month by month, from the organisation's
baseline value (its value at baseline_period, by default the March before effective_from) to its end target at the
deadline, and holds the end target after it. With minimum_improvement_points the end target of an organisation of
the levels in minimum_improvement_applies_to is max(target, baseline + points) (min(target, baseline - points) for
at_most), within 0-100. Without a baseline value (none in the baseline month or the two months before it) the
trajectory is the end target as a flat line; when the baseline already meets the end target it is also flat.
A constitutional standard, or a planning target without a deadline, is a flat line.

Ratio standards: the 52-week standard is "under 1% of the waiting list", a ratio of two catalogue metrics. It is
written as `metric_id: rtt_52wk_waiters` with `ratio_of: rtt_waiting_list`; the measured series is computed here as
100 x rtt_52wk_waiters / rtt_waiting_list per organisation and month (only where the list > 0) and is called
`rtt_52wk_waiters_pct_of_rtt_waiting_list` in targets and gaps, so it never mixes with the count series.
"""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Literal

import duckdb
import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, field_validator, \
    model_validator
from pydantic_core import PydanticCustomError

from ibp_pipeline.config import PROJECT_ROOT
from ibp_pipeline.step1_current_state.catalogue import BY_ID
from ibp_pipeline.lib.config_errors import error_line, id_label, loc_text
from ibp_pipeline.lib.duckdb_tables import replace_table

SCHEMA = "s2_triple_aim"
S1 = "s1_current_state"
REGISTRY_PATH = Path(__file__).with_name("standards.yaml")
LOCAL_AMBITIONS_ENV = "IBP_LOCAL_AMBITIONS"
DEFAULT_LOCAL_AMBITIONS = PROJECT_ROOT / "data" / "config" / "local_ambitions.yaml"
BASELINE_LOOKBACK_MONTHS = 2  # a missing baseline month falls back to the latest value up to 2 months before it
ACTIVE_WITHIN_MONTHS = 3  # an organisation still reporting (data within 3 months of the series' end) gets its
# targets extended to the deadline; one that stopped reporting (closed, merged) keeps them only to its last month

OrgLevel = Literal["provider", "icb", "region", "england"]
ORG_LEVELS: tuple[str, ...] = ("provider", "icb", "region", "england")


class StandardsConfigError(ValueError):
    """A standards or local-ambitions file is unreadable or invalid; the message is one line naming the field."""

    def __init__(self, message: str, errors: list[str] | None = None, path: Path | None = None):
        super().__init__(message)
        self.errors = errors or [message]
        self.path = path


def _field_error(field: str, message: str) -> PydanticCustomError:
    return PydanticCustomError("standard_field", "{field}: {message}", {"field": field, "message": message})


def _first_of_month(value: dt.date | None) -> dt.date | None:
    if value is not None and value.day != 1:
        raise PydanticCustomError("first_of_month", "must be the first day of a month (a period), got {value}",
                                  {"value": value.isoformat()})
    return value


class Source(BaseModel):
    """Where a standard comes from: a leader must be able to find the sentence it rests on."""
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    document: str = Field(min_length=1)
    year: int = Field(ge=1948, le=2100)
    url: str = Field(min_length=1)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise PydanticCustomError("url", "must start with http:// or https://")
        return v


class Standard(BaseModel):
    """One national standard or planning target (see standards.yaml for the meaning of each field)."""
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    standard_id: str = Field(pattern=r"^[a-z0-9_]+$")
    metric_id: str
    ratio_of: str | None = None
    name: str = Field(min_length=1)
    kind: Literal["constitutional", "planning_target"]
    target: float
    direction: Literal["at_least", "at_most"]
    effective_from: dt.date
    deadline: dt.date | None = None
    baseline_period: dt.date | None = None
    minimum_improvement_points: float | None = Field(default=None, ge=0, le=100)
    minimum_improvement_applies_to: list[OrgLevel] = Field(default_factory=lambda: ["provider"])
    minimum_improvement_cap: float | None = Field(default=None, ge=0, le=100)
    applies_to: list[OrgLevel] = Field(min_length=1)
    source: Source
    notes: str = ""

    @field_validator("metric_id", "ratio_of")
    @classmethod
    def _known_metric(cls, v: str | None) -> str | None:
        if v is not None and v not in BY_ID:
            raise PydanticCustomError("unknown_metric", "unknown metric id: not in the step-1 metric catalogue")
        return v

    @field_validator("target")
    @classmethod
    def _target_range(cls, v: float, info: ValidationInfo) -> float:
        metric = BY_ID.get(info.data.get("metric_id", ""))
        percent = info.data.get("ratio_of") is not None or (metric is not None and metric.unit == "percent")
        if percent and not 0 <= v <= 100:
            raise PydanticCustomError("target_range", "must be between 0 and 100")
        if v < 0:
            raise PydanticCustomError("target_range", "must not be negative")
        return v

    @field_validator("effective_from", "deadline", "baseline_period")
    @classmethod
    def _period(cls, v: dt.date | None) -> dt.date | None:
        return _first_of_month(v)

    @model_validator(mode="after")
    def _consistent(self) -> "Standard":
        if self.ratio_of is not None and self.ratio_of == self.metric_id:
            raise _field_error("ratio_of", f"must differ from metric_id, got {self.ratio_of!r}")
        if self.deadline is not None and self.deadline < self.effective_from:
            raise _field_error("deadline", f"must not be before effective_from ({self.effective_from}), "
                                           f"got {self.deadline}")
        if self.kind == "constitutional" and self.deadline is not None:
            raise _field_error("deadline", "a constitutional standard is a flat line and takes no deadline, "
                                           f"got {self.deadline}")
        if self.baseline_period is not None:
            if self.deadline is None:
                raise _field_error("baseline_period", "only a trajectory (a planning_target with a deadline) has "
                                                      f"a baseline, got {self.baseline_period}")
            if self.baseline_period >= self.deadline:
                raise _field_error("baseline_period", f"must be before the deadline ({self.deadline}), "
                                                      f"got {self.baseline_period}")
        if self.minimum_improvement_points is not None and not self.is_trajectory:
            raise _field_error("minimum_improvement_points", "only a trajectory (a planning_target with a "
                                                             "deadline) takes a minimum improvement")
        if self.minimum_improvement_cap is not None:
            if self.minimum_improvement_points is None:
                raise _field_error("minimum_improvement_cap", "only goes with minimum_improvement_points")
            beyond = (self.minimum_improvement_cap < self.target if self.direction == "at_least"
                      else self.minimum_improvement_cap > self.target)
            if beyond:
                cap = self.minimum_improvement_cap
                raise _field_error("minimum_improvement_cap",
                                   f"must not ask less than the target ({self.target:g}), got {cap:g}")
        metric = BY_ID[self.metric_id]
        if self.ratio_of is None and metric.higher_is_better is not None:
            expected = "at_least" if metric.higher_is_better else "at_most"
            if self.direction != expected:
                better = "higher" if metric.higher_is_better else "lower"
                raise _field_error("direction", f"{self.metric_id} is {better}-is-better in the catalogue, so "
                                                f"the direction must be {expected}, got {self.direction!r}")
        return self

    # ---- derived facts --------------------------------------------------------------------------------------
    @property
    def is_trajectory(self) -> bool:
        """A planning target with a deadline moves from each organisation's baseline to the target."""
        return self.kind == "planning_target" and self.deadline is not None

    @property
    def measure_id(self) -> str:
        """The measured series: the metric itself, or '<metric>_pct_of_<denominator>' for a ratio standard."""
        return self.metric_id if self.ratio_of is None else f"{self.metric_id}_pct_of_{self.ratio_of}"

    @property
    def measure_name(self) -> str:
        name = BY_ID[self.metric_id].name
        return name if self.ratio_of is None else f"{name} as a percentage of {BY_ID[self.ratio_of].name}"

    @property
    def grain(self) -> str:
        return BY_ID[self.metric_id].grain

    @property
    def baseline_month(self) -> dt.date | None:
        """baseline_period, or by default the financial year end (March) before effective_from."""
        if not self.is_trajectory:
            return None
        if self.baseline_period is not None:
            return self.baseline_period
        year = self.effective_from.year if self.effective_from.month >= 4 else self.effective_from.year - 1
        return dt.date(year, 3, 1)


class LocalStandard(Standard):
    """A local ambition: a standard for the organisations named, optionally replacing a national one."""
    org_codes: list[str] = Field(min_length=1)
    overrides: str | None = None

    @field_validator("org_codes")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        for code in v:
            if not code or code != code.strip().upper():
                raise PydanticCustomError("org_code", "organisation codes are upper-case ODS codes (e.g. RXX, "
                                                      "QOP, ENGLAND), got {code!r}", {"code": code})
        return v


class Registry(BaseModel):
    """The national registry file: a version and its standards."""
    model_config = ConfigDict(strict=True, extra="forbid")
    version: str = Field(min_length=1)
    standards: list[Standard] = Field(min_length=1)
    _config_file: str = PrivateAttr(default="")

    @property
    def config_file(self) -> str:
        return self._config_file

    def by_id(self) -> dict[str, Standard]:
        return {s.standard_id: s for s in self.standards}


class LocalAmbitions(BaseModel):
    """An ICB's or trust's own file of ambitions."""
    model_config = ConfigDict(strict=True, extra="forbid")
    version: str = Field(min_length=1)
    owner: str | None = None
    standards: list[LocalStandard] = Field(min_length=1)
    _config_file: str = PrivateAttr(default="")

    @property
    def config_file(self) -> str:
        return self._config_file


# ---- loading and one-line errors ----------------------------------------------------------------------------
def _display_path(path: Path) -> str:
    """The path as recorded in the tables: relative to the project when inside it, so rows do not carry a
    machine's folder layout."""
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


_LABEL = id_label({"standards": "standard_id"})


def _loc_text(loc: tuple[Any, ...], raw: Any) -> str:
    return loc_text(loc, raw, _LABEL)


def _error_line(file: str, err: dict[str, Any], raw: Any) -> str:
    if err.get("type") == "standard_field":
        where = f"{_loc_text(tuple(err.get('loc', ())), raw)}.{err['ctx']['field']}"
        return f"{file}: {where}: {err['ctx']['message']}"
    return error_line(file, err, raw, label=_LABEL, no_value_inputs=(dict,),
                      fields_hint="allowed fields are those listed at the top of standards.yaml")


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StandardsConfigError(f"{path.name}: file not found ({path})", path=path) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise StandardsConfigError(f"{path.name}: not valid YAML{where}: {problem}", path=path) from None


def _raise(path: Path, lines: list[str]) -> None:
    more = f" (and {len(lines) - 1} more error{'s' if len(lines) > 2 else ''})" if len(lines) > 1 else ""
    raise StandardsConfigError(lines[0] + more, lines, path)


def _validate(model: type[BaseModel], path: Path, raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise StandardsConfigError(f"{path.name}: (top level): must be a mapping with 'version' and 'standards', "
                                   f"got {type(raw).__name__}", path=path)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        _raise(path, [_error_line(path.name, e, raw) for e in exc.errors()])


def _item(path: Path, raw: dict, i: int, field: str, message: str) -> str:
    return f"{path.name}: {_loc_text(('standards', i), raw)}.{field}: {message}"


def _duplicate_ids(path: Path, raw: dict, standards: list[Standard], taken: set[str]) -> list[str]:
    errors, seen = [], set(taken)
    for i, s in enumerate(standards):
        if s.standard_id in seen:
            where = "a national standard" if s.standard_id in taken else "an earlier entry"
            errors.append(_item(path, raw, i, "standard_id", f"duplicate: {s.standard_id!r} is already used by "
                                                              f"{where}"))
        seen.add(s.standard_id)
    return errors


def load_registry(path: str | Path = REGISTRY_PATH) -> Registry:
    """Read and validate the national registry; raise StandardsConfigError with one line on any fault."""
    path = Path(path)
    raw = _read_yaml(path)
    registry: Registry = _validate(Registry, path, raw)
    errors = _duplicate_ids(path, raw, registry.standards, set())
    if errors:
        _raise(path, errors)
    registry._config_file = _display_path(path)
    return registry


def local_ambitions_path() -> tuple[Path, bool]:
    """The local ambitions file and whether it was asked for explicitly (IBP_LOCAL_AMBITIONS)."""
    env = os.environ.get(LOCAL_AMBITIONS_ENV)
    return (Path(env), True) if env else (DEFAULT_LOCAL_AMBITIONS, False)


def load_local_ambitions(path: str | Path | None, registry: Registry) -> LocalAmbitions | None:
    """Read and validate a local ambitions file against the national registry.

    path None means the default (IBP_LOCAL_AMBITIONS, else data/config/local_ambitions.yaml); a default file that
    does not exist means "no local ambitions" (None), but a file named explicitly must exist."""
    explicit = path is not None
    if path is None:
        path, explicit = local_ambitions_path()
    path = Path(path)
    if not explicit and not path.exists():
        return None
    raw = _read_yaml(path)
    local: LocalAmbitions = _validate(LocalAmbitions, path, raw)
    national = registry.by_id()
    errors = _duplicate_ids(path, raw, local.standards, set(national))
    for i, s in enumerate(local.standards):
        if s.overrides is None:
            continue
        base = national.get(s.overrides)
        if base is None:
            errors.append(_item(path, raw, i, "overrides", f"unknown national standard_id {s.overrides!r} (known: "
                                                           f"{', '.join(sorted(national))})"))
        elif base.measure_id != s.measure_id:
            errors.append(_item(path, raw, i, "overrides", f"national standard {s.overrides!r} measures "
                                                           f"{base.measure_id}, not {s.measure_id}"))
    if errors:
        _raise(path, errors)
    local._config_file = _display_path(path)
    return local


# ---- trajectory maths (pure) --------------------------------------------------------------------------------
def months_between(later: dt.date, earlier: dt.date) -> int:
    """Whole calendar months from earlier to later (both first of month)."""
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def trajectory_end(baseline: float | None, target: float, direction: str, minimum_points: float | None,
                   cap: float | None = None) -> float:
    """An organisation's end target: the standard's target, or its baseline improved by the minimum points when
    that asks more (65% by March 2026 'with every trust at least +5 points' -> max(65, baseline + 5)); the
    improved baseline is held within the cap (default 100, or 0 for at_most), so a trust already near the
    constitutional standard is not asked to pass it."""
    if baseline is None or minimum_points is None:
        return target
    if direction == "at_least":
        return max(target, min(100.0 if cap is None else cap, baseline + minimum_points))
    return min(target, max(0.0 if cap is None else cap, baseline - minimum_points))


def trajectory_value(period: dt.date, baseline_month: dt.date, baseline: float | None, end_target: float,
                     deadline: dt.date, direction: str) -> float:
    """The target in one period: a straight line from the baseline (at baseline_month) to the end target (at the
    deadline), the end target after the deadline; flat at the end target when there is no baseline or the
    baseline already meets it."""
    meets = baseline is not None and (baseline >= end_target if direction == "at_least" else baseline <= end_target)
    if baseline is None or meets:
        return end_target
    share = months_between(period, baseline_month) / months_between(deadline, baseline_month)
    share = min(1.0, max(0.0, share))
    return baseline + (end_target - baseline) * share


def _period_range(start: dt.date, end: dt.date, grain: str) -> list[dt.date]:
    step = 3 if grain == "quarter" else 1
    out, cur = [], start
    while cur <= end:
        out.append(cur)
        m = cur.month - 1 + step
        cur = dt.date(cur.year + m // 12, m % 12 + 1, 1)
    return out


def _add_months(d: dt.date, months: int) -> dt.date:
    m = d.month - 1 + months
    return dt.date(d.year + m // 12, m % 12 + 1, 1)


def _month_floor(d: dt.date) -> dt.date:
    return dt.date(d.year, d.month, 1)


# ---- reading values -----------------------------------------------------------------------------------------
VALUE_SCHEMA = {"org_code": pl.String, "org_level": pl.String, "metric_id": pl.String, "period_start": pl.Date,
                "period_grain": pl.String, "value": pl.Float64, "numerator": pl.Float64, "denominator": pl.Float64}


def read_measure_values(con: duckdb.DuckDBPyConnection, measures: dict[str, tuple[str, str | None]]) -> pl.DataFrame:
    """Values of each measured series: {measure_id: (metric_id, ratio_of)}. A plain metric is read as it is; a
    ratio is 100 x metric / ratio_of for the same organisation and period, only where the denominator > 0."""
    frames = []
    for measure_id, (metric_id, ratio_of) in sorted(measures.items()):
        if ratio_of is None:
            q = f"""select org_code, org_level, '{measure_id}' as metric_id, period_start, period_grain,
                           value, numerator, denominator
                    from {S1}.metric_values where metric_id = '{metric_id}' and value is not null"""
        else:
            q = f"""select a.org_code, a.org_level, '{measure_id}' as metric_id, a.period_start, a.period_grain,
                           100.0 * a.value / b.value as value, a.value as numerator, b.value as denominator
                    from {S1}.metric_values a
                    join {S1}.metric_values b on b.org_code = a.org_code and b.period_start = a.period_start
                         and b.metric_id = '{ratio_of}'
                    where a.metric_id = '{metric_id}' and a.value is not null and b.value > 0"""
        frames.append(con.sql(q).pl().cast(VALUE_SCHEMA))  # type: ignore[arg-type]
    if not frames:
        return pl.DataFrame(schema=VALUE_SCHEMA)
    return pl.concat(frames).sort("org_code", "metric_id", "period_start")


# ---- tables ---------------------------------------------------------------------------------------------------
def _applied(registry: Registry, local: LocalAmbitions | None) -> list[tuple[Standard, str, str]]:
    """(standard, origin, config file) for every national and local standard."""
    out = [(s, "national", registry.config_file) for s in registry.standards]
    if local is not None:
        out += [(s, "local", local.config_file) for s in local.standards]
    return out


STANDARDS_SCHEMA = {
    "standard_id": pl.String, "origin": pl.String, "config_file": pl.String, "config_version": pl.String,
    "metric_id": pl.String, "ratio_of": pl.String, "measure_id": pl.String, "measure_name": pl.String,
    "name": pl.String, "kind": pl.String, "target": pl.Float64, "direction": pl.String,
    "effective_from": pl.Date, "deadline": pl.Date, "baseline_period": pl.Date, "is_trajectory": pl.Boolean,
    "minimum_improvement_points": pl.Float64, "minimum_improvement_applies_to": pl.String,
    "minimum_improvement_cap": pl.Float64, "applies_to": pl.String, "org_codes": pl.String,
    "overrides": pl.String, "source_document": pl.String,
    "source_year": pl.Int64, "source_url": pl.String, "notes": pl.String,
}


def _write(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    return replace_table(con, SCHEMA, table, frame)


def standards_frame(registry: Registry, local: LocalAmbitions | None = None) -> pl.DataFrame:
    """One row per national and local standard, every field plus origin and the file it came from."""
    rows = []
    for s, origin, file in _applied(registry, local):
        version = registry.version if origin == "national" else local.version  # type: ignore[union-attr]
        rows.append({
            "standard_id": s.standard_id, "origin": origin, "config_file": file, "config_version": version,
            "metric_id": s.metric_id, "ratio_of": s.ratio_of, "measure_id": s.measure_id,
            "measure_name": s.measure_name, "name": s.name, "kind": s.kind, "target": s.target,
            "direction": s.direction, "effective_from": s.effective_from, "deadline": s.deadline,
            "baseline_period": s.baseline_month, "is_trajectory": s.is_trajectory,
            "minimum_improvement_points": s.minimum_improvement_points,
            "minimum_improvement_applies_to": ", ".join(s.minimum_improvement_applies_to)
            if s.minimum_improvement_points is not None else None,
            "minimum_improvement_cap": s.minimum_improvement_cap,
            "applies_to": ", ".join(s.applies_to),
            "org_codes": ", ".join(s.org_codes) if isinstance(s, LocalStandard) else None,
            "overrides": s.overrides if isinstance(s, LocalStandard) else None,
            "source_document": s.source.document, "source_year": s.source.year, "source_url": s.source.url,
            "notes": s.notes,
        })
    return pl.DataFrame(rows, schema=STANDARDS_SCHEMA)


def build_standards(con: duckdb.DuckDBPyConnection, registry: Registry, local: LocalAmbitions | None = None) -> int:
    """Write s2_triple_aim.standards and return its row count."""
    return _write(con, "standards", standards_frame(registry, local))


TARGETS_SCHEMA = {
    "org_code": pl.String, "org_level": pl.String, "metric_id": pl.String, "period_start": pl.Date,
    "period_grain": pl.String, "standard_id": pl.String, "standard_name": pl.String, "kind": pl.String,
    "direction": pl.String, "target_value": pl.Float64, "is_trajectory": pl.Boolean, "is_primary": pl.Boolean,
    "applied": pl.String, "config_file": pl.String, "overrides_standard_id": pl.String,
    "effective_from": pl.Date, "deadline": pl.Date, "baseline_period": pl.Date, "baseline_value": pl.Float64,
    "baseline_method": pl.String, "end_target_value": pl.Float64, "target_method": pl.String,
}


def _baseline(series: dict[dt.date, float], month: dt.date) -> tuple[float | None, str]:
    """The value at the baseline month, else the latest in the BASELINE_LOOKBACK_MONTHS before it."""
    for back in range(BASELINE_LOOKBACK_MONTHS + 1):
        m = _add_months(month, -back)
        if m in series:
            if back == 0:
                return series[m], f"value at {m:%Y-%m}"
            return series[m], f"no value at {month:%Y-%m}; latest value before it, at {m:%Y-%m}"
    first = _add_months(month, -BASELINE_LOOKBACK_MONTHS)
    return None, f"no value from {first:%Y-%m} to {month:%Y-%m}: flat at the standard's target"


def _target_method(s: Standard, baseline: float | None, end: float, level: str) -> str:
    if not s.is_trajectory:
        kind = "constitutional standard" if s.kind == "constitutional" else "planning target without a deadline"
        return f"flat line: {kind}, target {s.target:g}"
    assert s.deadline is not None and s.baseline_month is not None
    end_text = f"end target {end:g}"
    if s.minimum_improvement_points is not None and level in s.minimum_improvement_applies_to:
        sign = "+" if s.direction == "at_least" else "-"
        op = "max" if s.direction == "at_least" else "min"
        improved = f"baseline {sign} {s.minimum_improvement_points:g} points"
        if s.minimum_improvement_cap is not None:
            bound = "min" if s.direction == "at_least" else "max"
            improved = f"{bound}({improved}, {s.minimum_improvement_cap:g})"
        end_text = f"end target {op}({s.target:g}, {improved}) = {end:.2f}"
    if baseline is None:
        return f"trajectory without a baseline: flat at {end_text}"
    if (baseline >= end) if s.direction == "at_least" else (baseline <= end):
        return f"trajectory: baseline {baseline:.2f} already meets the {end_text}: flat at {end:g}"
    span = months_between(s.deadline, s.baseline_month)
    return (f"trajectory: baseline + (end - baseline) x months since {s.baseline_month:%Y-%m} / {span}, from "
            f"baseline {baseline:.2f} to {end_text} in {s.deadline:%Y-%m}, held after the deadline")


def targets_frame(values: pl.DataFrame, registry: Registry, local: LocalAmbitions | None = None) -> pl.DataFrame:
    """Every organisation x measure x period x applicable standard, with its target and which row is primary.

    values: the measured series (columns of VALUE_SCHEMA). Each organisation gets rows from its first period with
    data (not before effective_from) to its last, extended to the deadline when it is still reporting."""
    applied = _applied(registry, local)
    # organisations whose national standard a local ambition replaces
    replaced: set[tuple[str, str]] = set()
    for s, origin, _ in applied:
        if isinstance(s, LocalStandard) and s.overrides:
            replaced |= {(s.overrides, code) for code in s.org_codes}

    spans = values.group_by("org_code", "org_level", "metric_id").agg(
        first=pl.col("period_start").min(), last=pl.col("period_start").max())
    series_end = dict(values.group_by("metric_id").agg(pl.col("period_start").max()).iter_rows())
    by_series: dict[tuple[str, str], dict[dt.date, float]] = {}
    for org, metric, period, value in values.select("org_code", "metric_id", "period_start", "value").iter_rows():
        by_series.setdefault((org, metric), {})[period] = value

    rows: list[tuple] = []
    for s, origin, file in applied:
        org_codes = set(s.org_codes) if isinstance(s, LocalStandard) else None
        overrides = s.overrides if isinstance(s, LocalStandard) else None
        start_floor = _month_floor(s.effective_from)
        baseline_month = s.baseline_month
        mine = spans.filter(pl.col("metric_id") == s.measure_id, pl.col("org_level").is_in(s.applies_to))
        for org, level, _, first, last in mine.iter_rows():
            if org_codes is not None and org not in org_codes:
                continue
            if origin == "national" and (s.standard_id, org) in replaced:
                continue
            end = last
            active = months_between(series_end[s.measure_id], last) < ACTIVE_WITHIN_MONTHS
            if s.deadline is not None and active:
                end = max(last, s.deadline)
            start = max(first, start_floor)
            periods = _period_range(start, end, s.grain)
            if not periods:
                continue
            baseline, method = (None, None)
            end_target = s.target
            if s.is_trajectory:
                assert baseline_month is not None and s.deadline is not None
                baseline, method = _baseline(by_series.get((org, s.measure_id), {}), baseline_month)
                points = s.minimum_improvement_points if level in s.minimum_improvement_applies_to else None
                end_target = trajectory_end(baseline, s.target, s.direction, points,
                                            s.minimum_improvement_cap)
            text = _target_method(s, baseline, end_target, level)
            for p in periods:
                value = (trajectory_value(p, baseline_month, baseline, end_target, s.deadline, s.direction)
                         if s.is_trajectory else s.target)  # type: ignore[arg-type]
                rows.append((org, level, s.measure_id, p, s.grain, s.standard_id, s.name, s.kind, s.direction,
                             value, s.is_trajectory, False, origin, file, overrides, s.effective_from, s.deadline,
                             baseline_month, baseline, method, end_target, text))
    frame = pl.DataFrame(rows, schema=TARGETS_SCHEMA, orient="row")
    # primary: the planning trajectory where one exists, else a flat planning target, else the constitutional
    # standard; a local standard before a national one of the same rank
    rank = (pl.when(pl.col("is_trajectory")).then(0)
            .when(pl.col("kind") == "planning_target").then(1).otherwise(2))
    frame = (frame.with_columns(_rank=rank, _local=(pl.col("applied") != "local").cast(pl.Int8))
             .sort("org_code", "metric_id", "period_start", "_rank", "_local", "standard_id")
             .with_columns(is_primary=pl.int_range(pl.len()).over("org_code", "metric_id", "period_start") == 0)
             .drop("_rank", "_local"))
    return frame.select(list(TARGETS_SCHEMA))


def build_targets(con: duckdb.DuckDBPyConnection, registry: Registry, local: LocalAmbitions | None = None) -> int:
    """Write s2_triple_aim.targets (see targets_frame) and return its row count."""
    measures = {s.measure_id: (s.metric_id, s.ratio_of) for s, _, _ in _applied(registry, local)}
    values = read_measure_values(con, measures)
    return _write(con, "targets", targets_frame(values, registry, local))
