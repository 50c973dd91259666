"""Step 5: the waiting-list stock-and-flow projection and its calibration."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from ibp_pipeline.step5_impact import waiting_list_flow as W
from ibp_pipeline_tests.conftest import icbs_of_today



# ---- the stock equation ------------------------------------------------------------------------------------
def test_the_list_adds_up_exactly_on_hand_made_numbers():
    p = W.project_waiting_list(1000.0, [100, 120, 80], [90, 100, 110], 0.01, 3)
    # 1000 + 100 - 90 - 10 = 1000; 1000 + 120 - 100 - 10 = 1010; 1010 + 80 - 110 - 10.1 = 969.9
    assert p.list_size.tolist() == pytest.approx([1000.0, 1010.0, 969.9], abs=1e-9)
    assert p.removals.tolist() == pytest.approx([10.0, 10.0, 10.1], abs=1e-12)
    assert p.pct_within_18wk is None


def test_capacity_raises_stops_and_lowers_the_list_exactly():
    p = W.project_waiting_list(1000.0, [100, 120], [90, 100], 0.0, 2, capacity_change=0.1)
    assert p.clock_stops.tolist() == pytest.approx([99.0, 110.0])
    assert p.list_size.tolist() == pytest.approx([1001.0, 1011.0])
    ramp = W.project_waiting_list(1000.0, 100.0, 100.0, 0.0, 4, capacity_change=0.2, ramp_months=4)
    assert ramp.clock_stops.tolist() == pytest.approx([105.0, 110.0, 115.0, 120.0])


def test_stops_cannot_exceed_the_list():
    p = W.project_waiting_list(50.0, [10, 10], [100, 100], 0.0, 2)
    assert p.clock_stops.tolist() == pytest.approx([60.0, 10.0])
    assert p.list_size.tolist() == pytest.approx([0.0, 0.0])


def test_vectorised_over_draws_equals_one_at_a_time():
    list0 = np.array([1000.0, 2000.0, 500.0])
    cap = np.array([0.0, 0.05, -0.1])
    rate = np.array([0.02, 0.03, 0.01])
    starts, stops = np.array([100.0, 90, 110, 95]), np.array([95.0, 100, 90, 105])
    together = W.project_waiting_list(list0, starts, stops, rate, 4, capacity_change=cap)
    for i in range(3):
        alone = W.project_waiting_list(list0[i], starts, stops, rate[i], 4, capacity_change=cap[i])
        np.testing.assert_allclose(together.list_size[i], alone.list_size, rtol=1e-12)
    assert together.list_size.shape == (3, 4)


# ---- ageing and the 18-week share ----------------------------------------------------------------------------
def test_week_to_month_bands_preserve_totals_and_the_18_week_share():
    m = W.week_to_month_matrix()
    np.testing.assert_allclose(m.sum(axis=1), 1.0)
    weekly = np.zeros(105)
    weekly[:17] = 10.0  # everyone under 17 weeks
    assert W.pct_within_18wk(W.weekly_to_monthly(weekly)) == pytest.approx(100.0)
    weekly[60] = 170.0  # as many again over a year
    bands = W.weekly_to_monthly(weekly)
    assert bands.sum() == pytest.approx(340.0)
    assert W.pct_within_18wk(bands) == pytest.approx(50.0)
    assert W.pct_over_52wk(bands) == pytest.approx(50.0)
    assert W.PARTIAL_BAND_WITHIN_18 == pytest.approx((18 - 4 * 52 / 12) / (52 / 12))


def test_calibrate_exit_hazard_recovers_known_continuation():
    s = np.linspace(0.9, 0.6, W.N_BANDS)
    s[-2:] = 0.5
    new = 1000.0
    s_new = 0.8
    bands = np.zeros(W.N_BANDS)  # steady state of the ageing with constant new starts
    bands[0] = new * s_new
    for k in range(1, W.N_BANDS - 1):
        bands[k] = bands[k - 1] * s[k - 1]
    bands[-1] = bands[-2] * s[-2] / (1 - s[-1])
    hazard, hazard_new = W.calibrate_exit_hazard(np.vstack([bands, bands, bands]), np.full(3, new))
    np.testing.assert_allclose(np.exp(-hazard), s, rtol=1e-10)
    assert np.exp(-hazard_new) == pytest.approx(s_new)


def _hazard() -> tuple[np.ndarray, float]:
    return np.linspace(0.15, 0.5, W.N_BANDS), 0.1


def test_cohort_bands_add_up_to_the_list_and_capacity_makes_it_younger():
    hazard, hazard_new = _hazard()
    bands0 = np.exp(-0.15 * np.arange(W.N_BANDS))
    args = dict(bands0=bands0, hazard=hazard, hazard_new=hazard_new)
    base = W.project_waiting_list(10_000.0, 1500.0, 1400.0, 0.03, 24, **args)
    more = W.project_waiting_list(10_000.0, 1500.0, 1400.0, 0.03, 24, capacity_change=0.1, **args)
    assert base.final_bands.sum() == pytest.approx(base.list_size[-1], rel=1e-12)
    assert more.final_bands.sum() == pytest.approx(more.list_size[-1], rel=1e-12)
    # the aggregate does not depend on the ageing
    plain = W.project_waiting_list(10_000.0, 1500.0, 1400.0, 0.03, 24)
    np.testing.assert_allclose(base.list_size, plain.list_size, rtol=1e-12)
    assert (more.list_size < base.list_size).all()
    assert more.pct_within_18wk[-1] > base.pct_within_18wk[-1]
    assert more.pct_over_52wk[-1] < base.pct_over_52wk[-1]
    assert (more.exit_intensity > base.exit_intensity).all()


def test_cohort_projection_vectorised_over_draws():
    hazard, hazard_new = _hazard()
    cap = np.array([-0.05, 0.0, 0.05, 0.1])
    p = W.project_waiting_list(10_000.0, 1500.0, 1400.0, 0.03, 12, capacity_change=cap,
                               bands0=np.ones(W.N_BANDS), hazard=hazard, hazard_new=hazard_new)
    assert p.pct_within_18wk.shape == (4, 12)
    assert np.all(np.diff(p.list_size[:, -1]) < 0) and np.all(np.diff(p.pct_within_18wk[:, -1]) > 0)


# ---- calibration -----------------------------------------------------------------------------------------------
def _flows(rate: float = 0.02, months: int = 36, break_at: int | None = None) -> pl.DataFrame:
    rows = []
    for code, list0 in (("QAA", 10_000.0), ("QBB", 20_000.0)):
        level = list0
        for t in range(months):
            period = dt.date(2021 + (3 + t) // 12, (3 + t) % 12 + 1, 1)
            starts = 1000.0 + 100 * np.sin(t / 12 * 2 * np.pi) + (list0 / 100)
            stops = 900.0 + (list0 / 100)
            removed = rate * level if t > 0 else 0.0
            level = level + starts - stops - removed if t > 0 else level
            shown = level * 0.01 if break_at is not None and t == break_at else level
            rows.append((code, period, starts, stops, shown))
    return pl.DataFrame(rows, schema=["icb_code", "period_start", "starts", "stops", "list_size"], orient="row")


def test_removal_rates_recover_the_rate_and_skip_reporting_breaks():
    rates = W.removal_rates(_flows(0.02))
    np.testing.assert_allclose(rates["removals_rate_raw"].to_numpy(), 0.02, rtol=1e-9)
    np.testing.assert_allclose(rates["removals_rate"].to_numpy(), 0.02, rtol=1e-9)
    assert rates["removals_rate_national"][0] == pytest.approx(0.02)
    broken = W.removal_rates(_flows(0.02, break_at=30))
    assert broken["removals_months_excluded"].to_list() == [2, 2]  # into and out of the broken month
    np.testing.assert_allclose(broken["removals_rate_raw"].to_numpy(), 0.02, rtol=1e-9)


def test_seasonal_flows_repeat_the_last_twelve_months_with_growth():
    hist = np.arange(1.0, 25.0)
    np.testing.assert_allclose(W.seasonal_flows(hist, 14), np.r_[np.arange(13.0, 25.0), 13.0, 14.0])
    grown = W.seasonal_flows(hist, 12, growth=0.1)
    assert grown[-1] == pytest.approx(24.0 * 1.1)
    assert W.yoy_growth(hist) == pytest.approx(np.arange(13, 25).sum() / np.arange(1, 13).sum() - 1)


def _small_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("create schema latest; create schema s1_current_state")
    flows = _flows(0.02).rename({"starts": "new", "stops": "completed", "list_size": "incomplete"})
    con.register("f", flows.to_arrow())
    con.execute("create table latest.rtt_icb_flows as select * from f")
    orgs = pl.DataFrame({"org_code": ["RA1", "RB1", "RB2"], "parent_icb_code": ["QAA", "QBB", None],
                         "successor_code": [None, None, "RB1"]}).with_columns(
        parent_icb_code_2022=pl.lit(None, dtype=pl.String))
    con.register("o", orgs.to_arrow())
    con.execute("create table s1_current_state.organisations as select * from o")
    last = flows["period_start"].max()
    rows = []
    for months_back in (2, 1, 0):
        period = W._add_months(last, -months_back)
        for code, scale in (("RA1", 1.0), ("RB1", 1.5), ("RB2", 0.5)):
            weekly = np.r_[np.full(20, 300.0), np.full(60, 40.0), np.zeros(25)] * scale
            rows.append({"provider_code": code, "treatment_function_code": "C_999", "period_start": period,
                         "total_incomplete": weekly.sum(), "total_within_18wks": weekly[:18].sum(),
                         **dict(zip(W.WEEK_COLUMNS, weekly.tolist()))})
    con.register("r", pl.DataFrame(rows).to_arrow())
    con.execute("create table latest.rtt_incomplete as select * from r")
    return con


def test_build_waiting_list_projection_on_a_small_warehouse(tmp_path):
    con = _small_warehouse(tmp_path / "w.duckdb")
    n = W.build_waiting_list_projection(con, months=12, capacity_change=[0.0, 0.05])
    assert n == (2 + 1) * (12 + 1) * 2  # (ICBs + England) x (anchor + months) x scenarios
    got = con.sql("select * from s5_impact.waiting_list_projection").pl()
    assert set(got["scenario"]) == {"baseline", "capacity +5%"}
    qaa = got.filter((pl.col("icb_code") == "QAA") & (pl.col("horizon") == 12))
    base = qaa.filter(pl.col("scenario") == "baseline").row(0, named=True)
    more = qaa.filter(pl.col("scenario") != "baseline").row(0, named=True)
    assert more["list_size"] < base["list_size"] and more["pct_within_18wk"] > base["pct_within_18wk"]
    assert base["removals_rate"] == pytest.approx(0.02) and base["in_sample_list_mape_pct"] == pytest.approx(0.0,
                                                                                                         abs=1e-9)
    eng = got.filter((pl.col("icb_code") == "ENGLAND") & (pl.col("scenario") == "baseline"))
    icbs = got.filter((pl.col("org_level") == "icb") & (pl.col("scenario") == "baseline"))
    total = icbs.group_by("period_start").agg(pl.col("list_size").sum()).sort("period_start")
    np.testing.assert_allclose(eng.sort("period_start")["list_size"].to_numpy(), total["list_size"].to_numpy())
    anchor = got.filter(pl.col("horizon") == 0)
    assert anchor["is_actual"].all()
    assert anchor.filter(pl.col("icb_code") == "QAA")["pct_within_18wk"][0] == pytest.approx(
        100 * (18 * 300 + 0) / (20 * 300 + 60 * 40), abs=1.5)  # from the weekly bands (monthly interpolation)


# ---- the real warehouse ------------------------------------------------------------------------------------
def test_projection_on_the_real_warehouse(real_warehouse, tmp_path):
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(real_warehouse, db)
    con = duckdb.connect(str(db))
    n = W.build_waiting_list_projection(con, months=24, capacity_change=0.05)
    assert n == (len(icbs_of_today()) + 1) * 25 * 2  # today's ICBs, anchored on the RTT extract's month
    got = con.sql("select * from s5_impact.waiting_list_projection where icb_code = 'ENGLAND' and horizon = 24").pl()
    base = got.filter(pl.col("scenario") == "baseline").row(0, named=True)
    more = got.filter(pl.col("scenario") == "capacity +5%").row(0, named=True)
    assert more["list_size"] < base["list_size"] and more["pct_within_18wk"] > base["pct_within_18wk"]
    assert 0.02 < base["removals_rate_national"] < 0.04
    icb = con.sql("select * from s5_impact.waiting_list_projection where org_level = 'icb' and horizon = 0 "
                  "and scenario = 'baseline'").pl()
    assert icb["pct_within_18wk"].is_between(30, 90).all() and icb["in_sample_list_mape_pct"].max() < 5
    assert icb["in_sample_pct18_mae_points"].median() < 3


def test_flows_ahead_of_a_real_month_keep_its_level_and_the_history_pattern():
    last12 = [dt.date(2024, m, 1) for m in range(3, 13)] + [dt.date(2025, 1, 1), dt.date(2025, 2, 1)]
    hist = np.array([[float(m.month) * 10 for m in last12]])  # January 10 ... December 120
    ahead = W.reseasoned(np.array([500.0]), hist, last12, dt.date(2026, 4, 1), 3, growth=0.0)
    np.testing.assert_allclose(ahead[0], [500 * 50 / 40, 500 * 60 / 40, 500 * 70 / 40])
    grown = W.reseasoned(np.array([500.0]), hist, last12, dt.date(2026, 4, 1), 12, growth=0.1)
    assert grown[0, -1] == pytest.approx(500 * 1.1)  # April 2027: the anchor's level a year on, +10%


def test_a_rebased_removals_rate_moves_the_list_by_the_history_drift():
    list0, starts, stops = np.array([10_000.0, 20_000.0]), np.full((2, 12), 900.0), np.full((2, 12), 700.0)
    drift = np.array([0.0, -0.05])
    r = W.rebased_removals_rate(list0, starts, stops, drift)
    assert r[0] == pytest.approx(200 / 10_000)  # a flat list: removals take exactly the net inflow
    proj = W.project_waiting_list(list0, starts, stops, r, 12)
    np.testing.assert_allclose(proj.list_size[:, -1] / list0 - 1, drift, atol=0.002)
