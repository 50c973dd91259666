"""Step 2 "where do we want to be": the standards registry, local ambitions, and the monthly targets they imply.

Why a registry file: a target a board is held to must be written down once, with its source and dates, and be
checked before any number is built on it. `standards.yaml` (in ibp_pipeline/documents/, versioned with the code)
holds the national constitutional standards and planning targets; an ICB or trust adds its own ambitions in
config/local_ambitions.yaml of the data folder (or the file named by IBP_LOCAL_AMBITIONS), which may replace a
national standard for the organisations it names. Both files are validated by strict pydantic models; a bad entry stops
the build with ONE line naming the file, the standard and the field.

Tables (schema s2_triple_aim)
- standards: every national and local standard with its fields and origin ('national' | 'local'), its milestones
  in words, the planning years it covers, the planning year in force and whether it is in force then (in_force).
- targets: one row per organisation x measured series x period x standard: the target value that period, whether
  it is a trajectory, which standard applied (national or local, and from which file) and which row is primary;
  the milestone the row heads for (milestone_deadline, milestone_target_value, averaged_over_financial_year), the
  period's financial_year, the planning_year in force and in_force, so a page can pick the year's targets.

Trajectories: a planning target with a deadline moves in a straight line, month by month, from the organisation's
baseline value (its value at baseline_period, by default the March before effective_from) to its end target at the
deadline, and holds the end target after it. With minimum_improvement_points the end target of an organisation of
the levels in minimum_improvement_applies_to is max(target, baseline + points) (min(target, baseline - points) for
at_most), within 0-100. Without a baseline value (none in the baseline month or the two months before it) the
trajectory is the end target as a flat line; when the baseline already meets the end target it is also flat.
A constitutional standard, or a planning target without a deadline, is a flat line.

Multi-year targets (the Medium Term Planning Framework 2026/27 to 2028/29): a standard may list `milestones`
instead of target and deadline, each a target by a deadline for some organisation levels (with its own minimum
improvement). An organisation's trajectory runs in straight lines from its baseline through the milestones of its
level and holds the last; a March the guidance does not set (March 2028) lies on the line between its neighbours.
A milestone `averaged_over_financial_year` (A&E 85% "as the average across 2028/29") is judged on the mean of the
12 months (meets_year_average), so its line reaches the target in April and holds it all year. In the targets
table deadline and end_target_value are the organisation's last milestone (so every consumer's "end target at the
deadline" still holds) and milestone_* the one each row heads for. With `baseline_fallback: latest` a missing
baseline month takes the latest earlier value however old (baseline_method says which month).

Planning year: targets are set in financial years (April-March). planning_year_in_force() is the financial year of
today's date, or IBP_PLANNING_YEAR (e.g. "2027/28") to look at another. A trajectory is in force from the year of
effective_from to the year of its last deadline, a flat standard from effective_from on; earlier planning rounds
stay in the tables as history. The primary row of a period is a trajectory not past its deadline before one held
after it, so from April 2026 an organisation with a 2026/27 trajectory is measured against it, not against the
2025/26 one held at its March 2026 end target.

Ratio standards: the 52-week standard is "under 1% of the waiting list", a ratio of two catalogue metrics. It is
written as `metric_id: rtt_52wk_waiters` with `ratio_of: rtt_waiting_list`; the measured series is computed here as
100 x rtt_52wk_waiters / rtt_waiting_list per organisation and month (only where the list > 0) and is called
`rtt_52wk_waiters_pct_of_rtt_waiting_list` in targets and gaps, so it never mixes with the count series.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import duckdb
import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, field_validator, \
    model_validator
from pydantic_core import PydanticCustomError

from ibp_pipeline import settings
from ibp_pipeline.config import DOCUMENTS, PROJECT_ROOT, get_paths
from ibp_pipeline.lib.config_errors import error_line, id_label, loc_text
from ibp_pipeline.lib.duckdb_tables import replace_table
from ibp_pipeline.step1_current_state.catalogue import BY_ID

SCHEMA = "s2_triple_aim"
S1 = "s1_current_state"
REGISTRY_PATH = DOCUMENTS / "standards.yaml"
LOCAL_AMBITIONS_ENV = "IBP_LOCAL_AMBITIONS"
PLANNING_YEAR_ENV = "IBP_PLANNING_YEAR"  # e.g. "2027/28": look at another planning year than today's
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


def _target_problem(value: float, metric_id: str | None, ratio_of: str | None) -> str | None:
    """Why a target is out of range for its metric (0-100 for a percentage, else not negative), or None."""
    metric = BY_ID.get(metric_id or "")
    percent = ratio_of is not None or (metric is not None and metric.unit == "percent")
    if percent and not 0 <= value <= 100:
        return "must be between 0 and 100"
    if value < 0:
        return "must not be negative"
    return None


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


class Milestone(BaseModel):
    """One point a multi-year trajectory must pass: a target by a deadline, for some organisation levels."""
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    deadline: dt.date
    target: float
    applies_to: list[OrgLevel] | None = Field(default=None, min_length=1)
    minimum_improvement_points: float | None = Field(default=None, ge=0, le=100)
    minimum_improvement_cap: float | None = Field(default=None, ge=0, le=100)
    averaged_over_financial_year: bool = False

    @field_validator("deadline")
    @classmethod
    def _period(cls, v: dt.date) -> dt.date:
        return _first_of_month(v)  # type: ignore[return-value]

    @model_validator(mode="after")
    def _consistent(self) -> "Milestone":
        if self.minimum_improvement_cap is not None and self.minimum_improvement_points is None:
            raise _field_error("minimum_improvement_cap", "only goes with minimum_improvement_points")
        if self.averaged_over_financial_year and self.deadline.month != 3:
            raise _field_error("deadline", "a target averaged over a financial year is due at its last month "
                                           f"(March), got {self.deadline}")
        return self

    def levels(self, default: list[str]) -> list[str]:
        return list(self.applies_to) if self.applies_to is not None else list(default)

    @property
    def knot_month(self) -> dt.date:
        """Where the trajectory reaches this target: the deadline, or for a year-average target the first month
        of its financial year (the line then holds the target all year, so a year on trajectory meets it)."""
        return financial_year_start(financial_year(self.deadline)) if self.averaged_over_financial_year \
            else self.deadline


class Standard(BaseModel):
    """One national standard or planning target (see standards.yaml for the meaning of each field)."""
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    standard_id: str = Field(pattern=r"^[a-z0-9_]+$")
    metric_id: str
    ratio_of: str | None = None
    name: str = Field(min_length=1)
    kind: Literal["constitutional", "planning_target"]
    target: float | None = None
    direction: Literal["at_least", "at_most"]
    effective_from: dt.date
    deadline: dt.date | None = None
    milestones: list[Milestone] | None = Field(default=None, min_length=1)
    baseline_period: dt.date | None = None
    baseline_fallback: Literal["recent", "latest"] = "recent"
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
    def _target_range(cls, v: float | None, info: ValidationInfo) -> float | None:
        problem = None if v is None else _target_problem(v, info.data.get("metric_id"), info.data.get("ratio_of"))
        if problem:
            raise PydanticCustomError("target_range", problem)
        return v

    @field_validator("effective_from", "deadline", "baseline_period")
    @classmethod
    def _period(cls, v: dt.date | None) -> dt.date | None:
        return _first_of_month(v)

    @model_validator(mode="after")
    def _consistent(self) -> "Standard":
        if self.ratio_of is not None and self.ratio_of == self.metric_id:
            raise _field_error("ratio_of", f"must differ from metric_id, got {self.ratio_of!r}")
        if self.milestones is not None:
            self._check_milestones()
        elif self.target is None:
            raise _field_error("target", "required field is missing (or give milestones)")
        if self.deadline is not None and self.deadline < self.effective_from:
            raise _field_error("deadline", f"must not be before effective_from ({self.effective_from}), "
                                           f"got {self.deadline}")
        if self.kind == "constitutional" and self.deadline is not None:
            raise _field_error("deadline", "a constitutional standard is a flat line and takes no deadline, "
                                           f"got {self.deadline}")
        if self.baseline_period is not None:
            if self.final_deadline is None:
                raise _field_error("baseline_period", "only a trajectory (a planning_target with a deadline) has "
                                                      f"a baseline, got {self.baseline_period}")
            if self.milestones is None and self.baseline_period >= self.final_deadline:
                raise _field_error("baseline_period", f"must be before the deadline ({self.deadline}), "
                                                      f"got {self.baseline_period}")
        if self.minimum_improvement_points is not None and not self.is_trajectory:
            raise _field_error("minimum_improvement_points", "only a trajectory (a planning_target with a "
                                                             "deadline) takes a minimum improvement")
        if self.minimum_improvement_cap is not None:
            if self.minimum_improvement_points is None:
                raise _field_error("minimum_improvement_cap", "only goes with minimum_improvement_points")
            assert self.target is not None
            self._check_cap("minimum_improvement_cap", self.minimum_improvement_cap, self.target)
        metric = BY_ID[self.metric_id]
        if self.ratio_of is None and metric.higher_is_better is not None:
            expected = "at_least" if metric.higher_is_better else "at_most"
            if self.direction != expected:
                better = "higher" if metric.higher_is_better else "lower"
                raise _field_error("direction", f"{self.metric_id} is {better}-is-better in the catalogue, so "
                                                f"the direction must be {expected}, got {self.direction!r}")
        return self

    def _check_cap(self, field: str, cap: float, target: float) -> None:
        beyond = cap < target if self.direction == "at_least" else cap > target
        if beyond:
            raise _field_error(field, f"must not ask less than the target ({target:g}), got {cap:g}")

    def _check_milestones(self) -> None:
        """Milestones replace target, deadline and the minimum improvement fields; each is in range, after the
        baseline, for levels of applies_to; every level has one, and a level's milestones are in date order."""
        assert self.milestones is not None
        if self.kind != "planning_target":
            raise _field_error("milestones", "only a planning_target has milestones (a constitutional standard is "
                                             "a flat line)")
        for name in ("target", "deadline", "minimum_improvement_points", "minimum_improvement_applies_to",
                     "minimum_improvement_cap"):
            if name in self.model_fields_set:
                raise _field_error(name, "a standard with milestones gives this on each milestone instead")
        baseline = self.baseline_month
        for i, m in enumerate(self.milestones):
            where = f"milestones[{i}]"
            problem = _target_problem(m.target, self.metric_id, self.ratio_of)
            if problem:
                raise _field_error(f"{where}.target", f"{problem}, got {m.target:g}")
            if m.deadline < self.effective_from:
                raise _field_error(f"{where}.deadline", f"must not be before effective_from "
                                                        f"({self.effective_from}), got {m.deadline}")
            if baseline is not None and m.knot_month <= baseline:
                raise _field_error(f"{where}.deadline", f"must be after the baseline period ({baseline}), "
                                                        f"got {m.deadline}")
            outside = [lv for lv in m.levels(self.applies_to) if lv not in self.applies_to]
            if outside:
                raise _field_error(f"{where}.applies_to", f"{outside[0]!r} is not in the standard's applies_to")
            if m.minimum_improvement_cap is not None:
                self._check_cap(f"{where}.minimum_improvement_cap", m.minimum_improvement_cap, m.target)
        for level in self.applies_to:
            plan = self.milestones_for(level)
            if not plan:
                raise _field_error("applies_to", f"no milestone applies to {level!r}")
            for before, after in zip(plan, plan[1:]):
                if after.knot_month <= before.deadline:
                    i = self.milestones.index(after)
                    why = " (a year-average target starts in the April before it)" \
                        if after.averaged_over_financial_year else ""
                    raise _field_error(f"milestones[{i}].deadline",
                                       f"must come after the {level} milestone due {before.deadline:%Y-%m}{why}, "
                                       f"got {after.deadline}")

    # ---- derived facts --------------------------------------------------------------------------------------
    @property
    def is_trajectory(self) -> bool:
        """A planning target with a deadline (or milestones) moves from each organisation's baseline to it."""
        return self.kind == "planning_target" and (self.deadline is not None or self.milestones is not None)

    @property
    def final_deadline(self) -> dt.date | None:
        """The deadline, or the last milestone's: when the standard ends (held after it)."""
        if self.milestones is not None:
            return max(m.deadline for m in self.milestones)
        return self.deadline

    @property
    def final_target(self) -> float:
        """The target, or the last milestone's (the last listed of those due at the final deadline)."""
        if self.milestones is not None:
            return [m for m in self.milestones if m.deadline == self.final_deadline][-1].target
        assert self.target is not None
        return self.target

    def milestones_for(self, level: str) -> list[Milestone]:
        """The milestones an organisation of this level must pass, in date order: a single-deadline trajectory
        is one milestone (with the minimum improvement where its level is in minimum_improvement_applies_to);
        a flat standard has none."""
        if not self.is_trajectory:
            return []
        if self.milestones is not None:
            return sorted((m for m in self.milestones if level in m.levels(self.applies_to)),
                          key=lambda m: m.deadline)
        assert self.deadline is not None and self.target is not None
        improves = self.minimum_improvement_points is not None and level in self.minimum_improvement_applies_to
        return [Milestone(deadline=self.deadline, target=self.target,
                          minimum_improvement_points=self.minimum_improvement_points if improves else None,
                          minimum_improvement_cap=self.minimum_improvement_cap if improves else None)]

    @property
    def planning_years(self) -> tuple[str, str | None]:
        """First and last financial year the standard is in force: from effective_from to the final deadline
        for a trajectory, open-ended (None) for a flat standard, which stays in force until withdrawn."""
        last = self.final_deadline if self.is_trajectory else None
        return financial_year(self.effective_from), None if last is None else financial_year(last)

    def in_force(self, year: str) -> bool:
        """Whether the standard applies in the planning year `year` (e.g. '2026/27')."""
        first, last = self.planning_years
        start = financial_year_start(year)
        return financial_year_start(first) <= start and (last is None or start <= financial_year_start(last))

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
        return _add_months(financial_year_start(financial_year(self.effective_from)), -1)


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
    env = settings.get(LOCAL_AMBITIONS_ENV)
    return (Path(env), True) if env else (get_paths().data / "config" / "local_ambitions.yaml", False)


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


def trajectory_through(period: dt.date, baseline_month: dt.date, baseline: float | None,
                       knots: list[tuple[dt.date, float]], direction: str) -> float:
    """The target in one period on a trajectory through several milestones (knots: (month, end target), in date
    order): up to the first knot as trajectory_value (so flat when the baseline already meets it), then a straight
    line from each knot to the next, the last knot's target after it. A March with no milestone of its own (e.g.
    March 2028 between March 2027 and March 2029) is on the line: linear interpolation between its neighbours."""
    first_month, first_value = knots[0]
    if period <= first_month:
        return trajectory_value(period, baseline_month, baseline, first_value, first_month, direction)
    for (m0, v0), (m1, v1) in zip(knots, knots[1:]):
        if period <= m1:
            return v0 + (v1 - v0) * months_between(period, m0) / months_between(m1, m0)
    return knots[-1][1]


def milestone_knots(plan: list[Milestone], ends: list[float]) -> list[tuple[dt.date, float]]:
    """The points a trajectory passes through: each milestone's end target at its deadline; a year-average
    milestone is held through its financial year (from April to the March deadline), so a year on the trajectory
    averages the target."""
    knots: list[tuple[dt.date, float]] = []
    for m, end in zip(plan, ends):
        if m.averaged_over_financial_year:
            knots.append((m.knot_month, end))
        knots.append((m.deadline, end))
    return knots


def financial_year(day: dt.date) -> str:
    """The NHS financial year (April-March) containing day: 2026-12-07 -> '2026/27', 2027-04-01 -> '2027/28'."""
    start = day.year if day.month >= 4 else day.year - 1
    return f"{start}/{(start + 1) % 100:02d}"


def financial_year_start(year: str) -> dt.date:
    """'2026/27' -> 2026-04-01; ValueError unless written YYYY/YY with consecutive years."""
    parts = year.strip().split("/")
    if len(parts) != 2 or not (parts[0].isdigit() and len(parts[0]) == 4 and parts[1].isdigit()
                               and len(parts[1]) == 2) or (int(parts[0]) + 1) % 100 != int(parts[1]):
        raise ValueError(f"must be a financial year written like 2026/27, got {year!r}")
    return dt.date(int(parts[0]), 4, 1)


def planning_year_in_force(today: dt.date | None = None) -> str:
    """The planning year whose targets are in force: IBP_PLANNING_YEAR when set (to look at another year), else
    the financial year containing today. A badly written setting stops with one line naming it."""
    setting = settings.get(PLANNING_YEAR_ENV, "")
    if not setting:
        return financial_year(today or dt.date.today())
    try:
        financial_year_start(setting)
    except ValueError as exc:
        raise StandardsConfigError(f"{PLANNING_YEAR_ENV}: {exc}") from None
    return setting


def year_average(series: dict[dt.date, float], year: str) -> float | None:
    """Mean of the 12 monthly values of financial year `year`; None when any month is missing (not judged)."""
    start = financial_year_start(year)
    months = [_add_months(start, i) for i in range(12)]
    if any(m not in series or series[m] is None for m in months):
        return None
    return sum(series[m] for m in months) / 12


def meets_year_average(series: dict[dt.date, float], year: str, target: float, direction: str) -> bool | None:
    """Whether a monthly series meets a target judged as its average over financial year `year` (A&E 85%
    'as the average across 2028/29'), not its March value; None when the year is incomplete."""
    mean = year_average(series, year)
    if mean is None:
        return None
    return mean >= target if direction == "at_least" else mean <= target


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
    "milestones": pl.String, "baseline_fallback": pl.String, "planning_years": pl.String,
    "planning_year": pl.String, "in_force": pl.Boolean,
}


def milestones_text(s: Standard) -> str | None:
    """The milestones in words: '2027-03: 65 for provider, or baseline + 7 points where that asks more (cap 92);
    2027-03: 70 for england; ...'."""
    if s.milestones is None:
        return None
    parts = []
    for m in sorted(s.milestones, key=lambda m: m.deadline):
        text = f"{m.deadline:%Y-%m}: {m.target:g} for {', '.join(m.levels(s.applies_to))}"
        if m.minimum_improvement_points is not None:
            sign = "+" if s.direction == "at_least" else "-"
            cap = "" if m.minimum_improvement_cap is None else f" (cap {m.minimum_improvement_cap:g})"
            text += f", or baseline {sign} {m.minimum_improvement_points:g} points where that asks more{cap}"
        if m.averaged_over_financial_year:
            text += f", as the average over {financial_year(m.deadline)}"
        parts.append(text)
    return "; ".join(parts)


def planning_years_text(s: Standard) -> str:
    first, last = s.planning_years
    if last is None:
        return f"{first} onwards"
    return first if first == last else f"{first} to {last}"


def _write(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    return replace_table(con, SCHEMA, table, frame)


def standards_frame(registry: Registry, local: LocalAmbitions | None = None,
                    planning_year: str | None = None) -> pl.DataFrame:
    """One row per national and local standard, every field plus origin and the file it came from, and whether
    it is in force in the planning year (default planning_year_in_force()). For a standard with milestones,
    target and deadline are its last milestone's and the milestones column lists them all."""
    year = planning_year or planning_year_in_force()
    rows = []
    for s, origin, file in _applied(registry, local):
        version = registry.version if origin == "national" else local.version  # type: ignore[union-attr]
        rows.append({
            "standard_id": s.standard_id, "origin": origin, "config_file": file, "config_version": version,
            "metric_id": s.metric_id, "ratio_of": s.ratio_of, "measure_id": s.measure_id,
            "measure_name": s.measure_name, "name": s.name, "kind": s.kind, "target": s.final_target,
            "direction": s.direction, "effective_from": s.effective_from, "deadline": s.final_deadline,
            "baseline_period": s.baseline_month, "is_trajectory": s.is_trajectory,
            "minimum_improvement_points": s.minimum_improvement_points,
            "minimum_improvement_applies_to": ", ".join(s.minimum_improvement_applies_to)
            if s.minimum_improvement_points is not None else None,
            "minimum_improvement_cap": s.minimum_improvement_cap,
            "applies_to": ", ".join(s.applies_to),
            "org_codes": ", ".join(s.org_codes) if isinstance(s, LocalStandard) else None,
            "overrides": s.overrides if isinstance(s, LocalStandard) else None,
            "source_document": s.source.document, "source_year": s.source.year, "source_url": s.source.url,
            "notes": s.notes, "milestones": milestones_text(s),
            "baseline_fallback": s.baseline_fallback if s.is_trajectory else None,
            "planning_years": planning_years_text(s), "planning_year": year, "in_force": s.in_force(year),
        })
    return pl.DataFrame(rows, schema=STANDARDS_SCHEMA)


def build_standards(con: duckdb.DuckDBPyConnection, registry: Registry, local: LocalAmbitions | None = None,
                    planning_year: str | None = None) -> int:
    """Write s2_triple_aim.standards and return its row count."""
    return _write(con, "standards", standards_frame(registry, local, planning_year))


TARGETS_SCHEMA = {
    "org_code": pl.String, "org_level": pl.String, "metric_id": pl.String, "period_start": pl.Date,
    "period_grain": pl.String, "standard_id": pl.String, "standard_name": pl.String, "kind": pl.String,
    "direction": pl.String, "target_value": pl.Float64, "is_trajectory": pl.Boolean, "is_primary": pl.Boolean,
    "applied": pl.String, "config_file": pl.String, "overrides_standard_id": pl.String,
    "effective_from": pl.Date, "deadline": pl.Date, "baseline_period": pl.Date, "baseline_value": pl.Float64,
    "baseline_method": pl.String, "end_target_value": pl.Float64, "target_method": pl.String,
    "milestone_deadline": pl.Date, "milestone_target_value": pl.Float64, "averaged_over_financial_year": pl.Boolean,
    "financial_year": pl.String, "planning_year": pl.String, "in_force": pl.Boolean,
}


def _baseline(series: dict[dt.date, float], month: dt.date,
              lookback: int | None = BASELINE_LOOKBACK_MONTHS) -> tuple[float | None, str]:
    """The value at the baseline month, else the latest in the `lookback` months before it (any earlier month
    when lookback is None: baseline_fallback 'latest')."""
    if month in series:
        return series[month], f"value at {month:%Y-%m}"
    earliest = None if lookback is None else _add_months(month, -lookback)
    earlier = [m for m in series if m < month and (earliest is None or m >= earliest)]
    if earlier:
        m = max(earlier)
        return series[m], f"no value at {month:%Y-%m}; latest value before it, at {m:%Y-%m}"
    if earliest is None:
        return None, f"no value at or before {month:%Y-%m}: flat at the standard's target"
    return None, f"no value from {earliest:%Y-%m} to {month:%Y-%m}: flat at the standard's target"


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


def _milestone_method(s: Standard, baseline: float | None, plan: list[Milestone], ends: list[float]) -> str:
    """How a multi-year trajectory was drawn: each milestone's end target (with its rule), the Marches between
    milestones that the framework does not set (interpolated), and the straight lines between them."""
    assert s.baseline_month is not None
    start = "no baseline: flat at the first milestone" if baseline is None else \
        f"baseline {baseline:.2f} as the line's start in {s.baseline_month:%Y-%m} (baseline_method: which month)"
    steps = [start]
    knots = milestone_knots(plan, ends)
    for m, end in zip(plan, ends):
        text = f"{m.deadline:%Y-%m}: {end:.2f}"
        if m.minimum_improvement_points is not None:
            sign, op, bound = ("+", "max", "min") if s.direction == "at_least" else ("-", "min", "max")
            improved = f"baseline {sign} {m.minimum_improvement_points:g} points"
            if m.minimum_improvement_cap is not None:
                improved = f"{bound}({improved}, {m.minimum_improvement_cap:g})"
            text += f" = {op}({m.target:g}, {improved})"
        if m.averaged_over_financial_year:
            text += (f" as the average over {financial_year(m.deadline)}: held from {m.knot_month:%Y-%m} so a year "
                     f"on trajectory averages it")
        steps.append(text)
    given = {m.deadline for m in plan}
    marches = [dt.date(y, 3, 1) for y in range(s.baseline_month.year + 1, plan[-1].deadline.year)]
    for march in marches:
        if march not in given:
            value = trajectory_through(march, s.baseline_month, baseline, knots, s.direction)
            steps.append(f"{march:%Y-%m}: {value:.2f} (not set by the guidance: interpolated on the line)")
    steps[1:] = sorted(steps[1:])
    flat = baseline is not None and (baseline >= ends[0] if s.direction == "at_least" else baseline <= ends[0])
    lead = "flat to the first milestone (the baseline already meets it), then " if flat else ""
    return (f"trajectory through milestones, {lead}straight lines month by month between them, held after the "
            f"last: " + " -> ".join(steps))


def _org_rows(s: Standard, org: str, level: str, periods: list[dt.date], series: dict[dt.date, float],
              fixed: tuple[str, str, str | None], year: str) -> list[tuple]:
    """The target rows of one organisation under one standard (fixed: origin, config file, overrides)."""
    origin, file, overrides = fixed
    plan = s.milestones_for(level)
    baseline, method, ends = None, None, [m.target for m in plan]
    if plan:
        assert s.baseline_month is not None
        lookback = None if s.baseline_fallback == "latest" else BASELINE_LOOKBACK_MONTHS
        baseline, method = _baseline(series, s.baseline_month, lookback)
        ends = [trajectory_end(baseline, m.target, s.direction, m.minimum_improvement_points,
                               m.minimum_improvement_cap) for m in plan]
    end_target = ends[-1] if plan else s.final_target
    deadline = plan[-1].deadline if plan else None
    text = (_milestone_method(s, baseline, plan, ends) if s.milestones is not None
            else _target_method(s, baseline, end_target, level))
    knots = milestone_knots(plan, ends)
    in_force = s.in_force(year)
    rows = []
    for p in periods:
        value = trajectory_through(p, s.baseline_month, baseline, knots, s.direction) if plan else s.final_target
        k = next((i for i, m in enumerate(plan) if m.deadline >= p), len(plan) - 1)
        milestone = (plan[k].deadline, ends[k], plan[k].averaged_over_financial_year) if plan else (None, None, None)
        rows.append((org, level, s.measure_id, p, s.grain, s.standard_id, s.name, s.kind, s.direction, value,
                     s.is_trajectory, False, origin, file, overrides, s.effective_from, deadline, s.baseline_month,
                     baseline, method, end_target, text, *milestone, financial_year(p), year, in_force))
    return rows


def rank_primary(frame: pl.DataFrame) -> pl.DataFrame:
    """is_primary per organisation x measure x period: a trajectory not yet past its deadline, else one held
    after its deadline, else a flat planning target, else the constitutional standard; a local standard before
    a national one of the same rank; then the later deadline (the newer planning round), then standard_id. So
    the 2026/27 trajectory, not the 2025/26 one held at its March 2026 end target, is primary from April 2026."""
    trajectory = pl.col("is_trajectory").fill_null(False)
    rank = (pl.when(trajectory & (pl.col("period_start") <= pl.col("deadline"))).then(0)
            .when(trajectory).then(1).when(pl.col("kind") == "planning_target").then(2).otherwise(3))
    return (frame.with_columns(_rank=rank, _local=(pl.col("applied") != "local").cast(pl.Int8))
            .sort("org_code", "metric_id", "period_start", "_rank", "_local", "deadline", "standard_id",
                  descending=[False, False, False, False, False, True, False], nulls_last=True)
            .with_columns(is_primary=pl.int_range(pl.len()).over("org_code", "metric_id", "period_start") == 0)
            .drop("_rank", "_local"))


def targets_frame(values: pl.DataFrame, registry: Registry, local: LocalAmbitions | None = None,
                  planning_year: str | None = None) -> pl.DataFrame:
    """Every organisation x measure x period x applicable standard, with its target and which row is primary.

    values: the measured series (columns of VALUE_SCHEMA). Each organisation gets rows from its first period with
    data (not before effective_from) to its last, extended to its last milestone when it is still reporting.
    planning_year (default planning_year_in_force()) sets in_force: whether the row's standard applies in it."""
    year = planning_year or planning_year_in_force()
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
        mine = spans.filter(pl.col("metric_id") == s.measure_id, pl.col("org_level").is_in(s.applies_to))
        for org, level, _, first, last in mine.iter_rows():
            if org_codes is not None and org not in org_codes:
                continue
            if origin == "national" and (s.standard_id, org) in replaced:
                continue
            plan = s.milestones_for(level)
            end = last
            active = months_between(series_end[s.measure_id], last) < ACTIVE_WITHIN_MONTHS
            if plan and active:
                end = max(last, plan[-1].deadline)
            periods = _period_range(max(first, start_floor), end, s.grain)
            if periods:
                rows += _org_rows(s, org, level, periods, by_series.get((org, s.measure_id), {}),
                                  (origin, file, overrides), year)
    frame = pl.DataFrame(rows, schema=TARGETS_SCHEMA, orient="row")
    return rank_primary(frame).select(list(TARGETS_SCHEMA))


def build_targets(con: duckdb.DuckDBPyConnection, registry: Registry, local: LocalAmbitions | None = None,
                  planning_year: str | None = None) -> int:
    """Write s2_triple_aim.targets (see targets_frame) and return its row count."""
    measures = {s.measure_id: (s.metric_id, s.ratio_of) for s, _, _ in _applied(registry, local)}
    values = read_measure_values(con, measures)
    return _write(con, "targets", targets_frame(values, registry, local, planning_year))
