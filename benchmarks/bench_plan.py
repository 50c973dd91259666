"""The plan's timings on a built warehouse: drafting one trust, drafting every NHS trust of an ICB, and each
refresh step of the `plan` group (plan against actual with its Monte Carlo chance and SPC, triangulation, the Six
Steps, the budget).

    .venv/bin/python benchmarks/bench_plan.py [--warehouse data/warehouse.duckdb] [--org RXL] [--icb QE1]

Works on a copy of the warehouse (the plan tables are rebuilt in it), so a running dashboard is never disturbed.
Each figure is the median of --repeat runs. Machines here are noisy: compare ratios within one run.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import duckdb


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    from ibp_pipeline.config import get_paths
    from ibp_pipeline.plan.actuals import build_plan_vs_actual
    from ibp_pipeline.plan.budget import build_budget
    from ibp_pipeline.plan.period import Period
    from ibp_pipeline.plan.prefill import draft
    from ibp_pipeline.plan.tables import build_triangulation, trusts_of
    from ibp_pipeline.plan.workforce import build_workforce_six_steps

    parser = argparse.ArgumentParser()
    parser.add_argument("--warehouse", default=str(get_paths().warehouse))
    parser.add_argument("--org", default="RXL")
    parser.add_argument("--icb", default="QE1")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    period = Period.parse("2026/27-2028/29")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "warehouse.duckdb"
        shutil.copy(args.warehouse, copy)
        con = duckdb.connect(str(copy))
        trusts = trusts_of(con, args.icb)
        rows = [
            (f"draft {args.org}", *timed(lambda: draft(con, args.org, period), args.repeat)),
            (f"draft {len(trusts)} trusts of {args.icb}",
             *timed(lambda: [draft(con, t, period) for t in trusts], args.repeat)),
            (f"draft ICB {args.icb}", *timed(lambda: draft(con, args.icb, period), args.repeat)),
            ("plan_vs_actual", *timed(lambda: build_plan_vs_actual(con), args.repeat)),
            ("triangulation", *timed(lambda: build_triangulation(con), args.repeat)),
            ("workforce_six_steps", *timed(lambda: build_workforce_six_steps(con), args.repeat)),
            ("budget", *timed(lambda: build_budget(con), args.repeat)),
        ]
        plans = con.execute("select count(distinct plan_id) from plan.versions").fetchone()[0]
        con.close()
    print(f"{'step':<28}{'median s':>10}")
    for name, seconds, _ in rows:
        print(f"{name:<28}{seconds:>10.2f}")
    print(f"({plans} plan(s) in the store; {args.repeat} runs each)")


if __name__ == "__main__":
    main()
