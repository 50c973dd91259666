"""The Gaps and needs page (dashboards/app_pages/gaps.py) and its functions (ibp_pipeline/dashboards/gaps.py)."""
from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ibp_pipeline.dashboards import exports, gaps
from ibp_pipeline.dashboards.serving import Serving

from .conftest import make_serving, page_text, rows_frame

GAP_COLUMNS = {"org_code": pl.String, "metric_id": pl.String, "metric_name": pl.String, "period_start": pl.Date,
               "value": pl.Float64, "numerator": pl.Float64, "denominator": pl.Float64, "standard_name": pl.String,
               "kind": pl.String, "direction": pl.String, "target_value": pl.Float64, "is_trajectory": pl.Boolean,
               "end_target_value": pl.Float64, "deadline": pl.Date, "gap_points": pl.Float64, "gap_pct": pl.Float64,
               "meets_target": pl.Boolean, "trend_status": pl.String, "trend_slope_per_month": pl.Float64,
               "trend_points": pl.Int64, "months_to_target": pl.Float64,
               "projected_period_reaching_target": pl.Date, "on_track_for_deadline": pl.Boolean,
               "constitutional_target_value": pl.Float64, "constitutional_gap_points": pl.Float64,
               "constitutional_gap_pct": pl.Float64, "meets_constitutional": pl.Boolean,
               "peer_median": pl.Float64, "peer_top_quartile": pl.Float64,
               "peer_top_quartile_gap_points": pl.Float64, "peer_n_orgs": pl.Int64,
               "national_top_quartile": pl.Float64, "national_top_quartile_gap_points": pl.Float64,
               "target_method": pl.String, "gap_method": pl.String, "trend_method": pl.String,
               "benchmark_method": pl.String}
NEED_COLUMNS = {"org_code": pl.String, "period_start": pl.Date, "need_type": pl.String, "measure": pl.String,
                "description": pl.String, "result": pl.Float64, "unit": pl.String, "formula": pl.String,
                "inputs": pl.String, "assumptions": pl.String, "source": pl.String, "is_estimate": pl.Boolean}
CAT_COLUMNS = {"metric_id": pl.String, "name": pl.String, "unit": pl.String, "definition": pl.String,
               "source": pl.String}


def _chart(at, key: str) -> dict:
    found = [c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]
    assert found, f"no chart {key}"
    return json.loads(found[0].proto.spec)


def _need(measure: str, need_type: str, result: float, period: date, **inputs) -> dict:
    return {"org_code": "T1", "period_start": period, "need_type": need_type, "measure": measure, "result": result,
            "unit": "u", "formula": "f", "inputs": json.dumps(inputs), "assumptions": "a", "source": "s",
            "is_estimate": False}


@pytest.fixture
def tiny(tmp_path: Path) -> Serving:
    """T1 has RTT gaps in two months and needs of two types in different months."""
    metric_gaps = [
        {"org_code": "T1", "metric_id": "rtt_18wk_pct", "metric_name": "RTT", "period_start": date(2025, 2, 1),
         "value": 50.0, "target_value": 92.0, "gap_points": 42.0, "meets_target": False},
        {"org_code": "T1", "metric_id": "rtt_18wk_pct", "metric_name": "RTT", "period_start": date(2025, 3, 1),
         "value": 55.0, "target_value": 92.0, "gap_points": 37.0, "meets_target": False},
        {"org_code": "T1", "metric_id": "ae_4hr_pct", "metric_name": "A&E", "period_start": date(2025, 1, 1),
         "value": 80.0, "target_value": 78.0, "gap_points": -2.0, "meets_target": True},
    ]
    needs = [
        _need("beds_needed_at_92pct", "beds", 110.0, date(2025, 3, 1), ga_beds_available=100.0),
        _need("beds_needed_at_92pct", "beds", 105.0, date(2025, 2, 1), ga_beds_available=100.0),
        _need("extra_tests_per_week", "diagnostics", 20.0, date(2025, 1, 1), monthly_activity=520.0),
    ]
    catalogue = [{"metric_id": "rtt_18wk_pct", "name": "RTT under 18 weeks", "unit": "percent"}]
    return make_serving(tmp_path / "serving.duckdb", {
        "s4_gaps.metric_gaps": rows_frame(metric_gaps, GAP_COLUMNS),
        "s4_gaps.needs": rows_frame(needs, NEED_COLUMNS),
        "s1_current_state.metric_catalogue": rows_frame(catalogue, CAT_COLUMNS)})


# ---- data functions on a hand-made database --------------------------------------------------------------------

def test_gap_table_latest_month_per_measure_in_the_period(tiny: Serving) -> None:
    table = gaps.gap_table(tiny, "T1", date(2025, 2, 1))
    assert table["metric_id"].to_list() == ["ae_4hr_pct", "rtt_18wk_pct"]  # A&E first, as on every page
    rtt = table.filter(pl.col("metric_id") == "rtt_18wk_pct").row(0, named=True)
    assert (rtt["period_start"], rtt["value"], rtt["metric_name"], rtt["unit"]) == \
        (date(2025, 2, 1), 50.0, "RTT under 18 weeks", "percent")
    assert gaps.gap_table(tiny, "T1", date(2025, 3, 1)).filter(pl.col("metric_id") == "rtt_18wk_pct")["value"][0] == 55
    assert gaps.gap_table(tiny, "T2", date(2025, 3, 1)).is_empty()


def test_needs_each_type_at_its_latest_month_in_the_period(tiny: Serving) -> None:
    rows = gaps.needs(tiny, "T1", date(2025, 3, 1))
    assert dict(zip(rows["need_type"], rows["result"])) == {"beds": 110.0, "diagnostics": 20.0}
    assert gaps.needs(tiny, "T1", date(2025, 2, 1)).filter(pl.col("need_type") == "beds")["result"].to_list() == [105]
    assert gaps.needs(tiny, "T1", date(2024, 12, 1)).is_empty()
    assert gaps.need_months(tiny, "T1")["latest"].to_list() == [date(2025, 3, 1), date(2025, 1, 1)]


# ---- pure functions --------------------------------------------------------------------------------------------

def _gap_row(**kw) -> dict:
    row = {"metric_name": "RTT", "unit": "percent", "value": 57.1, "target_value": 92.0, "gap_points": 34.9,
           "meets_target": False, "period_start": date(2025, 3, 1), "trend_status": "improving",
           "months_to_target": 289.4, "is_trajectory": False, "end_target_value": 92.0, "deadline": None}
    return row | kw


def test_gap_sentence_known_answers() -> None:
    assert gaps.gap_sentence(_gap_row()) == ("RTT: 57.1% in Mar 2025 against 92.0%, 34.9 points short; improving, "
                                             "but at the current trend it takes more than 10 years to reach the "
                                             "target.")  # not 'about 289 months'
    assert gaps.gap_sentence(_gap_row(months_to_target=1.2)).endswith("reaches the target in about 1 month.")
    assert gaps.gap_sentence(_gap_row(months_to_target=30.0)).endswith("reaches the target in about 2 years.")
    assert gaps.gap_sentence(_gap_row(unit="patients", value=259289.0, target_value=250000.0, gap_points=9289.0,
                                      months_to_target=7.0)) == (
        "RTT: 259,289 in Mar 2025 against 250,000, 9,289 short; improving, at the current trend it reaches "
        "the target in about 7 months.")
    met_step = gaps.gap_sentence(_gap_row(value=75.2, target_value=74.7, gap_points=-0.5, meets_target=True,
                                          is_trajectory=True, end_target_value=78.0, deadline=date(2026, 3, 1),
                                          months_to_target=164.0))
    assert met_step == ("RTT: 75.2% in Mar 2025 against 74.7%, meets the target of this month's step on the "
                        "trajectory; improving, but at the current trend it takes more than 10 years to reach the "
                        "end target of 78.0% due Mar 2026.")
    assert gaps.gap_sentence(_gap_row(trend_status="not_at_current_trend", months_to_target=None)).endswith(
        "34.9 points short; at the current trend it will not reach the target.")
    assert gaps.gap_sentence(_gap_row(target_value=None)) == "RTT: no target applies."


def test_gap_display_plain_labels() -> None:
    row = {c: None for c in GAP_COLUMNS} | {"metric_name": "RTT", "trend_status": "not_at_current_trend",
                                            "kind": "constitutional", "gap_points": 3.0}
    shown = gaps.gap_display(rows_frame([row], GAP_COLUMNS))
    assert shown["Trend"][0] == "Not at the current trend (flat or getting worse)"
    assert shown["Kind"][0] == "Constitutional standard" and shown["Gap (points)"][0] == 3.0
    assert not any("_" in c for c in shown.columns)


def test_needs_headline_and_chart_known_answers() -> None:
    rows = rows_frame([
        _need("extra_within_4h_per_month", "ae_4hr", 128.0, date(2025, 7, 1), within_4h=15700.0),
        _need("beds_gap_at_92pct", "beds", -7.8, date(2025, 8, 1)),
        _need("beds_needed_at_92pct", "beds", 752.2, date(2025, 8, 1), ga_beds_available=760.0),
        _need("extra_tests_per_week", "diagnostics", 28.3, date(2025, 3, 1), monthly_activity=5200.0),
        _need("extra_fte_cost_gbp_per_year", "workforce", 0.0, date(2025, 8, 1)),
        _need("extra_capacity_needed", "waiting_list", 985.5, date(2025, 3, 1)),
    ], NEED_COLUMNS)
    head = gaps.needs_headline(rows)
    assert head["need"].to_list() == ["Waiting list capacity (RTT)", "Beds", "Diagnostic tests", "Cost",
                                      "A&E four-hour standard"]
    assert head["result"].to_list() == [985.5, -7.8, 28.3, 0.0, 128.0]
    chart = gaps.needs_chart_frame(rows)
    values = dict(zip(chart["label"], chart["value"]))
    assert values["G&A beds available now"] == 760.0 and values["Beds needed at 92% occupancy"] == 752.2
    assert values["Tests a week now"] == pytest.approx(1200.0)  # 5200 a month x 12 / 52
    assert values["Needed within 4 hours to meet the target"] == 15828.0
    with_staff = pl.concat([rows, rows_frame([_need("extra_fte_for_beds", "workforce", 0.0, date(2025, 8, 1))],
                                         NEED_COLUMNS)])
    assert "Staff" not in gaps.needs_chart_frame(with_staff)["need"].to_list()  # all zero: nothing to draw
    staff = rows_frame([_need("extra_fte_for_beds", "workforce", 12.5, date(2025, 8, 1))], NEED_COLUMNS)
    assert gaps.needs_chart_frame(staff).rows() == [("Staff", "Extra staff for the extra beds (FTE)", 12.5, "fte",
                                                     "needed")]
    assert gaps.parse_inputs("not json") == {} and gaps.parse_inputs(None) == {} and gaps.parse_inputs("[1]") == {}
    assert [gaps.format_need(v, u) for v, u in ((51673.0, "gbp per year"), (985.49, "patients per week"),
                                                (2.0733, "ratio"), (3.25, "fte"))] == \
        ["£51,673 a year", "985 patients a week", "2.07 (ratio)", "3.2 FTE"]


# ---- the page --------------------------------------------------------------------------------------------------

def test_gaps_page_for_a_trust_then_england(app, served_db) -> None:
    at = app(page="gaps.py", org="RXL")
    text = page_text(at)
    assert at.title[0].value == "Gaps and needs"
    con = duckdb.connect(str(served_db), read_only=True)
    rtt = con.execute("select value from s1_current_state.metric_values where org_code = 'RXL' "
                      "and metric_id = 'rtt_18wk_pct' order by period_start desc limit 1").fetchone()[0]
    con.close()
    assert f"RTT patients waiting under 18 weeks: {rtt:.1f}%" in text
    assert "A waiting list is a queue" in text
    assert {"gap_chart", "needs_chart"} <= {c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")}
    labels = [e.label for e in at.expander]
    assert any(label.startswith("Beds: ") for label in labels) and any(label.startswith("Cost: ") for label in labels)
    # the formula, in words
    assert "/ 0.92 - General and acute beds available (monthly)" in text and "ga_beds_available" not in text
    rxl = at.dataframe[0].value["Value"].tolist()

    at.selectbox(key="ibp_org").select("ENGLAND").run()
    assert not at.exception
    assert at.dataframe[0].value["Value"].tolist() != rxl
    assert "England" in at.caption[0].value


def test_gap_basis_selector_changes_the_chart(app) -> None:
    at = app(page="gaps.py", org="RXL")
    target = _chart(at, "gap_chart")["data"][0]["x"]
    at.radio(key="gap_basis").set_value("peer").run()
    assert not at.exception
    peer = _chart(at, "gap_chart")["data"][0]["x"]
    shown = at.dataframe[0].value
    assert peer != target
    assert peer == pytest.approx(shown["Gap to peer top quartile (points)"].dropna().tolist())


def test_needs_need_a_recent_period(app) -> None:
    at = app(page="gaps.py", org="RXL", query={"from": "2023-01", "to": "2024-12"})
    text = page_text(at)
    assert "No needs worked out for" in text and "Move the end of the period" in text
    assert at.dataframe[0].value["Month"].max().year == 2024  # the gap table follows the period too


def test_gap_downloads_read_back_as_shown(app) -> None:
    at = app(page="gaps.py", org="RXL")
    downloads = at.session_state["ibp_downloads"]
    frame = downloads[next(k for k in downloads if k.startswith("gaps-to-target-rxl"))]
    shown = pl.from_pandas(at.dataframe[0].value)
    assert shown.columns == frame.columns and shown["Value"].to_list() == frame["Value"].to_list()
    assert_frame_equal(pl.read_csv(io.BytesIO(exports.csv_bytes(frame)), try_parse_dates=True), frame,
                       check_dtypes=False)
    assert_frame_equal(pl.read_excel(io.BytesIO(exports.excel_bytes(frame, "gaps"))), frame, check_dtypes=False)
    needs = downloads[next(k for k in downloads if k.startswith("needs-rxl"))]
    assert "Formula" in needs.columns and needs.height >= 5
    assert_frame_equal(pl.read_csv(io.BytesIO(exports.csv_bytes(needs)), try_parse_dates=True), needs,
                       check_dtypes=False)
