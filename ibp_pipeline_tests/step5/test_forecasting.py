"""Step-5 forecasting: known answers on constructed series, statsmodels compatibility, the tables on small
hand-made warehouses, and one run on a copy of the real warehouse (skipped when absent)."""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest

from ibp_pipeline.step5_impact import forecasting as F
from ibp_pipeline.step5_impact.forecast_tables import (
    build_forecast_accuracy,
    build_forecasts,
    combine_forecasts,
    forecast_frame,
    load_series,
    split_series,
)



def _seasonal(n: int = 60, seed: int = 1, noise: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """Level 1000, seasonal amplitude 100 (period 12), normal noise; returns (observed, noise-free) of n + 24."""
    t = np.arange(n + 24)
    clean = 1000 + 100 * np.sin(2 * np.pi * t / 12)
    return clean + np.random.default_rng(seed).normal(0, noise, len(t)), clean


# ------------------------------------------------------------------------------------------- statsmodels parity
@pytest.mark.parametrize("form", F.DEFAULT_FORMS, ids=lambda f: f.label)
def test_likelihood_forecast_and_intervals_equal_statsmodels(form: F.EtsForm) -> None:
    """Our recursion, likelihood, AICc and analytic intervals are statsmodels' ETSModel at the same parameters."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    y, _ = _seasonal(48, seed=3)
    y = y[:48] + 0.8 * np.arange(48)
    fit = F.fit_ets(y[None, :], np.array([48]), form)
    alpha, beta, gamma, phi = (float(v[0]) for v in F._to_params(fit.unit))
    x0 = fit.x0[0]
    init = {"initial_level": x0[0]}
    if form.trend:
        init["initial_trend"] = x0[1]
    if form.seasonal:
        ring = np.zeros(12)
        ring[1:] = x0[1 + int(form.trend):]
        init["initial_seasonal"] = ring
    series = pd.Series(y, index=pd.date_range("2020-01-01", periods=48, freq="MS"))
    model = ETSModel(series, initialization_method="known", **init, **form.statsmodels_kwargs())
    params = [alpha] + [beta] * form.trend + [gamma] * form.seasonal + [phi] * form.damped
    res = model.smooth(np.array(params))
    assert fit.llf[0] == pytest.approx(res.llf, abs=1e-6)
    # statsmodels counts the same parameters for AICc when the initial states are estimated
    assert form.df_model == len(params) + 1 + int(form.trend) + 12 * int(form.seasonal) + 1
    frame = res.get_prediction(start=48, end=48 + 23).summary_frame(alpha=0.05)
    resid, lv, tr, rg = F.ets_states_and_residuals(y[None, :], np.array([48]), fit)
    mean, sd = F.ets_forecast(fit, lv, tr, rg, np.array([48]), 24)
    np.testing.assert_allclose(mean[0], frame["mean"].to_numpy(), rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(mean[0] + F.Z95 * sd[0], frame["pi_upper"].to_numpy(), rtol=1e-9, atol=1e-7)


def test_grid_fit_is_at_least_as_good_as_statsmodels_mle() -> None:
    """The grid + exact-initial-state fit reaches statsmodels' own maximum likelihood (or beats a local one)."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    y = 200 + np.cumsum(np.random.default_rng(5).normal(0.5, 3, 40))
    series = pd.Series(y, index=pd.date_range("2021-01-01", periods=40, freq="MS"))
    for form in (F.ANN, F.AAdN):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = ETSModel(series, **form.statsmodels_kwargs()).fit(disp=False)
        ours = F.fit_ets(y[None, :], np.array([40]), form)
        assert ours.llf[0] >= ref.llf - 0.6
        assert ours.aicc[0] == pytest.approx(-2 * ours.llf[0] + 2 * form.df_model * 40 / (40 - form.df_model - 1))


def test_thread_split_does_not_change_results() -> None:
    rng = np.random.default_rng(2)
    y = 50 + np.cumsum(rng.normal(0, 1, (500, 30)), axis=1)
    lengths = rng.integers(12, 31, 500)
    one = F.fit_ets(y, lengths, F.AAdN, workers=1)
    two = F.fit_ets(y, lengths, F.AAdN, workers=2)
    np.testing.assert_array_equal(one.unit, two.unit)
    np.testing.assert_array_equal(one.sse, two.sse)


# ------------------------------------------------------------------------------------------- known answers
def test_seasonal_series_is_forecast_within_its_interval() -> None:
    y, clean = _seasonal(60)
    bf = F.forecast_batch(y[None, :60], np.array([60]), 24)
    assert bf.model[0] in ("ETS(A,N,A)", "ETS(A,Ad,A)")
    lo80, hi80 = bf.interval(80)
    lo95, hi95 = bf.interval(95)
    assert np.all((clean[60:] >= lo80[0]) & (clean[60:] <= hi80[0]))  # the noise-free path inside the 80%
    inside = (y[60:] >= lo95[0]) & (y[60:] <= hi95[0])
    assert inside.mean() >= 0.9
    assert np.abs(bf.mean[0] - clean[60:]).max() < 15  # amplitude 100, noise sd 5


def test_aicc_picks_trend_for_trending_series_and_level_for_flat() -> None:
    rng = np.random.default_rng(4)
    t = np.arange(30)
    trending = 100 + 5 * t + rng.normal(0, 2, 30)
    flat = 100 + rng.normal(0, 2, 30)
    bf = F.forecast_batch(np.vstack([trending, flat]), np.array([30, 30]), 6)
    assert bf.model[0] in ("ETS(A,A,N)", "ETS(A,Ad,N)")
    assert bf.model[1] == "ETS(A,N,N)"
    assert "ETS(A,N,A)=" in bf.candidates[1] and "ETS(A,Ad,A)" not in bf.candidates[1]  # damped seasonal: >= 36
    assert bf.mean[0, -1] > trending[-1] + 10  # the trend carries on


def test_fallbacks_name_their_model() -> None:
    n = 24
    y = np.zeros((5, n))
    lengths = np.array([4, 10, 24, 24, 24])
    y[0, :4] = [10, 12, 11, 13]  # too short even for SES
    y[1, :10] = 50 + np.arange(10) * 3.0  # short: naive or SES by AICc
    y[2] = np.where(np.arange(n) % 4 == 0, 7.0, 0.0)  # intermittent: 3 of 4 months zero
    y[3] = 42.0  # constant
    y[4] = 100 + np.random.default_rng(0).normal(0, 5, n)
    bf = F.forecast_batch(y, lengths, 12)
    assert bf.model[0] == "naive"
    assert bf.model[1] in ("naive", "ETS(A,N,N)") and "naive=" in bf.candidates[1]
    assert bf.model[2] == "croston_sba"
    assert bf.model[3] == "constant" and np.all(bf.mean[3] == 42.0) and np.all(bf.sd[3] == 0)
    assert bf.model[4].startswith("ETS(")
    # Croston-SBA: every 4th month 7 -> size 7, interval 4, rate (1 - 0.05) * 7 / 4
    assert bf.mean[2, 0] == pytest.approx(0.95 * 7 / 4, rel=0.02)
    # naive: sd grows with sqrt(h)
    assert bf.sd[0, 3] == pytest.approx(2 * bf.sd[0, 0])


def test_percentages_through_numerator_and_denominator_stay_in_0_to_100() -> None:
    rng = np.random.default_rng(9)
    den = 1000 + 200 * np.sin(np.arange(40) * 2 * np.pi / 12) + rng.normal(0, 30, 40)
    share = np.clip(0.97 + rng.normal(0, 0.02, 40), 0, 1)
    num = den * share
    lengths = np.array([40])
    nb = F.forecast_batch(num[None, :], lengths, 24)
    db = F.forecast_batch(den[None, :], lengths, 24)
    rf = F.ratio_forecast(nb, db)
    for arr in (rf.mean, rf.lo80, rf.hi80, rf.lo95, rf.hi95):
        assert np.all((arr >= 0) & (arr <= 100))
    assert np.all(rf.lo95 <= rf.lo80) and np.all(rf.hi80 <= rf.hi95)
    np.testing.assert_allclose(rf.mean, np.clip(100 * nb.mean / db.mean, 0, 100))
    assert rf.rho[0] > 0.5  # numerator and denominator move together
    # a tiny noisy denominator falls back to seeded simulation, still bounded
    tiny = F.BatchForecast(np.array(["x"]), np.full((1, 3), 3.0), np.full((1, 3), 2.0), np.zeros((1, 5)),
                           np.array([np.nan]), np.array([""]))
    tiny_d = F.BatchForecast(np.array(["x"]), np.full((1, 3), 4.0), np.full((1, 3), 3.0), np.zeros((1, 5)),
                             np.array([np.nan]), np.array([""]))
    r1, r2 = F.ratio_forecast(tiny, tiny_d, seed=1), F.ratio_forecast(tiny, tiny_d, seed=1)
    assert r1.simulated.all()
    np.testing.assert_array_equal(r1.hi95, r2.hi95)
    assert np.all((r1.lo95 >= 0) & (r1.hi95 <= 100))


def test_ratio_quantiles_match_simulation() -> None:
    mn, sn, md, sd, rho = 700.0, 60.0, 1000.0, 80.0, 0.8
    lo, hi, ok = F.ratio_quantile_bounds(np.array([mn]), np.array([sn]), np.array([md]), np.array([sd]),
                                         np.array([rho]), F.Z95)
    z = np.random.default_rng(0).standard_normal((2, 400_000))
    ratio = (mn + sn * z[0]) / (md + sd * (rho * z[0] + np.sqrt(1 - rho ** 2) * z[1]))
    assert ok[0]
    assert lo[0] == pytest.approx(np.quantile(ratio, 0.025), abs=2e-3)
    assert hi[0] == pytest.approx(np.quantile(ratio, 0.975), abs=2e-3)


def test_backtest_metrics_on_a_series_with_known_errors() -> None:
    """y = 1..10, naive forecasts from origins 6 and 7, 3 months ahead: errors are exactly h."""
    y = np.arange(1.0, 11.0)[None, :]
    plan = F.backtest_plan(np.array([10]), n_origins=2, horizon_max=3, min_train=6)
    np.testing.assert_array_equal(plan.train, [[6, 7]])
    assert plan.horizon[0] == 3

    def naive(rows: np.ndarray, train: np.ndarray) -> dict:
        mean, sd, _ = F.naive_forecast(y[rows], train, 3)
        return {"mean": mean, "lo80": mean - F.Z80 * sd, "hi80": mean + F.Z80 * sd, "lo95": mean - F.Z95 * sd,
                "hi95": mean + F.Z95 * sd, "model": np.array(["naive"] * len(rows))}

    sc = F.score_backtest(y, plan, y, naive)
    assert sc.mae[0] == pytest.approx(2.0)  # mean of 1, 2, 3
    assert sc.mase[0] == pytest.approx(2.0)  # in-sample naive MAE is 1; short -> lag-1 scale
    assert not sc.seasonal_scale[0]
    # sd_h = sqrt(h): 80% half-widths 1.28, 1.81, 2.22 cover h=1 only; 95% (1.96, 2.77, 3.39) cover all
    assert sc.coverage80[0] == pytest.approx(1 / 3)
    assert sc.coverage95[0] == pytest.approx(1.0)
    assert sc.n_forecasts[0] == 6 and sc.models[0] == {"naive": 2}


def test_latest_segment_fills_short_gaps_and_restarts_after_long_ones() -> None:
    months = np.array([0, 1, 2, 10, 11, 13, 14, 15])  # 3-9 missing (7 months: restart), 12 missing (fill)
    values = np.array([1, 1, 1, 10, 11, 13, 14, 15], dtype=float)
    seg, first, filled = F.latest_segment(months, values, max_fill=2, max_points=72)
    assert first == 10 and filled == 1
    np.testing.assert_allclose(seg, [10, 11, 12, 13, 14, 15])
    seg, first, _ = F.latest_segment(months, values, max_points=3)
    assert first == 13 and len(seg) == 3


# ------------------------------------------------------------------------------------------- tables
def _warehouse(path: Path, rows: list[tuple]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("create schema s1_current_state")
    con.execute("""create table s1_current_state.metric_values (org_code varchar, org_level varchar,
        period_start date, period_grain varchar, metric_id varchar, value double, numerator double,
        denominator double, source varchar, source_file varchar, load_id bigint, precedence integer,
        current_org_code varchar)""")
    con.execute("""create table s1_current_state.metric_catalogue as select * from (values
        ('ae_attendances', 'count', 'month'), ('ae_4hr_pct', 'percent', 'month')) t(metric_id, unit, grain)""")
    con.executemany("insert into s1_current_state.metric_values values (?, 'provider', ?, 'month', ?, ?, ?, ?, "
                    "'test', 'f', 1, 1, ?)", rows)
    return con


def _month(i: int) -> str:
    return f"{2021 + i // 12}-{i % 12 + 1:02d}-01"


def test_merger_continuation_sums_predecessors(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(40):
        season = 1 + 0.1 * np.sin(2 * np.pi * i / 12)
        if i < 20:  # two predecessors until their merger into R0C
            for code, size in (("RAA", 3000), ("RBB", 2000)):
                att = round(size * season + rng.normal(0, 30))
                rows.append((code, _month(i), "ae_attendances", att, att, None, "R0C"))
                rows.append((code, _month(i), "ae_4hr_pct", 100 * 0.7 * att / att, 0.7 * att, att, "R0C"))
        else:
            att = round(5000 * season + rng.normal(0, 40))
            rows.append(("R0C", _month(i), "ae_attendances", att, att, None, "R0C"))
            rows.append(("R0C", _month(i), "ae_4hr_pct", 72.0, 0.72 * att, att, "R0C"))
    rows.append(("RZZ", _month(0), "ae_attendances", 10.0, 10.0, None, "RZZ"))  # too little history
    con = _warehouse(tmp_path / "w.duckdb", rows)
    ss = load_series(con)
    keys = ss.keys.to_dicts()
    assert [(k["org_code"], k["metric_id"]) for k in keys] == [("R0C", "ae_4hr_pct"), ("R0C", "ae_attendances")]
    att = next(i for i, k in enumerate(keys) if k["metric_id"] == "ae_attendances")
    first_month = [r for r in rows if r[1] == _month(0) and r[2] == "ae_attendances" and r[6] == "R0C"]
    assert ss.value[att, 0] == sum(r[3] for r in first_month)
    assert ss.lengths[att] == 40 and keys[att]["merged_from"] == "RAA+RBB"
    n = build_forecasts(con, horizon=6)
    assert n == 12
    out = con.sql("select * from s5_impact.forecasts order by metric_id, horizon").pl()
    assert out["org_code"].unique().to_list() == ["R0C"]
    assert out["forecast_origin"].unique().to_list() == [pd.Timestamp(_month(39)).date()]
    pct = out.filter(pl.col("metric_id") == "ae_4hr_pct")
    assert pct["num_mean"].null_count() == 0 and pct["model"][0].startswith("ratio(num=")
    np.testing.assert_allclose(pct["mean"], 100 * pct["num_mean"] / pct["den_mean"])
    assert pct["mean"].is_between(65, 80).all()
    assert (out["lo95"] <= out["lo80"]).all() and (out["hi80"] <= out["hi95"]).all()
    assert (out["lo95"] >= 0).all()
    assert build_forecast_accuracy(con, origins=3, horizon=4) == 2
    acc = con.sql("select * from s5_impact.forecast_accuracy order by metric_id").pl()
    assert acc["n_origins"].to_list() == [3, 3] and acc["horizon_max"].to_list() == [4, 4]
    assert acc["mase_benchmark"].to_list() == ["seasonal_naive_12", "seasonal_naive_12"]
    assert acc["mase"].is_between(0, 5).all() and acc["coverage95"].is_between(0, 1).all()
    assert acc["model"].to_list() == out.unique(["metric_id"], keep="first").sort("metric_id")["model"].to_list()


def test_outputs_are_reproducible(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(14):
        att = 4 + rng.poisson(3)  # tiny denominators: the percentage intervals are simulated (seeded)
        rows.append(("RAA", _month(i), "ae_4hr_pct", 100.0 * 2 / att, 2.0 + rng.integers(0, 2), float(att), "RAA"))
    con = _warehouse(tmp_path / "w.duckdb", rows)
    ss = load_series(con)
    a = forecast_frame(ss, 12)
    b = forecast_frame(load_series(con), 12)
    assert a.equals(b)
    assert a["hi95"].max() <= 100 and a["lo95"].min() >= 0


def test_real_warehouse_for_a_few_organisations(real_warehouse, tmp_path: Path) -> None:
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(real_warehouse, db)
    con = duckdb.connect(str(db))
    keep = ("RJ1", "R0A", "QOP", "ENGLAND")  # a trust, a merged trust, an ICB, England
    con.execute("delete from s1_current_state.metric_values where current_org_code not in (select unnest(?))",
                [list(keep)])
    n = build_forecasts(con, reuse=False)  # the copy holds the run's forecasts: refit them all
    fc = con.sql("select * from s5_impact.forecasts").pl()
    assert n == fc.height > 0 and set(fc["horizon"].unique()) == set(range(1, 25))
    assert set(fc["org_code"].unique()) <= set(keep)
    assert fc["model"].null_count() == 0
    pct = fc.filter(pl.col("unit") == "percent")
    assert pct.height and pct["lo95"].min() >= 0 and pct["hi95"].max() <= 100
    assert pct["num_mean"].null_count() == 0
    assert fc.filter(pl.col("unit") != "percent")["lo95"].min() >= 0
    assert (fc["lo95"] <= fc["hi95"]).all() and (fc["lo80"] <= fc["hi80"]).all()
    ae = fc.filter((pl.col("org_code") == "ENGLAND") & (pl.col("metric_id") == "ae_attendances"))
    last = con.execute("select max(period_start) from s1_current_state.metric_values where org_code = 'ENGLAND' "
                       "and metric_id = 'ae_attendances'").fetchone()[0]
    # from the latest month back to April 2021, where A&E resumes after the pandemic break (a hole too long to bridge)
    months = (last.year - 2021) * 12 + last.month - 4 + 1
    assert ae["forecast_origin"][0] == last and ae["history_months"][0] == months
    merged = fc.filter((pl.col("org_code") == "R0A") & (pl.col("metric_id") == "workforce_fte"))
    assert merged.height == 24
    series = fc.unique(["org_code", "metric_id"]).height
    assert build_forecast_accuracy(con, reuse=False) == series
    acc = con.sql("select * from s5_impact.forecast_accuracy where n_origins > 0").pl()
    assert acc.height > 0.9 * series
    assert acc["coverage95"].is_between(0, 1).all() and acc["mase"].drop_nulls().min() >= 0
    assert 0.3 < acc["mase"].median() < 2.0


def _panel(orgs: int = 8, seed: int = 11) -> list[tuple]:
    """Monthly attendances and 4-hour percentages for `orgs` trusts (some with tiny denominators)."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(orgs):
        code, size = f"R{k:02d}", 500 + 300 * k
        for i in range(30):
            att = max(1.0, round(size * (1 + 0.1 * np.sin(2 * np.pi * i / 12)) + rng.normal(0, 20)))
            rows.append((code, _month(i), "ae_attendances", att, att, None, code))
            den = 4.0 + rng.poisson(3) if k % 3 == 0 else att
            num = float(rng.binomial(int(den), 0.7))
            rows.append((code, _month(i), "ae_4hr_pct", 100 * num / den, num, den, code))
    return rows


def test_unchanged_series_keep_their_forecasts_and_scores(tmp_path: Path) -> None:
    """Incremental step 5: a second run on the same data refits nothing and writes the same tables; a changed
    series (here one trust gets a new month) is refitted alone; other parameters or reuse=False refit all."""
    from ibp_pipeline.step5_impact.forecast_tables import update_forecast_accuracy
    from ibp_pipeline.step5_impact.series_reuse import FINGERPRINTS

    con = _warehouse(tmp_path / "w.duckdb", _panel())
    table = lambda t: con.sql(f"select * from s5_impact.{t} order by all").pl()  # noqa: E731
    build_forecasts(con, horizon=12)
    update_forecast_accuracy(con, origins=3, horizon=4)
    first, first_acc = table("forecasts"), table("forecast_accuracy")
    assert con.sql(f"select count(*) from {FINGERPRINTS}").fetchone()[0] == 2 * 16
    n, plan = update_forecast_accuracy(con, origins=3, horizon=4)
    assert plan.reused.all() and n == 16 and table("forecast_accuracy").equals(first_acc)
    build_forecasts(con, horizon=12)
    assert table("forecasts").equals(first)

    # one trust's new month: its two series move, every other series keeps its rows exactly
    con.execute("insert into s1_current_state.metric_values values ('R03', 'provider', ?, 'month', "
                "'ae_attendances', 1500, 1500, null, 'test', 'f', 2, 1, 'R03')", [_month(30)])
    _, plan = update_forecast_accuracy(con, origins=3, horizon=4)
    assert plan.keys.filter(pl.Series(~plan.reused)).rows() == [("R03", "ae_attendances")]
    build_forecasts(con, horizon=12)
    after = table("forecasts")
    moved = after.join(first, on=["org_code", "metric_id", "horizon"], suffix="_before").filter(
        pl.col("forecast_origin") != pl.col("forecast_origin_before"))
    assert moved.select("org_code", "metric_id").unique().rows() == [("R03", "ae_attendances")]
    others = pl.col("org_code") != "R03"
    assert after.filter(others).equals(first.filter(others))

    # refitting everything gives the same numbers (to the last bits a different batch can move)
    build_forecasts(con, horizon=12, reuse=False)
    full = table("forecasts")
    exact = [c for c, t in full.schema.items() if t != pl.Float64]
    assert full.select(exact).equals(after.select(exact))
    for c in (c for c, t in full.schema.items() if t == pl.Float64):
        np.testing.assert_allclose(full[c].to_numpy(), after[c].to_numpy(), rtol=1e-9, atol=1e-9, err_msg=c)
    # other parameters are other fingerprints: nothing reused
    _, plan = update_forecast_accuracy(con, origins=2, horizon=4)
    assert not plan.reused.any()


def test_chunked_forecasts_equal_one_batch(tmp_path: Path) -> None:
    """The fan-out (split_series -> forecast_frame per chunk -> combine_forecasts) gives the one-batch table:
    each series is fitted from its own data; the seeded ratio simulations use common random numbers."""
    rng = np.random.default_rng(7)
    rows = []
    for k in range(12):
        code, size = f"R{k:02d}", 500 + 400 * k
        for i in range(30 + k):
            att = max(1.0, round(size * (1 + 0.1 * np.sin(2 * np.pi * i / 12)) + rng.normal(0, 20)))
            rows.append((code, _month(i), "ae_attendances", att, att, None, code))
            den = 4.0 + rng.poisson(3) if k % 3 == 0 else att  # tiny denominators: simulated intervals
            num = float(rng.binomial(int(den), 0.7))
            rows.append((code, _month(i), "ae_4hr_pct", 100 * num / den, num, den, code))
    con = _warehouse(tmp_path / "w.duckdb", rows)
    ss = load_series(con)
    whole = forecast_frame(ss, 12)
    parts = split_series(ss, 3)
    assert len(parts) > 1 and sum(len(p) for p in parts) == len(ss)
    for p in parts:  # an organisation's series never straddle chunks
        assert not set(p.keys["org_code"]) & set().union(*(set(q.keys["org_code"]) for q in parts if q is not p))
    chunked = combine_forecasts([forecast_frame(p, 12) for p in parts])
    assert "ratio_simulated" in set(whole["interval_method"])
    assert chunked.columns == whole.columns and chunked.height == whole.height
    exact = [c for c, t in whole.schema.items() if t != pl.Float64]
    assert chunked.select(exact).equals(whole.select(exact))
    for c in (c for c, t in whole.schema.items() if t == pl.Float64):
        np.testing.assert_allclose(chunked[c].to_numpy(), whole[c].to_numpy(), rtol=1e-9, atol=1e-9, err_msg=c)
    assert build_forecasts(con, horizon=12, chunks=3) == whole.height
    with pytest.raises(ValueError, match="at least 1"):
        split_series(ss, 0)
