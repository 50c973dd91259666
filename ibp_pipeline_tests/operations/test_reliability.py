"""Reliability of the nightly refresh, for real: one run at a time (the run lock), kill -9 safety, dashboards that
keep answering while a run publishes, and idempotent served tables.

The quick tests use a throw-away folder. The long one works on a copy of the suite's end-to-end run and costs one
full extra run (plus a killed partial one and two small scenario runs): it kills a scenario run mid-publish and a
refresh mid-asset, then runs the refresh again (all of it: the killed one left the warehouse part-rebuilt) while a
reader loops over the served database and a second writer queues.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ibp_pipeline.config import PROJECT_ROOT, get_paths
from ibp_pipeline.operations.publish import PublishRefused, publish
from ibp_pipeline.operations.schedules import landing_sensor
from ibp_pipeline.resources import RefreshLockTimeout, Warehouse, lock_file, refresh_lock
from ibp_pipeline.simulation.scenarios import SCENARIO_DIR

IBP = [sys.executable, "-m", "ibp_pipeline.cli"]


def _env(data_dir: Path) -> dict[str, str]:
    # the shared run's 2,000 draws, so its recorded fingerprints hold and a run rebuilds only what changed; scenario
    # runs here ask for 500
    return {**os.environ, "IBP_DATA_DIR": str(data_dir), "IBP_DRAWS": "2000", "PYTHONUNBUFFERED": "1"}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Proc:
    """A CLI subprocess in its own process group, its output collected line by line with arrival times."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait_for(self, pattern: str, timeout: float, after: str | None = None) -> float:
        """Seconds since start when a line matching pattern arrived (after a line matching `after`, if given);
        fails if the process ends or time runs out first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            armed = after is None
            for at, line in list(self.lines):
                if armed and re.search(pattern, line):
                    return at - self.started
                armed = armed or bool(re.search(after, line))
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} within {timeout:.0f}s:\n{self.output()[-3000:]}")

    def kill_group(self) -> float:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)
        return time.monotonic() - self.started

    def finish(self, timeout: float) -> int:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            raise
        self._reader.join(timeout=30)
        return rc

    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)


# ---------------------------------------------------------------------------------------------------------------
# The run lock


def _hold_lock_in_subprocess(data_dir: Path) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import time
        from ibp_pipeline.config import get_paths
        from ibp_pipeline.resources import refresh_lock
        with refresh_lock(get_paths({str(data_dir)!r}).ensure(), what="test holder"):
            print("held", flush=True)
            time.sleep(120)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_writer_waits_says_so_and_a_killed_holder_leaves_no_stale_lock(tmp_path):
    paths = get_paths(tmp_path / "data").ensure()
    holder = _hold_lock_in_subprocess(paths.data)
    try:
        assert lock_file(paths) == paths.data / ".warehouse.lock"
        assert f"pid {holder.pid} started " in lock_file(paths).read_text()  # information for the waiting run
        said: list[str] = []
        started = time.monotonic()
        with pytest.raises(RefreshLockTimeout, match="gave up without touching the warehouse"):
            with refresh_lock(paths, log=said.append, timeout=1.5):
                pass
        assert time.monotonic() - started >= 1.5
        assert len(said) == 1 and said[0].startswith(f"another refresh is running (pid {holder.pid}, started ")
        assert "this run waits for it" in said[0]
    finally:
        holder.kill()  # SIGKILL: the operating system drops the flock with the process
        holder.wait()
    said.clear()
    with refresh_lock(paths, log=said.append, timeout=0):  # at once: no stale lock after kill -9
        with refresh_lock(paths, log=said.append, timeout=0):  # the same thread may take it again (CLI, then run)
            assert f"pid {os.getpid()} " in lock_file(paths).read_text()
    assert said == [] and lock_file(paths).read_text() == ""


def test_a_queued_writer_starts_as_soon_as_the_holder_ends(tmp_path):
    paths = get_paths(tmp_path / "data").ensure()
    holder = _hold_lock_in_subprocess(paths.data)
    said: list[str] = []
    killer = threading.Timer(2.0, holder.kill)
    killer.start()
    started = time.monotonic()
    with refresh_lock(paths, log=said.append, timeout=60):
        waited = time.monotonic() - started
    holder.wait()
    assert 1.5 <= waited < 10, waited
    assert said[0].startswith("another refresh is running") and "this run starts" in said[1]


def _lock_is_free(data_dir: Path) -> bool:
    fd = os.open(lock_file(get_paths(data_dir)), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_the_warehouse_resource_holds_the_lock_for_a_whole_run_and_only_in_a_run(tmp_path):
    """Every Dagster run (CLI, schedule, sensor or UI) takes the lock once, in the resource; sensors do not."""
    data = tmp_path / "data"
    seen: list[tuple[str, bool]] = []

    @dg.asset(key=["s2_triple_aim", "benchmarks"])
    def rebuild(warehouse: Warehouse) -> None:
        seen.append(("rebuild", _lock_is_free(data)))

    @dg.asset(key=["s6_scenarios", "results"], deps=[rebuild])
    def results(warehouse: Warehouse) -> None:
        seen.append(("results", _lock_is_free(data)))

    warehouse = Warehouse(data_dir=str(data))
    defs = dg.Definitions(assets=[rebuild, results], resources={"warehouse": warehouse})
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(instance=dg.DagsterInstance.ephemeral()).success
    assert seen == [("rebuild", False), ("results", False)] and _lock_is_free(data)
    con = duckdb.connect(str(warehouse.paths().warehouse), read_only=True)
    marked = con.execute("select run_id from meta.refresh_in_progress").fetchall()  # a rebuild that never published
    con.close()
    assert len(marked) == 1

    seen.clear()  # a scenario-only run adds results: the warehouse is no more rebuilt than it was
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(),
                                    asset_selection=[dg.AssetKey(["s6_scenarios", "results"])])
    assert result.success and seen == [("results", False)]
    con = duckdb.connect(str(warehouse.paths().warehouse), read_only=True)
    assert con.execute("select run_id from meta.refresh_in_progress").fetchall() == marked
    con.close()

    impatient = Warehouse(data_dir=str(data), lock_timeout_seconds=1)
    holder = _hold_lock_in_subprocess(data)  # another refresh is running
    seen.clear()
    try:
        # a run waits for it, saying so in the run's log (here only a second, then it fails without running)
        instance = dg.DagsterInstance.ephemeral()
        result = job.execute_in_process(instance=instance, raise_on_error=False, resources={"warehouse": impatient})
        assert not result.success and not seen
        logs = instance.all_logs(result.run_id)
        assert any(e.user_message.startswith(f"another refresh is running (pid {holder.pid}, started ")
                   for e in logs)
        errors = [getattr(e.dagster_event.event_specific_data, "error", None) for e in logs if e.dagster_event]
        assert any(err and "RefreshLockTimeout" in err.message and "gave up" in err.message for err in errors)
        # sensors and resources built outside a run never take the lock, and need no context manager
        assert landing_sensor.evaluate_tick(dg.build_sensor_context(resources={"warehouse": impatient})).skip_message
        with dg.build_resources({"warehouse": impatient}) as built:
            assert built.warehouse.paths().data == data
    finally:
        holder.kill()
        holder.wait()


def test_publish_replaces_whole_cleans_what_a_killed_publish_left_and_refuses_a_partial_rebuild(tmp_path):
    serving = tmp_path / "serving.duckdb"
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema s1_current_state; create table s1_current_state.organisations as select range as x "
                "from range(5)")
    # a table the catalogue does not list (warehouse_tables.py) is never served, whatever its schema
    con.execute("create table s1_current_state.t as select 1 as x")
    con.execute("create schema meta; create table meta.file_loads (load_id int)")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs: a publishing process killed mid-copy
    leftovers = [tmp_path / f".serving.duckdb.{dead.pid}.building{ext}" for ext in ("", ".wal")]
    for path in leftovers:
        path.write_bytes(b"half a database")
    assert publish(con, serving, "run-1") == {"s1_current_state.organisations": 5, "meta.file_loads": 0}
    assert not any(p.exists() for p in leftovers)
    assert [p.name for p in tmp_path.iterdir() if "serving" in p.name] == ["serving.duckdb"]
    served = duckdb.connect(str(serving), read_only=True)
    assert served.execute("select run_id from meta.publication").fetchall() == [("run-1",)]
    served.close()

    digest = _sha256(serving)
    con.execute("create table meta.refresh_in_progress as select 'killed-run' as run_id, now() as started_at")
    with pytest.raises(PublishRefused, match="partly rebuilt: run killed-r"):
        publish(con, serving, "scenario-run")
    assert _sha256(serving) == digest
    assert publish(con, serving, "killed-run")  # the run that began the rebuild finishes and publishes it
    assert con.execute("select count(*) from meta.refresh_in_progress").fetchone()[0] == 0
    con.close()


# ---------------------------------------------------------------------------------------------------------------
# Kill -9, dashboards reading through a refresh, a queued second writer, idempotent served tables

READER = textwrap.dedent("""
    import json, sys, time, collections
    from pathlib import Path
    from ibp_pipeline.dashboards.serving import Serving

    serving, stop, out, sql = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    db = Serving(serving)  # as the dashboards read: one short-lived read-only connection per query
    ok, failures, pairs, started = 0, [], collections.Counter(), time.monotonic()
    while not stop.exists():
        try:
            row = db.query(sql).rows()[0]
            pairs[json.dumps(row, default=str)] += 1
            ok += 1
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}"[:300])
        time.sleep(0.02)
    out.write_text(json.dumps({"ok": ok, "failures": failures, "pairs": pairs, "seconds": time.monotonic() - started}))
""")

# the publication's run id and figures from three tables of the same file: a query that read two copies at once
# would pair one publication's id with another one's figures. Sums in exact decimals: a sum of doubles over
# parallel threads differs in its last digits from query to query, which is not a mixed state.
READER_SQL = ("select p.run_id, "
              "(select count(*) from dq.check_results c where c.run_id = p.run_id) as checks_of_this_run, "
              "(select count(*) from s6_scenarios.results) as scenario_rows, "
              "(select sum(p50::decimal(38, 6))::varchar from s6_scenarios.results) as scenario_p50, "
              "(select sum(p50::decimal(38, 6))::varchar from s5_impact.risk) as risk_p50 "
              "from meta.publication p")

# Idempotency: what may legitimately differ between two runs on the same inputs.
# Columns that say when, by which run or how fast a row was written (not what it says): run_id (dq.check_results,
# dq.quarantine, meta.file_loads, s6_scenarios.*), *_at (checked_at, quarantined_at, loaded_at, run_at,
# published_at) and s6_scenarios.runs.seconds. load_id stays in: nothing new was loaded, so it must not change.
WHEN_WHICH_RUN = re.compile(r"^(run_id|.*_at|seconds)$")
# Tables a scenario run adds to (500 draws here), and those whose figures depend on the number of draws:
DRAW_DEPENDENT = ("s5_impact.risk", "s5_impact.risk_register", "s6_scenarios.")


def _served_tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    rows = con.execute("select table_schema || '.' || table_name, column_name from information_schema.columns "
                       "where table_schema not in ('information_schema', 'pg_catalog') "
                       "order by table_schema, table_name, ordinal_position").fetchall()
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        tables.setdefault(table, []).append(column)
    return tables


def _table_hashes(path: Path, work: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """sha256 of each served table exported as CSV ordered by all its columns, when/which-run columns left out.

    dq.check_results keeps every run's checks: its rows of the publishing run are compared."""
    con = duckdb.connect(str(path), read_only=True)
    hashes, excluded = {}, {}
    try:
        run_id = con.execute("select run_id from meta.publication").fetchone()[0]
        latest = con.execute("select run_id from dq.check_results order by checked_at desc limit 1").fetchone()[0]
        for table, columns in _served_tables(con).items():
            if table == "meta.publication" or table.startswith(DRAW_DEPENDENT):
                continue
            keep = [c for c in columns if not WHEN_WHICH_RUN.match(c)]
            excluded[table] = [c for c in columns if WHEN_WHICH_RUN.match(c)]
            where = f" where run_id = '{latest}'" if table == "dq.check_results" else ""
            out = work / f"{table}.csv"
            cols = ", ".join(f'"{c}"' for c in keep)
            con.execute(f"copy (select {cols} from {table}{where} order by all) to '{out}' (header)")
            hashes[table] = _sha256(out)
            out.unlink()
    finally:
        con.close()
    assert run_id
    return hashes, excluded


def _scenario(tmp_path: Path, name: str) -> Path:
    doc = (SCENARIO_DIR / "demand_surge.yaml").read_text()
    path = tmp_path / f"{name}.yaml"
    path.write_text(doc.replace("name: demand_surge", f"name: {name}", 1))
    return path


def _building(data: Path) -> list[Path]:
    return sorted(data.glob(".serving.duckdb.*.building*"))


def test_killed_runs_concurrent_readers_a_queued_writer_and_idempotent_tables(copied_run, tmp_path):
    data = copied_run
    serving = data / "serving.duckdb"
    original = tmp_path / "original_serving.duckdb"
    shutil.copyfile(serving, original)
    figures: dict[str, object] = {}

    def note(key: str, value: object) -> None:  # the measured figures, shown with -s as they come
        figures[key] = value
        print(f"{key}: {value}", flush=True)

    def served_pair() -> tuple:
        con = duckdb.connect(str(serving), read_only=True)
        try:
            return con.execute(READER_SQL).fetchone()
        finally:
            con.close()

    old_pair = served_pair()
    digest = _sha256(serving)

    # 1. kill -9 a scenario run in the middle of publishing: a half-written copy exists, the served file is intact
    scn = _Proc([*IBP, "scenario", "run", str(_scenario(tmp_path, "killed_mid_publish")), "--draws", "500"],
                _env(data))
    scn.wait_for(r"▸ serving/published", timeout=300)
    deadline = time.monotonic() + 60
    while not _building(data) and time.monotonic() < deadline and scn.proc.poll() is None:
        time.sleep(0.005)
    half_written = _building(data)
    note("scenario run killed mid-publish after s", round(scn.kill_group(), 1))
    assert half_written, "the publish finished before it could be killed:\n" + scn.output()[-2000:]
    assert _sha256(serving) == digest and served_pair() == old_pair

    # 2. kill -9 a refresh mid-asset (step 2 or later). A second copy of the virtual wards file in landing (the
    # same bytes: nothing new to load) makes that publication and everything below it stale, as a new file would,
    # so the run rebuilds steps 1 to 6 without reloading every publication first.
    extra = data / "landing" / "virtual_wards_icb_monthly-copy.csv.gz"
    extra.parent.mkdir(exist_ok=True)
    extra.write_bytes((PROJECT_ROOT / "data/sources/virtual_wards_icb_monthly/virtual_wards_icb_monthly.csv.gz")
                      .read_bytes())
    first = _Proc([*IBP, "run"], _env(data))
    first.wait_for(r"▸ s[2-6]_\w+/", timeout=600, after=r"▸ s1_current_state/metric_values")
    time.sleep(1)  # step 1 is rebuilt, a step-2+ asset is running
    note("refresh killed mid-asset after s", round(first.kill_group(), 1))
    assert "rebuilding" in first.output() and "▸ raw/ae_monthly_official" not in first.output()
    extra.unlink()  # the inputs are the shared run's again; only the killed run's marker makes the next run rebuild
    assert _sha256(serving) == digest and served_pair() == old_pair  # untouched and readable
    warehouse = duckdb.connect(str(data / "warehouse.duckdb"))  # the working database opens (its log replays)
    marked = warehouse.execute("select run_id from meta.refresh_in_progress").fetchall()
    warehouse.close()
    assert len(marked) == 1  # and knows it is partly rebuilt: nothing else may publish it until a run completes
    assert _lock_is_free(data)  # no stale lock
    assert _building(data)  # still there: the next publish clears them

    # 3. a reader loops over the served database while the next run (everything: a refresh stopped part-way)
    # publishes
    stop, report = tmp_path / "stop", tmp_path / "reader.json"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(serving), str(stop), str(report), READER_SQL],
                              env=_env(data))
    second = _Proc([*IBP, "run"], _env(data))
    second.wait_for(r"▸ raw/", timeout=300)  # it holds the lock and is loading
    queued = _Proc([*IBP, "scenario", "run", str(_scenario(tmp_path, "queued_behind_refresh")), "--draws", "500"],
                   _env(data))
    queued.wait_for(r"another refresh is running \(pid \d+, started \d\d:\d\d\); this run waits for it", timeout=120)
    assert second.finish(timeout=1200) == 0, second.output()[-3000:]
    second_done = second.lines[-1][0]  # its summary, read under the lock, is its last line
    assert queued.finish(timeout=600) == 0, queued.output()[-3000:]  # it waited, then succeeded
    resumed = queued.wait_for(r"the other refresh finished after \d+s of waiting; this run starts", 1)
    assert queued.started + resumed >= second_done  # it began only when the first had finished, summary included
    note("second full run s", round(second_done - second.started, 1))
    note("queued scenario run waited s", int(re.search(r"finished after (\d+)s", queued.output()).group(1)))
    note("queued scenario run total s", round(queued.lines[-1][0] - queued.started, 1))
    stop.touch()
    reader.wait(timeout=120)
    seen = json.loads(report.read_text())

    # 4. the reader: no failed read, and only whole publications
    assert seen["failures"] == [], seen["failures"][:5]
    final_pair = served_pair()
    second_run = re.search(r"run ([0-9a-f]{8}) succeeded", second.output()).group(1)
    pairs = [tuple(json.loads(p)) for p in seen["pairs"]]
    by_run: dict[str, set] = {}
    for pair in pairs:
        by_run.setdefault(pair[0], set()).add(pair[1:])
    note("publications read", {r[:8]: sorted(v) for r, v in by_run.items()})
    assert all(len(v) == 1 for v in by_run.values()), by_run  # one publication, one set of figures
    assert set(by_run) <= {old_pair[0], final_pair[0]} | {r for r in by_run if r.startswith(second_run)}, by_run
    assert by_run.get(old_pair[0], {old_pair[1:]}) == {old_pair[1:]}
    assert by_run.get(final_pair[0], {final_pair[1:]}) == {final_pair[1:]}
    assert old_pair[0] in by_run and len(by_run) >= 2, by_run  # it read through at least one publish
    note("reader", {"reads": seen["ok"], "failed": len(seen["failures"]), "seconds": round(seen["seconds"]),
                    "reads per publication": {json.loads(p)[0][:8]: n for p, n in seen["pairs"].items()}})
    assert not _building(data)  # the killed publishes' half-files are gone
    con = duckdb.connect(str(serving), read_only=True)
    scenarios = {r[0] for r in con.execute("select distinct scenario from s6_scenarios.results").fetchall()}
    con.close()
    assert "queued_behind_refresh" in scenarios  # the queued writer's own results, published after the refresh

    # 5. idempotent: the same inputs give the same served tables (when/which-run columns and draw-dependent
    # tables aside, see WHEN_WHICH_RUN and DRAW_DEPENDENT)
    before, excluded = _table_hashes(original, tmp_path)
    after, _ = _table_hashes(serving, tmp_path)
    assert set(before) == set(after)
    differ = sorted(t for t in before if before[t] != after[t])
    note("tables compared", sorted(before))
    note("columns left out", {t: c for t, c in excluded.items() if c})
    assert differ == [], differ  # byte-identical exports
