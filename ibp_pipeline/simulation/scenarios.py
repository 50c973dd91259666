"""Scenario documents: what an analyst writes, versions and runs (`ibp scenario run FILE`); step 5 simulates the
baseline document (the risk of missing each standard), step 6 every scenario against it.

Why a document: a scenario is a set of assumptions a board will ask about ("what did you assume for demand?"), so
it is written down once, versioned with its name and version, validated before anything runs, and every result row
carries its name, version and run id. A bad file stops with ONE line naming the file, the item and the field, raised
as ScenarioConfigError.

A scenario (YAML, every field checked, unknown fields refused):

    name: demand_surge                 # lower-case id: a-z, 0-9, _ (the key of its rows in s6_scenarios tables)
    description: ...                   # plain English, what and why
    version: "1.0"                     # text; bump it when an assumption changes
    drivers:                           # each a percent deviation from the baseline forecast, as an interval:
      internal:                        #   low / high = the 10th / 90th percentiles (an 80% interval)
        workforce_availability: {low: -2, high: 0}
        demand:                        # or per NHS financial year ("2025/26" = April 2025 - March 2026); months
          by_year:                     # before the first year use the first, months after the last use the last
            "2025/26": {low: 2, high: 5}
            "2026/27": {low: 4, high: 9}
        productivity: ...
        beds: ...
      external:
        policy: ...                    # demand change caused by policy (e.g. referral diversion), %
        funding: ...                   # real-terms funding vs plan, %
        demography: ...                # population size and age mix vs the baseline forecast, %
    initiatives:                       # switched on in this scenario (from s5_impact.initiatives)
      - id: extra_ga_beds              # an initiative_id, or `lever: beds` for the catalogue's one initiative of
        scale: 20                      #   that lever; scale = units per organisation (the initiative's unit)
        start: 2025-10-01              # first month it runs (costs start then; the effect ramps up)
        org_level: provider            # where: every organisation of this level with the effect metric ...
        org_codes: [RBT, RJ1]          # ... or just these organisations
    policy_overrides:                  # a new target and/or deadline for a standard (s2_triple_aim.standards)
      - standard_id: ae_4hr_2026
        target: 82
        deadline: 2027-03-01

Drivers left out of a scenario take the baseline document's interval (a scenario is "the baseline, except ..."), so
a demand surge keeps the baseline's workforce uncertainty; the baseline's own missing drivers are exactly 0.
Initiatives and policy overrides are not inherited: a scenario lists all of its own. settings.py turns a document
into the Monte Carlo engine's Setting.

The shipped documents are in ibp_pipeline/documents/scenarios/ (SCENARIO_DIR), beside the other shipped documents.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ibp_pipeline.config import DOCUMENTS
from ibp_pipeline.lib.config_errors import error_line as _error_line, loc_text as _loc_text

SCENARIO_DIR = DOCUMENTS / "scenarios"  # the shipped documents
BASELINE_FILE = SCENARIO_DIR / "baseline.yaml"
SHIPPED = ("baseline", "demand_surge", "workforce_shortfall", "funding_cut", "policy_change", "technology_shift")
LEVERS = ("beds", "nursing_fte", "virtual_ward_places", "theatre_productivity", "demand_management", "discharge")
OrgLevel = Literal["provider", "icb", "region", "england"]
_YEAR = re.compile(r"^(\d{4})/(\d{2})$")


class ScenarioConfigError(ValueError):
    """A scenario file is unreadable or invalid; the message is one line naming the file, the item and the field."""

    def __init__(self, message: str, errors: list[str] | None = None, path: Path | str | None = None):
        super().__init__(message)
        self.errors = errors or [message]
        self.path = path


def _err(message: str, **ctx: Any) -> PydanticCustomError:
    return PydanticCustomError("scenario", message, ctx)


def _first_of_month(v: dt.date | None) -> dt.date | None:
    if v is not None and v.day != 1:
        raise _err("must be the first day of a month, got {value}", value=v.isoformat())
    return v


class Interval(BaseModel):
    """An 80% interval: low and high are the 10th and 90th percentiles, in percent."""
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    low: float = Field(gt=-95, lt=500)
    high: float = Field(gt=-95, lt=500)

    @model_validator(mode="after")
    def _ordered(self) -> "Interval":
        if self.low > self.high:
            raise _err("low ({low}) must not be above high ({high})", low=self.low, high=self.high)
        return self


class DriverSpec(BaseModel):
    """A driver: one flat interval (low, high) or one interval per NHS financial year (by_year)."""
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    low: float | None = Field(default=None, gt=-95, lt=500)
    high: float | None = Field(default=None, gt=-95, lt=500)
    by_year: dict[str, Interval] | None = None
    note: str = ""

    @field_validator("by_year")
    @classmethod
    def _years(cls, v: dict[str, Interval] | None) -> dict[str, Interval] | None:
        if v is None:
            return v
        if not v:
            raise _err("must name at least one financial year")
        for key in v:
            m = _YEAR.match(key)
            if not m or (int(m.group(1)) + 1) % 100 != int(m.group(2)):
                raise _err("financial years are written like \"2025/26\" (quoted), got {key!r}", key=key)
        return v

    @model_validator(mode="after")
    def _one_form(self) -> "DriverSpec":
        flat = self.low is not None or self.high is not None
        if flat and self.by_year is not None:
            raise _err("give either low/high or by_year, not both")
        if not flat and self.by_year is None:
            raise _err("give low and high (a flat interval) or by_year")
        if flat and (self.low is None or self.high is None):
            raise _err("give both low and high")
        if flat and self.low > self.high:  # type: ignore[operator]
            raise _err("low ({low}) must not be above high ({high})", low=self.low, high=self.high)
        return self

    def interval_for(self, month: dt.date) -> tuple[float, float]:
        """(low, high) that applies in a calendar month."""
        if self.by_year is None:
            return float(self.low), float(self.high)  # type: ignore[arg-type]
        fy = month.year if month.month >= 4 else month.year - 1
        years = sorted(self.by_year, key=lambda k: int(k[:4]))
        key = f"{fy}/{(fy + 1) % 100:02d}"
        if key not in self.by_year:
            key = years[0] if fy < int(years[0][:4]) else years[-1]
        iv = self.by_year[key]
        return iv.low, iv.high


class InternalDrivers(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    workforce_availability: DriverSpec | None = None
    demand: DriverSpec | None = None
    productivity: DriverSpec | None = None
    beds: DriverSpec | None = None


class ExternalDrivers(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    policy: DriverSpec | None = None
    funding: DriverSpec | None = None
    demography: DriverSpec | None = None


class Drivers(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    internal: InternalDrivers = Field(default_factory=InternalDrivers)
    external: ExternalDrivers = Field(default_factory=ExternalDrivers)


class InitiativeSwitch(BaseModel):
    """An initiative switched on: which (id or lever), how much (scale, in its units per organisation), from when
    (start month) and where (org_codes, else every organisation of org_level that has the effect metric)."""
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    id: str | None = Field(default=None, min_length=1)
    lever: Literal[LEVERS] | None = None  # type: ignore[valid-type]
    scale: float = Field(default=1.0, gt=0)
    start: dt.date
    org_level: OrgLevel = "provider"
    org_codes: list[str] | None = Field(default=None, min_length=1)
    note: str = ""

    @field_validator("start")
    @classmethod
    def _month(cls, v: dt.date) -> dt.date:
        return _first_of_month(v)  # type: ignore[return-value]

    @model_validator(mode="after")
    def _which(self) -> "InitiativeSwitch":
        if (self.id is None) == (self.lever is None):
            raise _err("give exactly one of id (an initiative_id) or lever")
        return self

    @property
    def key(self) -> str:
        return self.id if self.id is not None else f"lever:{self.lever}"


class PolicyOverride(BaseModel):
    """A new target and/or deadline for one standard."""
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    standard_id: str = Field(pattern=r"^[a-z0-9_]+$")
    target: float | None = None
    deadline: dt.date | None = None
    note: str = ""

    @field_validator("deadline")
    @classmethod
    def _month(cls, v: dt.date | None) -> dt.date | None:
        return _first_of_month(v)

    @model_validator(mode="after")
    def _something(self) -> "PolicyOverride":
        if self.target is None and self.deadline is None:
            raise _err("give a new target, a new deadline, or both")
        return self


class Scenario(BaseModel):
    """One scenario document (see the module doc)."""
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[a-z0-9_]+$", max_length=64)
    description: str = Field(min_length=1)
    version: str = Field(min_length=1)
    drivers: Drivers = Field(default_factory=Drivers)
    initiatives: list[InitiativeSwitch] = Field(default_factory=list)
    policy_overrides: list[PolicyOverride] = Field(default_factory=list)
    _file: str = PrivateAttr(default="")
    _sha256: str = PrivateAttr(default="")

    @property
    def file(self) -> str:
        return self._file

    @property
    def sha256(self) -> str:
        return self._sha256

    def driver(self, name: str) -> DriverSpec | None:
        """A driver's spec by name (internal or external), None when the document leaves it out."""
        for group in (self.drivers.internal, self.drivers.external):
            if name in type(group).model_fields:
                return getattr(group, name)
        raise KeyError(name)


# ---- loading and one-line errors ------------------------------------------------------------------------------
_HINTS = {"dict_type": "a mapping", "model_type": "a mapping of fields"}


def _label(kind: str, index: int, item: Any) -> str:
    if not isinstance(item, dict):
        return ""
    if kind == "initiatives":
        name = item.get("id") or (f"lever {item['lever']}" if item.get("lever") else None)
        return f" ({name})" if name else ""
    if kind == "policy_overrides":
        return f" ({item['standard_id']})" if item.get("standard_id") else ""
    return ""


def loc_text(loc: tuple[Any, ...], raw: Any) -> str:
    """('initiatives', 0, 'scale') -> 'initiatives[0] (extra_beds).scale'."""
    return _loc_text(tuple(x for x in loc if str(x) not in ("function-after", "function-before")), raw, _label)


def error_line(file: str, err: dict[str, Any], raw: Any) -> str:
    """One pydantic error as 'file: where: what'."""
    return _error_line(file, err, raw, label=_label, hints=_HINTS, no_value_types=("scenario",),
                       pattern_message="must be lower-case letters, digits and _",
                       fields_hint="the fields are listed in ibp_pipeline/simulation/scenarios.py")


def raise_errors(file: str, lines: list[str], path: Path | str | None = None) -> None:
    more = f" (and {len(lines) - 1} more error{'s' if len(lines) > 2 else ''})" if len(lines) > 1 else ""
    raise ScenarioConfigError(lines[0] + more, lines, path)


def parse_scenario(raw: Any, file: str = "scenario") -> Scenario:
    """Validate a scenario given as a mapping (a parsed YAML file, or a Dagster run config); `file` names it in
    errors."""
    if not isinstance(raw, dict):
        raise ScenarioConfigError(f"{file}: (top level): must be a mapping with name, description, version, "
                                  f"drivers, initiatives and policy_overrides, got {type(raw).__name__}", path=file)
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise_errors(file, [error_line(file, e, raw) for e in exc.errors()], file)
    errors = []
    seen: set[str] = set()
    for i, ini in enumerate(scenario.initiatives):
        key = f"{ini.key}@{','.join(ini.org_codes) if ini.org_codes else ini.org_level}"
        if key in seen:
            errors.append(f"{file}: {loc_text(('initiatives', i), raw)}.{'id' if ini.id else 'lever'}: switched on "
                          f"twice for the same organisations")
        seen.add(key)
    standards: set[str] = set()
    for i, po in enumerate(scenario.policy_overrides):
        if po.standard_id in standards:
            errors.append(f"{file}: {loc_text(('policy_overrides', i), raw)}.standard_id: overridden twice")
        standards.add(po.standard_id)
    if errors:
        raise_errors(file, errors, file)
    return scenario  # type: ignore[return-value]


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; raise ScenarioConfigError with one line on any fault."""
    path = Path(path)
    name = path.name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioConfigError(f"{name}: file not found ({path})", path=path) from None
    except OSError as exc:
        raise ScenarioConfigError(f"{name}: cannot be read ({exc.strerror})", path=path) from None
    try:
        raw = yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ScenarioConfigError(f"{name}: not UTF-8 text", path=path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioConfigError(f"{name}: not valid YAML{where}: {problem}", path=path) from None
    scenario = parse_scenario(raw, name)
    scenario._file = str(path)
    scenario._sha256 = hashlib.sha256(data).hexdigest()
    return scenario


def load_baseline(path: str | Path | None = None) -> Scenario:
    """The baseline scenario (default: the shipped scenarios/baseline.yaml)."""
    return load_scenario(path or BASELINE_FILE)


def file_name(scenario: Scenario) -> str:
    """How errors name the scenario: its file's name, or its name when it came from a run config."""
    return Path(scenario.file).name if scenario.file else scenario.name


def shipped_scenarios() -> list[Path]:
    """The scenario files shipped with the code, baseline first."""
    return [SCENARIO_DIR / f"{n}.yaml" for n in SHIPPED]
