"""Operations: the nightly schedule, the landing sensor, the CLI, publishing and blocking checks, for real."""
from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb

from ibp_pipeline.config import PROJECT_ROOT
from ibp_pipeline.definitions import build_defs, defs
from ibp_pipeline.operations import up_to_date
from ibp_pipeline.operations.schedules import (FINGERPRINTS_TAG, fingerprints_after_success, landing_sensor,
                                               nightly_refresh)
from ibp_pipeline.resources import Warehouse

from ..conftest import run_refresh

IBP = [sys.executable, "-m", "ibp_pipeline.cli"]
DECEMBER = PROJECT_ROOT / "data/sources/ae_monthly_provider_official/Monthly-AE-December-2024.csv"


def test_definitions_load_and_the_graph_is_whole():
    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"raw/ae_monthly_official", "s1_current_state/metric_values", "serving/published", "dq/data_docs"} <= keys
    job = defs.resolve_job_def("refresh")
    assert job.executor_def.name == "in_process"


def _tick(schedule_or_sensor, warehouse: Warehouse, cursor: str | None = None):
    """One evaluation as the daemon makes it: the repository's definitions and the warehouse resource."""
    repo = build_defs(warehouse).get_repository_def()
    if schedule_or_sensor is nightly_refresh:
        tick = datetime(2026, 6, 15, 2, 0, tzinfo=ZoneInfo("Europe/London"))  # BST: 01:00 UTC
        ctx = dg.build_schedule_context(scheduled_execution_time=tick, repository_def=repo,
                                        resources={"warehouse": warehouse})
    else:
        ctx = dg.build_sensor_context(cursor=cursor, repository_def=repo, resources={"warehouse": warehouse})
    return schedule_or_sensor.evaluate_tick(ctx)


def test_nightly_schedule_rebuilds_only_what_changed_and_skips_a_night_with_nothing_new(tmp_path):
    """02:00 London time. A new warehouse: every step. Once a run's fingerprints are recorded (as the success sensor
    does): the night is skipped, saying why. A file in landing: only what it touches, publishing included."""
    assert nightly_refresh.cron_schedule == "0 2 * * *"
    assert nightly_refresh.execution_timezone == "Europe/London" and nightly_refresh.job_name == "refresh"
    warehouse = Warehouse(data_dir=str(tmp_path))
    paths = warehouse.paths()
    first = _tick(nightly_refresh, warehouse)
    [request] = first.run_requests
    everything = up_to_date.fingerprints(defs, paths)
    assert list(request.asset_selection) == everything.order and len(everything.order) > 60
    assert request.tags[FINGERPRINTS_TAG] == everything.digest() and request.tags["ibp/trigger"] == "nightly"

    up_to_date.record(paths.warehouse, everything, everything.order, "test")
    paths.serving.write_bytes(b"")  # the published copy exists
    quiet = _tick(nightly_refresh, warehouse)
    assert not quiet.run_requests and quiet.skip_message.startswith("nothing new: all")

    (paths.landing / "Monthly-AE-January-2026.csv").write_bytes(
        DECEMBER.read_bytes().replace(b"MSitAE-DECEMBER-2024", b"MSitAE-JANUARY-2026"))
    [month] = _tick(nightly_refresh, warehouse).run_requests
    keys = {k.to_user_string() for k in month.asset_selection}
    assert {"raw/ae_monthly_official", "s1_current_state/metric_values", "serving/published"} <= keys
    assert "raw/ods_etr" not in keys and "raw/rtt_full_extract" not in keys and len(keys) < len(everything.order)


def test_landing_sensor_requests_a_run_for_each_new_or_changed_file(tmp_path):
    warehouse = Warehouse(data_dir=str(tmp_path))
    landing = warehouse.paths().landing

    empty = _tick(landing_sensor, warehouse)
    assert not empty.run_requests and empty.skip_message
    (landing / ".Monthly-AE-January-2025.csv.part").write_text("half-copied")  # in progress: ignored
    assert not _tick(landing_sensor, warehouse, empty.cursor).run_requests
    (landing / "Monthly-AE-January-2025.csv").write_bytes(DECEMBER.read_bytes())
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('holding', flush=True); time.sleep(60)", str(warehouse.paths().warehouse)],
                              stdout=subprocess.PIPE, text=True)
    try:  # another process (a run) holds the warehouse: the sensor waits, and the file stays new
        assert holder.stdout.readline().strip() == "holding"
        busy = _tick(landing_sensor, warehouse, empty.cursor)
        assert not busy.run_requests and "a refresh is running" in busy.skip_message
        assert busy.cursor == empty.cursor
    finally:
        holder.kill()
        holder.wait()
    first = _tick(landing_sensor, warehouse, empty.cursor)
    assert len(first.run_requests) == 1
    assert "Monthly-AE-January-2025.csv" in first.run_requests[0].tags["ibp/files"]
    assert FINGERPRINTS_TAG in first.run_requests[0].tags
    assert not _tick(landing_sensor, warehouse, first.cursor).run_requests  # nothing new since
    (landing / "Monthly-AE-January-2025.csv").write_bytes(DECEMBER.read_bytes() + b"\n")
    assert len(_tick(landing_sensor, warehouse, first.cursor).run_requests) == 1  # a replaced file counts as new


def test_a_requested_run_that_succeeds_records_its_fingerprints_unless_something_changed(tmp_path):
    """A real run of what a request selected (the ODS trusts file and its check); the success sensor records its
    fingerprints, so it is no longer stale; a run whose files changed meanwhile records nothing."""
    warehouse = Warehouse(data_dir=str(tmp_path))
    paths, repo = warehouse.paths(), build_defs(warehouse).get_repository_def()
    now = up_to_date.fingerprints(defs, paths)
    key = dg.AssetKey(["raw", "ods_etr"])
    instance = dg.DagsterInstance.ephemeral()

    def run_and_sense(tags: dict[str, str]):
        result = build_defs(warehouse).resolve_job_def("refresh").execute_in_process(
            instance=instance, asset_selection=[key], tags=tags, raise_on_error=False)
        assert result.success
        ctx = dg.build_run_status_sensor_context(
            sensor_name="fingerprints_after_success", dagster_instance=instance, dagster_run=result.dagster_run,
            dagster_event=result.get_run_success_event(), repository_def=repo, resources={"warehouse": warehouse})
        return fingerprints_after_success(ctx)

    skipped = run_and_sense({})  # started by hand
    assert "by hand" in skipped.skip_message and up_to_date.recorded(paths.warehouse) == {}
    stale_digest = dataclasses.replace(now, by_key={**now.by_key, key: "older"}).digest()
    changed = run_and_sense({FINGERPRINTS_TAG: stale_digest})
    assert "changed while it ran" in changed.skip_message and up_to_date.recorded(paths.warehouse) == {}
    assert run_and_sense({FINGERPRINTS_TAG: now.digest()}) is None
    assert up_to_date.recorded(paths.warehouse) == {key: now.by_key[key]}  # what it built, nothing else
    assert key not in up_to_date.stale(now, up_to_date.recorded(paths.warehouse))


def _ibp(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    # 2,000 Monte Carlo draws keep these second runs quick; the shared end-to-end run uses the full 10,000.
    env = {**os.environ, "IBP_DATA_DIR": str(data_dir), "IBP_DRAWS": "2000"}
    return subprocess.run([*IBP, *args], capture_output=True, text=True, env=env, timeout=900)


def test_ingest_cli_refuses_missing_and_unrecognised_files_in_one_line(tmp_path):
    odd = tmp_path / "my notes.csv"
    odd.write_text("a,b\n1,2\n")
    out = _ibp(tmp_path / "data", "ingest", str(tmp_path / "nope.csv"), str(odd))
    assert out.returncode == 1
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("refused") and "no such file" in lines[0]
    assert lines[1].startswith("refused") and "no known publication" in lines[1]
    assert "Traceback" not in out.stdout + out.stderr
    assert list((tmp_path / "data" / "archive" / "unrecognised").iterdir())  # kept, not lost


def test_ingest_a_new_month_and_a_bad_file_with_no_code_change(copied_run, tmp_path):
    """The January 2026 file here is December 2024's real rows relabelled as January 2026 (a month the bundle does
    not hold): a layout test only."""
    january = tmp_path / "Monthly-AE-January-2026.csv"
    january.write_text(DECEMBER.read_text().replace("MSitAE-DECEMBER-2024", "MSitAE-JANUARY-2026"))
    bad = tmp_path / "Monthly-AE-February-2026.csv"
    lines = DECEMBER.read_text().replace("MSitAE-DECEMBER-2024", "MSitAE-FEBRUARY-2026").splitlines()
    cells = lines[3].split(",")
    cells[4] = "twelve"
    lines[3] = ",".join(cells)
    bad.write_text("\n".join(lines) + "\n")
    before = duckdb.connect(str(copied_run / "warehouse.duckdb"), read_only=True)
    loads_before = before.execute("select count(*) from meta.file_loads").fetchone()[0]
    before.close()

    out = _ibp(copied_run, "ingest", str(january), str(bad))
    assert out.returncode == 1, out.stdout + out.stderr  # something was quarantined
    steps = {line.split("▸ ")[1].split(".")[0] for line in out.stdout.splitlines() if "▸ " in line}
    assert {"raw/ae_monthly_official", "s1_current_state/metric_values", "serving/published"} <= steps
    assert "raw/ods_etr" not in steps and "raw/rtt_full_extract" not in steps  # untouched by A&E: skipped
    report = {line.split()[1].rstrip(":"): line for line in out.stdout.splitlines()
              if line.split() and line.split()[0] in ("loaded", "partial", "refused", "unchanged")}
    assert report["Monthly-AE-January-2026.csv"].startswith("loaded")
    assert report["Monthly-AE-February-2026.csv"].startswith("partial")
    assert "row 4, column 'A&E attendances Type 1': 'twelve' is not a number" in report["Monthly-AE-February-2026.csv"]

    con = duckdb.connect(str(copied_run / "serving.duckdb"), read_only=True)
    jan, dec = (con.execute("select sum(value) from s1_current_state.metric_values where org_level = 'provider' "
                            "and source = 'ae_monthly_official' and metric_id = 'ae_attendances' "
                            "and period_start = ?", [d]).fetchone()[0] for d in ("2026-01-01", "2024-12-01"))
    assert jan == dec  # every provider row of the new month was loaded and served
    loads_after = con.execute("select count(*) from meta.file_loads").fetchone()[0]
    assert loads_after == loads_before + 2  # every bundled file was unchanged: idempotent re-ingest
    q = con.execute("select row_number, column_name, value, rule from dq.quarantine "
                    "where file_name = 'Monthly-AE-February-2026.csv' order by rule").fetchall()
    assert (4, "A&E attendances Type 1", "twelve", "not_a_number") in q
    assert any(r[3] == "total_not_verifiable" for r in q)
    con.close()
    _rebuild_both_runs_from_the_archive(copied_run, tmp_path, loads_before)
    out = _ibp(copied_run, "run")  # the ingest recorded what it built: nothing is new now
    assert out.returncode == 0 and "steps: 0 rebuilt" in out.stdout, out.stdout + out.stderr


def test_nothing_new_rebuilds_nothing_and_a_new_scenario_only_what_reads_scenarios(copied_run):
    """On a copy of a run (its fingerprints recorded, as `ibp run` leaves them): `ibp run` with nothing new
    rebuilds nothing and leaves the served file as it was; an analyst's new scenario document rebuilds the
    scenarios and publishing only (operations/up_to_date.py)."""
    data = copied_run
    serving = data / "serving.duckdb"
    digest = hashlib.sha256(serving.read_bytes()).hexdigest()
    out = _ibp(data, "run")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "nothing new: all" in out.stdout and "steps: 0 rebuilt" in out.stdout
    assert hashlib.sha256(serving.read_bytes()).hexdigest() == digest

    (data / "config" / "scenarios").mkdir(parents=True, exist_ok=True)
    text = (PROJECT_ROOT / "ibp_pipeline/documents/scenarios/demand_surge.yaml").read_text()
    (data / "config" / "scenarios" / "harsh_winter.yaml").write_text(
        text.replace("name: demand_surge", "name: harsh_winter"))
    out = _ibp(data, "run")
    assert out.returncode == 0, out.stdout + out.stderr
    rebuilding = next(line for line in out.stdout.splitlines() if "up to date and skipped; rebuilding" in line)
    assert rebuilding.endswith("rebuilding 3: s6_scenarios/results, plan/budget, serving/published"), rebuilding
    steps = [line.split("▸ ")[1] for line in out.stdout.splitlines() if "▸ " in line]
    assert {s.split(".")[0].split("[")[0] for s in steps} == {"s6_scenarios/results", "plan/budget",
                                                                 "serving/published"}, steps
    con = duckdb.connect(str(serving), read_only=True)
    scenarios = {r[0] for r in con.execute("select distinct scenario from s6_scenarios.results").fetchall()}
    con.close()
    assert {"harsh_winter", "demand_surge", "baseline"} <= scenarios


def _latest_tables(warehouse: Path) -> dict[str, list[tuple]]:
    """Every current source table and the quarantine, without load ids (which a rebuild numbers afresh)."""
    from ibp_pipeline.step1_current_state.sources import SOURCES

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = {s.name: con.execute(f"select * exclude (_load_id) from latest.{s.name} order by all").fetchall()
                  for s in SOURCES}
        tables["quarantine"] = con.execute("select source, file_name, row_number, column_name, value, rule "
                                           "from dq.quarantine order by all").fetchall()
        return tables
    finally:
        con.close()


def _rebuild_both_runs_from_the_archive(data: Path, tmp_path: Path, loads_first_run: int) -> None:
    """`ibp rebuild`: each run's inputs are staged from the archive exactly (count, bytes, order), and step 1
    reloaded from the staged files of the newer run gives the tables that run left behind."""
    from ibp_pipeline.config import get_paths
    from ibp_pipeline.operations.rebuild import RebuildError, prepare_rebuild, rebuild_environment
    from ibp_pipeline.step1_current_state.ingest import load_all_sources, sha256_of

    warehouse = data / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse), read_only=True)
    first, second = (con.execute(f"select run_id from meta.file_loads order by load_id {o} limit 1").fetchone()[0]
                     for o in ("asc", "desc"))
    loads = con.execute("select run_id, sha256 from meta.file_loads order by load_id").fetchall()
    con.close()
    assert first != second
    for run, n_loads in ((first, loads_first_run), (second, loads_first_run + 2)):
        out = tmp_path / f"rebuild_{run[:8]}"
        run_id, _, staged = prepare_rebuild(warehouse, run[:8], out)
        # the same bytes, in the order they were first loaded, once each (one workbook feeds two sources)
        expected = list(dict.fromkeys(sha for _, sha in loads[:n_loads]))
        assert run_id == run and len(staged) == len(expected) < n_loads
        assert [sha256_of(p) for p in sorted(staged, key=lambda p: p.stat().st_mtime_ns)] == expected
    try:
        prepare_rebuild(warehouse, first[:8], out)
        raise AssertionError("a rebuild into a folder that is not empty was allowed")
    except RebuildError as exc:
        assert "not empty" in str(exc)

    env = rebuild_environment(out)
    paths = dataclasses.replace(get_paths(out), sources=Path(env["IBP_SOURCES_DIR"]),
                                reference=Path(env["IBP_REFERENCE_DIR"])).ensure()
    con = duckdb.connect(str(paths.warehouse))
    load_all_sources(con, paths, run_id="rebuild", log=lambda _m: None)
    con.close()
    original, rebuilt = _latest_tables(warehouse), _latest_tables(paths.warehouse)
    assert [t for t in original if original[t] != rebuilt[t]] == []
    assert len(rebuilt["ae_monthly_official"]) > 0 and rebuilt["quarantine"]


def test_a_blocking_check_failure_stops_publication(copied_run):
    """Corrupt the working database behind the loader's back: the GX suite must block, and the served copy stay."""
    serving = copied_run / "serving.duckdb"
    digest = hashlib.sha256(serving.read_bytes()).hexdigest()
    con = duckdb.connect(str(copied_run / "warehouse.duckdb"))
    con.execute("insert into raw.ae_monthly_official by name select * replace (-500.0 as ae_attendances_type_1, "
                "9999 as _load_id) from raw.ae_monthly_official where org_code = 'R0A' and period_start = '2024-04-01'")
    con.close()
    run = run_refresh(copied_run)
    assert not run.result.success
    failed = [e for e in run.result.get_asset_check_evaluations() if not e.passed and e.check_name != "freshness"]
    assert [e.asset_key.to_user_string() for e in failed] == ["raw/ae_monthly_official"]
    assert "non_negative" in failed[0].description
    materialised = {e.asset_key.to_user_string() for e in run.result.get_asset_materialization_events()}
    assert "serving/published" not in materialised and "s1_current_state/metric_values" not in materialised
    assert hashlib.sha256(serving.read_bytes()).hexdigest() == digest


def _graphql(port: int, query: str) -> dict:
    import json
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["data"]


def test_ui_serves_dagster_with_the_daemon_running_schedule_and_sensor(tmp_path):
    """`ibp ui` is the web UI plus the daemon: the nightly schedule and the landing sensor are live in it."""
    import signal
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "IBP_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen([*IBP, "ui", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline, state, daemons = time.time() + 180, None, {}
        while time.time() < deadline:
            time.sleep(2)
            try:
                repos = _graphql(port, "{ repositoriesOrError { ... on RepositoryConnection { nodes { "
                                       "schedules { name scheduleState { status } } "
                                       "sensors { name sensorState { status } } } } } }")
                health = _graphql(port, "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }")
            except OSError:
                continue
            node = repos["repositoriesOrError"]["nodes"][0]
            state = ({s["name"]: s["scheduleState"]["status"] for s in node["schedules"]},
                     {s["name"]: s["sensorState"]["status"] for s in node["sensors"]})
            daemons = {d["daemonType"]: d["healthy"] for d in health["instance"]["daemonHealth"]["allDaemonStatuses"]}
            if daemons.get("SCHEDULER") and daemons.get("SENSOR"):
                break
        assert state == ({"nightly_refresh": "RUNNING"},
                         {"landing_sensor": "RUNNING", "data_docs_after_failure": "RUNNING",
                          "fingerprints_after_success": "RUNNING"}), state
        assert daemons.get("SCHEDULER") and daemons.get("SENSOR"), daemons
        assert (tmp_path / "data" / "dagster_home" / "dagster.yaml").exists()  # persistent DAGSTER_HOME
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_scenario_run_cli_adds_a_scenario_beside_the_others(copied_run, tmp_path):
    """An analyst's own scenario document runs alone, lands beside the shipped ones, and is republished."""
    from ibp_pipeline.simulation.scenarios import SCENARIO_DIR

    doc = (SCENARIO_DIR / "demand_surge.yaml").read_text()
    mine = tmp_path / "winter_pressure.yaml"
    mine.write_text(doc.replace("name: demand_surge", "name: winter_pressure", 1))
    before = duckdb.connect(str(copied_run / "serving.duckdb"), read_only=True)
    shipped = before.execute("select scenario, count(*), round(sum(p50), 1) from s6_scenarios.results group by 1 "
                             "order by 1").fetchall()
    before.close()

    bad = tmp_path / "broken.yaml"
    bad.write_text(doc.replace("name: demand_surge", "name: broken", 1) + "\nunexpected_field: 1\n")
    out = _ibp(copied_run, "scenario", "run", str(bad))
    assert out.returncode == 1 and "broken.yaml" in out.stderr and "unexpected_field" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr

    out = _ibp(copied_run, "scenario", "run", str(mine))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    con = duckdb.connect(str(copied_run / "serving.duckdb"), read_only=True)
    after = con.execute("select scenario, count(*), round(sum(p50), 1) from s6_scenarios.results group by 1 order by 1").fetchall()
    assert ("winter_pressure" in {r[0] for r in after}) and [r for r in after if r[0] != "winter_pressure"] == shipped
    assert con.execute("select count(*) from s6_scenarios.comparison where scenario = 'winter_pressure'").fetchone()[0]
