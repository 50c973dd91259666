"""Dashboard page render times on the served database: first view (empty cache) and cached view.

    .venv/bin/python benchmarks/bench_dashboard.py [--serving data/serving.duckdb] [--orgs ENGLAND RXL QE1]

Each page runs in Streamlit's AppTest (the real app script, in-process, no browser): 'first' clears Streamlit's
data cache and times the page's script run; 'cached' times the same page again. Browser paint time is not
included. Machines here are noisy: compare ratios within one run.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

PAGES = ["overview", "performance", "benchmarking", "resources", "gaps", "forecasts", "scenarios", "data_quality"]
APP = Path(__file__).resolve().parents[1] / "dashboards" / "app.py"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serving", default=None, help="served database (default: IBP_SERVING or data/)")
    parser.add_argument("--orgs", nargs="+", default=["ENGLAND", "QE1", "RXL"])
    parser.add_argument("--repeat", type=int, default=3, help="cached runs per page (median printed)")
    args = parser.parse_args()
    if args.serving:
        os.environ["IBP_SERVING"] = str(Path(args.serving).resolve())
    os.environ.setdefault("IBP_USERS_FILE", "/nonexistent/users.yaml")  # local mode
    os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")  # AppTest warns on every run otherwise
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    print(f"{'page':<14}{'org':<9}{'first s':>9}{'cached s':>10}{'ratio':>7}")
    firsts, cacheds = [], []
    for org in args.orgs:
        for name in PAGES:
            st.cache_data.clear()
            at = AppTest.from_file(str(APP), default_timeout=300)
            at.query_params["org"] = org
            at.run()
            st.cache_data.clear()  # the page's own queries start cold; the sidebar's are cold again too
            t = time.perf_counter()
            at.switch_page(f"app_pages/{name}.py").run()
            first = time.perf_counter() - t
            assert not at.exception, (name, org, at.exception)
            runs = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                at.run()
                runs.append(time.perf_counter() - t)
            cached = statistics.median(runs)
            firsts.append(first)
            cacheds.append(cached)
            print(f"{name:<14}{org:<9}{first:9.2f}{cached:10.2f}{first / cached:7.1f}x", flush=True)
    print(f"{'all pages':<23}{statistics.median(firsts):9.2f}{statistics.median(cacheds):10.2f}  (medians); "
          f"slowest first view {max(firsts):.2f} s, slowest cached {max(cacheds):.2f} s")


if __name__ == "__main__":
    main()
