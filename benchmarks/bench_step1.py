"""Step-1 timings on the bundled data: read + validate + load per source, GX suite per source, metric builds.

    .venv/bin/python benchmarks/bench_step1.py [--gx]

Prints one line per source (rows, seconds, rows per second) and the totals. Machines here are noisy: compare
ratios within one run, not absolute seconds across runs.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb

from ibp_pipeline.config import get_paths
from ibp_pipeline.step1_current_state.ingest import known_org_codes, load_source
from ibp_pipeline.step1_current_state.sources import DATA_SOURCES, REFERENCE_SOURCES


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gx", action="store_true", help="also time each Great Expectations suite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = get_paths(Path(tmp)).ensure()
        con = duckdb.connect(str(paths.warehouse))
        quiet = lambda m: None  # noqa: E731
        t0 = time.perf_counter()
        for spec in REFERENCE_SOURCES:
            load_source(con, spec, paths, run_id="bench", log=quiet)
        known = known_org_codes(con)
        print(f"{'reference sources':<28}{'':>10}{time.perf_counter() - t0:8.2f}s")
        rows_total, load_total = 0, 0.0
        for spec in DATA_SOURCES:
            t = time.perf_counter()
            summary = load_source(con, spec, paths, run_id="bench", known_orgs=known, log=quiet)
            dt = time.perf_counter() - t
            rows_total += summary.rows_loaded
            load_total += dt
            print(f"{spec.name:<28}{summary.rows_loaded:>10,}{dt:8.2f}s{summary.rows_loaded / dt:>12,.0f} rows/s")
        print(f"{'all data sources':<28}{rows_total:>10,}{load_total:8.2f}s{rows_total / load_total:>12,.0f} rows/s")

        from ibp_pipeline.step1_current_state.catalogue import build_metric_catalogue
        from ibp_pipeline.step1_current_state.metric_values import build_metric_values, build_source_conflicts
        from ibp_pipeline.step1_current_state.organisations import build_organisations

        for fn in (build_organisations, build_metric_catalogue, build_metric_values, build_source_conflicts):
            t = time.perf_counter()
            n = fn(con)
            print(f"{fn.__name__:<28}{n:>10,}{time.perf_counter() - t:8.2f}s")
        if args.gx:
            from ibp_pipeline.step1_current_state.checks import validate_source
            from ibp_pipeline.step1_current_state.sources import SOURCES

            gx_total = 0.0
            for spec in SOURCES:
                t = time.perf_counter()
                result = validate_source(con, spec, "bench", None)
                dt = time.perf_counter() - t
                gx_total += dt
                print(f"gx {spec.name:<25}{result.rows_validated:>10,}{dt:8.2f}s  checks {len(result.outcomes)}")
            print(f"{'gx all suites':<28}{'':>10}{gx_total:8.2f}s (includes the one-off GX import)")


if __name__ == "__main__":
    main()
