"""Tests for the GX 1.x suites: real Great Expectations, small hand-made frames, one failure at a time.

Why one failure per test: each check must flag exactly its own problem (right name, right row count) and
leave every other check passing, otherwise the asset checks built on top would blame the wrong thing.
"""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from ibp_pipeline.step1_current_state.quality.gx_suites import (
    CheckOutcome,
    SuiteResult,
    SuiteSpec,
    SumCheck,
    build_data_docs,
    run_suite,
)

SUM_CHECK = "total_row_equals_sum_of_providers"
KNOWN = frozenset({"RAA", "RBB", "RCC", "TOTAL"})
JAN, FEB = date(2024, 1, 1), date(2024, 2, 1)

SPEC = SuiteSpec(
    source="ae_demo",
    columns={
        "org_code": "text",
        "provider_name": "text",
        "period_start": "date",
        "attendances": "number",
        "breaches": "number",
    },
    key_columns=("org_code", "period_start"),
    non_negative=("attendances", "breaches"),
    ratio_pairs=(("breaches", "attendances"),),
    org_column="org_code",
    known_orgs=KNOWN,
    period_column="period_start",
    period_min=date(2024, 1, 1),
    period_max=date(2024, 12, 1),
    sum_checks=(SumCheck(SUM_CHECK, ("period_start",), "is_total", ("attendances", "breaches")),),
)
ALL_CHECKS = [
    "columns_present",
    "column_types",
    "non_negative:attendances",
    "non_negative:breaches",
    "numerator_le_denominator:breaches/attendances",
    "known_org_codes",
    "period_in_range",
    "unique_key",
    SUM_CHECK,
]


def providers(**changes: list) -> pl.DataFrame:
    """Provider rows (no totals) for two months; keyword lists replace whole columns."""
    data = {
        "org_code": ["RAA", "RBB", "RCC"] * 2,
        "provider_name": ["Alpha", "Beta", "Gamma"] * 2,
        "period_start": [JAN] * 3 + [FEB] * 3,
        "attendances": [100, 200, 300, 110, 210, 310],
        "breaches": [10, 20, 30, 11, 21, 31],
    }
    data.update(changes)
    return pl.DataFrame(data)


def with_totals(rows: pl.DataFrame) -> pl.DataFrame:
    """Append a correct TOTAL row per month, as the published files do."""
    totals = rows.group_by("period_start", maintain_order=True).agg(
        pl.lit("TOTAL").alias("org_code"),
        pl.lit("England").alias("provider_name"),
        pl.col("attendances").sum(),
        pl.col("breaches").sum(),
    )
    return pl.concat(
        [rows.with_columns(is_total=pl.lit(False)), totals.select(rows.columns).with_columns(is_total=pl.lit(True))],
        how="vertical_relaxed",
    )


def outcome(result: SuiteResult, check: str) -> CheckOutcome:
    matches = [o for o in result.outcomes if o.check == check]
    assert len(matches) == 1, f"{check}: {[o.check for o in result.outcomes]}"
    return matches[0]


def assert_only_failure(result: SuiteResult, check: str, failing_rows: int) -> CheckOutcome:
    """The named check fails with the given count; every other check passes."""
    failed = outcome(result, check)
    assert not failed.passed, failed
    assert failed.failing_rows == failing_rows, failed
    assert failed.details and "\n" not in failed.details
    others = [o for o in result.outcomes if o.check != check and not o.passed]
    assert others == [], others
    return failed


def test_clean_frame_passes_every_check() -> None:
    frame = with_totals(providers())
    result = run_suite(SPEC, frame)
    assert [o.check for o in result.outcomes] == ALL_CHECKS
    assert all(o.passed for o in result.outcomes), [o for o in result.outcomes if not o.passed]
    assert all(o.failing_rows == 0 and o.source == "ae_demo" for o in result.outcomes)
    assert result.success and result.rows_validated == 8 and result.seconds > 0
    expectations = {o.check: o.expectation for o in result.outcomes}
    assert expectations["unique_key"] == "ExpectCompoundColumnsToBeUnique"
    assert expectations["non_negative:breaches"] == "ExpectColumnValuesToBeBetween"
    assert expectations["numerator_le_denominator:breaches/attendances"] == "ExpectColumnPairValuesAToBeGreaterThanB"
    assert expectations["known_org_codes"].startswith("ExpectColumnValuesToBeInSet")
    assert expectations["column_types"] == "ExpectColumnValuesToBeInTypeList"
    blocking = {o.check: o.blocking for o in result.outcomes}
    assert blocking.pop("period_in_range") is False and all(blocking.values())


def test_duplicate_key() -> None:
    frame = with_totals(providers(org_code=["RAA", "RAA", "RCC"] + ["RAA", "RBB", "RCC"]))
    result = run_suite(SPEC, frame)
    failed = assert_only_failure(result, "unique_key", failing_rows=2)
    assert "RAA" in failed.details and not result.success


def test_negative_count() -> None:
    frame = with_totals(providers(breaches=[10, -5, 30, 11, 21, -2]))
    result = run_suite(SPEC, frame)
    failed = assert_only_failure(result, "non_negative:breaches", failing_rows=2)
    assert "-5" in failed.details and "-2" in failed.details
    assert failed.blocking and not result.success


def test_numerator_above_denominator() -> None:
    frame = with_totals(providers(breaches=[10, 250, 30, 11, 21, 31]))
    result = run_suite(SPEC, frame)
    failed = assert_only_failure(result, "numerator_le_denominator:breaches/attendances", failing_rows=1)
    assert "250 > 200" in failed.details


def test_ratio_ignores_nulls() -> None:
    frame = with_totals(providers(breaches=[10, None, 30, 11, 21, 31]))
    assert outcome(run_suite(SPEC, frame), "numerator_le_denominator:breaches/attendances").passed


def test_unknown_and_missing_org_codes() -> None:
    frame = with_totals(providers(org_code=["RAA", "ZZZ", "RCC"] + ["RAA", "RBB", None]))
    result = run_suite(SPEC, frame)
    failed = assert_only_failure(result, "known_org_codes", failing_rows=2)
    assert "ZZZ" in failed.details and "no org_code" in failed.details
    assert failed.expectation == "ExpectColumnValuesToBeInSet+ExpectColumnValuesToNotBeNull"


def test_period_out_of_range_is_a_warning() -> None:
    early = providers(period_start=[date(2023, 6, 1)] * 3 + [FEB] * 3)
    result = run_suite(SPEC, with_totals(early))
    failed = assert_only_failure(result, "period_in_range", failing_rows=4)  # 3 providers + their total
    assert failed.blocking is False and "2023-06-01" in failed.details
    assert result.success, "a warning must not fail the suite"


def test_missing_column() -> None:
    frame = with_totals(providers()).drop("provider_name")
    result = run_suite(SPEC, frame)
    failed = assert_only_failure(result, "columns_present", failing_rows=frame.height)
    assert "provider_name" in failed.details and not result.success


def test_missing_column_used_by_checks_marks_them_not_run() -> None:
    frame = with_totals(providers()).drop("breaches")
    result = run_suite(SPEC, frame)
    not_run = {"non_negative:breaches", "numerator_le_denominator:breaches/attendances", SUM_CHECK}
    for check in not_run:
        o = outcome(result, check)
        assert not o.passed and o.failing_rows == 0 and o.details.startswith("not checked"), o
    assert not outcome(result, "columns_present").passed
    passing = set(ALL_CHECKS) - not_run - {"columns_present"}
    assert all(outcome(result, c).passed for c in passing)


def test_total_row_not_equal_to_sum() -> None:
    frame = with_totals(providers()).with_columns(
        pl.when(pl.col("is_total") & (pl.col("period_start") == FEB))
        .then(pl.col("attendances") + 5)
        .otherwise(pl.col("attendances"))
        .alias("attendances")
    )
    result = run_suite(SPEC, frame)
    failed = assert_only_failure(result, SUM_CHECK, failing_rows=1)  # one group (February)
    assert "2024-02-01" in failed.details and "attendances" in failed.details


def test_sum_within_tolerance_passes() -> None:
    frame = with_totals(providers()).with_columns(
        pl.when(pl.col("is_total")).then(pl.col("attendances") + 0.4).otherwise(pl.col("attendances")).alias("attendances")
    )
    assert outcome(run_suite(SPEC, frame), SUM_CHECK).passed


def test_wrong_column_type() -> None:
    frame = with_totals(providers()).with_columns(pl.col("period_start").cast(pl.String))
    result = run_suite(SPEC, frame)
    failed = outcome(result, "column_types")
    assert not failed.passed and failed.failing_rows == frame.height
    assert "period_start" in failed.details and not result.success


def test_module_import_does_not_import_gx() -> None:
    code = (
        "import sys, ibp_pipeline.step1_current_state.quality.gx_suites\n"
        "print('great_expectations' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_data_docs_built_in_fresh_process(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    run_suite(SPEC, with_totals(providers(breaches=[10, -5, 30, 11, 21, 31])), docs_dir=docs)
    run_suite(SPEC, with_totals(providers()), docs_dir=docs)  # the latest result per source wins
    other = SuiteSpec(source="rtt_demo", columns={"org_code": "text"}, key_columns=("org_code",))
    run_suite(other, pl.DataFrame({"org_code": ["RAA", "RBB"]}), docs_dir=docs)

    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from ibp_pipeline.step1_current_state.quality.gx_suites import build_data_docs\n"
        f"print(json.dumps(str(build_data_docs(Path({str(docs)!r})))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    index = Path(json.loads(out.stdout.strip().splitlines()[-1]))
    assert index.name == "index.html" and index.is_file()
    html = index.read_text()
    assert "ae_demo" in html and "rtt_demo" in html
    pages = list((index.parent / "validations" / "ae_demo").rglob("*.html"))
    assert len(pages) == 1, pages  # only the latest ae_demo result is rendered
    assert "Succeeded" in pages[0].read_text()


def test_large_frame_completes() -> None:
    periods, orgs = 50, 3999  # 50 x (3,999 providers + 1 total) = 200,000 rows
    codes = [f"R{i:04d}" for i in range(orgs)]
    rows = pl.DataFrame({"org_code": codes * periods}).with_columns(
        period_start=pl.int_range(pl.len()) // orgs,
        provider_name=pl.lit("Provider"),
        attendances=(pl.int_range(pl.len()) % 997) + 50,
        breaches=pl.int_range(pl.len()) % 41,
    ).with_columns(pl.date(2024, 1, 1).dt.offset_by(pl.format("{}d", pl.col("period_start"))).alias("period_start"))
    frame = with_totals(rows.select("org_code", "provider_name", "period_start", "attendances", "breaches"))
    assert frame.height == 200_000
    spec = SuiteSpec(**{**SPEC.__dict__, "known_orgs": frozenset(codes) | {"TOTAL"}})
    result = run_suite(spec, frame)
    assert result.rows_validated == 200_000
    assert result.success, [o for o in result.outcomes if not o.passed]


@pytest.mark.parametrize("kind", ["money", "ae_period"])
def test_unknown_kind_is_rejected(kind: str) -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        run_suite(SuiteSpec(source="bad", columns={"x": kind}), pl.DataFrame({"x": [1]}))
