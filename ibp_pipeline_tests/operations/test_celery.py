"""The step-5/6 fan-out (forecasts, the Monte Carlo risk model and the scenarios) on Dagster's Celery executor: a
real Redis broker, two real worker processes, and the same tables as the in-process run, row for row. Skips where
redis-server is not installed (.ci/run installs it)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml

from ibp_pipeline.config import get_paths
from ibp_pipeline.operations.celery_fanout import (
    celery_config,
    fanout_job,
    fanout_ops_config,
    run_on_celery,
    workers_by_step,
)
from ibp_pipeline.resources import refresh_lock

REDIS_SERVER = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed (Debian package "
                                "redis-server; .ci/run installs it), so there is no broker for the Celery workers")
# a slice of the real warehouse that forecasts in seconds: counts, percentages, the percentage whose tiny
# denominators take the seeded simulated intervals (dm01_6wk_pct), and every measure a shipped scenario overrides
METRICS = ["ae_4hr_pct", "ae_attendances", "dm01_6wk_pct", "rtt_18wk_pct", "rtt_waiting_list"]
CHUNKS = 6
DRAWS = 500  # the Monte Carlo steps' draws: enough to compare numbers, small enough for a quick test
FANOUTS = {"s5_impact__forecasts": ".forecast_chunk[", "s5_impact__risk": ".simulate_chunk[",
           "s6_scenarios__results": ".simulate_chunk["}
# every table the three fan-outs write (s6_scenarios.runs is left out: it records each run's seconds)
TABLES = {"s5_impact.forecasts": "org_code, metric_id, horizon", "s5_impact.risk": "all",
          "s5_impact.risk_register": "all", **{f"s6_scenarios.{t}": "all" for t in
                                               ("results", "comparison", "drivers", "sensitivity")}}
WORKERS = ("ibp_w1", "ibp_w2")
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process this test started, and its children (its own session), by its id."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[str]:
    """A throwaway redis-server on a free loopback port, without persistence."""
    import redis

    port = _free_port()
    folder = tmp_path / "redis"
    folder.mkdir()
    proc = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(folder)], stdout=(folder / "log").open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        else:
            pytest.fail(f"redis-server did not answer on port {port}: {(folder / 'log').read_text()[-500:]}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(proc)


def _slice(real_warehouse: Path, data_dir: Path) -> Path:
    data_dir.mkdir()
    shutil.copy(real_warehouse, data_dir / "warehouse.duckdb")
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"))
    con.execute("delete from s1_current_state.metric_values where metric_id not in (select unnest(?))", [METRICS])
    # the run's fingerprints would let every unchanged series keep its forecast: this test is about fitting them
    con.execute("drop table if exists meta.series_fingerprints")
    con.close()
    return data_dir


def _tables(data_dir: Path) -> dict[str, pl.DataFrame]:
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        return {t: con.sql(f"select * from {t} order by {order}").pl() for t, order in TABLES.items()}
    finally:
        con.close()


def _wait_for_workers(broker_url: str, procs: list[subprocess.Popen], logs: list[Path]) -> None:
    from celery import Celery

    app = Celery("ibp_test_ping", broker=broker_url, backend=broker_url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for proc, log in zip(procs, logs):
            if proc.poll() is not None:
                pytest.fail(f"Celery worker exited with {proc.returncode}: {log.read_text()[-1500:]}")
        answered = {name.split("@")[0] for reply in app.control.ping(timeout=1.0) for name in reply}
        if answered >= set(WORKERS):
            return
    pytest.fail("Celery workers did not answer within 60 s: " + " | ".join(p.read_text()[-500:] for p in logs))


def test_simulation_fanout_on_two_celery_workers_equals_in_process(real_warehouse: Path, tmp_path: Path,
                                                                 broker: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    local = _slice(real_warehouse, tmp_path / "in_process")
    remote = _slice(real_warehouse, tmp_path / "celery")

    # 1. in-process, as `ibp run` executes the three assets
    monkeypatch.setenv("IBP_DATA_DIR", str(local))
    started = time.monotonic()
    result = fanout_job().execute_in_process(run_config={"ops": fanout_ops_config(chunks=CHUNKS, draws=DRAWS)},
                                             instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    in_process_s = time.monotonic() - started
    assert result.success

    # 2. the same job on the Celery executor: two worker processes sharing one DAGSTER_HOME and data folder
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    config_yaml = tmp_path / "celery.yaml"
    config_yaml.write_text(yaml.safe_dump({"execution": {"config": celery_config(broker)}}))
    # `dagster-celery worker start` runs `celery` from PATH: this venv's, activated or not
    env = {**os.environ, "DAGSTER_HOME": str(home), "IBP_DATA_DIR": str(remote),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    monkeypatch.setenv("IBP_DATA_DIR", str(remote))
    procs, logs = [], []
    # the instance's storage is created here, once: two workers starting at once on an empty DAGSTER_HOME would
    # both create its SQLite tables (alembic then finds two version heads)
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        for name in WORKERS:
            logs.append(tmp_path / f"{name}.log")
            procs.append(subprocess.Popen(
                [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y", str(config_yaml),
                 "-n", name, "--loglevel", "WARNING", "--", "--concurrency", "1", "--without-gossip",
                 "--without-mingle"],
                env=env, cwd=tmp_path, stdout=logs[-1].open("w"), stderr=subprocess.STDOUT, start_new_session=True))
        _wait_for_workers(broker, procs, logs)
        started = time.monotonic()
        run = run_on_celery(instance, broker, chunks=CHUNKS, draws=DRAWS)
        celery_s = time.monotonic() - started
        assert run.success, " | ".join(log.read_text()[-1500:] for log in logs)
        by_step = workers_by_step(instance, run.run_id)
        pids = {e.dagster_event.event_specific_data.metadata["pid"].value
                for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_OUTPUT)
                if "pid" in (e.dagster_event.event_specific_data.metadata or {})}
        scratch = [p for node in FANOUTS for p in (home / "storage" / run.run_id).glob(f"{node}.*")]
        # the launcher (this process) held the run lock for the whole run; each warehouse step went ahead under it
        under_launcher = {r.step_key for r in instance.all_logs(run.run_id)
                          if "held for this run by its launcher" in (r.user_message or "")}
    finally:
        for proc in procs:
            _stop(proc)
        instance.dispose()

    # every step ran in a worker, and the chunks were spread over both workers (separate processes)
    chunk_steps = {k: v for k, v in by_step.items() if any(k.startswith(n) and m in k for n, m in FANOUTS.items())}
    for node, marker in FANOUTS.items():
        mine = [k for k in chunk_steps if k.startswith(node + marker)]
        assert len(mine) == CHUNKS, (node, sorted(by_step))
    assert len(by_step) == len(chunk_steps) + 2 * len(FANOUTS), sorted(by_step)  # + a plan and a write each
    assert {w.split("@")[0] for w in chunk_steps.values()} == set(WORKERS), chunk_steps
    assert len(pids) >= 2 and os.getpid() not in pids, pids
    assert scratch == []  # the chunks' files went once the tables held them
    assert under_launcher == {k for k in by_step if k not in chunk_steps}, under_launcher  # plan and write steps
    with refresh_lock(get_paths(), timeout=0):  # released when the run ended
        pass
    print(f"\nin-process {in_process_s:.1f}s, celery {celery_s:.1f}s; chunks by worker: {sorted(chunk_steps.items())}")

    # the same tables, row for row
    a, b = _tables(local), _tables(remote)
    forecasts = a["s5_impact.forecasts"]
    assert forecasts.height > 0 and set(forecasts["metric_id"].unique()) == set(METRICS)
    assert "ratio_simulated" in set(forecasts["interval_method"].unique())
    assert a["s5_impact.risk"].height > 1000 and set(a["s5_impact.risk"]["draws"].unique()) == {DRAWS}
    assert a["s6_scenarios.results"].height > 1000 and a["s6_scenarios.sensitivity"].height > 0
    for table in TABLES:
        assert a[table].equals(b[table]), table
