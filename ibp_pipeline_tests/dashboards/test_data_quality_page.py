"""The Data quality page (dashboards/app_pages/data_quality.py) and its functions (ibp_pipeline/dashboards/data_quality.py)."""
from __future__ import annotations

import io
import os
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ibp_pipeline.dashboards import data_quality as dq
from ibp_pipeline.step1_current_state.sources import BY_NAME
from ibp_pipeline.dashboards import exports
from ibp_pipeline.dashboards.serving import Serving

from .conftest import make_serving, page_text, rows_frame

LOADS = {"load_id": pl.Int64, "run_id": pl.String, "source": pl.String, "file_name": pl.String, "status": pl.String,
         "rows_read": pl.Int64, "rows_loaded": pl.Int64, "rows_quarantined": pl.Int64, "period_min": pl.Date,
         "period_max": pl.Date, "loaded_at": pl.Datetime("us")}
CHECKS = {"run_id": pl.String, "checked_at": pl.Datetime("us"), "source": pl.String, "check_name": pl.String,
          "expectation": pl.String, "passed": pl.Boolean, "blocking": pl.Boolean, "failing_rows": pl.Int64,
          "details": pl.String, "rows_validated": pl.Int64}
QUARANTINE = {"run_id": pl.String, "source": pl.String, "file_name": pl.String, "row_number": pl.Int64,
              "column_name": pl.String, "value": pl.String, "rule": pl.String, "message": pl.String,
              "quarantined_at": pl.Datetime("us")}
CONFLICTS = {"org_code": pl.String, "period_start": pl.Date, "metric_id": pl.String, "winning_source": pl.String,
             "winning_value": pl.Float64, "other_source": pl.String, "other_value": pl.Float64,
             "difference": pl.Float64, "winning_source_file": pl.String, "other_source_file": pl.String,
             "rule": pl.String}
T0 = datetime(2025, 10, 2, 6, 0)


@pytest.fixture
def tiny(tmp_path: Path) -> Serving:
    loads = [
        {"source": "ae_monthly_official", "file_name": "a.csv", "status": "loaded", "rows_loaded": 10,
         "rows_quarantined": 0, "period_min": date(2025, 6, 1), "period_max": date(2025, 6, 1), "loaded_at": T0},
        {"source": "ae_monthly_official", "file_name": "b.csv", "status": "partial", "rows_loaded": 8,
         "rows_quarantined": 2, "period_min": date(2025, 8, 1), "period_max": date(2025, 8, 1), "loaded_at": T0},
        {"source": "beds_kh03", "file_name": "k.csv", "status": "loaded", "rows_loaded": 5, "rows_quarantined": 0,
         "period_min": date(2024, 4, 1), "period_max": date(2025, 1, 1), "loaded_at": T0},
        {"source": "imd_icb", "file_name": "i.csv", "status": "loaded", "rows_loaded": 42, "rows_quarantined": 0,
         "loaded_at": T0},
    ]
    checks = [
        {"run_id": "old", "checked_at": datetime(2025, 9, 1), "source": "imd_icb", "check_name": "x", "passed": False,
         "blocking": True},
        {"run_id": "new", "checked_at": T0, "source": "imd_icb", "check_name": "a", "passed": True, "blocking": True},
        {"run_id": "new", "checked_at": T0, "source": "beds_kh03", "check_name": "b", "passed": False,
         "blocking": False, "failing_rows": 3},
        {"run_id": "new", "checked_at": T0, "source": "ae_monthly_official", "check_name": "c", "passed": False,
         "blocking": True, "failing_rows": 1},
    ]
    quarantine = [
        {"source": "ae_monthly_official", "file_name": "b.csv", "row_number": n, "column_name": "org_code",
         "value": "", "rule": "missing_key", "message": f"row {n}", "quarantined_at": T0} for n in (3, 7)
    ] + [{"source": "beds_kh03", "file_name": "k.csv", "row_number": 1, "column_name": "beds", "value": "-1",
          "rule": "negative", "message": "negative beds", "quarantined_at": T0}]
    conflicts = [
        {"org_code": "T1", "period_start": date(2024, 10, 1), "metric_id": "ae_attendances", "difference": -416.0,
         "winning_source": "ae_monthly_official", "other_source": "ae_trust_monthly", "rule": "precedence"},
        {"org_code": "T2", "period_start": date(2024, 11, 1), "metric_id": "ae_attendances", "difference": 684.0,
         "winning_source": "ae_monthly_official", "other_source": "ae_trust_monthly", "rule": "precedence"},
    ]
    publication = pl.DataFrame({"run_id": ["run-1"], "published_at": [datetime(2025, 10, 2, 7, 0)]})
    return make_serving(tmp_path / "serving.duckdb", {
        "meta.file_loads": rows_frame(loads, LOADS), "dq.check_results": rows_frame(checks, CHECKS),
        "dq.quarantine": rows_frame(quarantine, QUARANTINE),
        "s1_current_state.source_conflicts": rows_frame(conflicts, CONFLICTS), "meta.publication": publication})


# ---- the freshness rule ----------------------------------------------------------------------------------------

def test_page_uses_the_pipelines_freshness_rule() -> None:
    # the rule itself is tested in step1/test_freshness.py; the page must give the same answer
    assert dq.freshness_status("ae_monthly_official", date(2025, 7, 1), date(2025, 9, 14)) == ("Up to date", 45, 45)
    assert dq.freshness_status("ae_attendances_2016_2019", date(2019, 3, 1), date(2025, 9, 14)) == \
        ("Historical", None, None)


def test_name_list_stays_short() -> None:
    assert dq.name_list(["a", "b"]) == "a, b"
    assert dq.name_list(list("abcdefg"), most=3) == "a, b, c and 4 more (see the table)"


def test_source_grain_from_the_registry() -> None:
    assert dq.source_grain("rtt_incomplete") == "month"
    assert dq.source_grain("beds_kh03") == "quarter"
    assert dq.source_grain("ods_trusts_2025") == "reference"  # organisation reference
    assert dq.source_grain("national_cost_collection") == "reference"  # no period column
    assert dq.source_grain("a_source_not_in_the_registry") == "month"


# ---- data functions on a hand-made database --------------------------------------------------------------------

def test_source_loads_one_row_per_source_with_freshness(tiny: Serving) -> None:
    fresh = dq.with_freshness(dq.source_loads(tiny), date(2025, 10, 20))
    assert fresh["source"].to_list() == ["ae_monthly_official", "beds_kh03", "imd_icb"]  # stale first
    ae = fresh.filter(pl.col("source") == "ae_monthly_official").row(0, named=True)
    assert (ae["files"], ae["rows_loaded"], ae["rows_quarantined"], ae["status"]) == (2, 18, 2, "partial")
    assert (ae["period_min"], ae["period_max"], ae["freshness"], ae["age_days"]) == \
        (date(2025, 6, 1), date(2025, 8, 1), "Stale", 50)  # August ended 50 days before 20 October
    assert ae["title"].startswith("A&E attendances and emergency admissions")
    assert fresh.filter(pl.col("source") == "beds_kh03")["freshness"][0] == "Stale"  # quarter ended in March
    assert fresh.filter(pl.col("source") == "imd_icb")["freshness"][0] == "No period"


def test_freshness_against_the_publication_calendar(tiny: Serving) -> None:
    fresh = dq.with_freshness(dq.source_loads(tiny), date(2025, 10, 20))
    rows = {r["source"]: r for r in fresh.iter_rows(named=True)}
    ae, beds, imd = rows["ae_monthly_official"], rows["beds_kh03"], rows["imd_icb"]
    # August loaded; September's A&E file was due on the second Thursday of October 2025 (the 1st is a Wednesday)
    assert (ae["latest_month"], ae["due_date"], ae["overdue_files"]) == ("August 2025", date(2025, 10, 9), 1)
    assert ae["next_file"] == "Behind: the September 2025 A&E file was due on 9 October 2025."
    # January to March loaded; April to June expected 56 days after 30 June (25 August), July to September not yet
    assert (beds["latest_month"], beds["due_date"], beds["overdue_files"]) == \
        ("January to March 2025", date(2025, 8, 25), 1)
    assert (imd["latest_month"], imd["due_date"]) == ("No period", None)
    lines = dq.next_file_lines(fresh).splitlines()
    assert lines[0] == ("- **" + ae["title"] + "** (latest August 2025): Behind: the September 2025 A&E file was "
                        "due on 9 October 2025.")
    assert len(lines) == 2 and not any("ae_monthly_official" in line or "beds_kh03" in line for line in lines)


def test_schedule_text_is_plain_english() -> None:
    text = dq.schedule_text()
    assert "A&E on the second Thursday of the month after the month it covers" in text
    assert "cancer waiting times on the second Thursday of the second month after" in text
    assert "_" not in text  # no table names


def test_latest_checks_only_the_latest_run_failed_first(tiny: Serving) -> None:
    checks = dq.latest_checks(tiny)
    assert checks["check_name"].to_list() == ["c", "b", "a"]  # failed blocking, failed, passed
    assert set(checks["run_id"]) == {"new"}
    assert dq.check_counts(checks) == {"checks": 3, "passed": 1, "failed": 2, "failed_blocking": 1, "sources": 3}
    assert dq.check_counts(checks.head(0))["checks"] == 0


def test_quarantine_filtered_by_source_and_counted_by_rule(tiny: Serving) -> None:
    assert dq.quarantine_sources(tiny)["rows"].to_list() == [2, 1]
    assert len(dq.quarantine(tiny, None)) == 3
    ae = dq.quarantine(tiny, "ae_monthly_official")
    assert ae["row_number"].to_list() == [3, 7] and set(ae["source"]) == {"ae_monthly_official"}
    rules = dq.quarantine_rules(dq.quarantine(tiny, None))
    assert rules.select("source", "rule", "rows").rows() == [("ae_monthly_official", "missing_key", 2),
                                                             ("beds_kh03", "negative", 1)]


def test_conflicts_and_publication(tiny: Serving) -> None:
    summary = dq.conflicts_summary(tiny).row(0, named=True)
    assert (summary["conflicts"], summary["organisations"], summary["mean_abs_difference"],
            summary["max_abs_difference"]) == (2, 2, 550.0, 684.0)
    assert dq.conflicts_for_org(tiny, "T1")["difference"].to_list() == [-416.0]
    assert dq.publication(tiny)["run_id"].to_list() == ["run-1"]


def test_data_docs_path_follows_the_reports_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IBP_REPORTS_DIR", str(tmp_path))
    assert dq.data_docs_path() == tmp_path / "data_docs" / "index.html"


# ---- the page --------------------------------------------------------------------------------------------------

def test_data_quality_page_for_a_trust_and_england(app) -> None:
    at = app(page="data_quality.py", org="RXL")
    text = page_text(at)
    assert at.title[0].value == "Data quality"
    for heading in ("How fresh is each source?", "Checks in the latest run", "Quarantined rows",
                    "Where sources disagreed", "The full validation report"):
        assert heading in text
    assert "**Published**" in text
    assert "Browsers often block links" in text or "not been built" in text
    assert any(str(dq.data_docs_path()) == c.value for c in at.code)
    assert [c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")] == ["dq_freshness"]
    assert any(e.label.startswith("Disagreements for Blackpool") for e in at.expander)
    freshness = pl.from_pandas(at.dataframe[0].value)
    assert set(freshness["Freshness"]) <= {"Up to date", "Stale", "Historical", "No period"}
    assert freshness.height == len(dq.source_loads(Serving(Path(os.environ["IBP_SERVING"]))))

    at.selectbox(key="ibp_org").select("ENGLAND").run()
    assert not at.exception
    assert not any(e.label.startswith("Disagreements for") for e in at.expander)  # not organisation-specific
    assert pl.from_pandas(at.dataframe[0].value).height == freshness.height


def test_data_quality_page_says_which_file_was_due_and_when(app) -> None:
    at = app(page="data_quality.py", org="RXL")
    text = page_text(at)
    # the bundled A&E data end in December 2025, so January 2026's file was due on the second Thursday of
    # February 2026: 1 February 2026 is a Sunday, so the Thursdays are the 5th and the 12th
    assert "the January 2026 A&E file was due on 12 February 2026" in text
    assert "NHS England publishes on a calendar" in text
    listing = next(m.value for m in at.markdown if "A&E file was due" in str(m.value))
    assert "ae_monthly_official" not in listing and "(latest December 2025)" in listing
    table = pl.from_pandas(at.dataframe[0].value)
    assert "Source id" not in table.columns  # the publication's title, not its code name
    title = BY_NAME["ae_monthly_official"].title
    ae = table.filter(pl.col("Source") == title).row(0, named=True)
    assert ae["Latest month"] == "December 2025" and ae["Next file"].startswith(
        "Behind: the January 2026 A&E file was due on 12 February 2026")
    assert table["Latest month"].null_count() == 0


def test_source_selector_filters_quarantine(app) -> None:
    at = app(page="data_quality.py", org="RXL")
    box = at.selectbox(key="dq_source")
    assert box.value == "(all sources)" and len(box.options) >= 2
    everything = at.session_state["ibp_downloads"]
    all_rows = everything[next(k for k in everything if k.startswith("quarantined-rows"))]
    one = all_rows["Source"][0]  # the publication's title, as every table shows it
    box.select(next(code for code, source in BY_NAME.items() if source.title == one)).run()
    assert not at.exception
    downloads = at.session_state["ibp_downloads"]
    chosen = downloads[next(k for k in downloads if k.startswith("quarantined-rows"))]
    assert set(chosen["Source"]) == {one} and chosen.height == (all_rows["Source"] == one).sum()
    shown = next(pl.from_pandas(d.value) for d in at.dataframe
                 if "Rule" in d.value.columns and "Row" in d.value.columns)
    assert shown.height == chosen.height and shown["Row"].to_list() == chosen["Row"].to_list()
    assert_frame_equal(pl.read_csv(io.BytesIO(exports.csv_bytes(chosen)), try_parse_dates=True,
                                   schema_overrides={"Value": pl.String}), chosen, check_dtypes=False)
    assert_frame_equal(pl.read_excel(io.BytesIO(exports.excel_bytes(chosen, "quarantine")),
                                     schema_overrides={"Value": pl.String}), chosen, check_dtypes=False)


def test_check_downloads_read_back_as_shown(app) -> None:
    at = app(page="data_quality.py", org="RXL")
    downloads = at.session_state["ibp_downloads"]
    checks = downloads[next(k for k in downloads if k.startswith("data-quality-checks"))]
    shown = next(pl.from_pandas(d.value) for d in at.dataframe if "Blocking" in d.value.columns)
    assert shown.height == checks.height and shown["Check"].to_list() == checks["Check"].to_list()
    assert_frame_equal(pl.read_csv(io.BytesIO(exports.csv_bytes(checks)), try_parse_dates=True), checks,
                       check_dtypes=False)
    back = pl.read_excel(io.BytesIO(exports.excel_bytes(checks, "checks")))
    assert back.shape == checks.shape and back["Check"].to_list() == checks["Check"].to_list()
