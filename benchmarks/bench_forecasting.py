"""Step-5 forecasting timings and accuracy on the bundled data, against statsforecast's AutoETS.

    .venv/bin/python benchmarks/bench_forecasting.py [--warehouse PATH] [--sample 300] [--sm-sample 20]
        [--statsforecast-python PATH]

1. Copies the built warehouse (default data/warehouse.duckdb, built by `ibp run`) to a temporary
   folder and times build_forecasts (24 months, every series) and build_forecast_accuracy (6 rolling origins,
   up to 12 months ahead), printing ms per series and the MASE / interval-coverage summary (England and all).
2. Side by side on a seeded sample of the fitted count series (counts, and the numerators and denominators of
   percentages), over the same rolling origins and training windows: our engine vs statsforecast AutoETS
   (model selection over all ETS forms, 80/95% intervals) vs statsmodels ETSModel chosen by AICc (a smaller
   sample: it is slow). Prints ms per series-fit, MASE (same scale for all) and coverage.

statsforecast pins pandas < 3, which conflicts with this project's pandas 3 pin, so it runs in its own
virtualenv through a subprocess (this same file, `--sf-worker`, which imports only numpy and statsforecast):
    python -m venv /tmp/ibp-bench-venv && /tmp/ibp-bench-venv/bin/pip install statsforecast==2.1.1
Pass its python with --statsforecast-python or IBP_BENCH_PYTHON (default /tmp/ibp-bench-venv/bin/python); the
comparison is skipped with a note when it is absent. Machines here are noisy: compare ratios within one run.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_WAREHOUSES = (Path(__file__).resolve().parents[1] / "data" / "warehouse.duckdb",)
DEFAULT_SF_PYTHON = "/tmp/ibp-bench-venv/bin/python"


# ------------------------------------------------------------------------------------------ statsforecast worker
def sf_worker(inp: str, out: str) -> None:
    """Runs inside the statsforecast virtualenv: AutoETS at every origin of every sampled series."""
    import warnings

    warnings.simplefilter("ignore")
    from statsforecast.models import AutoETS

    d = np.load(inp)
    y, train, hmax = d["y"], d["train"], int(d["hmax"])
    s_count, n_or = train.shape
    res = {k: np.full((s_count, n_or, hmax), np.nan) for k in ("mean", "lo80", "hi80", "lo95", "hi95")}
    AutoETS(season_length=12).forecast(y=y[0, :24] + 1.0, h=2, level=[80, 95])  # compile/warm-up, untimed
    failures = 0
    t0 = time.perf_counter()
    n_fits = 0
    for s in range(s_count):
        for o in range(n_or):
            n = int(train[s, o])
            if n <= 0:
                continue
            ys = y[s, :n].astype(float)
            n_fits += 1
            try:
                model = AutoETS(season_length=12 if n >= 24 else 1)
                r = model.forecast(y=ys, h=hmax, level=[80, 95], fitted=False)
            except Exception:  # noqa: BLE001 - count it, fall back to a flat forecast
                failures += 1
                sd = float(np.std(np.diff(ys))) if n > 2 else 0.0
                r = {"mean": np.full(hmax, ys[-1])}
                for lv, z in ((80, 1.2816), (95, 1.96)):
                    r[f"lo-{lv}"] = r["mean"] - z * sd * np.sqrt(np.arange(1, hmax + 1))
                    r[f"hi-{lv}"] = r["mean"] + z * sd * np.sqrt(np.arange(1, hmax + 1))
            res["mean"][s, o] = r["mean"]
            for lv in (80, 95):
                res[f"lo{lv}"][s, o] = r[f"lo-{lv}"]
                res[f"hi{lv}"][s, o] = r[f"hi-{lv}"]
    elapsed = time.perf_counter() - t0
    np.savez(out, elapsed=elapsed, n_fits=n_fits, failures=failures, **res)


# ------------------------------------------------------------------------------------------ helpers
def _find_warehouse(given: str | None) -> Path:
    for p in ([Path(given)] if given else list(DEFAULT_WAREHOUSES)):
        if p.exists():
            return p
    sys.exit("no built warehouse found: pass --warehouse (build one with `ibp run`)")


def _summary(con) -> None:
    import polars as pl

    pl.Config.set_tbl_rows(60)
    pl.Config.set_tbl_width_chars(160)
    q = """
        select metric_id, count(*) as series, round(median(mase), 2) as median_mase,
               round(avg(coverage80), 2) as coverage80, round(avg(coverage95), 2) as coverage95,
               round(avg(case when org_code = 'ENGLAND' then mase end), 2) as england_mase,
               any_value(case when org_code = 'ENGLAND' then model end) as england_model,
               mode(mase_benchmark) as mase_vs
        from s5_impact.forecast_accuracy where n_origins > 0 group by 1 order by 1"""
    print(con.sql(q).pl())
    print(con.sql("""
        select count(*) as series, round(median(mase), 3) as median_mase, round(avg(mase), 3) as mean_mase,
               round(avg(coverage80), 3) as coverage80, round(avg(coverage95), 3) as coverage95
        from s5_impact.forecast_accuracy where n_origins > 0""").pl())
    print(con.sql("""
        select split_part(model, '(', 1) || case when model like 'ETS%' then '(' || split_part(model, '(', 2)
               else '' end as model_family, count(*) as series
        from s5_impact.forecasts where horizon = 1 group by 1 order by 2 desc""").pl())


def _score(name: str, y: np.ndarray, plan, fc_by_origin: list[dict]) -> dict:
    from ibp_pipeline.step5_impact.forecasting import score_backtest

    calls = iter(range(plan.train.shape[1]))

    def forecaster(rows: np.ndarray, train: np.ndarray) -> dict:
        o = next(calls)
        while not (plan.train[rows, o] == train).all():
            o = next(calls)
        return {k: v[rows] for k, v in fc_by_origin[o].items()}

    sc = score_backtest(y, plan, y, forecaster)
    ok = sc.n_origins > 0
    return {"engine": name, "series": int(ok.sum()), "median_mase": float(np.nanmedian(sc.mase[ok])),
            "mean_mase": float(np.nanmean(sc.mase[ok])), "coverage80": float(np.nanmean(sc.coverage80[ok])),
            "coverage95": float(np.nanmean(sc.coverage95[ok])), "mase": sc.mase}


def compare_engines(con, sample: int, sm_sample: int, sf_python: str | None, origins: int, horizon: int) -> None:
    """Our engine vs statsforecast AutoETS (and statsmodels) on the same sampled series and origins."""
    from ibp_pipeline.step5_impact.forecast_tables import _components, load_series
    from ibp_pipeline.step5_impact.forecasting import (
        backtest_plan,
        classify,
        forecast_batch,
        statsmodels_reference,
    )

    ss = load_series(con)
    comp = _components(ss)
    ratio = ss.keys["is_ratio"].to_numpy()
    lengths = np.concatenate([ss.lengths[~ratio], ss.lengths[ratio], ss.lengths[ratio]])
    rng = np.random.default_rng(7)
    pick = np.sort(rng.choice(len(lengths), size=min(sample, len(lengths)), replace=False))
    y, ln = comp.y[pick], lengths[pick]
    plan = backtest_plan(ln, n_origins=origins, horizon_max=horizon)
    hmax = int(plan.horizon.max())
    kind = classify(y, ln)
    print(f"\nsample: {len(pick)} of {len(lengths)} fitted count series (seed 7); ETS-eligible {int((kind == 'ets').sum())}"
          f", naive {int((kind == 'naive').sum())}, croston {int((kind == 'croston_sba').sum())}, constant "
          f"{int((kind == 'constant').sum())}; median length {int(np.median(ln))}")

    ours: list[dict] = []
    t0 = time.perf_counter()
    n_fits = 0
    for o in range(plan.train.shape[1]):
        rows = np.flatnonzero(plan.train[:, o] > 0)
        tl = plan.train[rows, o]
        bf = forecast_batch(y[rows], tl, hmax)
        n_fits += len(rows)
        full = {k: np.full((len(pick), hmax), np.nan) for k in ("mean", "lo80", "hi80", "lo95", "hi95")}
        full["mean"][rows] = np.maximum(bf.mean, 0)
        for lv in (80, 95):
            lo, hi = bf.interval(lv, lower=0.0)
            full[f"lo{lv}"][rows], full[f"hi{lv}"][rows] = lo, hi
        full["model"] = np.full(len(pick), "", dtype=object)
        full["model"][rows] = bf.model
        ours.append(full)
    ours_s = time.perf_counter() - t0
    rows_out = [dict(_score("ours (numpy ETS by AICc + fallbacks)", y, plan, ours),
                     ms=1000 * ours_s / n_fits, fits=n_fits)]

    sf_python = sf_python or os.environ.get("IBP_BENCH_PYTHON") or DEFAULT_SF_PYTHON
    if sf_python and Path(sf_python).exists():
        with tempfile.TemporaryDirectory() as tmp:
            inp, outp = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
            np.savez(inp, y=y, train=plan.train, hmax=hmax)
            subprocess.run([sf_python, __file__, "--sf-worker", str(inp), str(outp)], check=True)
            d = np.load(outp)
            sf = []
            for o in range(plan.train.shape[1]):
                f = {k: d[k][:, o] for k in ("mean", "lo80", "hi80", "lo95", "hi95")}
                f = {k: np.maximum(v, 0.0) for k, v in f.items()}  # counts: clip at 0 as ours does
                f["model"] = np.full(len(pick), "AutoETS", dtype=object)
                sf.append(f)
            rows_out.append(dict(_score("statsforecast AutoETS (all forms)", y, plan, sf),
                                 ms=1000 * float(d["elapsed"]) / int(d["n_fits"]), fits=int(d["n_fits"]),
                                 failures=int(d["failures"])))
    else:
        print(f"(statsforecast comparison skipped: no python at {sf_python}; see this file's docstring)")

    if sm_sample > 0:
        # statsmodels ETSModel per series (every eligible form, AICc), at the last origin only: cost per series
        eligible = np.flatnonzero((kind == "ets") & (plan.train[:, -1] >= 12))[:sm_sample]
        t0 = time.perf_counter()
        agree = 0
        for i in eligible:
            n = int(plan.train[i, -1])
            ref = statsmodels_reference(y[i, :n], horizon=hmax)
            agree += ref["model"] == ours[-1]["model"][i]
        dt = time.perf_counter() - t0
        print(f"statsmodels ETSModel, all eligible forms by AICc, {len(eligible)} series at the last origin: "
              f"{1000 * dt / max(1, len(eligible)):.0f} ms per series; same form chosen as ours in "
              f"{agree}/{len(eligible)}")

    print(f"\n{'engine':<40}{'fits':>7}{'ms/fit':>9}{'median MASE':>13}{'mean MASE':>11}{'cov80':>7}{'cov95':>7}")
    for r in rows_out:
        print(f"{r['engine']:<40}{r['fits']:>7}{r['ms']:>9.2f}{r['median_mase']:>13.3f}{r['mean_mase']:>11.3f}"
              f"{r['coverage80']:>7.2f}{r['coverage95']:>7.2f}" + (f"  ({r['failures']} failed fits)"
                                                                    if r.get("failures") else ""))
    if len(rows_out) > 1:
        a, b = rows_out[0]["mase"], rows_out[1]["mase"]
        both = np.isfinite(a) & np.isfinite(b)
        ets = both & (kind == "ets")
        print(f"paired on {both.sum()} series: ours better (lower MASE) on {(a[both] < b[both]).mean():.0%}; "
              f"median ratio ours/AutoETS {np.nanmedian(a[both] / np.where(b[both] > 0, b[both], np.nan)):.3f}; "
              f"on the {ets.sum()} ETS-eligible series median MASE ours {np.median(a[ets]):.3f} vs "
              f"AutoETS {np.median(b[ets]):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warehouse")
    parser.add_argument("--sample", type=int, default=300, help="series for the side-by-side comparison")
    parser.add_argument("--sm-sample", type=int, default=20, help="series for the statsmodels timing")
    parser.add_argument("--statsforecast-python")
    parser.add_argument("--origins", type=int, default=6)
    parser.add_argument("--horizon", type=int, default=12)
    parser.add_argument("--sf-worker", nargs=2, metavar=("IN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sf_worker:
        sf_worker(*args.sf_worker)
        return

    import duckdb

    from ibp_pipeline.step5_impact.forecast_tables import build_forecast_accuracy, build_forecasts, load_series

    src = _find_warehouse(args.warehouse)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "warehouse.duckdb"
        shutil.copy(src, db)
        con = duckdb.connect(str(db))
        t = time.perf_counter()
        ss = load_series(con)
        t_load = time.perf_counter() - t
        ratio = int(ss.keys["is_ratio"].sum())
        n_series, n_fit = len(ss), len(ss) + ratio
        print(f"warehouse {src}: {n_series} series ({ratio} percentages fitted as numerator + denominator, "
              f"{n_fit} fitted series); loading {t_load:.1f}s")
        t = time.perf_counter()
        n_rows = build_forecasts(con, reuse=False)
        t_fc = time.perf_counter() - t
        print(f"build_forecasts          {n_rows:>9,} rows {t_fc:7.1f}s  {1000 * t_fc / n_series:6.2f} ms/series")
        t = time.perf_counter()
        n_acc = build_forecast_accuracy(con, origins=args.origins, horizon=args.horizon, reuse=False)
        t_acc = time.perf_counter() - t
        print(f"build_forecast_accuracy  {n_acc:>9,} rows {t_acc:7.1f}s  {1000 * t_acc / n_series:6.2f} ms/series "
              f"({args.origins} origins + the production choice)")
        print(f"total {t_fc + t_acc:.1f}s for {n_series} series: "
              f"{1000 * (t_fc + t_acc) / (n_fit * (args.origins + 2)):.2f} ms per fitted series per fit "
              f"(every ETS form tried, AICc choice, intervals)")
        _summary(con)
        compare_engines(con, args.sample, args.sm_sample, args.statsforecast_python, args.origins, args.horizon)
        con.close()


if __name__ == "__main__":
    main()
