"""Step 4 needs: each calculation on hand-made numbers whose answers are known, the whole table on the step-3
hand-made panel (see ibp_pipeline_tests/step3/test_resource_map.py for its figures), and one run on a copy of the
real built warehouse (the end-to-end run's warehouse, real_warehouse in conftest)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from ibp_pipeline.step3_resources.resource_map import build_resource_map
from ibp_pipeline.step4_gaps.needs import (AE_DEFAULT_TARGET_PCT, DEFAULT_COST_PER_FTE_GBP, ae_needs, bed_needs,
                                           build_needs, diagnostics_needs, waiting_list_needs, workforce_needs)
from ibp_pipeline_tests.step3.test_resource_map import build_panel
from ibp_pipeline_tests.conftest import icbs_of_today


# ---- pure calculations ---------------------------------------------------------------------------------------------
def test_waiting_list_worked_example():
    """Demand 30, target 52 weeks, factor 4: target queue 390; queue 1,200 over 26 weeks: 61.15 a week."""
    n = waiting_list_needs(demand=30, clearances=27, queue=1200, mean_wait=63, target_wait=52, factor=4,
                           relief_weeks=26)
    assert n["target_queue_size"] == 390
    assert n["relief_capacity"] == pytest.approx(30 + (1200 - 390) / 26)
    assert round(n["relief_capacity"], 2) == 61.15
    assert n["queue_too_big"] is True and n["capacity_needed"] == n["relief_capacity"]
    assert n["extra_capacity_needed"] == pytest.approx(n["relief_capacity"] - 27)
    assert n["target_capacity"] == pytest.approx(30 + 4 / 52)  # cv 1 and 1
    assert n["load"] == pytest.approx(30 / 27)
    assert n["pressure"] == pytest.approx(2 * 63 / 52)
    assert n["target_mean_wait"] == 13


def test_waiting_list_small_queue_uses_target_capacity_and_unknowns():
    n = waiting_list_needs(demand=30, clearances=None, queue=500, mean_wait=None, target_wait=52)
    assert n["queue_too_big"] is False  # 500 <= 2 x 390
    assert n["capacity_needed"] == pytest.approx(30 + 4 / 52)
    assert n["extra_capacity_needed"] is None and n["load"] is None and n["pressure"] is None


@pytest.mark.parametrize("occupied, available, pct, needed, gap", [
    (92, 100, 92, 100.0, 0.0),
    (460, 480, 92, 500.0, 20.0),
    (85, 120, 85, 100.0, -20.0),
    (170, 190, 85, 200.0, 10.0),
])
def test_bed_needs_at_a_given_occupancy(occupied, available, pct, needed, gap):
    b = bed_needs(occupied, available, pct)
    assert b["beds_needed"] == pytest.approx(needed)
    assert b["beds_gap"] == pytest.approx(gap)


def test_ae_needs():
    assert ae_needs(10_000, 7_000, 78)["extra_within_4h"] == pytest.approx(800)
    assert ae_needs(10_000, 9_000, 78)["extra_within_4h"] == 0  # already above: nothing needed
    assert ae_needs(10_000, 7_000, 78)["current_pct"] == pytest.approx(70)


def test_diagnostics_needs():
    d = diagnostics_needs(total_waiting=1000, waiting_6plus=100, monthly_activity=2600, target_pct=1, horizon_weeks=26)
    assert d["excess_6plus"] == pytest.approx(90)  # 100 - 1% x 1,000
    assert d["extra_tests_per_week"] == pytest.approx(90 / 26)
    assert d["weekly_activity"] == pytest.approx(600)  # 2,600 x 12 / 52
    assert d["uplift_pct"] == pytest.approx(100 * (90 / 26) / 600)
    assert diagnostics_needs(1000, 5, None)["excess_6plus"] == 0
    assert diagnostics_needs(1000, 5, None)["uplift_pct"] is None


def test_workforce_needs():
    w = workforce_needs(extra_beds=20, staff_per_bed=9.5, cost_per_fte=50_000)
    assert w["fte"] == pytest.approx(190) and w["cost_gbp"] == pytest.approx(9_500_000)
    assert workforce_needs(-5, 9.5, 50_000) == {"fte": 0.0, "cost_gbp": 0.0}


def test_default_cost_per_fte_is_built_from_its_parts():
    # AfC 2025/26 band 5 top GBP 37,796 + 23.7% employer pension + 15% employer NI above GBP 5,000
    assert DEFAULT_COST_PER_FTE_GBP == round(37_796 * 1.237 + 0.15 * (37_796 - 5_000))
    assert 50_000 < DEFAULT_COST_PER_FTE_GBP < 53_000


# ---- the table on the hand-made panel -------------------------------------------------------------------------------
@pytest.fixture
def panel(tmp_path: Path):
    con = build_panel(tmp_path / "panel.duckdb")
    build_resource_map(con)
    yield con
    con.close()


def _need(con, org: str, measure: str) -> dict:
    df = con.sql(f"select * from s4_gaps.needs where org_code = '{org}' and measure = '{measure}'").pl()
    assert df.height == 1, (org, measure, df)
    row = df.row(0, named=True)
    row["inputs"] = json.loads(row["inputs"])
    return row


def test_needs_require_the_resource_map(tmp_path):
    con = build_panel(tmp_path / "bare.duckdb")
    with pytest.raises(RuntimeError, match="resource_map"):
        build_needs(con)
    con.close()


def test_trust_waiting_list_reproduces_the_worked_example(panel):
    """T1 joins 30 a week and has 1,200 waiting: with a 52-week target the numbers are the issue's example."""
    build_needs(panel, target_wait_weeks=52, factor=4, relief_weeks=26)
    assert _need(panel, "T1", "weekly_demand")["result"] == pytest.approx(30)
    assert _need(panel, "T1", "target_queue_size")["result"] == pytest.approx(390)
    relief = _need(panel, "T1", "relief_capacity")
    assert relief["result"] == pytest.approx(61.153846, abs=1e-6)
    assert relief["formula"].startswith("demand + (queue_size - target_queue_size) / relief_weeks")
    assert relief["inputs"]["queue_size"] == 1200 and relief["inputs"]["target_queue_size"] == 390
    # list fell 1,300 -> 1,200 over two months (2 x 52/12 weeks): clearances = 30 + 100 / 8.667
    clear = _need(panel, "T1", "weekly_clearances")
    assert clear["result"] == pytest.approx(30 + 100 / (2 * 52 / 12))
    assert clear["is_estimate"] is True
    assert _need(panel, "T1", "mean_wait_weeks")["result"] == pytest.approx(10.25)
    assert _need(panel, "T1", "pressure")["result"] == pytest.approx(2 * 10.25 / 52)
    assert _need(panel, "T1", "load")["result"] == pytest.approx(30 / clear["result"])
    extra = _need(panel, "T1", "extra_capacity_needed")
    assert extra["result"] == pytest.approx(relief["result"] - clear["result"])


def test_icb_waiting_list_from_flows(panel):
    build_needs(panel)  # defaults: 18 weeks, factor 4, 26 weeks
    demand = _need(panel, "QAA", "weekly_demand")
    assert demand["result"] == pytest.approx(1300 * 12 / 52)
    assert demand["is_estimate"] is False
    completed = _need(panel, "QAA", "weekly_completed_pathways")["result"]
    assert completed == pytest.approx(1150 * 12 / 52)
    clear = _need(panel, "QAA", "weekly_clearances")["result"]
    assert clear == pytest.approx(1300 * 12 / 52 - 100 / (52 / 12))  # list grew by 100 in one month
    tq = _need(panel, "QAA", "target_queue_size")["result"]
    assert tq == pytest.approx(300 * 18 / 4)
    assert _need(panel, "QAA", "relief_capacity")["result"] == pytest.approx(300 + (5100 - tq) / 26)
    assert _need(panel, "QAA", "mean_wait_weeks")["result"] == pytest.approx(10.25)  # bands of its trust in March
    # the trust's cross-check: QAA's weekly clock starts x T1's share of QAA's provider list (T1 is all of it)
    assert _need(panel, "T1", "weekly_demand")["inputs"]["cross_check_apportioned_icb_demand"] == pytest.approx(300)
    assert _need(panel, "ENGLAND", "weekly_demand")["result"] == pytest.approx(300)


def test_bed_needs_rows(panel):
    build_needs(panel)
    assert _need(panel, "T1", "beds_needed_at_92pct")["result"] == pytest.approx(95 / 0.92)
    assert _need(panel, "T1", "beds_gap_at_92pct")["result"] == pytest.approx(95 / 0.92 - 100)
    assert _need(panel, "T1", "beds_gap_at_85pct")["result"] == pytest.approx(95 / 0.85 - 100)
    assert _need(panel, "T2", "beds_gap_at_92pct")["result"] == pytest.approx(200 / 0.92 - 250)  # spare beds
    assert _need(panel, "QAA", "beds_needed_at_85pct")["result"] == pytest.approx(343 / 0.85)


def test_ae_needs_use_targets_then_the_default(panel):
    build_needs(panel)
    t1 = _need(panel, "T1", "extra_within_4h_per_month")
    assert t1["result"] == pytest.approx(0.80 * 5000 - 3500)  # the primary 80% row, not the 95% or a later one
    assert t1["inputs"]["target_pct"] == 80 and "ae_4hr_trajectory" in t1["inputs"]["target_source"]
    t2 = _need(panel, "T2", "extra_within_4h_per_month")
    assert t2["result"] == 0  # 85% already above the default 78%
    assert t2["inputs"]["target_pct"] == AE_DEFAULT_TARGET_PCT and "default" in t2["inputs"]["target_source"]
    qaa = _need(panel, "QAA", "extra_within_4h_per_month")
    assert qaa["result"] == pytest.approx(max(0.0, 0.78 * 13000 - 10300))


def test_ae_targets_with_a_primary_column(tmp_path):
    """The brief's contract named the flag `primary`; step 2 writes `is_primary`: both are read."""
    con = build_panel(tmp_path / "primary.duckdb", primary_column="primary")
    build_resource_map(con)
    build_needs(con)
    assert _need(con, "T1", "extra_within_4h_per_month")["result"] == pytest.approx(0.80 * 5000 - 3500)
    con.close()


def test_ae_default_without_targets_table(tmp_path):
    con = build_panel(tmp_path / "notargets.duckdb", targets=False)
    build_resource_map(con)
    build_needs(con, ae_default_target_pct=90)
    assert _need(con, "T2", "extra_within_4h_per_month")["result"] == pytest.approx(0.9 * 8000 - 6800)
    con.close()


def test_diagnostics_needs_rows(panel):
    build_needs(panel, relief_weeks=26)
    assert _need(panel, "T1", "excess_6plus_waiters")["result"] == pytest.approx(90)
    per_week = _need(panel, "T1", "extra_tests_per_week")
    assert per_week["result"] == pytest.approx(90 / 26)
    assert per_week["inputs"]["monthly_activity"] == 2600
    assert _need(panel, "T1", "extra_tests_pct_of_activity")["result"] == pytest.approx(100 * 90 / 26 / 600)
    assert _need(panel, "T4", "excess_6plus_waiters")["result"] == 0  # 1 of 200 = 0.5%: within the standard
    assert _need(panel, "QAA", "excess_6plus_waiters")["result"] == pytest.approx(90)
    assert _need(panel, "ENGLAND", "excess_6plus_waiters")["result"] == pytest.approx(101 - 0.01 * 1200)


def test_workforce_needs_use_peer_medians(panel):
    build_needs(panel, cost_per_fte_gbp=50_000)
    gap = 95 / 0.92 - 100
    fte = _need(panel, "T1", "extra_fte_for_beds")
    assert fte["result"] == pytest.approx(gap * 9.0)  # peer group A median of 10 and 8
    assert fte["inputs"]["ratio_basis"].startswith("peer median")
    assert _need(panel, "T1", "extra_nurse_fte_for_beds")["result"] == pytest.approx(gap * 2.5)  # median(3, 2)
    cost = _need(panel, "T1", "extra_fte_cost_gbp_per_year")
    assert cost["result"] == pytest.approx(gap * 9.0 * 50_000)
    assert "Agenda for Change" in cost["assumptions"]
    assert _need(panel, "T2", "extra_fte_for_beds")["result"] == 0  # spare beds: nothing needed
    assert _need(panel, "T4", "extra_fte_for_beds")["result"] == pytest.approx((98 / 0.92 - 100) * 13.5)
    qbb = _need(panel, "QBB", "extra_fte_for_beds")  # ICB: national median over ICBs (9 and 15)
    assert qbb["result"] == pytest.approx((98 / 0.92 - 100) * 12.0)
    assert qbb["inputs"]["ratio_basis"].startswith("national median")


def test_every_row_is_traceable(panel):
    n = build_needs(panel)
    assert n > 0
    df = panel.sql("select * from s4_gaps.needs").pl()
    for col in ("need_type", "measure", "formula", "inputs", "assumptions", "unit", "source"):
        assert df[col].null_count() == 0, col
    assert set(df["need_type"].unique()) == {"waiting_list", "beds", "ae_4hr", "diagnostics", "workforce"}
    for s in df["inputs"]:
        json.loads(s)


# ---- the real built warehouse ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, real_warehouse):
    dest = tmp_path_factory.mktemp("s4real") / "warehouse.duckdb"
    shutil.copy(real_warehouse, dest)
    con = duckdb.connect(str(dest))
    build_resource_map(con)
    yield con
    con.close()


def test_real_warehouse_needs(real):
    n = build_needs(real)
    assert n > 2_000
    counts = dict(real.sql("select need_type, count(distinct org_code) from s4_gaps.needs "
                           "where org_level = 'icb' group by 1").fetchall())
    today = len(icbs_of_today())  # the RTT extract's clock starts and stops are summed to today's ICBs
    assert counts == {"waiting_list": today, "beds": today, "ae_4hr": today, "diagnostics": today,
                      "workforce": today}
    eng = dict(real.sql("select measure, result from s4_gaps.needs where org_code = 'ENGLAND'").fetchall())
    assert 300_000 < eng["weekly_demand"] < 500_000  # ~1.7 million clock starts a month
    assert eng["target_queue_size"] == pytest.approx(eng["weekly_demand"] * 18 / 4)
    assert eng["relief_capacity"] > eng["weekly_demand"]  # the list is far above its 18-week target size
    assert 0.5 < eng["load"] < 1.5 and eng["pressure"] > 1
    assert eng["beds_needed_at_85pct"] > eng["beds_needed_at_92pct"] > 50_000
    assert eng["extra_tests_per_week"] > 0
    bad = real.sql("""select count(*) from s4_gaps.needs
                      where result is not null and not isfinite(result)""").fetchone()[0]
    assert bad == 0
    assert real.sql("select count(*) from s4_gaps.needs where org_level = 'provider' "
                    "and need_type = 'waiting_list'").fetchone()[0] > 1000
