"""Forecasts and risk page: the real app for England, an ICB and a trust, its metric selector, its downloads, the
access rule on an ICB's register, and the data functions and plain-English helpers on known answers."""
from __future__ import annotations

import io
import json
from datetime import date
import duckdb
import polars as pl
import pytest

from ibp_pipeline import access
from ibp_pipeline.dashboards import exports
from ibp_pipeline.dashboards import forecasts as fc
from ibp_pipeline.dashboards.serving import Serving

from .conftest import page_text


def _figure(at, key: str) -> dict:
    """The plotly figure (as JSON) of the chart with this key."""
    for chart in at.get("plotly_chart"):
        if chart.proto.id.endswith(key) or key in chart.proto.id:
            return json.loads(chart.proto.spec)
    raise AssertionError(f"no chart {key}: {[c.proto.id for c in at.get('plotly_chart')]}")


def _displayed(at, first_column: str, second_column: str) -> pl.DataFrame:
    """The displayed table whose first two headings are these (st.dataframe's value is pandas)."""
    for frame in at.dataframe:
        cols = list(frame.value.columns)
        if cols[:2] == [first_column, second_column]:
            return pl.from_pandas(frame.value)
    raise AssertionError(f"no table starting {first_column}, {second_column}")


def _as_text(frame: pl.DataFrame) -> list[tuple]:
    """Rows as text, dates as YYYY-MM-DD, so a displayed, a CSV and an Excel copy can be compared."""
    out = frame.with_columns(pl.col(pl.Datetime).dt.date()).with_columns(pl.all().cast(pl.String))
    return [tuple(r) for r in out.rows()]


def _check_downloads(at, displayed: pl.DataFrame, prefix: str) -> None:
    """The registered download behind a displayed table: same rows as shown, and the CSV and Excel files read
    back to the same figures."""
    downloads = at.session_state["ibp_downloads"]
    names = [n for n in downloads if n.startswith(prefix)]
    assert len(names) == 1, (prefix, list(downloads))
    frame = downloads[names[0]]
    assert _as_text(frame) == _as_text(displayed)
    from_csv = pl.read_csv(io.BytesIO(exports.csv_bytes(frame)), try_parse_dates=True)
    from_xlsx = pl.read_excel(io.BytesIO(exports.excel_bytes(frame, prefix)))
    assert from_csv.columns == frame.columns == from_xlsx.columns
    for copy in (from_csv, from_xlsx):
        for col in frame.columns:
            if frame[col].dtype.is_float():
                assert copy[col].cast(pl.Float64).to_list() == pytest.approx(frame[col].to_list(), nan_ok=True)
            else:
                assert copy[col].cast(pl.String).to_list() == frame[col].cast(pl.String).to_list(), col


def test_trust_page_shows_fan_risk_register_and_accuracy(app):
    at = app(page="forecasts.py", org="RXL")
    text = page_text(at)
    assert at.title[0].value == "Forecasts and risk"
    assert "A&E four-hour performance: the next 24 months" in text
    assert "in 8 of 10 simulated futures the value is between" in text
    assert "MASE" in text and "Inside the 80% range" in text
    fan = _figure(at, "fc_fan")
    names = [t.get("name") for t in fan["data"]]
    assert {"80% interval", "95% interval", "Forecast", "Actual"} <= set(names)
    targets = [t for t in fan["data"] if " target " in (t.get("hovertemplate") or "")]
    assert "A&E 4-hour performance: at least 78% in March 2026" in {t["name"] for t in targets}
    assert max(x for t in targets for x in t["x"]) > max(next(t for t in fan["data"] if t["name"] == "Actual")["x"])
    prob = _figure(at, "fc_prob")
    assert all(0 <= y <= 100 for t in prob["data"] for y in t["y"])
    assert any(t.get("marker", {}).get("symbol") == "diamond" for t in prob["data"])  # deadline highlighted
    register = _displayed(at, "Rank", "Standard")
    assert register["Rank"].to_list() == list(range(1, register.height + 1))
    assert register["Chance of meeting (%)"].is_sorted()
    assert "Code" not in register.columns  # a trust's own register only
    _check_downloads(at, register, "risk-register-rxl")
    _check_downloads(at, _displayed(at, "Standard", "Month"), "risk-ae-4hr-pct-rxl")
    _check_downloads(at, _displayed(at, "Month", "Months ahead"), "forecast-ae-4hr-pct-rxl")


def test_metric_selector_changes_the_fan_risk_and_accuracy(app):
    at = app(page="forecasts.py", org="RXL")
    before_fan = _figure(at, "fc_fan")
    before_risk = _displayed(at, "Standard", "Month")
    at.selectbox(key="fc_metric").select("rtt_18wk_pct").run()
    assert not at.exception, at.exception
    text = page_text(at)
    assert "RTT patients waiting under 18 weeks: the next" in text
    after_risk = _displayed(at, "Standard", "Month")
    assert set(after_risk["Standard"]) != set(before_risk["Standard"])
    assert all("RTT" in s for s in after_risk["Standard"])
    actual = lambda fig: next(t["y"] for t in fig["data"] if t.get("name") == "Actual")  # noqa: E731
    assert actual(_figure(at, "fc_fan")) != actual(before_fan)
    _check_downloads(at, after_risk, "risk-rtt-18wk-pct-rxl")


def test_history_follows_the_period_selector(app, served_db):
    at = app(page="forecasts.py", org="RXL", query={"from": "2022-04", "to": "2023-03"})
    actual = next(t for t in _figure(at, "fc_fan")["data"] if t.get("name") == "Actual")
    assert actual["x"][0].startswith("2022-04") and actual["x"][-1].startswith("2023-03")
    con = duckdb.connect(str(served_db), read_only=True)
    origin = con.execute("select max(forecast_origin) from s5_impact.forecasts where org_code = 'RXL' "
                         "and metric_id = 'ae_4hr_pct'").fetchone()[0]
    con.close()
    assert (f"Actual values are shown to Mar 2023 (end of the selected period); the forecast starts after "
            f"{origin:%b %Y}") in page_text(at)


def test_england_shows_members_register_heatmap_of_regions_and_icbs(app):
    at = app(page="forecasts.py")
    text = page_text(at)
    assert "England" in at.caption[0].value and "in 8 of 10 simulated futures" in text
    assert "The regions, ICBs and trusts in England" in text
    heat = _figure(at, "fc_members_heatmap")["data"][0]
    assert heat["type"] == "heatmap" and 40 <= len(heat["y"]) <= 60  # 7 regions + 42 ICBs
    within = _displayed(at, "Rank", "Code")
    assert {"region", "icb", "provider"} <= set(within["Level"])
    assert "ENGLAND" not in set(within["Code"])
    _check_downloads(at, within, "risk-register-within-england")


def test_icb_register_lists_only_what_a_trust_user_may_see(app, served_db, tmp_path):
    users = tmp_path / "users.yaml"
    access.add_user(users, "coo.rxl", "trust", "RXL", "a long enough password")
    at = app(users_file=users)
    at.text_input(key="login_username").input("coo.rxl")
    at.text_input(key="login_password").input("a long enough password")
    at.button[0].click().run()
    at.selectbox(key="ibp_org").select("QE1").run()
    at.switch_page("app_pages/forecasts.py").run()
    assert not at.exception, at.exception
    visible = at.session_state["ibp_selection"].visible
    within = _displayed(at, "Rank", "Code")
    assert set(within["Code"]) <= visible and "RXL" in set(within["Code"])
    everyone = fc.member_register(Serving(served_db), "QE1", "icb")
    assert set(everyone["org_code"]) - visible  # the ICB has trusts this user may not see, and they are hidden
    assert within["Rank"].to_list() == list(range(1, within.height + 1))  # ranks recomputed on what is shown


# ---- pure helpers ----------------------------------------------------------------------------------------------

def test_model_names_in_plain_english():
    assert fc.model_plain("ETS(A,N,N)") == "exponential smoothing (level only: no trend, no seasonal pattern)"
    assert fc.model_plain("ETS(A,Ad,A)") == ("exponential smoothing (level, a trend that flattens out and a "
                                             "seasonal pattern)")
    assert fc.model_plain("ratio(num=ETS(A,N,A); den=naive)") == (
        "a percentage forecast through its parts: the numerator by exponential smoothing (level and a repeating "
        "seasonal pattern), the denominator by the last value carried forward (too little history for a fitted "
        "model)")
    assert fc.model_plain("something_new") == "something_new"
    assert fc.model_plain(None) == "no model recorded"


def test_accuracy_sentences():
    assert fc.mase_sentence(0.74, "seasonal_naive_12") == (
        "MASE 0.74: better than the simple rule of repeating the value of the same month a year before: its "
        "errors were 26% smaller (below 1 means better than that rule).")
    assert "worse than the simple rule of repeating last month's value: its errors were 30% larger" in \
        fc.mase_sentence(1.3, "naive_1")
    assert "about as good" in fc.mase_sentence(1.0, "naive_1")
    assert fc.mase_sentence(None, "naive_1").startswith("No scaled error")
    assert fc.coverage_sentence(0.79, 0.8, 72) == ("The actual fell inside the 80% interval in 79% of 72 test "
                                                   "forecasts, about as often as promised.")
    assert "much less often than promised" in fc.coverage_sentence(0.5, 0.8, 6)
    assert "a little too narrow" in fc.coverage_sentence(0.7, 0.8, 6)
    assert fc.trust_verdict(0.7, 0.8)[0].startswith("Reasonable to plan with")
    assert fc.trust_verdict(1.4, 0.3)[0].startswith("Treat with caution")
    assert fc.trust_verdict(None, 0.8)[0] == "Not enough test data to judge"


def test_range_and_probability_sentences():
    assert fc.range_sentence(73.48, 77.13, 80.51, "percent") == (
        "in 8 of 10 simulated futures the value is between 73.5% and 80.5% (1 in 10 below, 1 in 10 above); the "
        "middle one (the median, p50) is 77.1%")
    assert "between 1,200 and 1,650" in fc.range_sentence(1200, 1400, 1650, "count")
    row = {"standard_name": "A&E 78%", "period_start": date(2026, 3, 1), "is_deadline_month": True,
           "direction": "at_least", "p10": 73.5, "p50": 77.1, "p90": 80.5, "target_value": 78.0,
           "prob_meet_target": 0.3753}
    sentence = fc.probability_sentence(row, "percent")
    assert sentence.startswith("**A&E 78%**: in March 2026 (its deadline), in 8 of 10 simulated futures")
    assert sentence.endswith("Chance of being at least 78.0%: **38%**.")
    assert fc.probability_sentence({**row, "prob_meet_target": 0.0}, "percent").endswith("**almost none**.")


def test_headline_risk_takes_the_deadline_month_else_the_last():
    risk = pl.DataFrame({
        "standard_id": ["a", "a", "a", "b", "b"], "is_primary": [True, True, True, False, False],
        "period_start": [date(2026, 2, 1), date(2026, 3, 1), date(2026, 4, 1), date(2026, 3, 1), date(2026, 4, 1)],
        "is_deadline_month": [False, True, False, False, False], "prob_meet_target": [0.1, 0.2, 0.3, 0.4, 0.5]})
    head = fc.headline_risk(risk)
    assert head.select("standard_id", "period_start").rows() == [("a", date(2026, 3, 1)), ("b", date(2026, 4, 1))]


def test_rank_register_least_likely_first_then_biggest_shortfall():
    rows = pl.DataFrame({"org_code": ["X", "X", "Y", "Y"], "standard_id": ["s1", "s2", "s1", "s2"],
                         "direction": ["at_least", "at_most", "at_least", "at_least"],
                         "gap_p50": [-2.0, 5.0, -9.0, 1.0], "prob_meet_target": [0.0, 0.0, 0.0, 0.6],
                         "rank": [9, 9, 9, 9]})
    ranked = fc.rank_register(rows)
    # all three at 0%: shortfalls 2 (X s1), 5 (X s2, at most: above the ceiling), 9 (Y s1)
    assert ranked.select("rank", "org_code", "standard_id").rows() == [
        (1, "Y", "s1"), (2, "X", "s2"), (3, "X", "s1"), (4, "Y", "s2")]
    assert fc.rank_register(rows.clear()).columns[-1] == "rank"


def test_register_matrix_orders_organisations_by_mean_chance():
    members = pl.DataFrame({"org_code": ["A", "A", "B", "B", "C"], "org_name": ["a", "a", "b", "b", "c"],
                            "standard_name": ["S1", "S2", "S1", "S2", "S1"], "is_primary": [True] * 5,
                            "prob_meet_target": [0.9, 0.7, 0.1, 0.2, 0.5]})
    matrix = fc.register_matrix(members)
    assert matrix.columns == ["org_code", "org_name", "S1", "S2"]
    assert matrix["org_code"].to_list() == ["B", "C", "A"]
    assert matrix.filter(pl.col("org_code") == "C")["S2"][0] is None
    assert fc.band_label("unlikely") == "Unlikely (10% to 40%)" and fc.band_colour("very likely") == "#003087"


def test_heatmap_labels_every_row_on_the_colour_blind_safe_scale():
    """Five ICBs once showed three labels (plotly thins category ticks) on a red-to-green scale."""
    from ibp_pipeline.dashboards import theme

    members = pl.DataFrame({"org_code": [f"Q{i}" for i in range(5)] * 3,
                            "org_name": [f"NHS Somewhere Integrated Care Board {i}" for i in range(5)] * 3,
                            "standard_name": ["A&E 4 hours"] * 5 + ["RTT 18 weeks"] * 5 + ["Cancer 62 days"] * 5,
                            "is_primary": [True] * 15, "prob_meet_target": [i / 15 for i in range(15)]})
    fig = fc.register_heatmap(fc.register_matrix(members)).to_plotly_json()
    heat, layout = fig["data"][0], fig["layout"]
    assert len(heat["y"]) == 5 and list(layout["yaxis"]["tickvals"]) == list(heat["y"])
    assert list(layout["yaxis"]["ticktext"]) == list(heat["y"]) and list(layout["xaxis"]["ticktext"]) == list(heat["x"])
    assert [c for _, c in heat["colorscale"]] == [c for _, c in theme.DIVERGING_SCALE]
    colours = {fc.band_colour(b) for b in fc.RISK_BANDS}
    assert theme.NHS_RED not in colours and theme.NHS_GREEN not in colours and theme.NHS_AQUA_GREEN not in colours


# ---- data functions on a tiny hand-made database --------------------------------------------------------------

def tiny_db(path, tables: dict[str, pl.DataFrame]) -> Serving:
    """A served database built by hand: {'schema.table': frame}, read back through Serving like the real one."""
    con = duckdb.connect(str(path))
    for name, frame in tables.items():
        con.execute(f"create schema if not exists {name.split('.')[0]}")
        con.register("frame", frame)
        con.execute(f"create table {name} as select * from frame")
        con.unregister("frame")
    con.close()
    return Serving(path)


def _register_row(org: str, level: str, icb: str | None, standard: str, prob: float, band: str) -> dict:
    return {"org_code": org, "org_name": f"ORG {org}", "org_level": level, "parent_icb_code": icb, "icb_code": icb,
            "standard_id": standard, "standard_name": standard.upper(), "metric_id": "ae_4hr_pct",
            "kind": "planning_target", "direction": "at_least", "is_primary": True, "deadline": date(2026, 3, 1),
            "assessed_period": date(2026, 3, 1), "assessed_basis": "the standard's deadline",
            "months_to_assessed": 8, "target_value": 78.0, "p10": 70.0, "p50": 75.0, "p90": 80.0, "gap_p50": -3.0,
            "prob_meet_target": prob, "risk_band": band, "rank_in_org": 1, "rank_in_icb": 1, "rank_in_level": 1,
            "draws": 100}


@pytest.fixture
def tiny(tmp_path) -> Serving:
    """Two trusts in ICB QA1 (region Y1), a trust in another ICB of the same region, one in another region."""
    m = date
    tables = {
        "s1_current_state.metric_catalogue": pl.DataFrame({
            "metric_id": ["ae_4hr_pct", "rtt_waiting_list", "rtt_52wk_waiters"],
            "name": ["A&E four-hour", "RTT waiting list", "RTT 52-week waiters"],
            "unit": ["percent", "count", "count"]}),
        "s1_current_state.organisations": pl.DataFrame({
            "org_code": ["RA1", "RA2", "RB1", "RZ1", "QA1", "QB1", "Y1", "Y2"],
            "org_name": ["TRUST ONE", "TRUST TWO", "TRUST THREE", "TRUST FAR", "NHS ICB A", "NHS ICB B",
                         "REGION ONE", "REGION TWO"],
            "region_code": ["Y1", "Y1", "Y1", "Y2", "Y1", "Y1", "Y1", "Y2"]}),
        "s1_current_state.metric_values": pl.DataFrame({
            "org_code": ["RA1"] * 5, "metric_id": ["ae_4hr_pct"] * 5,
            "period_grain": ["month", "month", "month", "month", "quarter"],
            "period_start": [m(2024, 1, 1), m(2024, 2, 1), m(2024, 3, 1), m(2024, 4, 1), m(2024, 4, 1)],
            "value": [70.0, 71.0, None, 73.0, 99.0]}),
        "s5_impact.forecasts": pl.DataFrame({
            "org_code": ["RA1"] * 3, "metric_id": ["rtt_waiting_list", "ae_4hr_pct", "ae_4hr_pct"],
            "unit": ["count", "percent", "percent"], "model": ["naive", "ETS(A,N,N)", "ETS(A,N,N)"],
            "forecast_origin": [m(2024, 4, 1)] * 3, "period_start": [m(2024, 5, 1), m(2024, 5, 1), m(2024, 6, 1)]}),
        "s2_triple_aim.targets": pl.DataFrame({
            "org_code": ["RA1"] * 4, "metric_id": ["ae_4hr_pct"] * 4, "is_primary": [True, True, True, False],
            "period_grain": ["month"] * 4,
            "period_start": [m(2024, 3, 1), m(2024, 4, 1), m(2024, 5, 1), m(2024, 5, 1)],
            "target_value": [76.0, 77.0, 78.0, 95.0], "standard_name": ["T", "T", "T", "C"]}),
        "s5_impact.risk": pl.DataFrame({
            "org_code": ["RA1"] * 4, "metric_id": ["ae_4hr_pct"] * 4, "is_primary": [True, True, True, False],
            "period_start": [m(2024, 5, 1), m(2024, 6, 1), m(2024, 7, 1), m(2024, 7, 1)],
            "target_value": [78.0, 78.0, 78.0, 95.0], "standard_name": ["T", "T", "T", "C"]}),
        "s5_impact.risk_register": pl.DataFrame([
            _register_row("RA1", "provider", "QA1", "s1", 0.2, "unlikely"),
            _register_row("RA2", "provider", "QA1", "s1", 0.05, "very unlikely"),
            _register_row("RB1", "provider", "QB1", "s1", 0.5, "uncertain"),
            _register_row("RZ1", "provider", "QZ9", "s1", 0.95, "very likely"),
            _register_row("QA1", "icb", "QA1", "s1", 0.3, "unlikely"),
            _register_row("QB1", "icb", "QB1", "s1", 0.7, "likely"),
            _register_row("Y1", "region", None, "s1", 0.4, "uncertain"),
            _register_row("ENGLAND", "england", None, "s1", 0.45, "uncertain"),
            _register_row("RA1", "provider", "QA1", "s2", 0.0, "very unlikely")
            | {"metric_id": "rtt_52wk_waiters_pct_of_rtt_waiting_list"}]),
    }
    return tiny_db(tmp_path / "tiny.duckdb", tables)


def test_history_within_the_period_else_the_last_months(tiny):
    within = fc.history(tiny, "RA1", "ae_4hr_pct", date(2024, 2, 1), date(2024, 4, 1))
    assert within.rows() == [(date(2024, 2, 1), 71.0), (date(2024, 4, 1), 73.0)]  # no null, no quarter row
    fallback = fc.history(tiny, "RA1", "ae_4hr_pct", date(2020, 1, 1), date(2020, 12, 1))
    assert fallback["value"].to_list() == [70.0, 71.0, 73.0]
    assert fc.history(tiny, "XXX", "ae_4hr_pct", date(2024, 1, 1), date(2024, 4, 1)).is_empty()


def test_fan_targets_follow_the_trajectory_then_the_held_target(tiny):
    targets = fc.fan_targets(tiny, "RA1", "ae_4hr_pct", date(2024, 4, 1))
    assert targets.select("period_start", "target_value").rows() == [
        (date(2024, 4, 1), 77.0), (date(2024, 5, 1), 78.0), (date(2024, 6, 1), 78.0), (date(2024, 7, 1), 78.0)]
    assert targets["basis"].to_list()[:2] == ["target for the month"] * 2
    assert all(b.startswith("held") for b in targets["basis"].to_list()[2:])


def test_forecast_metrics_put_key_standards_first_with_names(tiny):
    metrics = fc.forecast_metrics(tiny, "RA1")
    assert metrics.select("metric_id", "name", "unit").rows() == [
        ("ae_4hr_pct", "A&E four-hour", "percent"), ("rtt_waiting_list", "RTT waiting list", "count")]


def test_register_names_derived_shares_from_their_parts(tiny):
    register = fc.register(tiny, "RA1")
    assert register.select("standard_id", "metric_name", "unit").rows() == [
        ("s1", "A&E four-hour", "percent"),
        ("s2", "RTT 52-week waiters, as % of the RTT waiting list", "percent")]


@pytest.mark.parametrize("org, level, expected", [
    ("QA1", "icb", {"RA1", "RA2"}),
    ("Y1", "region", {"RA1", "RA2", "RB1", "QA1", "QB1"}),
    ("ENGLAND", "england", {"RA1", "RA2", "RB1", "RZ1", "QA1", "QB1", "Y1"}),
    ("RA1", "provider", set()),
])
def test_member_register_is_the_organisations_within(tiny, org, level, expected):
    members = fc.member_register(tiny, org, level)
    assert set(members["org_code"]) == expected
    assert members["prob_meet_target"].is_sorted()
    if "RA1" in expected:
        assert set(members.filter(pl.col("org_code") == "RA1")["org_name"]) == {"Org Ra1"}  # plain name


def test_a_chance_reads_the_same_in_the_sentence_the_bars_the_heatmap_and_the_tables():
    """0.175 once read 18% in the headline and 17% (or 17.5) elsewhere: one rounding rule now."""
    row = {"org_code": "X", "org_name": "x", "standard_id": "s", "standard_name": "S", "is_primary": True,
           "prob_meet_target": 0.175, "risk_band": "unlikely", "assessed_period": date(2026, 3, 1),
           "direction": "at_least", "gap_p50": -1.0, "target_value": 78.0, "p10": 70.0, "p50": 75.0, "p90": 80.0,
           "period_start": date(2026, 3, 1), "is_deadline_month": True}
    frame = pl.DataFrame([row])
    sentence = fc.probability_sentence(row, "percent")
    bars = fc.register_figure(frame).to_plotly_json()["data"][0]
    heat = fc.register_heatmap(fc.register_matrix(frame)).to_plotly_json()["data"][0]
    assert "**18%**" in sentence and list(bars["x"]) == [18] and bars["text"][0].startswith("18%")
    assert heat["z"][0][0] == 18 and heat["text"][0][0] == "18%"
    assert frame.select(fc.chance_column())["prob_meet_target"].to_list() == [18]
