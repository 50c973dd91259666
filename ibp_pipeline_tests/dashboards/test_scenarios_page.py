"""Scenarios page: the real app for England and a trust, its selectors, its downloads, and the data functions and
reshaping (waterfall steps, tornado order, cost per £1m) on known answers from a tiny hand-made database."""
from __future__ import annotations

from datetime import date, datetime

import duckdb
import polars as pl
import pytest

from ibp_pipeline.dashboards import scenarios as sc
from ibp_pipeline.dashboards.serving import Serving

from .conftest import page_text
from .test_forecasts_page import _check_downloads, _displayed, _figure, tiny_db
from ibp_pipeline_tests.conftest import icbs_of_today


def _waterfall(at) -> dict:
    return _figure(at, "sc_waterfall_chart")["data"][0]


def test_trust_page_compares_explains_and_costs_scenarios(app, served_db):
    at = app(page="scenarios.py", org="RXL")
    text = page_text(at)
    assert at.title[0].value == "Scenarios"
    con = duckdb.connect(str(served_db), read_only=True)
    try:  # what the baseline run covers, counted straight from the results table
        n = dict(con.execute("select org_level, count(distinct org_code) from s6_scenarios.results "
                             "where scenario = 'baseline' group by 1").fetchall())
        n_metrics = con.execute("select count(distinct metric_id) from s6_scenarios.results "
                                "where scenario = 'baseline'").fetchone()[0]
    finally:
        con.close()
    assert f"Scenario results exist only for {n_metrics} measures (A&E attendances; A&E four-hour performance;" in text
    assert f"for England, {n['region']} regions, {n['icb']} ICBs and {n['provider']} trusts" in text
    assert n["icb"] <= len(icbs_of_today())  # the ICBs of today, never the merged ones
    assert "**Demand surge**: Demand 2-5% above the forecast trend" in text  # descriptions shown
    for key in ("sc_cmp_p50", "sc_cmp_prob", "sc_waterfall_chart", "sc_tornado_chart", "sc_cost", "sc_initiatives"):
        _figure(at, key)
    comparison = _displayed(at, "Scenario", "Month")
    assert set(comparison["Scenario"]) == {"Demand surge", "Workforce shortfall", "Funding cut", "Policy change",
                                           "Technology shift"}
    _check_downloads(at, comparison, "scenario-comparison-ae-4hr-pct-rxl")
    # the waterfall adds up: baseline + the drivers' changes = the scenario
    bars = _waterfall(at)
    assert bars["type"] == "waterfall" and bars["measure"][0] == "absolute" and bars["measure"][-1] == "total"
    assert bars["y"][0] + sum(bars["y"][1:-1]) == pytest.approx(bars["y"][-1], abs=1e-6)
    # the tornado: largest swing first
    tornado = _figure(at, "sc_tornado_chart")["data"]
    swings = [abs(hi - lo) for lo, hi in zip(tornado[0]["x"], tornado[1]["x"])]
    assert swings == sorted(swings, reverse=True)
    # cost against chance: technology shift is the only scenario with a cost at a trust (30 virtual ward places)
    cost = next(pl.from_pandas(d.value) for d in at.dataframe if "Yearly rate (£, 12 x that month)" in d.value.columns)
    costed = cost.filter(pl.col("Yearly rate (£, 12 x that month)") > 0)
    assert costed["Scenario"].to_list() == ["Technology shift"]
    assert costed["Yearly rate (£, 12 x that month)"][0] == pytest.approx(762_000)  # 3 x £254,000 a year
    _check_downloads(at, cost, "cost-and-chance-ae-4hr-pct-rxl")


def test_selectors_change_what_is_shown(app, served_db):
    at = app(page="scenarios.py", org="RXL")
    first = _waterfall(at)
    at.selectbox(key="sc_waterfall").select("technology_shift").run()
    assert not at.exception, at.exception
    tech = _waterfall(at)
    assert tech["x"] != first["x"] and any(x.startswith("Initiative: Expand virtual ward") for x in tech["x"])
    at.radio(key="sc_measure").set_value("p50").run()
    baseline_p50 = Serving(served_db).query(
        "select p50_baseline from s6_scenarios.drivers where scenario = 'technology_shift' and org_code = 'RXL' "
        "and metric_id = 'ae_4hr_pct' and period_start = '2026-03-01' order by run_id desc limit 1")["p50_baseline"][0]
    assert _waterfall(at)["y"][0] == pytest.approx(baseline_p50, abs=0.01)  # the baseline median, not a chance
    at.selectbox(key="sc_tornado").select("technology_shift").run()
    assert any(y.startswith("Initiative: ") for y in _figure(at, "sc_tornado_chart")["data"][0]["y"])
    at.multiselect(key="sc_scenarios").set_value(["demand_surge"]).run()  # drops the scenarios explained above
    assert not at.exception, at.exception
    assert set(_displayed(at, "Scenario", "Month")["Scenario"]) == {"Demand surge"}
    assert at.selectbox(key="sc_waterfall").value == "demand_surge"
    assert at.selectbox(key="sc_tornado").value == "baseline"
    before = _displayed(at, "Scenario", "Month")["Median, baseline"].to_list()
    at.selectbox(key="sc_metric").select("rtt_18wk_pct").run()
    assert not at.exception, at.exception
    assert "RTT patients waiting under 18 weeks: each scenario against the baseline" in page_text(at)
    assert _displayed(at, "Scenario", "Month")["Median, baseline"].to_list() != before
    at.selectbox(key="sc_metric").select("ae_attendances").run()  # no target: medians only, said so
    assert not at.exception, at.exception
    assert "No standard applies to A&E attendances" in page_text(at)
    assert at.radio(key="sc_measure").options == ["Median forecast (p50)"]


def test_england_says_initiatives_apply_at_trusts(app):
    at = app(page="scenarios.py")
    text = page_text(at)
    assert "England · " in at.caption[0].value
    assert "Technology shift: its initiatives are applied at trust level, so at England the simulation " \
           "includes neither their effect nor their cost" in text
    cost = next(pl.from_pandas(d.value) for d in at.dataframe if "Yearly rate (£, 12 x that month)" in d.value.columns)
    assert cost["Yearly rate (£, 12 x that month)"].sum() == 0


# ---- pure reshaping on known answers ---------------------------------------------------------------------------

DRIVER_ROWS = pl.DataFrame({
    "period_start": [date(2026, 3, 1)] * 3, "component": ["funding", "beds", "interaction"], "step": [2, 1, 3],
    "delta_p50": [-0.3, -0.2, 0.01], "delta_prob": [-0.0393, -0.0266, 0.0001],
    "p50_baseline": [77.0] * 3, "p50_scenario": [76.51] * 3, "prob_baseline": [0.3753] * 3,
    "prob_scenario": [0.3095] * 3})


def test_waterfall_steps_run_from_baseline_through_each_driver_to_the_scenario():
    steps = sc.waterfall_steps(DRIVER_ROWS, "prob")
    assert steps["label"].to_list() == ["Baseline", "G&A beds", "Funding", "Drivers acting together (interaction)",
                                        "Scenario"]
    assert steps["kind"].to_list() == ["absolute", "relative", "relative", "relative", "total"]
    assert steps["value"].to_list() == pytest.approx([0.3753, -0.0266, -0.0393, 0.0001, 0.3095])
    assert steps["running"].to_list() == pytest.approx([0.3753, 0.3487, 0.3094, 0.3095, 0.3095])
    p50 = sc.waterfall_steps(DRIVER_ROWS, "p50")
    assert p50["value"].to_list() == pytest.approx([77.0, -0.2, -0.3, 0.01, 76.51])


def test_waterfall_shows_a_residual_rather_than_hiding_one():
    steps = sc.waterfall_steps(DRIVER_ROWS.with_columns(pl.lit(0.35).alias("prob_scenario")), "prob")
    assert steps["label"][-2] == "Not explained by the components (rounding)"
    assert steps["value"][-2] == pytest.approx(0.35 - (0.3753 - 0.0658))
    assert steps["running"][-2] == pytest.approx(0.35)
    assert sc.waterfall_steps(DRIVER_ROWS.clear(), "prob").is_empty()


def test_tornado_rows_sorted_by_swing_with_plain_labels():
    rows = pl.DataFrame({
        "driver": ["demography", "demand", "initiative:vw", "productivity"],
        "low_setting": [-0.5, -1.5, -7.0, -1.0], "high_setting": [0.5, 1.5, -3.5, 1.0],
        "setting_unit": ["%"] * 4,
        "p50_at_low": [77.3, 77.7, 77.2, 76.8], "p50_at_high": [76.9, 76.6, 77.6, 77.4],
        "p50_baseline": [77.1] * 4, "prob_at_low": [0.40, 0.45, 0.39, 0.33], "prob_at_high": [0.35, 0.30, 0.44, 0.41],
        "prob_baseline": [0.375] * 4})
    p50 = sc.tornado_rows(rows, "p50", {"vw": "Virtual wards"})
    assert p50["driver"].to_list() == ["demand", "productivity", "demography", "initiative:vw"]
    assert p50["swing"].to_list() == pytest.approx([1.1, 0.6, 0.4, 0.4])  # tie broken by driver code
    assert p50["label"].to_list() == ["Demand", "Productivity", "Population change", "Initiative: Virtual wards"]
    prob = sc.tornado_rows(rows, "prob")
    assert prob["driver"].to_list() == ["demand", "productivity", "demography", "initiative:vw"]
    assert prob["swing"].to_list() == pytest.approx([0.15, 0.08, 0.05, 0.05])
    assert prob["label"][-1] == "Initiative: vw"


def test_small_helpers():
    assert sc.scenario_label("workforce_shortfall") == "Workforce shortfall"
    assert sc.driver_label("occupancy_relation") == "How much bed occupancy affects A&E (learned effect)"
    assert sc.driver_label("new_driver") == "New driver"
    assert sc.initiative_level("virtual_ward_places x 3 units from 2025-10 at provider: ga_bed ...") == "provider"
    assert sc.initiative_level(None) is None
    assert sc.month_options(pl.DataFrame({"period_start": [date(2027, 3, 1), date(2026, 3, 1)]}),
                            pl.DataFrame({"period_start": [date(2026, 3, 1), date(2027, 7, 1)]})) == [
        date(2026, 3, 1), date(2027, 3, 1), date(2027, 7, 1)]


def test_effect_per_million_makes_initiatives_comparable():
    rows = pl.DataFrame({"name": ["A", "B", "Free"], "cost_per_unit_gbp": [250_000.0, 1_000_000.0, 0.0],
                         "effect_low": [0.1, 0.2, 1.0], "effect_high": [0.2, 1.0, 2.0]})
    per_m = sc.effect_per_million(rows)
    assert per_m["name"].to_list() == ["A", "B"]  # no cost, no ratio: left out
    assert per_m.select("per_m_low", "per_m_mid", "per_m_high").rows() == [
        pytest.approx((0.4, 0.6, 0.8)), pytest.approx((0.2, 0.6, 1.0))]


# ---- data functions on a tiny hand-made database --------------------------------------------------------------

@pytest.fixture
def tiny(tmp_path) -> Serving:
    """A trust RA1 with two measures, a baseline, two runs of demand_surge (the later one counts) and a costed
    technology shift whose cost sits on the occupancy measure."""
    m1, m2 = date(2026, 2, 1), date(2026, 3, 1)

    def results(scenario, run, metric, month, p50, prob, cost):
        return {"scenario": scenario, "run_id": run, "org_code": "RA1", "org_level": "provider",
                "metric_id": metric, "period_start": month, "p10": p50 - 2, "p50": p50, "p90": p50 + 2,
                "target_value": None if prob is None else 78.0, "prob_meet_target": prob, "cost_gbp": cost,
                "standard_id": None if prob is None else "ae_4hr_2026"}

    def comp(scenario, run, month, p50_b, p50_s):
        return {"scenario": scenario, "run_id": run, "org_code": "RA1", "metric_id": "ae_4hr_pct",
                "period_start": month, "horizon": 1, "standard_id": "ae_4hr_2026", "target_baseline": 78.0,
                "target_scenario": 78.0, "p50_baseline": p50_b, "p50_scenario": p50_s, "delta_p50": p50_s - p50_b,
                "prob_baseline": 0.4, "prob_scenario": 0.3, "delta_prob": -0.1, "cost_baseline": 0.0,
                "cost_scenario": 0.0, "delta_cost": 0.0, "scenario_version": "1"}

    tables = {
        "s6_scenarios.runs": pl.DataFrame({
            "scenario": ["baseline", "demand_surge", "demand_surge", "technology_shift"],
            "run_id": ["v1", "old", "new", "v1"], "scenario_version": ["1", "0.9", "1", "1"],
            "description": ["as now", "older run", "more demand", "virtual wards"],
            "initiatives": [None, None, None, "vw x 3 at provider: ..."], "policy_overrides": [None] * 4,
            "draws": [100] * 4, "seed": [1] * 4,
            "run_at": [datetime(2026, 1, d) for d in (1, 1, 2, 1)],
            "scenario_file": ["f"] * 4, "notes": [None] * 4}),
        "s6_scenarios.results": pl.DataFrame([
            results("baseline", "v1", "ae_4hr_pct", m1, 77.0, 0.40, 0.0),
            results("baseline", "v1", "ae_4hr_pct", m2, 77.5, 0.45, 0.0),
            results("baseline", "v1", "ae_attendances", m2, 9000.0, None, 0.0),
            results("demand_surge", "old", "ae_4hr_pct", m2, 70.0, 0.01, 0.0),
            results("demand_surge", "new", "ae_4hr_pct", m2, 76.0, 0.30, 0.0),
            results("technology_shift", "v1", "ae_4hr_pct", m1, 77.2, 0.42, 0.0),
            results("technology_shift", "v1", "ae_4hr_pct", m2, 77.9, 0.50, 0.0),
            results("technology_shift", "v1", "ga_bed_occupancy_pct", m1, 90.0, 0.6, 1000.0),
            results("technology_shift", "v1", "ga_bed_occupancy_pct", m2, 89.0, 0.7, 1500.0)]),
        "s6_scenarios.comparison": pl.DataFrame([
            comp("demand_surge", "old", m2, 77.5, 70.0), comp("demand_surge", "new", m2, 77.5, 76.0),
            comp("technology_shift", "v1", m2, 77.5, 77.9)]),
        "s1_current_state.metric_catalogue": pl.DataFrame({
            "metric_id": ["ae_4hr_pct", "ae_attendances"], "name": ["A&E four-hour", "A&E attendances"],
            "unit": ["percent", "count"]}),
        "s2_triple_aim.standards": pl.DataFrame({"standard_id": ["ae_4hr_2026"], "name": ["A&E 78%"],
                                                 "deadline": [m2]}),
    }
    return tiny_db(tmp_path / "tiny.duckdb", tables)


def test_runs_are_the_latest_per_scenario_baseline_first(tiny):
    runs = sc.runs(tiny)
    assert runs.select("scenario", "run_id").rows() == [("baseline", "v1"), ("technology_shift", "v1"),
                                                        ("demand_surge", "new")]


def test_comparison_reads_the_latest_run_of_the_chosen_scenarios(tiny):
    comp = sc.comparison(tiny, "RA1", "ae_4hr_pct", ("demand_surge",))
    assert comp.select("scenario", "run_id", "p50_scenario").rows() == [("demand_surge", "new", 76.0)]
    assert sc.comparison(tiny, "RA1", "ae_4hr_pct", ("demand_surge", "technology_shift")).height == 2
    assert sc.comparison(tiny, "RA1", "ae_4hr_pct", ("'; drop table x; --",)).is_empty()  # bound, not pasted


def test_cost_probability_sums_the_organisations_costs_over_measures(tiny):
    points = sc.cost_probability(tiny, "RA1", "ae_4hr_pct", date(2026, 3, 1))
    assert points.select("scenario", "prob_meet_target", "monthly_cost", "annual_cost", "cost_to_date").rows() == [
        ("baseline", 0.45, 0.0, 0.0, 0.0), ("demand_surge", 0.30, 0.0, 0.0, 0.0),
        ("technology_shift", 0.50, 1500.0, 18000.0, 2500.0)]


def test_scenario_metrics_know_which_have_a_target_and_its_deadline(tiny):
    metrics = sc.scenario_metrics(tiny, "RA1")
    assert metrics.select("metric_id", "name", "unit", "has_target", "deadline").rows() == [
        ("ae_4hr_pct", "A&E four-hour", "percent", True, date(2026, 3, 1)),
        ("ae_attendances", "A&E attendances", "count", False, None)]
    assert sc.scenario_metrics(tiny, "NOPE").is_empty()
    cover = sc.coverage(tiny)
    assert cover.rows() == [("provider", 1, 2, "A&E attendances; A&E four-hour")]


def test_no_cost_chart_when_every_scenario_costs_nothing():
    """Six dots at £0 were drawn as a chart; the page now says there is no cost instead."""
    from ibp_pipeline.dashboards import scenarios as sc_mod

    zero = pl.DataFrame({"scenario": ["baseline", "demand_high"], "annual_cost": [0.0, None]})
    assert sc_mod.has_costs(zero) is False
    assert sc_mod.has_costs(zero.with_columns(pl.Series("annual_cost", [0.0, 120_000.0]))) is True
    assert sc_mod.has_costs(pl.DataFrame({"scenario": ["baseline"]})) is False
