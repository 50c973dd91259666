"""Step 5 Monte Carlo engine and risk tables: known answers on constructed inputs, seeded reproducibility, and the
tables built on a small hand-made warehouse (plus a shape check on a copy of the bundled warehouse when present)."""
from __future__ import annotations

import datetime as dt
import math
import shutil
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from ibp_pipeline.simulation import engine as mc
from ibp_pipeline.simulation.forecasts import stand_in_forecasts
from ibp_pipeline.simulation.inputs import prepare, read_relation
from ibp_pipeline.step5_impact.risk import build_risk, plan_risk, register_frame, write_table



# ---- helpers: engine inputs by hand -----------------------------------------------------------------------------
def one_series_inputs(median: float, lo80: float, hi80: float, metric: str = "ae_attendances", months: int = 3,
                      link_base: float | None = None) -> mc.SeriesInputs:
    """A single series with the same forecast in every month."""
    s_lo, s_hi = mc.split_normal_scales(np.array([median]), np.array([lo80]), np.array([hi80]))
    r = mc.response_for(metric)
    rows = sorted({metric, mc.OCCUPANCY_METRIC})
    return mc.SeriesInputs(
        keys=[("X1", metric)], cal=np.arange(months)[None, :], median=np.full((1, months), median),
        scale_lo=np.full((1, months), s_lo[0]), scale_hi=np.full((1, months), s_hi[0]), lower=np.zeros(1),
        upper=np.array([100.0 if metric.endswith("_pct") else np.inf]), kind=np.array([r.kind], dtype=np.int8),
        response_row=np.array([rows.index(metric)]), elasticities=np.stack([mc.response_for(m).vector()
                                                                             for m in rows]),
        link_base=np.full((1, months), np.nan if link_base is None else link_base), n_calendar=months,
        occupancy_row=rows.index(mc.OCCUPANCY_METRIC))


def setting(months: int, targets: list[float] | None = None, at_least: bool = True, **drivers) -> mc.Setting:
    s = mc.Setting.zero("t", months)
    for name, (low, high) in drivers.items():
        i = mc.DRIVERS.index(name)
        s.driver_low[i], s.driver_high[i] = low, high
    if targets is not None:
        m = len(targets)
        s.targets = np.broadcast_to(np.array(targets, dtype=float), (1, months, m)).copy()
        s.at_least = np.full((1, months, m), at_least)
    return s


def phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


# ---- known answers ----------------------------------------------------------------------------------------------
def test_probability_matches_normal_closed_form():
    """X ~ N(100, 10) (80% interval 100 -/+ 12.8): P(X >= t) and P(X <= t) within sampling error at 10,000 draws,
    and the quantiles at mu + z sd."""
    mu, sd, draws = 100.0, 10.0, 10_000
    inputs = one_series_inputs(mu, mu - mc.Z80 * sd, mu + mc.Z80 * sd)
    ts = [85.0, 95.0, 100.0, 108.0, 120.0]
    [res] = mc.run_settings(inputs, [setting(3, ts)], draws=draws, seed=7)
    [low] = mc.run_settings(inputs, [setting(3, ts, at_least=False)], draws=draws, seed=7)
    for j, t in enumerate(ts):
        p = 1.0 - phi((t - mu) / sd)
        se = math.sqrt(p * (1 - p) / draws)
        assert res.prob[0, :, j] == pytest.approx(p, abs=4 * se + 1e-4), t
        assert low.prob[0, :, j] == pytest.approx(1 - p, abs=4 * se + 1e-4), t
    assert res.p50[0] == pytest.approx(mu, abs=0.4)
    assert res.p10[0] == pytest.approx(mu - mc.Z80 * sd, abs=0.6)
    assert res.p90[0] == pytest.approx(mu + mc.Z80 * sd, abs=0.6)
    assert res.mean[0] == pytest.approx(mu, abs=0.4)


def test_driver_interval_matches_closed_form():
    """A certain forecast of 1,000 attendances times (1 + demand/100), demand's 80% interval 2 to 8%: the value is
    normal with mean 1,050 and sd 1000 x 6 / 2.563 / 100, so P(value >= 1,060) is known."""
    inputs = one_series_inputs(1000.0, 1000.0, 1000.0)
    [res] = mc.run_settings(inputs, [setting(3, [1060.0], demand=(2.0, 8.0))], draws=10_000, seed=3)
    sd = 1000 * 6 / (2 * mc.Z80) / 100
    p = 1 - phi((1060 - 1050) / sd)
    assert res.prob[0, 0, 0] == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / 10_000))
    assert res.p10[0, 0] == pytest.approx(1020, abs=1.5) and res.p90[0, 0] == pytest.approx(1080, abs=1.5)


def test_split_normal_keeps_skewed_bounds():
    inputs = one_series_inputs(50.0, 45.0, 70.0, metric="rtt_waiting_list")
    [res] = mc.run_settings(inputs, [setting(3)], draws=20_000, seed=11)
    assert res.p10[0] == pytest.approx(45.0, abs=0.3)
    assert res.p50[0] == pytest.approx(50.0, abs=0.3)
    assert res.p90[0] == pytest.approx(70.0, abs=0.6)


def test_responses_shortfall_share_and_level():
    """Certain forecasts, demand fixed at +10%: a level metric x1.1; a 'shortfall' % loses 10% more of its
    shortfall (80% -> 78%); a waiting list with capacity -10% as well: x 1.1 / 0.9."""
    cases = [("ae_attendances", 1000.0, {"demand": (10, 10)}, 1100.0),
             ("ae_4hr_pct", 80.0, {"demand": (10, 10)}, 78.0),
             ("rtt_waiting_list", 900.0, {"demand": (10, 10), "workforce_availability": (-10, -10)}, 1100.0),
             ("dm01_6wk_pct", 20.0, {"demand": (10, 10)}, 22.0)]
    for metric, value, drivers, expected in cases:
        inputs = one_series_inputs(value, value, value, metric=metric)
        [res] = mc.run_settings(inputs, [setting(3, **drivers)], draws=100, seed=1)
        assert res.p50[0] == pytest.approx(expected, rel=1e-5), metric


def test_occupancy_link_moves_four_hour_performance():
    """Occupancy 90% and demand +5% (occupancy elasticity 1): occupancy 94.5, so with beta = -0.5 exactly the
    4-hour % falls by 2.25 points beyond its own shortfall response (80 -> 100 - 20 x 1.05 = 79)."""
    inputs = one_series_inputs(80.0, 80.0, 80.0, metric="ae_4hr_pct", link_base=90.0)
    s = setting(3, demand=(5, 5))
    s.beta_mean, s.beta_sd = -0.5, 0.0
    [res] = mc.run_settings(inputs, [s], draws=100, seed=1)
    assert res.p50[0, 0] == pytest.approx(79.0 - 0.5 * 4.5, abs=1e-4)


def test_initiative_effects_add_and_scale():
    inputs = one_series_inputs(60.0, 60.0, 60.0, metric="ae_4hr_pct")
    w = np.array([[0.0, 0.5, 1.0]])  # ramp: nothing in month 1, half in month 2, all in month 3
    add = mc.InitiativeSetting("beds", 2.0, 4.0, "add", w, fixed=4.0)
    s = setting(3)
    s.initiatives = [add]
    [res] = mc.run_settings(inputs, [s], draws=100, seed=1)
    assert res.p50[0].tolist() == pytest.approx([60.0, 62.0, 64.0], abs=1e-4)
    rel = mc.InitiativeSetting("dm", -10.0, -10.0, "rel", np.ones((1, 3)))
    inputs = one_series_inputs(1000.0, 1000.0, 1000.0)
    s = setting(3)
    s.initiatives = [rel]
    [res] = mc.run_settings(inputs, [s], draws=100, seed=1)
    assert res.p50[0].tolist() == pytest.approx([900.0] * 3, rel=1e-5)


def test_row_quantiles_match_numpy():
    rng = np.random.default_rng(0)
    for draws in (1, 2, 7, 1000, 1001):
        v = rng.standard_normal((5, draws)).astype(np.float32)
        expected = np.quantile(v.astype(np.float64), [0.1, 0.5, 0.9], axis=1)
        assert np.allclose(mc.row_quantiles(v.copy(), (0.1, 0.5, 0.9)), expected, atol=1e-6)


def test_ramp_and_intervals():
    assert mc.ramp_share(np.array([-1, 0, 1, 2, 5]), 3).tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1, 1])
    assert mc.ramp_share(np.array([-1, 0]), 0).tolist() == [0.0, 1.0]
    mean, sd = mc.normal_from_interval(1.0, 3.563)
    assert float(mean) == pytest.approx(2.2815, abs=1e-3) and float(sd) == pytest.approx(1.0, abs=1e-3)


# ---- reproducibility and common random numbers ------------------------------------------------------------------
def multi_inputs(n: int = 30, months: int = 6) -> mc.SeriesInputs:
    rng = np.random.default_rng(5)
    metrics = ["ae_4hr_pct", "rtt_waiting_list", "ga_bed_occupancy_pct"]
    metric_of = [metrics[i % 3] for i in range(n)]
    rows = sorted(set(metrics))
    median = np.where(np.array([m.endswith("_pct") for m in metric_of])[:, None], 80.0, 5000.0) * (
        1 + 0.05 * rng.standard_normal((n, months)))
    spread = median * 0.05
    return mc.SeriesInputs(
        keys=[(f"R{i:02d}", m) for i, m in enumerate(metric_of)], cal=np.tile(np.arange(months), (n, 1)),
        median=median, scale_lo=spread, scale_hi=spread * 1.3, lower=np.zeros(n),
        upper=np.array([100.0 if m.endswith("_pct") else np.inf for m in metric_of]),
        kind=np.array([mc.response_for(m).kind for m in metric_of], dtype=np.int8),
        response_row=np.array([rows.index(m) for m in metric_of]),
        elasticities=np.stack([mc.response_for(m).vector() for m in rows]),
        link_base=np.where(np.array([m == "ae_4hr_pct" for m in metric_of])[:, None], 92.0, np.nan)
        * np.ones((n, months)), n_calendar=months, occupancy_row=rows.index("ga_bed_occupancy_pct"))


def drivers_setting(months: int, n: int, name: str = "s") -> mc.Setting:
    s = setting(months, demand=(-2, 4), workforce_availability=(-3, 1))
    s.name = name
    s.targets = np.full((n, months, 1), 85.0)
    s.at_least = np.ones((n, months, 1), dtype=bool)
    return s


def test_same_seed_identical_and_different_seed_different():
    inputs = multi_inputs()
    a = mc.run_settings(inputs, [drivers_setting(6, 30)], draws=2000, seed=42)[0]
    b = mc.run_settings(inputs, [drivers_setting(6, 30)], draws=2000, seed=42)[0]
    c = mc.run_settings(inputs, [drivers_setting(6, 30)], draws=2000, seed=43)[0]
    for field in ("p10", "p50", "p90", "mean", "prob"):
        assert np.array_equal(getattr(a, field), getattr(b, field), equal_nan=True), field
    assert not np.array_equal(a.p50, c.p50)
    assert np.allclose(a.p50, c.p50, rtol=0.02)  # different draws, same distribution


def test_results_do_not_depend_on_chunking_or_company():
    """Common random numbers: a setting gives the same numbers whatever the chunk size and whatever other
    settings run beside it (each series and driver has its own named random stream)."""
    inputs = multi_inputs()
    alone = mc.run_settings(inputs, [drivers_setting(6, 30)], draws=1000, seed=9)[0]
    other = setting(6, demand=(5, 9))
    small_chunks = mc.run_settings(inputs, [other, drivers_setting(6, 30)], draws=1000, seed=9,
                                   max_block_bytes=4 * 1000 * 6 * 4)[1]
    assert np.array_equal(alone.p50, small_chunks.p50) and np.array_equal(alone.prob, small_chunks.prob)


def test_threads_give_the_same_numbers_as_one():
    """Blocks of series run side by side in threads (engine.run_settings threads=): every summary is the one
    thread's, bit for bit, with blocks small enough that each thread takes several."""
    inputs = multi_inputs()
    settings = [setting(6, demand=(5, 9)), drivers_setting(6, 30)]
    small = 4 * 1000 * 6 * 4  # one series a block
    one = mc.run_settings(inputs, settings, draws=1000, seed=9, max_block_bytes=small)
    for threads in (2, 3):
        many = mc.run_settings(inputs, settings, draws=1000, seed=9, max_block_bytes=small * threads,
                               threads=threads)
        assert_same_summaries(one, many)


def test_antithetic_pairs_mirror():
    z = mc.normals(np.random.default_rng(1), (3, 10))
    assert np.array_equal(z[:, 5:], -z[:, :5])
    z = mc.normals(np.random.default_rng(1), (3, 11))
    assert np.array_equal(z[:, 6:], -z[:, :5])


# ---- the risk tables on a hand-made warehouse -------------------------------------------------------------------
ORIGIN = dt.date(2025, 3, 1)
MONTHS = [dt.date(2025 + (3 + h) // 12, (3 + h) % 12 + 1, 1) for h in range(12)]  # 2025-04 .. 2026-03


def forecast_rows(org: str, metric: str, mean: float, sd: float, months: int = 12) -> list[dict]:
    pct = metric.endswith("_pct")
    rows = []
    for h in range(1, months + 1):
        s = sd * math.sqrt(h / 3)
        clip = (lambda x: min(100.0, max(0.0, x))) if pct else (lambda x: max(0.0, x))
        rows.append({"org_code": org, "metric_id": metric, "period_start": MONTHS[h - 1], "forecast_origin": ORIGIN,
                     "horizon": h, "model": "ETS(A,N,N)", "mean": mean, "lo80": clip(mean - mc.Z80 * s),
                     "hi80": clip(mean + mc.Z80 * s), "lo95": clip(mean - mc.Z95 * s),
                     "hi95": clip(mean + mc.Z95 * s), "num_mean": None, "den_mean": None})
    return rows


def target_rows(org: str, level: str, metric: str, standard: str, kind: str, direction: str, values: list[float],
                months: list[dt.date], deadline: dt.date | None = None, baseline: float | None = None,
                end: float | None = None) -> list[dict]:
    return [{"org_code": org, "org_level": level, "metric_id": metric, "period_start": m, "period_grain": "month",
             "standard_id": standard, "standard_name": standard.replace("_", " "), "kind": kind,
             "direction": direction, "target_value": v, "is_trajectory": deadline is not None,
             "is_primary": False, "applied": "national", "deadline": deadline,
             "baseline_period": dt.date(2025, 3, 1) if deadline else None, "baseline_value": baseline,
             "end_target_value": end} for m, v in zip(months, values)]


def make_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    """Two trusts (R1 strong, R2 weak) in ICB Q1, plus Q1 itself: A&E 4-hour %, occupancy, RTT 18-week % and list."""
    con = duckdb.connect(str(path))
    fc = []
    for org, ae, occ, rtt, wl in (("R1", 90.0, 85.0, 70.0, 20_000.0), ("R2", 62.0, 97.0, 45.0, 60_000.0),
                                  ("Q1", 74.0, 93.0, 55.0, 80_000.0)):
        fc += forecast_rows(org, "ae_4hr_pct", ae, 2.0)
        fc += forecast_rows(org, "ga_bed_occupancy_pct", occ, 1.5)
        fc += forecast_rows(org, "rtt_18wk_pct", rtt, 1.5)
        fc += forecast_rows(org, "rtt_waiting_list", wl, wl * 0.02)
        fc += forecast_rows(org, "ae_attendances", 10_000.0, 300.0)
    write_table(con, "s5_impact", "forecasts", pl.DataFrame(fc, infer_schema_length=None))
    hist = [dt.date(2025, 1, 1), dt.date(2025, 2, 1), dt.date(2025, 3, 1)]
    traj_months = hist[2:] + MONTHS[:12]
    tg = []
    for org, level, ae_base, rtt_base in (("R1", "provider", 89.0, 69.0), ("R2", "provider", 60.0, 44.0),
                                          ("Q1", "icb", 73.0, 54.0)):
        tg += target_rows(org, level, "ae_4hr_pct", "ae_4hr_constitutional", "constitutional", "at_least",
                          [95.0] * 3, hist)
        line = [ae_base + (max(78, ae_base) - ae_base) * i / 12 for i in range(13)]
        tg += target_rows(org, level, "ae_4hr_pct", "ae_4hr_2026", "planning_target", "at_least", line,
                          traj_months, deadline=dt.date(2026, 3, 1), baseline=ae_base, end=max(78.0, ae_base))
        tg += target_rows(org, level, "ga_bed_occupancy_pct", "ga_bed_occupancy_92", "planning_target", "at_most",
                          [92.0] * 3, hist)
        end = max(65.0, rtt_base + 5)
        line = [rtt_base + (end - rtt_base) * i / 12 for i in range(13)]
        tg += target_rows(org, level, "rtt_18wk_pct", "rtt_18wk_2026", "planning_target", "at_least", line,
                          traj_months, deadline=dt.date(2026, 3, 1), baseline=rtt_base, end=end)
    write_table(con, "s2_triple_aim", "targets", pl.DataFrame(tg, infer_schema_length=None))
    orgs = pl.DataFrame({"org_code": ["R1", "R2", "Q1"], "org_name": ["Trust One", "Trust Two", "ICB One"],
                         "org_type": ["nhs_trust", "nhs_trust", "icb"], "parent_icb_code": ["Q1", "Q1", None]})
    write_table(con, "s1_current_state", "organisations", orgs)
    effects = pl.DataFrame({"relation_id": ["occ_fe", "gbm"], "outcome_metric_id": ["ae_4hr_pct"] * 2,
                            "driver": ["ga_bed_occupancy_pct"] * 2, "method": ["panel", "gbm"],
                            "coefficient": [-0.4, 0.05], "std_error": [0.05, 0.01], "preferred": [True, False]})
    gbm_other = effects.filter(pl.col("relation_id") == "gbm").with_columns(driver=pl.lit("calendar_month"))
    write_table(con, "s5_impact", "effects", pl.concat([effects, gbm_other]))
    # the catalogue's shape (one row per initiative x effect metric x source; effects per ONE unit)
    ini = ("initiative_id", "name", "lever", "unit", "cost_per_unit_gbp", "ramp_up_months", "effect_metric_id",
           "effect_low", "effect_high", "effect_unit", "scales_with_trust_beds", "reference_ga_beds", "source",
           "use_for_simulation")
    initiatives = pl.DataFrame([
        ("extra_ga_beds", "Extra G&A beds", "beds", "per 10 G&A beds", 1_200_000.0, 3, "ga_beds_available", 8.0,
         10.0, "beds open per 10 funded beds", False, 700.0, "config", True),
        ("extra_ga_beds", "Extra G&A beds", "beds", "per 10 G&A beds", 1_200_000.0, 3, "ae_4hr_pct", 0.1, 0.8,
         "percentage points of 4-hour performance per 10 beds at the reference trust", True, 700.0, "config", False),
        ("extra_ga_beds", "Extra G&A beds", "beds", "per 10 G&A beds", 1_200_000.0, 3, "ae_4hr_pct", 0.2, 0.6,
         "percentage points of 4-hour performance per 10 beds at the reference trust", True, 700.0, "learned",
         True),
        ("demand_management", "Advice and guidance", "demand_management", "per 100 requests a month", 30_000.0, 0,
         "rtt_clock_starts", -35.0, -15.0, "RTT clock starts avoided a month per 100 requests", False, 700.0,
         "config", True),
        ("attendance_diversion", "Pharmacy first", "discharge", "per scheme", 2_400_000.0, 0, "ae_attendances",
         -4.0, -1.0, "pct of attendances", False, 700.0, "config", True),
    ], schema=ini, orient="row")
    values = pl.DataFrame({"org_code": ["R1", "R2", "Q1"] * 3, "metric_id": ["ga_beds_available"] * 9,
                           "period_start": [dt.date(2025, 1, 1)] * 3 + [dt.date(2025, 2, 1)] * 3
                           + [dt.date(2025, 3, 1)] * 3, "value": [350.0, 700.0, 2000.0] * 3})
    write_table(con, "s1_current_state", "metric_values", values)
    write_table(con, "s5_impact", "initiatives", initiatives)
    return con


@pytest.fixture
def warehouse(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = make_warehouse(tmp_path / "w.duckdb")
    yield con
    con.close()


def test_extend_targets_holds_last_row_and_reranks_primary(warehouse):
    prep = prepare(warehouse)
    t = prep.targets
    r1 = t.filter(pl.col("org_code") == "R1", pl.col("metric_id") == "ae_4hr_pct")
    # the constitutional standard's last row (2025-03) is held into the forecast months
    held = r1.filter(pl.col("standard_id") == "ae_4hr_constitutional")
    assert held.height == 12 and set(held["target_value"].to_list()) == {95.0}
    assert held["target_basis"].str.contains("held from 2025-03").all()
    # the trajectory outranks it in every forecast month
    assert r1.filter(pl.col("is_primary"))["standard_id"].unique().to_list() == ["ae_4hr_2026"]
    assert r1.filter(pl.col("standard_id") == "ae_4hr_2026", pl.col("period_start") == dt.date(2026, 3, 1)
                     )["target_value"].item() == pytest.approx(89.0)  # held at the baseline (above 78)


def test_build_risk_tables(warehouse):
    n = build_risk(warehouse, draws=2000, seed=1)
    risk = warehouse.sql("select * from s5_impact.risk").pl()
    assert n == risk.height
    # R1, R2, Q1 x (ae: 2 standards, occupancy 1, rtt 1) x 12 months
    assert risk.height == 3 * 4 * 12
    assert (risk["p10"] <= risk["p50"]).all() and (risk["p50"] <= risk["p90"]).all()
    assert risk["prob_meet_target"].is_between(0, 1).all()
    strong = risk.filter(pl.col("org_code") == "R1", pl.col("standard_id") == "ae_4hr_2026")
    weak = risk.filter(pl.col("org_code") == "R2", pl.col("standard_id") == "ae_4hr_2026")
    # at the deadline: R1's forecast (90) is above its held baseline line (89), R2's (62) far below 78
    assert strong["prob_meet_target"][-1] > 0.3 and weak["prob_meet_target"][-1] < 0.05
    assert weak["prob_meet_target"][0] > weak["prob_meet_target"][-1]  # the trajectory rises away from R2
    assert risk.filter(pl.col("standard_id") == "ae_4hr_constitutional", pl.col("org_code") == "R2"
                       )["prob_meet_target"].max() == 0.0
    assert risk["method"].str.contains("occ_fe").any()  # the learned (preferred, single-driver) relation
    reg = warehouse.sql("select * from s5_impact.risk_register").pl()
    assert reg.height == 3 * 4  # one row per organisation x standard
    dl = reg.filter(pl.col("standard_id") == "ae_4hr_2026")
    assert set(dl["assessed_period"].to_list()) == {dt.date(2026, 3, 1)}
    flat = reg.filter(pl.col("standard_id") == "ga_bed_occupancy_92")
    assert set(flat["assessed_period"].to_list()) == {MONTHS[-1]}
    # ranks: 1..4 within each organisation, the least likely first
    for org in ("R1", "R2", "Q1"):
        mine = reg.filter(pl.col("org_code") == org).sort("rank_in_org")
        assert mine["rank_in_org"].to_list() == [1, 2, 3, 4]
        assert mine["prob_meet_target"].is_sorted()
    assert set(reg["icb_code"].to_list()) == {"Q1"}
    assert sorted(reg["rank_in_icb"].to_list()) == list(range(1, 13))
    comment = warehouse.sql("select comment from duckdb_columns() where schema_name = 's5_impact' and "
                            "table_name = 'risk' and column_name = 'prob_meet_target'").fetchone()[0]
    assert "share of draws" in comment


def test_build_risk_is_reproducible(warehouse):
    build_risk(warehouse, draws=500, seed=5)
    a = warehouse.sql("select * from s5_impact.risk order by all").pl()
    build_risk(warehouse, draws=500, seed=5)
    b = warehouse.sql("select * from s5_impact.risk order by all").pl()
    build_risk(warehouse, draws=500, seed=6)
    c = warehouse.sql("select * from s5_impact.risk order by all").pl()
    assert a.equals(b)
    assert not a["p50"].equals(c["p50"])


def assert_same_summaries(a: list[mc.Summary], b: list[mc.Summary]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for field in ("p10", "p50", "p90", "mean", "prob"):
            assert np.array_equal(getattr(x, field), getattr(y, field), equal_nan=True), field


def test_risk_in_chunks_equals_one_pass(warehouse):
    """The fan-out's pieces (whole organisations, each with its own random streams) give the one-pass numbers bit
    for bit, whatever the number of pieces; build_risk in chunks writes the same tables."""
    plan = plan_risk(warehouse, draws=1000, seed=4)
    inputs = plan.prep.inputs
    whole = mc.run_settings(inputs, [plan.setting], draws=1000, seed=4)
    assert np.isfinite(whole[0].prob).any()
    for chunks in (2, 3, 7):
        parts = plan.chunks(chunks)
        assert sorted(np.concatenate([p.rows for p in parts]).tolist()) == list(range(inputs.shape[0]))
        orgs = [{inputs.keys[i][0] for i in p.rows} for p in parts]
        assert all(not a & b for i, a in enumerate(orgs) for b in orgs[i + 1:])  # an organisation in one piece
        assert_same_summaries(whole, mc.merge_summaries(inputs.shape, [(p.rows, p.run()) for p in parts]))
    assert len(plan.chunks(3)) >= 2
    build_risk(warehouse, draws=500, seed=5)
    a = warehouse.sql("select * from s5_impact.risk_register order by all").pl()
    build_risk(warehouse, draws=500, seed=5, chunks=3)
    assert a.equals(warehouse.sql("select * from s5_impact.risk_register order by all").pl())


def test_relation_falls_back_to_assumption(tmp_path):
    con = duckdb.connect(str(tmp_path / "e.duckdb"))
    r = read_relation(con)
    assert r.relation_id is None and r.mean == mc.ASSUMED_OCCUPANCY_BETA[0] and "assumed" in r.text


def test_register_ties_broken_by_gap():
    base = {"org_name": "x", "org_level": "provider", "parent_icb_code": "Q1", "metric_id": "m", "kind": "k",
            "direction": "at_least", "is_primary": True, "deadline": None, "period_start": dt.date(2026, 1, 1),
            "horizon": 10, "forecast_origin": dt.date(2025, 3, 1), "p10": 0.0, "p90": 0.0, "draws": 1, "seed": 1,
            "scenario": "b", "scenario_version": "1", "standard_name": "s"}
    # both at 0%: 'a' is 10 points short with a spread of 2.563 (sd 1: 10 sd), 'b' 30 short with sd 10 (3 sd)
    risk = pl.DataFrame([{**base, "org_code": "R1", "standard_id": "a", "target_value": 90.0, "p50": 80.0,
                          "p10": 78.7, "p90": 81.3, "prob_meet_target": 0.0},
                         {**base, "org_code": "R1", "standard_id": "b", "target_value": 90.0, "p50": 60.0,
                          "p10": 47.2, "p90": 72.8, "prob_meet_target": 0.0}])
    reg = register_frame(risk)
    assert reg.sort("rank_in_org")["standard_id"].to_list() == ["a", "b"]


def test_register_judges_a_multi_year_standard_at_its_next_milestone():
    """A Medium Term Planning Framework standard runs to March 2029 through March 2027: with forecasts to December
    2027 the register judges March 2027, not the last forecast month; a one-deadline standard keeps its deadline."""
    months = [dt.date(2026, m, 1) for m in range(1, 13)] + [dt.date(2027, m, 1) for m in range(1, 13)]
    rows = []
    for h, month in enumerate(months, start=1):
        common = {"org_code": "R1", "org_name": "x", "org_level": "provider", "parent_icb_code": "Q1",
                  "metric_id": "m", "kind": "planning_target", "direction": "at_least", "is_primary": True,
                  "period_start": month, "horizon": h, "forecast_origin": dt.date(2025, 12, 1), "p10": 70.0,
                  "p50": 75.0, "p90": 80.0, "draws": 1, "seed": 1, "scenario": "b", "scenario_version": "1",
                  "target_value": 80.0, "prob_meet_target": h / 100}
        rows.append({**common, "standard_id": "multi", "standard_name": "multi", "deadline": dt.date(2029, 3, 1),
                     "milestone_deadline": dt.date(2027, 3, 1) if month <= dt.date(2027, 3, 1)
                     else dt.date(2029, 3, 1)})
        rows.append({**common, "standard_id": "single", "standard_name": "single", "deadline": dt.date(2026, 9, 1),
                     "milestone_deadline": dt.date(2026, 9, 1)})
    reg = {r["standard_id"]: r for r in register_frame(pl.DataFrame(rows)).iter_rows(named=True)}
    assert reg["multi"]["assessed_period"] == dt.date(2027, 3, 1)
    assert reg["multi"]["prob_meet_target"] == pytest.approx((months.index(dt.date(2027, 3, 1)) + 1) / 100)
    assert "next milestone (March 2027)" in reg["multi"]["assessed_basis"]
    assert reg["single"]["assessed_period"] == dt.date(2026, 9, 1)
    assert reg["single"]["assessed_basis"] == "the standard's deadline"


def bundled_copy(tmp_path: Path, real_warehouse: Path) -> duckdb.DuckDBPyConnection:
    """A copy of the bundled warehouse with stand-in forecasts (mean and sd of the last 12 months) when the step-5
    forecasts are absent, and step 2's targets when they are absent."""
    path = tmp_path / "w.duckdb"
    shutil.copy(real_warehouse, path)
    con = duckdb.connect(str(path))
    have = {r[0] for r in con.sql("select schema_name || '.' || table_name from duckdb_tables()").fetchall()}
    if "s5_impact.forecasts" not in have:
        write_table(con, "s5_impact", "forecasts", stand_in_forecasts(con))
    if "s2_triple_aim.targets" not in have:
        from ibp_pipeline.step2_triple_aim.standards import build_standards, build_targets, load_registry
        build_standards(con, load_registry())
        build_targets(con, load_registry())
    return con


def test_risk_on_bundled_warehouse(real_warehouse, tmp_path):
    """Shapes on the real data."""
    con = bundled_copy(tmp_path, real_warehouse)
    n = build_risk(con, draws=200, seed=1)
    risk = con.sql("select * from s5_impact.risk").pl()
    reg = con.sql("select * from s5_impact.risk_register").pl()
    assert n > 10_000
    assert risk["prob_meet_target"].is_between(0, 1).all()
    assert (risk["p10"] <= risk["p90"]).all()
    assert reg.height == risk.select("org_code", "standard_id").unique().height
    assert reg.filter(pl.col("org_level") == "provider").height > 500
    assert {"ae_4hr_2026", "rtt_18wk_2026", "rtt_52wk_share_2026"} <= set(reg["standard_id"].to_list())
    con.close()
