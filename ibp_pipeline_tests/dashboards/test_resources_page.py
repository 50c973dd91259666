"""The Resources page (dashboards/app_pages/resources.py) and its functions (ibp_pipeline/dashboards/resources.py)."""
from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ibp_pipeline.dashboards import exports, resources
from ibp_pipeline.dashboards.serving import Serving

from .conftest import make_serving, page_text, rows_frame

RM_COLUMNS = {"org_code": pl.String, "org_level": pl.String, "period_start": pl.Date, "period_grain": pl.String,
              "measure_group": pl.String, "measure_id": pl.String, "measure_name": pl.String, "unit": pl.String,
              "value": pl.Float64, "numerator": pl.Float64, "denominator": pl.Float64,
              "numerator_measure": pl.String, "denominator_measure": pl.String, "formula": pl.String,
              "source": pl.String, "note": pl.String, "peer_group_label": pl.String, "peer_median": pl.Float64,
              "peer_count": pl.Int64, "national_median": pl.Float64, "national_count": pl.Int64}
AC_COLUMNS = {"org_code": pl.String, "period_start": pl.Date, "financial_year": pl.String,
              "activity_type": pl.String, "activity_detail": pl.String, "activity": pl.Float64,
              "unit_cost_gbp": pl.Float64, "estimated_cost_gbp": pl.Float64, "currency_codes": pl.String,
              "price_base": pl.String, "method": pl.String, "source": pl.String}


def _chart(at, key: str) -> dict:
    """The plotly figure (as JSON) of the chart with this key."""
    found = [c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]
    assert found, f"no chart {key}"
    return json.loads(found[0].proto.spec)


def _table(at, columns: list[str]) -> pl.DataFrame:
    """The displayed table with exactly these columns."""
    found = [d.value for d in at.dataframe if list(d.value.columns) == columns]
    assert found, f"no table with columns {columns}"
    return pl.from_pandas(found[0])


@pytest.fixture
def tiny(tmp_path: Path) -> Serving:
    """A served database with a few resource rows for organisation T1 and nothing for T2."""
    rm = [
        {"org_code": "T1", "period_start": date(2025, 1, 1), "period_grain": "month", "measure_group": "workforce",
         "measure_id": "workforce_fte", "measure_name": "Workforce FTE", "unit": "fte", "value": 1000.0},
        {"org_code": "T1", "period_start": date(2025, 2, 1), "period_grain": "month", "measure_group": "workforce",
         "measure_id": "workforce_fte", "measure_name": "Workforce FTE", "unit": "fte", "value": 1010.0},
        {"org_code": "T1", "period_start": date(2025, 3, 1), "period_grain": "month", "measure_group": "workforce",
         "measure_id": "workforce_fte", "measure_name": "Workforce FTE", "unit": "fte", "value": 1200.0},
        {"org_code": "T1", "period_start": date(2019, 4, 1), "period_grain": "snapshot", "measure_group": "estates",
         "measure_id": "estates_backlog_total_gbp", "measure_name": "Backlog", "unit": "gbp", "value": 5e6},
        {"org_code": "T1", "period_start": date(2025, 2, 1), "period_grain": "month", "measure_group": "ratio",
         "measure_id": "fte_per_ga_bed", "measure_name": "FTE per bed", "unit": "fte per bed", "value": 12.0,
         "peer_median": 10.0, "national_median": 8.0},
    ]
    ac = [
        {"org_code": "T1", "period_start": date(2025, 1, 1), "activity_type": "ae_attendances",
         "activity_detail": "all", "activity": 100.0, "unit_cost_gbp": 300.0, "estimated_cost_gbp": 30000.0,
         "price_base": "NCC 2024/25"},
        {"org_code": "T1", "period_start": date(2025, 2, 1), "activity_type": "ae_attendances",
         "activity_detail": "all", "activity": 200.0, "unit_cost_gbp": 300.0, "estimated_cost_gbp": 60000.0,
         "price_base": "NCC 2024/25"},
        {"org_code": "T1", "period_start": date(2025, 1, 1), "activity_type": "diagnostic_tests",
         "activity_detail": "All DM01 tests", "activity": 10.0, "estimated_cost_gbp": 2000.0},
        {"org_code": "T1", "period_start": date(2025, 1, 1), "activity_type": "diagnostic_tests",
         "activity_detail": "MRI", "activity": 6.0, "unit_cost_gbp": 200.0, "estimated_cost_gbp": 1200.0},
        {"org_code": "T1", "period_start": date(2025, 1, 1), "activity_type": "diagnostic_tests",
         "activity_detail": "CT", "activity": 4.0, "unit_cost_gbp": 200.0, "estimated_cost_gbp": 800.0},
    ]
    return make_serving(tmp_path / "serving.duckdb", {"s3_resources.resource_map": rows_frame(rm, RM_COLUMNS),
                                                   "s3_resources.activity_costs": rows_frame(ac, AC_COLUMNS)})


# ---- data functions on a hand-made database --------------------------------------------------------------------

def test_latest_measures_takes_latest_month_in_period_and_the_snapshot(tiny: Serving) -> None:
    latest = resources.latest_measures(tiny, "T1", date(2025, 2, 1))
    values = dict(zip(latest["measure_id"], latest["value"]))
    assert values == {"workforce_fte": 1010.0, "estates_backlog_total_gbp": 5e6, "fte_per_ga_bed": 12.0}
    assert resources.latest_measures(tiny, "T2", date(2025, 2, 1)).is_empty()


def test_measure_history_keeps_the_period_and_measures_asked(tiny: Serving) -> None:
    hist = resources.measure_history(tiny, "T1", ("workforce_fte",), date(2025, 2, 1), date(2025, 3, 1))
    assert hist["value"].to_list() == [1010.0, 1200.0]


def test_activity_costs_count_each_activity_once(tiny: Serving) -> None:
    months = resources.activity_cost_months(tiny, "T1", date(2025, 1, 1), date(2025, 3, 1))
    assert sorted(months["activity_detail"].to_list()) == ["All DM01 tests", "all", "all"]
    summary = resources.cost_summary(months)
    ae = summary.filter(pl.col("activity") == "A&E attendances").row(0, named=True)
    assert ae["estimated_cost_gbp"] == 90000.0 and ae["activity_count"] == 300.0 and ae["months"] == 2
    assert ae["unit_cost_gbp"] == pytest.approx(300.0)
    span = resources.activity_cost_span(tiny, "T1")
    assert span.rows() == [("ae_attendances", date(2025, 1, 1), date(2025, 2, 1)),
                           ("diagnostic_tests", date(2025, 1, 1), date(2025, 1, 1))]
    tests = resources.diagnostic_test_costs(tiny, "T1", date(2025, 1, 1), date(2025, 3, 1))
    assert tests["test"].to_list() == ["MRI", "CT"] and tests["estimated_cost_gbp"].sum() == 2000.0


# ---- pure functions --------------------------------------------------------------------------------------------

def _latest(rows: dict[str, float], **extra) -> pl.DataFrame:
    n = len(rows)
    return pl.DataFrame({"measure_id": list(rows), "value": list(rows.values()),
                         "period_start": [date(2025, 5, 1)] * n, **{k: [v] * n for k, v in extra.items()}})


def test_workforce_by_group_sums_only_the_groups_that_add_up() -> None:
    latest = _latest({"workforce_fte_hchs_doctors": 100.0, "workforce_fte_nurses_health_visitors": 300.0,
                      "workforce_fte_professionally_qualified_clinical": 400.0,  # a subtotal: left out
                      "workforce_fte_consultant": 40.0,  # a grade of doctors: left out
                      "workforce_fte": 400.0}, peer_median=None, national_median=None)
    groups = resources.workforce_by_group(latest)
    assert groups["staff_group"].to_list() == ["Nurses and health visitors", "Doctors (hospital and community)"]
    assert groups["share_pct"].to_list() == [75.0, 25.0]
    assert resources.doctor_grades(latest)["grade"].to_list() == ["Consultants"]
    assert resources.workforce_by_group(_latest({"workforce_fte": 1.0}, peer_median=None,
                                                national_median=None)).is_empty()


def test_ratio_comparison_percent_from_the_medians() -> None:
    latest = pl.DataFrame({"measure_id": ["nurses_per_ga_bed", "fte_per_ga_bed", "workforce_fte"],
                           "value": [3.0, 12.0, 5.0], "peer_median": [2.0, 10.0, 1.0],
                           "national_median": [None, 8.0, 1.0], "unit": ["fte per bed"] * 3,
                           "period_start": [date(2025, 5, 1)] * 3, "peer_count": [70] * 3, "national_count": [130] * 3,
                           "formula": ["f"] * 3, "numerator": [1.0] * 3, "denominator": [1.0] * 3,
                           "source": ["s"] * 3, "note": [None] * 3})
    out = resources.ratio_comparison(latest)
    assert out["measure_id"].to_list() == ["fte_per_ga_bed", "nurses_per_ga_bed"]  # RATIOS order, ratios only
    assert out["vs_peer_pct"].to_list() == [pytest.approx(20.0), pytest.approx(50.0)]
    assert out["vs_national_pct"].to_list()[0] == pytest.approx(50.0) and out["vs_national_pct"][1] is None
    assert resources.missing_measures(latest, {"fte_per_ga_bed": "A", "vw_capacity_per_100k": "B"}) == ["B"]


def test_occupancy_verdict_and_money() -> None:
    assert resources.occupancy_verdict(93.5) == "1.5 points above the 92% standard"
    assert resources.occupancy_verdict(90.0) == "within the 92% standard (2.0 points below it)"
    # 92.04% shows as 92.0%: equal to the 92% ceiling, so it meets it (it read '0.0 points above', marked red)
    assert resources.occupancy_verdict(92.04) == "at the 92% standard, which meets it"
    assert resources.within_occupancy_standard(92.04) is True and resources.within_occupancy_standard(92.06) is False
    assert resources.occupancy_verdict(None) == "no occupancy figure"
    assert [resources.money(v) for v in (950, 13.84e6, 23.7e9, None)] == ["£950", "£13.8m", "£23.7bn", "-"]


# ---- the page --------------------------------------------------------------------------------------------------

def test_resources_page_for_a_trust_then_england(app) -> None:
    at = app(page="resources.py", org="RXL")
    text = page_text(at)
    assert at.title[0].value == "Resources"
    for heading in ("Workforce", "General and acute beds", "Delayed discharges", "Virtual wards", "Estates",
                    "Estimated cost of activity", "The planner's ratios against peers"):
        assert heading in text
    assert "An estimate, not the organisation's spend" in text and "National Cost Collection" in text
    assert "Virtual wards are published for ICBs, regions and England, not for trusts" in text
    assert "92% standard" in text
    assert len(at.get("plotly_chart")) >= 6
    staff_rxl = next(m.value for m in at.metric if m.label == "Staff (whole-time equivalent)")
    ratios = _chart(at, "res_ratios")
    assert {t["name"] for t in ratios["data"]} == {"This organisation", "Peer-group median"}

    at.selectbox(key="ibp_org").select("ENGLAND").run()
    assert not at.exception
    staff_eng = next(m.value for m in at.metric if m.label == "Staff (whole-time equivalent)")
    assert staff_eng != staff_rxl and float(staff_eng.replace(",", "")) > 1_000_000
    assert "no peers or national median to compare with" in page_text(at)
    assert next(m.value for m in at.metric if m.label == "Virtual ward beds") != "No data"


def test_staff_group_selector_adds_lines(app) -> None:
    at = app(page="resources.py", org="RXL")
    assert len(_chart(at, "res_workforce_trend")["data"]) == 2  # all staff + its national median
    at.multiselect(key="res_trend_groups").select("workforce_fte_midwives").run()
    assert not at.exception
    names = [t["name"] for t in _chart(at, "res_workforce_trend")["data"]]
    assert names == ["All staff", "Midwives"]  # two series, no median line


def test_resource_downloads_read_back_as_shown(app) -> None:
    at = app(page="resources.py", org="RXL")
    downloads = at.session_state["ibp_downloads"]
    frame = downloads[next(k for k in downloads if k.startswith("resource-ratios-rxl"))]
    shown = _table(at, frame.columns)
    assert shown.height == frame.height and shown["Value"].to_list() == frame["Value"].to_list()
    assert_frame_equal(pl.read_csv(io.BytesIO(exports.csv_bytes(frame)), try_parse_dates=True), frame,
                       check_dtypes=False)
    assert_frame_equal(pl.read_excel(io.BytesIO(exports.excel_bytes(frame, "ratios"))), frame, check_dtypes=False)
    costs = downloads[next(k for k in downloads if k.startswith("estimated-cost-of-activity-rxl"))]
    assert set(costs["Activity"]) == {"A&E attendances", "Emergency admissions", "Diagnostic tests (DM01)",
                                      "Elective admissions (admitted RTT clock stops)"}
    assert_frame_equal(pl.read_excel(io.BytesIO(exports.excel_bytes(costs, "costs"))), costs, check_dtypes=False)


def test_trend_lines_break_at_missing_months() -> None:
    """A series with no figure for Feb-Apr 2025 was drawn straight across them; the gap is now left blank."""
    history = pl.DataFrame({"period_start": [date(2025, 1, 1), date(2025, 5, 1), date(2025, 6, 1)],
                            "value": [90.0, 93.0, 94.0], "measure_name": ["Occupancy"] * 3,
                            "national_median": [91.0, 92.0, 92.5]})
    fig = resources.trend_figure(history, unit="percent").to_plotly_json()
    line = fig["data"][0]
    assert len(line["x"]) == 6 and list(line["y"]) == [90.0, None, None, None, 93.0, 94.0]
    median = fig["data"][1]
    assert list(median["y"]) == [91.0, None, None, None, 92.0, 92.5]
