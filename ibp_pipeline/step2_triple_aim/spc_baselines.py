"""Where each SPC series' limits come from: the baseline periods and rebase points, Making Data Count style.

Why: limits computed over every month since 2016 call every recent month "concerning" and promise a target the
recent months never met. Making Data Count sets limits from a stated baseline and recalculates them (rebases)
only at a sustained, explained change. Here a series is split into periods at known breaks (the pandemic months
of documents/spc_baselines.yaml, a change in the providers a total covers, a merger into the trust), at the
start of a recent window (the last 36 months) unless an analyst has stated rebase dates for the series in
data/config/spc_rebase.yaml; each period's limits come from its first 24 points (NHSRplotthedots `rebase` and
`fix_after_n_points`). `series_periods` is pure and is what spc.py calls for every series.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..config import DOCUMENTS, get_paths
from ..lib.config_errors import error_line, id_label

PATH = DOCUMENTS / "spc_baselines.yaml"
REBASE_FILE = "spc_rebase.yaml"  # in the data folder's config/


class Break(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    id: str
    start: dt.date = Field(alias="from")
    end: dt.date = Field(alias="to")
    reason: str = Field(min_length=3)
    measures: list[str] | None = None  # None: every measure


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    baseline_months: int = Field(ge=12)
    min_baseline_months: int = Field(ge=12)
    recent_months: int = Field(ge=12)
    merge_months: int = Field(ge=0)
    breaks: list[Break] = []


class Rebase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org_code: str = Field(min_length=3)
    measure: str = Field(min_length=2)
    month: dt.date
    reason: str = Field(min_length=3)

    @field_validator("month")
    @classmethod
    def _first_of_month(cls, v: dt.date) -> dt.date:
        if v.day != 1:
            raise ValueError(f"must be the first day of a month (YYYY-MM-01), got {v.isoformat()}")
        return v


class RebaseFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rebases: list[Rebase] = []


class BaselineConfigError(ValueError):
    """A baselines or rebase document the pipeline cannot use; one line per problem, naming file and entry."""


def _validate(model: type[BaseModel], path: Path, raw: object, ids: dict[str, str]) -> BaseModel:
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        lines = [error_line(str(path), err, raw, label=id_label(ids), fields_hint=", ".join(model.model_fields))
                 for err in e.errors()]
        raise BaselineConfigError("\n".join(lines)) from None


def load_policy(path: Path = PATH) -> Policy:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return _validate(Policy, path, raw, {"breaks": "id"})  # type: ignore[return-value]


def rebase_path() -> Path:
    return get_paths().data / "config" / REBASE_FILE


def load_rebases(path: Path | None = None) -> list[Rebase]:
    """The analyst's rebase dates (data/config/spc_rebase.yaml); none when the file does not exist."""
    path = path or rebase_path()
    if not path.is_file():
        return []
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return _validate(RebaseFile, path, raw, {"rebases": "org_code"}).rebases  # type: ignore[attr-defined]


def check_rebases(rebases: Sequence[Rebase], path: Path, orgs: set[str], measures: set[str]) -> None:
    """Unknown organisation or measure codes in the rebase file, one readable line each."""
    problems = []
    for i, r in enumerate(rebases):
        if r.org_code not in orgs:
            problems.append(f"{path}: rebases[{i}] ({r.org_code}).org_code: unknown organisation code "
                            f"{r.org_code!r} (no monthly figures for it)")
        if r.measure not in measures:
            problems.append(f"{path}: rebases[{i}] ({r.org_code}).measure: unknown measure {r.measure!r} "
                            f"(known: {', '.join(sorted(measures)[:8])}, ...)")
    if problems:
        raise BaselineConfigError("\n".join(problems))


def _months(later: dt.date, earlier: dt.date) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def _add_months(d: dt.date, n: int) -> dt.date:
    m = d.year * 12 + d.month - 1 + n
    return dt.date(m // 12, m % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    start: int       # index of the period's first point
    reason: str      # why a period starts here, in words


def series_periods(months: Sequence[dt.date], policy: Policy, *, measure: str = "",
                   coverage: Sequence[str | None] | None = None, mergers: Sequence[tuple[dt.date, str]] = (),
                   rebases: Sequence[tuple[dt.date, str]] = ()) -> list[Period]:
    """The periods of one series (its months in order, no duplicates), each with the reason it starts.

    Breaks (the document's, for this measure), a change in coverage and a merger always start a period, and a
    break's months are a period of their own. The analyst's rebases start periods; without any, the first month
    of the last `recent_months` starts one unless another start lies within `merge_months` of it."""
    n = len(months)
    if n == 0:
        return []
    starts: dict[int, list[str]] = {0: ["start of the series"]}

    def add(i: int | None, reason: str) -> None:
        if i is not None and 0 < i < n and reason not in starts.setdefault(i, []):
            starts[i].append(reason)

    def first_at_or_after(d: dt.date) -> int | None:
        return next((i for i, m in enumerate(months) if m >= d), None)

    for b in policy.breaks:
        if b.measures is not None and measure not in b.measures:
            continue
        inside = [i for i, m in enumerate(months) if b.start <= m <= b.end]
        if inside:
            add(inside[0], f"a known break: {b.reason}")
        add(first_at_or_after(_add_months(b.end, 1)), f"the first month after a known break ({b.reason})")
    if coverage is not None:
        for i in range(1, n):
            if coverage[i] is not None and coverage[i - 1] is not None and coverage[i] != coverage[i - 1]:
                add(i, "the organisations this total covers changed (a new source)")
    for month, name in mergers:
        add(first_at_or_after(month), f"a merger: {name} joined")
    for month, reason in rebases:
        add(first_at_or_after(month), f"rebased by the analyst: {reason}")
    if not rebases:
        window = _add_months(months[-1], -(policy.recent_months - 1))
        i = first_at_or_after(window)
        near = any(abs(_months(months[s], window)) < policy.merge_months for s in starts)
        if i and not near:
            add(i, f"recent baseline: the last {policy.recent_months} months")
    return [Period(i, "; ".join(starts[i])) for i in sorted(starts)]
