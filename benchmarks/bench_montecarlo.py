"""Benchmark: the step-5 Monte Carlo for every NHS trust x standard x 24 months x 10,000 draws, vectorised (the
product's engine) and as a plain per-draw Python loop, plus the whole risk build and one scenario run.

Runs on a copy of the bundled warehouse (default the project's
data/warehouse.duckdb). When s5_impact.forecasts is absent it builds a stand-in (each series' last 12 months' mean
as a flat forecast, their sd as the forecast sd) and says so; when s2_triple_aim.targets is absent it builds them
with step 2's code. The per-draw loop is the same model written with Python floats and random.gauss, one draw at a
time; it is timed on a subset of draws and extrapolated (said in the output). Its transform is checked against the
vectorised engine's on the same noise.

    .venv/bin/python benchmarks/bench_montecarlo.py [--draws 10000] [--loop-draws 20] [--warehouse PATH]
                                                    [--no-risk] [--scenarios none|one|all]
"""
from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import duckdb
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ibp_pipeline.lib.duckdb_tables import table_columns  # noqa: E402
from ibp_pipeline.simulation import engine as mc  # noqa: E402
from ibp_pipeline.simulation.forecasts import stand_in_forecasts  # noqa: E402
from ibp_pipeline.simulation.inputs import prepare, target_arrays  # noqa: E402
from ibp_pipeline.simulation.scenarios import SCENARIO_DIR, load_baseline  # noqa: E402
from ibp_pipeline.simulation.settings import setting_for  # noqa: E402
from ibp_pipeline.step5_impact.risk import build_risk, write_table  # noqa: E402


def subset_inputs(inputs: mc.SeriesInputs, idx: np.ndarray) -> mc.SeriesInputs:
    return replace(inputs, keys=[inputs.keys[i] for i in idx], cal=inputs.cal[idx], median=inputs.median[idx],
                   scale_lo=inputs.scale_lo[idx], scale_hi=inputs.scale_hi[idx], lower=inputs.lower[idx],
                   upper=inputs.upper[idx], kind=inputs.kind[idx], response_row=inputs.response_row[idx],
                   link_base=inputs.link_base[idx])


# ---- the same model as a plain per-draw loop ----------------------------------------------------------------------
def loop_one_draw(inputs: mc.SeriesInputs, setting: mc.Setting, gauss, out: list[list[float]],
                  hits: list[list[int]], z_of=None) -> None:
    """One Monte Carlo draw for every cell, in Python floats: drivers, then each series' AR(1) noise month by
    month, the split normal, the driver multiplier, the occupancy link, bounds; counts target hits."""
    D, C = len(mc.DRIVERS), inputs.n_calendar
    u = [gauss() for _ in range(D)]
    beta = setting.beta_mean + setting.beta_sd * gauss()
    logs = []
    for d in range(D):
        row = []
        for c in range(C):
            lo, hi = setting.driver_low[d, c], setting.driver_high[d, c]
            x = max((lo + hi) / 2 + u[d] * (hi - lo) / (2 * mc.Z80), -95.0)
            row.append(math.log1p(x / 100.0))
        logs.append(row)
    E = inputs.elasticities
    mult = [[math.exp(sum(E[r, d] * logs[d][c] for d in range(D) if E[r, d] != 0)) for c in range(C)]
            for r in range(E.shape[0])]
    phi = mc.NOISE_AUTOCORRELATION
    k = math.sqrt(1 - phi * phi)
    S, H = inputs.shape
    cell = 0
    for s in range(S):
        r = int(inputs.response_row[s])
        lower, upper = float(inputs.lower[s]), float(inputs.upper[s])
        pivot = upper if inputs.kind[s] == mc.SHORTFALL else 0.0
        z = 0.0
        for h in range(H):
            z = gauss() if h == 0 else phi * z + k * gauss()
            if z_of is not None:
                z = z_of(s, h)
            c = int(inputs.cal[s, h])
            median = inputs.median[s, h]
            if c < 0 or median != median:
                continue
            x = median + z * (inputs.scale_lo[s, h] if z < 0 else inputs.scale_hi[s, h])
            x = min(max(x, lower), upper)
            x = pivot + (x - pivot) * mult[r][c]
            occ = inputs.link_base[s, h]
            if occ == occ:
                x += beta * (min(occ * mult[inputs.occupancy_row][c], 100.0) - occ)
            x = min(max(x, lower), upper)
            out[cell].append(x)
            if setting.targets is not None:
                for j in range(setting.targets.shape[2]):
                    t = setting.targets[s, h, j]
                    if t == t and (x >= t if setting.at_least[s, h, j] else x <= t):
                        hits[cell][j] += 1
            cell += 1


def check_loop_matches(inputs: mc.SeriesInputs, setting: mc.Setting, draws: int = 8) -> float:
    """Max |loop - vectorised| over a few series and draws fed the same noise (drivers at fixed values)."""
    idx = np.arange(min(6, inputs.shape[0]))
    sub = subset_inputs(inputs, idx)
    fixed = replace(setting, driver_low=setting.driver_high.copy(), driver_fixed=np.ones(len(mc.DRIVERS), bool),
                    beta_sd=0.0, targets=None, at_least=None)
    S, H = sub.shape
    z = mc.series_noise(sub.keys, H, draws, seed=1)
    prep = mc._prepare(sub, fixed, np.zeros((len(mc.DRIVERS), draws)), np.zeros(draws), 1, draws, True)
    worst = 0.0
    for s in range(S):
        rows = [h for h in range(H) if sub.cal[s, h] >= 0 and np.isfinite(sub.median[s, h])]
        if not rows:
            continue
        cal = sub.cal[s, rows]
        v = mc.simulate_block(z[s, rows], sub.median[s, rows], sub.scale_lo[s, rows], sub.scale_hi[s, rows],
                              np.full(len(rows), sub.lower[s]), np.full(len(rows), sub.upper[s]),
                              np.full(len(rows), sub.upper[s] if sub.kind[s] == mc.SHORTFALL else 0.0),
                              prep.mult[sub.response_row[s] * sub.n_calendar + cal],
                              np.flatnonzero(np.isfinite(sub.link_base[s, rows])),
                              sub.link_base[s, rows][np.isfinite(sub.link_base[s, rows])],
                              prep.mult[sub.occupancy_row * sub.n_calendar + cal][
                                  np.isfinite(sub.link_base[s, rows])], prep.beta)
        for d in range(draws):
            one = subset_inputs(sub, np.array([s]))
            out = [[] for _ in range(len(rows))]
            loop_one_draw(one, fixed, lambda: 0.0, out, [[0]] * len(rows), z_of=lambda _s, h: float(z[s, h, d]))
            got = np.array([o[0] for o in out])
            worst = max(worst, float(np.max(np.abs(got - v[:, d]) / np.maximum(1.0, np.abs(v[:, d])))))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=10_000)
    ap.add_argument("--loop-draws", type=int, default=20, help="draws to time the per-draw loop on")
    ap.add_argument("--warehouse", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=mc.DEFAULT_SEED)
    ap.add_argument("--no-risk", action="store_true", help="skip timing build_risk on every organisation")
    ap.add_argument("--scenarios", choices=("none", "one", "all"), default="all",
                    help="time one scenario run (demand_surge) or all shipped scenarios in one pass")
    args = ap.parse_args()
    source = args.warehouse or next((p for p in (ROOT / "data" / "warehouse.duckdb",) if p.exists()), None)
    if source is None:
        sys.exit("no warehouse found: pass --warehouse PATH")
    tmp = Path(tempfile.mkdtemp(prefix="bench_mc_"))
    db = tmp / "warehouse.duckdb"
    shutil.copy(source, db)
    con = duckdb.connect(str(db))
    print(f"warehouse: copy of {source}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} "
          f"(other processes share the machine: timings are wall-clock)")
    if not table_columns(con, "s5_impact", "forecasts"):
        t = time.perf_counter()
        n = write_table(con, "s5_impact", "forecasts", stand_in_forecasts(con, horizon=24))
        print(f"s5_impact.forecasts absent: built a STAND-IN from each series' last 12 months' mean and sd "
              f"({n:,} rows, {time.perf_counter() - t:.1f} s); figures use it, not the step-5 forecasts")
    else:
        print("s5_impact.forecasts present: using the step-5 forecasts")
    if not table_columns(con, "s2_triple_aim", "targets"):
        from ibp_pipeline.step2_triple_aim.standards import build_standards, build_targets, load_registry
        t = time.perf_counter()
        registry = load_registry()
        build_standards(con, registry)
        n = build_targets(con, registry)
        print(f"s2_triple_aim.targets absent: built with step 2's code ({n:,} rows, {time.perf_counter() - t:.1f} s)")

    # ---- every trust x standard x 24 months ----------------------------------------------------------------------
    t = time.perf_counter()
    prep = prepare(con)
    trusts = {r[0] for r in con.sql("select org_code from s1_current_state.organisations "
                                    "where org_type = 'nhs_trust'").fetchall()}
    idx = np.flatnonzero(np.isin(prep.series["org_code"].to_numpy(), list(trusts)))
    inputs = subset_inputs(prep.inputs, idx)
    tv, al, slots = target_arrays(prep)
    setting = setting_for(con, prep, load_baseline(), None, "baseline")
    setting.targets, setting.at_least = tv[idx], al[idx]
    valid = inputs.valid
    n_std = int(np.isfinite(setting.targets).any(axis=1).sum())
    print(f"inputs prepared in {time.perf_counter() - t:.1f} s: {len(idx):,} trust series "
          f"({prep.series[idx]['org_code'].n_unique()} trusts x {prep.series[idx]['metric_id'].n_unique()} measures), "
          f"{n_std:,} trust x standard pairs, horizon {inputs.shape[1]} months, {int(valid.sum()):,} cells")

    draws = args.draws
    t = time.perf_counter()
    [summary] = mc.run_settings(inputs, [setting], draws=draws, seed=args.seed)
    vec = time.perf_counter() - t
    samples = int(valid.sum()) * draws
    print(f"vectorised: {draws:,} draws x {int(valid.sum()):,} cells = {samples / 1e6:,.0f} M samples in "
          f"{vec:.2f} s ({vec / samples * 1e9:.1f} ns a sample, p10/p50/p90 and P(meet) for every standard)")

    err = check_loop_matches(inputs, setting)
    print(f"loop vs vectorised on the same noise: max relative difference {err:.1e} (float32 engine)")

    n_loop = max(1, args.loop_draws)
    out: list[list[float]] = [[] for _ in range(int(valid.sum()))]
    hits = [[0] * setting.targets.shape[2] for _ in range(len(out))]
    rng = random.Random(args.seed)
    t = time.perf_counter()
    for _ in range(n_loop):
        loop_one_draw(inputs, setting, lambda: rng.gauss(0.0, 1.0), out, hits)
    loop_sample = time.perf_counter() - t
    loop_total = loop_sample * draws / n_loop
    print(f"per-draw Python loop: {n_loop} draws in {loop_sample:.2f} s ({loop_sample / n_loop * 1e3:.0f} ms a draw); "
          f"EXTRAPOLATED to {draws:,} draws: {loop_total:,.0f} s ({loop_total / 60:.1f} min), sampling and hit "
          f"counts only (its quantiles would add more; the vectorised time includes them)")
    print(f"vectorised ratio: {loop_total / vec:,.0f}x faster")
    print(f"sanity: median P(meet) across trust x standard x month {np.nanmedian(summary.prob):.3f}; "
          f"share of cells with p10 <= p50 <= p90: "
          f"{np.mean((summary.p10 <= summary.p50) & (summary.p50 <= summary.p90) | ~valid):.3f}")

    if not args.no_risk:
        t = time.perf_counter()
        n = build_risk(con, draws=draws, seed=args.seed)
        reg = con.sql("select count(*) from s5_impact.risk_register").fetchone()[0]
        print(f"build_risk (every organisation level, {draws:,} draws): {n:,} risk rows, {reg:,} register rows in "
              f"{time.perf_counter() - t:.1f} s")
    if args.scenarios != "none":
        from ibp_pipeline.simulation.scenarios import shipped_scenarios
        from ibp_pipeline.step6_scenarios.tables import run_scenario, run_scenarios
        if args.scenarios == "one":
            t = time.perf_counter()
            r = run_scenario(con, SCENARIO_DIR / "demand_surge.yaml", "bench", draws=draws, seed=args.seed)
            print(f"run_scenario demand_surge ({draws:,} draws, with comparison, drivers and sensitivity): "
                  f"{r.line()}; wall {time.perf_counter() - t:.1f} s")
        else:
            files = shipped_scenarios()
            if not table_columns(con, "s5_impact", "initiatives"):
                files = [f for f in files if f.stem != "technology_shift"]
                print("s5_impact.initiatives absent: technology_shift (which switches an initiative on) left out")
            t = time.perf_counter()
            out = run_scenarios(con, files, "bench", draws=draws, seed=args.seed)
            total = time.perf_counter() - t
            rows = sum(sum(r.rows.values()) for r in out)
            print(f"run_scenarios, {len(out)} shipped scenarios in one pass ({draws:,} draws, results + comparison "
                  f"+ drivers + sensitivity): {rows:,} rows in {total:.1f} s ({total / len(out):.1f} s a scenario)")
    con.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
