"""Scale benchmark on synthetic data: full refresh, one new month landing, the serving publish and the dashboard's
heaviest query, at one ICB, one region and England; wall time and peak memory (RSS) of each.

    .venv/bin/python benchmarks/bench_scale.py [--scales icb region england] [--years 10] [--draws 10000]
                                               [--republished] [--keep] [--tmp /tmp]
    .venv/bin/python benchmarks/bench_scale.py --table benchmarks/results/scale_*.json   (print saved figures)

For each scale it writes a synthetic set (`ibp synth`, same seed) ending one month early, runs the full refresh
(`ibp run`) on it, generates the same set ending one month later and lands only the new month's monthly files
with `ibp ingest` (the product's path for "a new month lands"). With --republished it then also copies in the
compiled series files the generator re-publishes with the extra month (cancer, workforce, beds...) and runs
`ibp run` again. Then it times `publish()` alone on the built warehouse (into a separate file) and the queries
behind the Benchmarking page for England (the slowest first view in bench_dashboard.py) and for one trust, each
first (cold process) and repeated.

Every stage is its own process under /usr/bin/time, so each peak RSS is that stage's own. Figures go to
benchmarks/results/scale_<scales>_y<years>.json and a table is printed. Data is written under --tmp, never into
the project's data/. Machines here are noisy and shared: compare ratios within one run.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = ROOT / "benchmarks" / "results"
SEED = 20250331
END = "2025-03"  # the month that "lands"; the full refresh runs on data up to the month before
STAGES = ("synth", "full_refresh", "new_month_ingest", "republished_run", "publish", "query_first",
          "query_repeat")


# ---- helpers run in their own process (so their peak RSS is theirs alone) -----------------------------------
def stage_publish(run_dir: Path) -> dict:
    """publish() alone on the built warehouse, into a separate file (the served copy is left alone)."""
    import duckdb

    from ibp_pipeline.operations.publish import publish

    con = duckdb.connect(str(run_dir / "warehouse.duckdb"), config={"threads": 1})  # as the Warehouse resource
    run_id = con.execute("select run_id from dq.check_results group by run_id order by max(checked_at) desc "
                         "limit 1").fetchone()[0] if _has_checked_at(con) else _last_run_id(con)
    target = run_dir / "bench_serving.duckdb"
    t = time.perf_counter()
    counts = publish(con, target, run_id)
    seconds = time.perf_counter() - t
    con.close()
    size = target.stat().st_size
    target.unlink()
    return {"seconds_in_process": round(seconds, 2), "tables": len(counts), "rows": sum(counts.values()),
            "bytes": size}


def _has_checked_at(con) -> bool:
    return bool(con.execute("select count(*) from information_schema.columns where table_schema='dq' and "
                            "table_name='check_results' and column_name='checked_at'").fetchone()[0])


def _last_run_id(con) -> str:
    return con.execute("select run_id from meta.file_loads order by load_id desc limit 1").fetchone()[0]


def stage_query(serving: Path, repeat: int) -> dict:
    """The Benchmarking page's queries (ibp_pipeline.dashboards.benchmarking) for England and for one trust: first call
    in a fresh process, then `repeat` more (median). Returns seconds per function."""
    import statistics

    from ibp_pipeline.dashboards import benchmarking as bm
    from ibp_pipeline.dashboards.serving import Serving

    db = Serving(serving)
    period_to: date = db.query("select max(period_start) as m from s2_triple_aim.benchmarks")["m"][0]
    trust = db.query("select org_code from s2_triple_aim.peer_groups where assignment = 'clustered' "
                     "order by org_code limit 1")["org_code"][0]
    out: dict = {"period_to": str(period_to), "trust": trust, "first": {}, "repeat": {}}
    for org, org_level in (("ENGLAND", "england"), (trust, "provider")):
        level = bm.comparison_level(org_level)
        calls = []
        choices = _timed(calls, "metric_choices", bm.metric_choices, db, level, org, period_to)
        metric = bm.default_metric(choices["metric_id"].to_list())
        month = _timed(calls, "benchmark_month", bm.benchmark_month, db, metric, level, period_to)
        values = _timed(calls, "values_at", bm.values_at, db, metric, level, month)
        _timed(calls, "benchmarks_at", bm.benchmarks_at, db, metric, month)
        _timed(calls, "own_value", bm.own_value, db, org, metric, month)
        if level == "provider":
            _timed(calls, "peer_group", bm.peer_group, db, org)
        out["first"][org] = dict(calls) | {"total": round(sum(s for _, s in calls), 3), "orgs": values.height}
        reps: dict[str, list[float]] = {}
        for _ in range(repeat):
            again = []
            _timed(again, "metric_choices", bm.metric_choices, db, level, org, period_to)
            _timed(again, "benchmark_month", bm.benchmark_month, db, metric, level, period_to)
            _timed(again, "values_at", bm.values_at, db, metric, level, month)
            _timed(again, "benchmarks_at", bm.benchmarks_at, db, metric, month)
            _timed(again, "own_value", bm.own_value, db, org, metric, month)
            if level == "provider":
                _timed(again, "peer_group", bm.peer_group, db, org)
            for name, s in again:
                reps.setdefault(name, []).append(s)
            reps.setdefault("total", []).append(sum(s for _, s in again))
        out["repeat"][org] = {k: round(statistics.median(v), 3) for k, v in reps.items()}
    return out


def _timed(calls: list, name: str, fn, *args):
    t = time.perf_counter()
    result = fn(*args)
    calls.append((name, round(time.perf_counter() - t, 3)))
    return result


def stage_steps(dagster_home: Path, n_runs: int) -> list[dict]:
    """Per-step seconds of the last n runs, newest last, from the Dagster instance the runs recorded into."""
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    import dagster as dg

    instance = dg.DagsterInstance.get()
    runs = list(reversed(instance.get_runs(limit=n_runs)))
    out = []
    for run in runs:
        stats = instance.get_run_step_stats(run.run_id)
        steps = {s.step_key: round((s.end_time or 0) - (s.start_time or 0), 2) for s in stats if s.start_time}
        out.append({"run_id": run.run_id, "status": str(run.status.value), "steps": steps})
    return out


# ---- the driver ----------------------------------------------------------------------------------------------
def timed_process(cmd: list[str], env: dict, log: Path) -> dict:
    """Run one stage as a child under /usr/bin/time: wall seconds, peak RSS (MB), exit status; output to log."""
    tfile = log.with_suffix(".time")
    wrapper = ["/usr/bin/time", "-f", "%e %M %U %S", "-o", str(tfile)] if Path("/usr/bin/time").exists() else []
    t = time.perf_counter()
    with log.open("w") as fh:
        rc = subprocess.run(wrapper + cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=str(ROOT)).returncode
    wall = time.perf_counter() - t
    peak, cpu = None, None
    if wrapper and tfile.exists():
        last = tfile.read_text().strip().splitlines()[-1].split()
        peak = round(int(last[1]) / 1024, 1)
        cpu = round(float(last[2]) + float(last[3]), 1)  # user + system: less sensitive than wall to a busy host
    else:  # no /usr/bin/time: RUSAGE_CHILDREN is a max over every child so far, an upper bound
        import resource

        peak = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    return {"seconds": round(wall, 2), "cpu_seconds": cpu, "peak_mb": peak, "rc": rc, "log": str(log)}


def helper(stage: str, *args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--_stage", stage, *args]


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "SOURCE.txt"}


def manifest_figures(out: Path) -> dict:
    m = json.loads((out / "synthetic_manifest.json").read_text())
    return {"files": len(m["files"]), "rows": sum(f["rows"] for f in m["files"]), "mb": round(m["bytes"] / 1e6, 1),
            "trusts": m["counts"]["trusts_current"], "icbs": m["counts"]["icbs"], "months": m["counts"]["months"]}


def warehouse_figures(run: Path) -> dict:
    import duckdb

    con = duckdb.connect(str(run / "serving.duckdb"), read_only=True)
    try:
        mv = con.execute("select count(*) from s1_current_state.metric_values").fetchone()[0]
        fc = con.execute("select count(*) from s5_impact.forecasts").fetchone()[0]
        tables = con.execute("select count(*) from information_schema.tables").fetchone()[0]
    finally:
        con.close()
    return {"metric_values_rows": mv, "forecast_rows": fc, "served_tables": tables,
            "warehouse_mb": round((run / "warehouse.duckdb").stat().st_size / 1e6, 1),
            "serving_mb": round((run / "serving.duckdb").stat().st_size / 1e6, 1)}


def prev_month(ym: str) -> str:
    y, m = int(ym[:4]), int(ym[5:])
    return f"{y - 1}-12" if m == 1 else f"{y}-{m - 1:02d}"


def bench_scale(scale: str, years: int, draws: int, base: Path, republished: bool, repeat: int) -> dict:
    work = base / scale
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    early, late, logs = work / "early", work / "late", work / "logs"
    logs.mkdir()
    run = early / "run"
    env = dict(os.environ, IBP_DATA_DIR=str(run), IBP_SOURCES_DIR=str(early / "sources"),
               IBP_REFERENCE_DIR=str(early / "reference"), IBP_DRAWS=str(draws), GX_ANALYTICS_ENABLED="false",
               IBP_USERS_FILE="/nonexistent/users.yaml")
    env.pop("IBP_SERVING", None), env.pop("IBP_WAREHOUSE", None), env.pop("DAGSTER_HOME", None)
    res: dict = {"scale": scale, "years": years, "draws": draws, "stages": {}}
    say = lambda m: print(f"[{time.strftime('%H:%M:%S')}] {scale}: {m}", flush=True)  # noqa: E731

    synth = [str(BIN / "ibp"), "synth", "--scale", scale, "--years", str(years), "--seed", str(SEED)]
    res["stages"]["synth"] = timed_process(synth + ["--end", prev_month(END), "--out", str(early)], env,
                                           logs / "synth.log")
    res["data"] = manifest_figures(early)
    say(f"synth {res['stages']['synth']['seconds']} s, {res['data']}")

    res["stages"]["full_refresh"] = timed_process([str(BIN / "ibp"), "run"], env, logs / "full_refresh.log")
    say(f"full refresh {res['stages']['full_refresh']}")
    if res["stages"]["full_refresh"]["rc"] != 0:
        return res
    res["served"] = warehouse_figures(run)

    # the same generator one month later: earlier monthly files are byte-identical, so the new month is the set
    # difference; compiled series files (one file, every month) are re-published with the extra month
    timed_process(synth + ["--end", END, "--out", str(late)], env, logs / "synth_late.log")
    a, b = digests(early / "sources"), digests(late / "sources")
    new = sorted(set(b) - set(a))
    changed = sorted(k for k in set(a) & set(b) if a[k] != b[k])
    res["new_month_files"], res["republished_files"] = new, changed
    say(f"new month: {len(new)} new files {new}; {len(changed)} compiled files re-published")

    res["stages"]["new_month_ingest"] = timed_process(
        [str(BIN / "ibp"), "ingest", *[str(late / "sources" / f) for f in new]], env, logs / "new_month_ingest.log")
    say(f"new month ingest {res['stages']['new_month_ingest']}")
    n_runs = 2
    if republished:
        for f in changed:
            shutil.copyfile(late / "sources" / f, early / "sources" / f)
        res["stages"]["republished_run"] = timed_process([str(BIN / "ibp"), "run"], env, logs / "republished.log")
        say(f"republished series run {res['stages']['republished_run']}")
        n_runs = 3

    steps_json = logs / "steps.json"
    timed_process(helper("steps", str(run / "dagster_home"), str(n_runs), str(steps_json)), env, logs / "steps.log")
    if steps_json.exists():
        res["dagster_steps"] = json.loads(steps_json.read_text())

    out_json = logs / "publish.json"
    res["stages"]["publish"] = timed_process(helper("publish", str(run), str(out_json)), env, logs / "publish.log")
    if out_json.exists():
        res["stages"]["publish"] |= json.loads(out_json.read_text())
    say(f"publish {res['stages']['publish']}")

    q_json = logs / "query.json"
    q = timed_process(helper("query", str(run / "serving.duckdb"), str(repeat), str(q_json)), env,
                      logs / "query.log")
    if q_json.exists():
        detail = json.loads(q_json.read_text())
        res["query"] = detail
        res["stages"]["query_first"] = {"seconds": detail["first"]["ENGLAND"]["total"], "peak_mb": q["peak_mb"],
                                        "rc": q["rc"], "process_seconds": q["seconds"]}
        res["stages"]["query_repeat"] = {"seconds": detail["repeat"]["ENGLAND"]["total"], "peak_mb": q["peak_mb"],
                                         "rc": q["rc"]}
    say(f"query {res.get('query', q)}")
    return res


GROUPS = (("great_expectations_suite", "GX suites (step 1 checks)"), ("raw__", "step 1 loading files"),
          ("s1_current_state__", "step 1 tables"), ("source_freshness", "freshness checks"),
          ("s2_triple_aim__", "step 2 Triple Aim"), ("s3_resources__", "step 3 resources"),
          ("s4_gaps__", "step 4 gaps"), ("s5_impact__forecast", "step 5 forecasts"),
          ("s5_impact__", "step 5 other (effects, risk)"), ("s6_scenarios__", "step 6 scenarios"),
          ("dq__data_docs", "GX data docs report"), ("serving__", "publish"))


def step_groups(steps: dict[str, float]) -> dict[str, float]:
    """Dagster step seconds summed into the pipeline's parts (first matching pattern wins)."""
    out: dict[str, float] = {}
    for key, seconds in steps.items():
        name = next((label for pattern, label in GROUPS if pattern in key), "other")
        out[name] = round(out.get(name, 0.0) + seconds, 1)
    return out


def print_table(results: list[dict]) -> None:
    scales = [r["scale"] for r in results]
    print("\n" + f"{'stage':<20}" + "".join(f"{s + ' s':>12}{'cpu s':>8}{'MB':>7}" for s in scales))
    for stage in STAGES:
        row = [r["stages"].get(stage) for r in results]
        if not any(row):
            continue
        cells = "".join(f"{c['seconds']:>12.1f}{(c.get('cpu_seconds') or 0):>8.0f}{(c.get('peak_mb') or 0):>7.0f}"
                        if c else f"{'-':>12}{'-':>8}{'-':>7}" for c in row)
        print(f"{stage:<20}{cells}")
    for label, part, key in (("input files", "data", "files"), ("input rows", "data", "rows"),
                             ("input MB", "data", "mb"), ("trusts", "data", "trusts"),
                             ("metric_values rows", "served", "metric_values_rows"),
                             ("forecast rows", "served", "forecast_rows"), ("warehouse MB", "served", "warehouse_mb"),
                             ("serving MB", "served", "serving_mb")):
        print(f"{label:<20}" + "".join(f"{r.get(part, {}).get(key, '-'):>27,}" for r in results))
    for r in results:
        runs = r.get("dagster_steps") or []
        if not runs:
            continue
        names = ["full", "new month", "republished"]
        top = sorted(runs[0]["steps"].items(), key=lambda kv: -kv[1])[:12]
        print(f"\n{r['scale']}: slowest steps of the full refresh, and the same steps in the later runs (s)")
        for key, s in top:
            later = "".join(f"{run['steps'].get(key, 0):>10.1f}" for run in runs[1:])
            print(f"  {key:<58}{s:>10.1f}{later}")
        print("  " + " " * 58 + "".join(f"{n:>10}" for n in names[:len(runs)]))
        groups = [step_groups(run["steps"]) for run in runs]
        print(f"{r['scale']}: step seconds by part of the pipeline (sum of Dagster step times)")
        for label in [g for _, g in GROUPS] + ["other"]:
            if any(label in g for g in groups):
                print(f"  {label:<58}" + "".join(f"{g.get(label, 0):>10.1f}" for g in groups))
        print(f"  {'all steps':<58}" + "".join(f"{sum(g.values()):>10.1f}" for g in groups))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--_stage", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--scales", nargs="+", default=["icb", "region", "england"])
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--draws", type=int, default=10_000, help="IBP_DRAWS (the product's default is 10,000)")
    parser.add_argument("--republished", action="store_true",
                        help="also time a run after the compiled series files are re-published with the new month")
    parser.add_argument("--repeat", type=int, default=5, help="repeated query runs (median)")
    parser.add_argument("--tmp", default=tempfile.gettempdir(), help="where the synthetic sets are written")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic sets and warehouses")
    parser.add_argument("--table", nargs="+", help="only print the table of earlier results files (JSON)")
    args = parser.parse_args()
    if args.table:
        print_table([r for f in args.table for r in json.loads(Path(f).read_text())["results"]])
        return
    if args._stage:
        stage, *rest = args._stage
        if stage == "publish":
            result = stage_publish(Path(rest[0]))
        elif stage == "query":
            result = stage_query(Path(rest[0]), int(rest[1]))
        else:
            result = stage_steps(Path(rest[0]), int(rest[1]))
        Path(rest[-1]).write_text(json.dumps(result, indent=1, default=str))
        return
    base = Path(args.tmp) / "ibp-bench-scale"
    results = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"scale_{'_'.join(args.scales)}_y{args.years}.json"
    meta = {"machine": f"{os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}",
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "seed": SEED, "end": END}
    for scale in args.scales:
        results.append(bench_scale(scale, args.years, args.draws, base, args.republished, args.repeat))
        out.write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=str) + "\n")
        if not args.keep:
            shutil.rmtree(base / scale / "late", ignore_errors=True)
    print_table(results)
    print(f"\nfigures written to {out.relative_to(ROOT)}; logs under {base}")


if __name__ == "__main__":
    main()
