"""Great Expectations (GX 1.x) suites for the step-1 source tables.

Why GX at all: the checks become a standard, reviewable artefact (an ExpectationSuite per source) and the
results render as Data Docs HTML that non-engineers can read. Why this shape:

- GX 1.x has no polars datasource and its SQL datasource fails on DuckDB, so each polars frame is validated
  through GX's pandas datasource (one batch, one validation definition, every expectation of the suite).
- Importing GX costs about 4 s, so it is imported lazily inside functions; importing this module is cheap.
- Sum checks (total row = sum of the other rows) are computed per group in polars; the per-group absolute
  differences ride along in the same pandas batch as an extra padded column, so one source still gives
  exactly one validation result and one Data Docs page.
- With `docs_dir`, the suite and the latest validation result of each source are kept in GX's own filesystem
  stores under `docs_dir/gx_stores/`, so `build_data_docs` can render them from any later process.
"""
from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:  # pragma: no cover - typing only, keeps module import fast
    import pandas as pd

DOCS_SITE_NAME = "ibp_quality_site"
"""Our Data Docs site; GX's ephemeral default site is called `local_site`, so we never reuse that name."""

STORES_SUBDIR = "gx_stores"
DOCS_SUBDIR = "data_docs"
CHECK_META_KEY = "ibp_check"
"""Each expectation carries `meta={CHECK_META_KEY: check_name}`: the link from a GX result back to its outcome."""

_SUM_COLUMN_PREFIX = "__sum_check__"
_EXAMPLES = 3  # how many offending values a details line quotes
_RESULT_FORMAT: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 10}

# Accepted column kinds -> the pandas dtypes GX may see. pandas 3 reads polars strings as
# StringDtype(na_value=nan), which GX 1.24's type check cannot match, so text columns are converted
# to StringDtype() (na_value=<NA>) before validation; "str" also covers object columns of Python strings.
_TEXT_TYPES = ["str", "StringDtype"]
_NUMBER_TYPES = [
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float32", "float64", "Int64Dtype", "Float64Dtype", "int", "float",
]
_DATE_TYPES = ["datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]", "datetime64"]
_KIND_ALIASES = {
    "text": "text", "code": "text",
    "number": "number", "count": "number", "fraction": "number",
    "date": "date",
}
_TYPE_LISTS = {"text": _TEXT_TYPES, "number": _NUMBER_TYPES, "date": _DATE_TYPES}


# --------------------------------------------------------------------------------------------- interface


@dataclass(frozen=True)
class SumCheck:
    """Within each group, the row flagged as total must equal the sum of the other rows, per value column."""

    name: str  # e.g. "total_row_equals_sum_of_providers"
    group_columns: tuple[str, ...]  # e.g. ("period_start",) or ("_source_file",)
    total_flag_column: str  # boolean column: True on the total row
    value_columns: tuple[str, ...]
    tolerance: float = 0.5


@dataclass(frozen=True)
class SuiteSpec:
    """What one source must satisfy; turned into one GX ExpectationSuite named after `source`."""

    source: str  # e.g. "ae_monthly_official"
    columns: dict[str, str]  # column -> kind: "text" | "number" | "date"
    key_columns: tuple[str, ...] = ()  # compound key must be unique
    non_negative: tuple[str, ...] = ()  # count columns: >= 0 where not null
    ratio_pairs: tuple[tuple[str, str], ...] = ()  # (numerator, denominator): numerator <= denominator
    org_column: str | None = None
    known_orgs: frozenset[str] = frozenset()  # org_column values must be in this set (nulls fail too)
    period_column: str | None = None
    period_min: date | None = None
    period_max: date | None = None
    sum_checks: tuple[SumCheck, ...] = ()


@dataclass
class CheckOutcome:
    """One named check's verdict.

    failing_rows counts rows (groups for sum checks). A missing column or a wrong dtype affects every row,
    so those report the frame height; a check that could not run (its column is missing) reports 0 and
    says so in `details`. Checks made of several expectations name them joined by "+".
    """

    source: str
    check: str
    expectation: str
    passed: bool
    blocking: bool
    failing_rows: int
    details: str


@dataclass
class SuiteResult:
    source: str
    success: bool  # all blocking checks passed
    outcomes: list[CheckOutcome]
    rows_validated: int
    seconds: float
    reused_from: str | None = None  # a run whose passing verdict on the same rows and suite was reused


# ------------------------------------------------------------------------------------------ GX plumbing


def _gx() -> Any:
    """Import GX on first use only: it costs ~4 s, and analytics must be off before the import."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    return gx


def _fs_backend(directory: Path) -> dict[str, str]:
    return {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(directory.resolve())}


def _context(docs_dir: Path | None) -> Any:
    """An ephemeral context; with docs_dir, its suite/result stores and our docs site live on disk there."""
    gx = _gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    defaults = InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    sites: dict[str, Any] = {}
    if docs_dir is not None:
        stores = Path(docs_dir) / STORES_SUBDIR
        defaults.stores[defaults.expectations_store_name]["store_backend"] = _fs_backend(stores / "expectations")
        defaults.stores[defaults.validation_results_store_name]["store_backend"] = _fs_backend(
            stores / "validations"
        )
        sites[DOCS_SITE_NAME] = {
            "class_name": "SiteBuilder",
            "store_backend": _fs_backend(Path(docs_dir) / DOCS_SUBDIR),
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=defaults,
        data_docs_sites=sites,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


# ------------------------------------------------------------------------------------------ planning


ResultSummary = Callable[[list[Any]], tuple[int, str]]
"""Turns the GX results of one check's expectations into (failing_rows, details)."""


@dataclass
class _Planned:
    """A check that will run in GX: its expectations and how to read their results."""

    check: str
    blocking: bool
    expectations: list[Any]
    summarise: ResultSummary

    @property
    def expectation_names(self) -> str:
        return "+".join(dict.fromkeys(type(e).__name__ for e in self.expectations))


def _kind(column: str, kind: str) -> str:
    try:
        return _KIND_ALIASES[kind]
    except KeyError:
        raise ValueError(f"column {column!r}: unknown kind {kind!r} (use text, number or date)") from None


def _referenced_columns(spec: SuiteSpec) -> list[str]:
    """Every column some check reads: all of them must exist."""
    cols: list[str] = [*spec.columns, *spec.key_columns, *spec.non_negative]
    for numerator, denominator in spec.ratio_pairs:
        cols += [numerator, denominator]
    cols += [c for c in (spec.org_column, spec.period_column) if c]
    for sc in spec.sum_checks:
        cols += [*sc.group_columns, sc.total_flag_column, *sc.value_columns]
    return list(dict.fromkeys(cols))


def _check_names(spec: SuiteSpec) -> list[str]:
    names = ["columns_present", "column_types"]
    names += [f"non_negative:{c}" for c in spec.non_negative]
    names += [f"numerator_le_denominator:{n}/{d}" for n, d in spec.ratio_pairs]
    names += ["known_org_codes"] if spec.org_column else []
    names += ["period_in_range"] if spec.period_column and (spec.period_min or spec.period_max) else []
    names += ["unique_key"] if spec.key_columns else []
    names += [sc.name for sc in spec.sum_checks]
    return names


def _validate_spec(spec: SuiteSpec) -> None:
    """Fail fast on specs that would give ambiguous outcomes."""
    for column, kind in spec.columns.items():
        _kind(column, kind)
    names = _check_names(spec)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{spec.source}: duplicate check names {duplicates}")
    if spec.period_min and spec.period_max and spec.period_min > spec.period_max:
        raise ValueError(f"{spec.source}: period_min is after period_max")
    for sc in spec.sum_checks:
        if not sc.value_columns:
            raise ValueError(f"{spec.source}: sum check {sc.name!r} has no value columns")


# ------------------------------------------------------------------------------------------ formatting


def _fmt(value: Any) -> str:
    """Render a value from a GX result the way a reader expects (dates without midnight, 5 not 5.0)."""
    if value is None:
        return "null"
    if isinstance(value, datetime):  # pandas Timestamps too
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        if math.isnan(value):
            return "null"
        return str(int(value)) if value.is_integer() else f"{value:g}"
    if hasattr(value, "item"):  # numpy scalar
        return _fmt(value.item())
    return str(value)


def _rows(n: int) -> str:
    return f"{n} row{'s' if n != 1 else ''}"


def _rows_have(n: int) -> str:
    return f"{_rows(n)} {'has' if n == 1 else 'have'}"


def _exception(results: list[Any]) -> str | None:
    """GX reports metric errors inside the result instead of raising; surface the first one."""
    for result in results:
        info = result.exception_info or {}
        infos = [info] if "raised_exception" in info else list(info.values())
        for item in infos:
            if isinstance(item, dict) and item.get("raised_exception"):
                return str(item.get("exception_message")).splitlines()[0]
    return None


def _unexpected(result: Any) -> tuple[int, list[Any]]:
    res = result.result or {}
    return int(res.get("unexpected_count") or 0), list(res.get("partial_unexpected_list") or [])


def _first(values: Sequence[Any], render: Callable[[Any], str] = _fmt) -> str:
    """The first few distinct offending values, rendered."""
    return ", ".join(list(dict.fromkeys(render(v) for v in values))[:_EXAMPLES])


def _map_summary(describe: Callable[[int, list[Any]], str], ok: str) -> ResultSummary:
    """Summary for a one-expectation row-level check: count from GX, examples from partial_unexpected_list."""

    def summarise(results: list[Any]) -> tuple[int, str]:
        error = _exception(results)
        if error:
            return 0, f"GX could not evaluate this check: {error}"
        count, examples = _unexpected(results[0])
        return (count, describe(count, examples)) if count else (0, ok)

    return summarise


# ------------------------------------------------------------------------------------------ checks


def _plan_columns_present(spec: SuiteSpec, present: set[str], height: int, gxe: Any) -> _Planned:
    required = _referenced_columns(spec)
    missing = [c for c in required if c not in present]

    def summarise(results: list[Any]) -> tuple[int, str]:
        if results[0].success:
            return 0, f"all {len(required)} expected columns are present"
        return height, f"missing column{'s' if len(missing) != 1 else ''}: {', '.join(missing)}"

    expectation = gxe.ExpectTableColumnsToMatchSet(column_set=required, exact_match=False)
    return _Planned("columns_present", True, [expectation], summarise)


def _plan_column_types(spec: SuiteSpec, present: set[str], height: int, gxe: Any) -> _Planned | None:
    typed = [(c, _kind(c, k)) for c, k in spec.columns.items() if c in present]
    if not typed:
        return None
    expectations = [gxe.ExpectColumnValuesToBeInTypeList(column=c, type_list=_TYPE_LISTS[k]) for c, k in typed]
    kinds = dict(typed)

    def summarise(results: list[Any]) -> tuple[int, str]:
        problems, worst = [], 0
        for result in results:
            if result.success:
                continue
            column = result.expectation_config.kwargs["column"]
            res = result.result or {}
            if "unexpected_count" in res:  # object column: GX checked value by value
                count, examples = _unexpected(result)
                problems.append(f"{column} has {_rows(count)} that are not {kinds[column]} (first: {_first(examples)})")
            else:  # typed column: the dtype itself is wrong, so every row is
                count = height
                problems.append(f"{column} is {res.get('observed_value')}, expected {kinds[column]}")
            worst = max(worst, count)
        if not problems:
            return 0, f"all {len(typed)} typed columns have the expected kind"
        return worst, "; ".join(problems)

    return _Planned("column_types", True, expectations, summarise)


def _plan_non_negative(column: str, gxe: Any) -> _Planned:
    summarise = _map_summary(
        lambda n, ex: f"{_rows_have(n)} {column} below 0 (first: {_first(ex)})",
        f"no negative {column}",
    )
    expectation = gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0)
    return _Planned(f"non_negative:{column}", True, [expectation], summarise)


def _plan_ratio(numerator: str, denominator: str, gxe: Any) -> _Planned:
    def pair(p: Any) -> str:  # GX lists (column_A, column_B) = (denominator, numerator)
        return f"{_fmt(p[1])} > {_fmt(p[0])}" if isinstance(p, (tuple, list)) and len(p) == 2 else _fmt(p)

    summarise = _map_summary(
        lambda n, ex: f"{_rows_have(n)} {numerator} greater than {denominator} (first: {_first(ex, pair)})",
        f"{numerator} <= {denominator} wherever both are present",
    )
    expectation = gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A=denominator, column_B=numerator, or_equal=True, ignore_row_if="either_value_is_missing"
    )
    return _Planned(f"numerator_le_denominator:{numerator}/{denominator}", True, [expectation], summarise)


def _plan_known_orgs(spec: SuiteSpec, gxe: Any) -> _Planned:
    column = spec.org_column
    assert column is not None
    in_set = gxe.ExpectColumnValuesToBeInSet(column=column, value_set=sorted(spec.known_orgs))
    not_null = gxe.ExpectColumnValuesToNotBeNull(column=column)

    def summarise(results: list[Any]) -> tuple[int, str]:
        error = _exception(results)
        if error:
            return 0, f"GX could not evaluate this check: {error}"
        by_type = {r.expectation_config.type: r for r in results}
        unknown, examples = _unexpected(by_type["expect_column_values_to_be_in_set"])
        nulls, _ = _unexpected(by_type["expect_column_values_to_not_be_null"])
        parts = []
        if unknown:
            parts.append(f"{_rows_have(unknown)} {column} not among {len(spec.known_orgs)} known codes "
                         f"(first: {_first(examples)})")
        if nulls:
            parts.append(f"{_rows_have(nulls)} no {column}")
        if not parts:
            return 0, f"every {column} is one of {len(spec.known_orgs)} known codes"
        return unknown + nulls, "; ".join(parts)

    return _Planned("known_org_codes", True, [in_set, not_null], summarise)


def _as_datetime(day: date | None) -> datetime | None:
    """GX compares pandas Timestamps with the bound itself, and Timestamp vs datetime.date raises."""
    if day is None or isinstance(day, datetime):
        return day
    return datetime(day.year, day.month, day.day)


def _plan_period(spec: SuiteSpec, gxe: Any) -> _Planned:
    column = spec.period_column
    low, high = spec.period_min, spec.period_max
    window = f"{low.isoformat() if low else '...'} to {high.isoformat() if high else '...'}"
    summarise = _map_summary(
        lambda n, ex: f"{_rows_have(n)} {column} outside {window} (first: {_first(ex)})",
        f"every {column} is within {window}",
    )
    expectation = gxe.ExpectColumnValuesToBeBetween(
        column=column, min_value=_as_datetime(low), max_value=_as_datetime(high)
    )
    return _Planned("period_in_range", False, [expectation], summarise)


def _plan_unique_key(spec: SuiteSpec, gxe: Any) -> _Planned:
    key = list(spec.key_columns)

    def render(v: Any) -> str:
        return ", ".join(f"{k}={_fmt(x)}" for k, x in v.items()) if isinstance(v, dict) else f"{key[0]}={_fmt(v)}"

    summarise = _map_summary(
        lambda n, ex: f"{_rows(n)} share a ({', '.join(key)}) key with another row (first: {_first(ex, render)})",
        f"({', '.join(key)}) is unique",
    )
    if len(key) == 1:
        expectation = gxe.ExpectColumnValuesToBeUnique(column=key[0])
    else:
        expectation = gxe.ExpectCompoundColumnsToBeUnique(column_list=key)
    return _Planned("unique_key", True, [expectation], summarise)


# ------------------------------------------------------------------------------------------ sum checks


def _sum_differences(sc: SumCheck, frame: pl.DataFrame) -> pl.DataFrame:
    """One row per group: total-row value, sum of the other rows, and the largest absolute difference.

    Groups without a (non-null) total value get a null difference, which GX skips: nothing to compare.
    """
    flag = pl.col(sc.total_flag_column).fill_null(False).cast(pl.Boolean)
    aggs: list[pl.Expr] = []
    for i, v in enumerate(sc.value_columns):
        total_values = pl.col(v).filter(flag)
        aggs += [
            pl.when(total_values.count() > 0).then(total_values.sum()).alias(f"total_{i}"),
            pl.col(v).filter(~flag).sum().alias(f"others_{i}"),
        ]
    if sc.group_columns:
        grouped = frame.group_by(list(sc.group_columns), maintain_order=True).agg(aggs)
    else:  # no grouping: the whole frame is one group
        grouped = frame.select(aggs)
    diffs = [
        (pl.col(f"total_{i}").cast(pl.Float64) - pl.col(f"others_{i}").cast(pl.Float64)).abs()
        for i in range(len(sc.value_columns))
    ]
    return grouped.with_columns(pl.max_horizontal(diffs).alias("abs_difference"))


def _describe_sum_failure(sc: SumCheck, groups: pl.DataFrame, failing: int) -> str:
    bad = groups.filter(pl.col("abs_difference") > sc.tolerance)
    verb = "has" if failing == 1 else "have"
    head = f"{failing} of {groups.height} groups {verb} a total row that differs from the sum of the other rows"
    if bad.is_empty():
        return f"{head} by more than {sc.tolerance:g}"
    row = bad.row(0, named=True)
    where = ", ".join(f"{g}={_fmt(row[g])}" for g in sc.group_columns) or "whole frame"
    worst = max(
        range(len(sc.value_columns)),
        key=lambda i: -1.0 if row[f"total_{i}"] is None else abs(row[f"total_{i}"] - row[f"others_{i}"]),
    )
    column = sc.value_columns[worst]
    return (f"{head} by more than {sc.tolerance:g} (first: {where}: {column} total "
            f"{_fmt(row[f'total_{worst}'])} vs sum {_fmt(row[f'others_{worst}'])})")


def _plan_sum_check(
    sc: SumCheck, frame: pl.DataFrame, pdf: pd.DataFrame, gxe: Any
) -> _Planned | CheckOutcome:
    """Compute group differences in polars and add them to the batch as a padded column GX can check.

    The padded column holds one value per group in its first rows and nulls after; GX ignores nulls, so
    its unexpected count is the number of groups that differ.
    """
    try:
        groups = _sum_differences(sc, frame)
    except pl.exceptions.PolarsError as exc:
        first_line = str(exc).splitlines()[0]
        return _not_run(sc.name, True, "ExpectColumnValuesToBeBetween", f"could not compute sums: {first_line}")
    column = f"{_SUM_COLUMN_PREFIX}{sc.name}"
    import numpy as np

    padded = np.full(len(pdf), np.nan)
    padded[: groups.height] = groups["abs_difference"].cast(pl.Float64).fill_null(float("nan")).to_numpy()
    pdf[column] = padded

    def summarise(results: list[Any]) -> tuple[int, str]:
        error = _exception(results)
        if error:
            return 0, f"GX could not evaluate this check: {error}"
        failing, _ = _unexpected(results[0])
        if not failing:
            return 0, f"in all {groups.height} groups the total row equals the sum of the other rows"
        return failing, _describe_sum_failure(sc, groups, failing)

    expectation = gxe.ExpectColumnValuesToBeBetween(column=column, max_value=sc.tolerance)
    return _Planned(sc.name, True, [expectation], summarise)


# ------------------------------------------------------------------------------------------ assembly


def _not_run(check: str, blocking: bool, expectation: str, why: str) -> CheckOutcome:
    """A check whose inputs are absent: it fails (we cannot vouch for the numbers) but flags no rows."""
    return CheckOutcome("", check, expectation, False, blocking, 0, f"not checked: {why}")


def _missing(columns: Sequence[str], present: set[str]) -> list[str]:
    return [c for c in columns if c not in present]


def _plan(
    spec: SuiteSpec, frame: pl.DataFrame, pdf: pd.DataFrame, gxe: Any
) -> list[_Planned | CheckOutcome]:
    """Every check in report order; checks whose columns are missing become not-run outcomes."""
    present, height = set(frame.columns), frame.height
    items: list[_Planned | CheckOutcome | None] = [
        _plan_columns_present(spec, present, height, gxe),
        _plan_column_types(spec, present, height, gxe),
    ]

    def guarded(check: str, blocking: bool, expectation: str, needs: Sequence[str],
                build: Callable[[], _Planned | CheckOutcome]) -> _Planned | CheckOutcome:
        gone = _missing(needs, present)
        if gone:
            return _not_run(check, blocking, expectation, f"column {', '.join(gone)} missing")
        return build()

    for c in spec.non_negative:
        items.append(guarded(f"non_negative:{c}", True, "ExpectColumnValuesToBeBetween", [c],
                             lambda c=c: _plan_non_negative(c, gxe)))
    for n, d in spec.ratio_pairs:
        items.append(guarded(f"numerator_le_denominator:{n}/{d}", True,
                             "ExpectColumnPairValuesAToBeGreaterThanB", [n, d],
                             lambda n=n, d=d: _plan_ratio(n, d, gxe)))
    if spec.org_column:
        items.append(guarded("known_org_codes", True, "ExpectColumnValuesToBeInSet+ExpectColumnValuesToNotBeNull",
                             [spec.org_column], lambda: _plan_known_orgs(spec, gxe)))
    if spec.period_column and (spec.period_min or spec.period_max):
        items.append(guarded("period_in_range", False, "ExpectColumnValuesToBeBetween", [spec.period_column],
                             lambda: _plan_period(spec, gxe)))
    if spec.key_columns:
        name = "ExpectColumnValuesToBeUnique" if len(spec.key_columns) == 1 else "ExpectCompoundColumnsToBeUnique"
        items.append(guarded("unique_key", True, name, spec.key_columns, lambda: _plan_unique_key(spec, gxe)))
    for sc in spec.sum_checks:
        needs = [*sc.group_columns, sc.total_flag_column, *sc.value_columns]
        items.append(guarded(sc.name, True, "ExpectColumnValuesToBeBetween", needs,
                             lambda sc=sc: _plan_sum_check(sc, frame, pdf, gxe)))
    return [i for i in items if i is not None]


def _to_pandas(spec: SuiteSpec, frame: pl.DataFrame) -> pd.DataFrame:
    """Convert for GX, choosing dtypes its fast (vectorised) paths and type checks understand.

    Dates become datetime64[ns] (GX's between-check is vectorised only for ns datetimes and int64/float64),
    narrow numbers widen to 64 bits, and pandas 3 `str` columns become StringDtype(), which GX can match.
    """
    import pandas as pd

    wanted = set(_referenced_columns(spec))
    casts: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        if name not in wanted:
            continue
        if dtype == pl.Date or (isinstance(dtype, pl.Datetime) and dtype.time_zone is None):
            if _fits_nanoseconds(frame[name]):
                casts.append(pl.col(name).cast(pl.Datetime("ns")))
        elif dtype in (pl.Int8, pl.Int16, pl.Int32, pl.UInt8, pl.UInt16, pl.UInt32):
            casts.append(pl.col(name).cast(pl.Int64))
        elif dtype == pl.Float32:
            casts.append(pl.col(name).cast(pl.Float64))
    pdf = (frame.with_columns(casts) if casts else frame).to_pandas()
    for name in pdf.columns:
        if name in wanted and isinstance(pdf[name].dtype, pd.StringDtype):
            pdf[name] = pdf[name].astype(pd.StringDtype())
    return pdf


def _fits_nanoseconds(series: pl.Series) -> bool:
    """datetime64[ns] spans 1677-2262; sentinels such as 9999-12-31 must stay in a wider unit."""
    low, high = series.min(), series.max()
    if low is None:
        return True
    return date(1678, 1, 1) <= _day(low) and _day(high) <= date(2261, 12, 31)


def _day(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value


def _drop_old_results(context: Any, suite_name: str, docs_dir: Path) -> None:
    """Latest result per source wins: remove earlier stored results of this suite."""
    store = context.validation_results_store
    for key in store.list_keys():
        if getattr(key.expectation_suite_identifier, "name", None) == suite_name:
            store.remove_key(key)
    _prune_empty_dirs(docs_dir / STORES_SUBDIR / "validations" / suite_name)


def _prune_empty_dirs(root: Path) -> None:
    """GX removes result files but leaves their run folders; drop the empty ones so nightly runs don't pile up."""
    if not root.is_dir():
        return
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        try:
            folder.rmdir()
        except OSError:  # not empty (or raced by another writer): keep it
            pass


def _store_suite(context: Any, suite: Any) -> Any:
    """Replace any stored suite of this name. Not suites.add_or_update: it matches expectations pairwise
    (quadratic, and each comparison serialises the org value set), which cost ~2 s on a 50-expectation suite."""
    from great_expectations.exceptions import DataContextError

    try:
        context.suites.delete(suite.name)
    except DataContextError:
        pass
    return context.suites.add(suite)


def _validate(spec: SuiteSpec, pdf: pd.DataFrame, planned: list[_Planned], docs_dir: Path | None) -> list[Any]:
    """Run every planned expectation in one validation of one batch; returns GX's expectation results."""
    gx = _gx()
    from great_expectations.core.run_identifier import RunIdentifier

    context = _context(docs_dir)
    batch = (
        context.data_sources.add_pandas("ibp_frames")
        .add_dataframe_asset(name=spec.source)
        .add_batch_definition_whole_dataframe("whole_frame")
    )
    expectations = []
    for item in planned:
        for expectation in item.expectations:
            expectation.meta = {**(expectation.meta or {}), CHECK_META_KEY: item.check}
            expectations.append(expectation)
    # The constructor skips add_expectation's pairwise duplicate scan (quadratic, and slow with big value sets).
    suite = gx.ExpectationSuite(name=spec.source, expectations=expectations, meta={"source": spec.source})
    suite = _store_suite(context, suite)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{spec.source}_validation", data=batch, suite=suite)
    )
    if docs_dir is not None:
        _drop_old_results(context, suite.name, Path(docs_dir))
    run_id = RunIdentifier(run_name=spec.source, run_time=datetime.now(timezone.utc))
    result = definition.run(batch_parameters={"dataframe": pdf}, result_format=_RESULT_FORMAT, run_id=run_id)
    return list(result.results)


def _outcomes(spec: SuiteSpec, items: list[_Planned | CheckOutcome], results: list[Any]) -> list[CheckOutcome]:
    by_check: dict[str, list[Any]] = {}
    for r in results:
        by_check.setdefault((r.expectation_config.meta or {}).get(CHECK_META_KEY), []).append(r)
    outcomes = []
    for item in items:
        if isinstance(item, CheckOutcome):
            item.source = spec.source
            outcomes.append(item)
            continue
        mine = by_check.get(item.check, [])
        passed = bool(mine) and all(r.success for r in mine)
        failing, details = item.summarise(mine)
        outcomes.append(
            CheckOutcome(spec.source, item.check, item.expectation_names, passed, item.blocking, failing, details)
        )
    return outcomes


def run_suite(spec: SuiteSpec, frame: pl.DataFrame, *, docs_dir: Path | None = None) -> SuiteResult:
    """Build the GX 1.x ExpectationSuite for this spec, validate `frame` (via pandas), return outcomes.

    If docs_dir is given, the suite and this validation result are stored under docs_dir/gx_stores (the
    previous result of the same source is removed), so build_data_docs can render them later, even from
    another process.
    """
    started = time.perf_counter()
    _validate_spec(spec)
    gxe = _gx().expectations
    pdf = _to_pandas(spec, frame)
    items = _plan(spec, frame, pdf, gxe)
    planned = [i for i in items if isinstance(i, _Planned)]
    results = _validate(spec, pdf, planned, docs_dir)
    outcomes = _outcomes(spec, items, results)
    return SuiteResult(
        source=spec.source,
        success=all(o.passed for o in outcomes if o.blocking),
        outcomes=outcomes,
        rows_validated=frame.height,
        seconds=time.perf_counter() - started,
    )


def build_data_docs(docs_dir: Path) -> Path:
    """Render GX Data Docs for the latest stored validation result of every source under docs_dir.

    The site is rebuilt from scratch (docs_dir/data_docs), so pages of superseded results do not linger.
    Returns the path of index.html. Works in a fresh process: everything comes from the filesystem stores.
    """
    docs_dir = Path(docs_dir)
    site = docs_dir / DOCS_SUBDIR
    if site.exists():
        shutil.rmtree(site)
    context = _context(docs_dir)
    context.build_data_docs(site_names=[DOCS_SITE_NAME])
    index = site / "index.html"
    if not index.exists():
        raise FileNotFoundError(f"GX did not write {index}")
    return index
