"""The warehouse connection as a Dagster resource. The pipeline is the only writer of its working database;
dashboards read the separately published serving copy (see operations/publish.py).

One refresh at a time: every run that writes the warehouse (`ibp run`, `ibp ingest`, `ibp scenario run`, and the
runs `ibp ui` launches from the schedule, the sensor or the UI) holds an exclusive lock on a file beside the
warehouse (data/.warehouse.lock) for the whole run. A second run waits for the first to finish instead of failing
on DuckDB's single-writer lock or interleaving its writes. The lock is an fcntl.flock, which the operating system
releases when the holding process ends for any reason (kill -9 included), so a crash never leaves a stale lock;
the pid and start time written into the file are information for the waiting run's message, nothing more.
"""
from __future__ import annotations

import fcntl
import os
import re
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

import dagster as dg
import duckdb

from . import settings
from .config import Paths, get_paths

LOCK_TIMEOUT_SECONDS = 6 * 3600.0  # a refresh takes minutes; six hours means something is stuck
LOCK_POLL_SECONDS = 1.0
# Runs that touch only these assets add scenario results or republish; anything else rebuilds warehouse tables.
PUBLISH_ONLY = frozenset({("s6_scenarios", "results"), ("serving", "published"), ("dq", "data_docs")})
REBUILD_TABLE = "meta.refresh_in_progress"
# A run whose launcher holds the run lock for the whole run (a Celery fan-out: its steps run in worker processes)
# carries this tag; its steps then go ahead under the launcher's lock instead of taking it one step at a time.
LOCK_OWNER_TAG = "ibp/run_lock_owner"


class RefreshLockTimeout(Exception):
    """Another refresh held the warehouse longer than this run was willing to wait."""


def lock_file(paths: Paths) -> Path:
    """data/.warehouse.lock beside data/warehouse.duckdb (follows IBP_WAREHOUSE)."""
    return paths.warehouse.with_name(f".{paths.warehouse.stem}.lock")


def lock_timeout(seconds: float | None = None) -> float:
    """The explicit value, else IBP_LOCK_TIMEOUT (seconds), else six hours."""
    if seconds is not None:
        return float(seconds)
    return float(settings.get("IBP_LOCK_TIMEOUT") or LOCK_TIMEOUT_SECONDS)


@dataclass
class _Held:
    fd: int
    thread: int
    depth: int


_held: dict[str, _Held] = {}  # lock files this process holds, for re-entry by the same thread (CLI, then run)
_held_guard = threading.Lock()


def _holder(fd: int) -> tuple[str, str]:
    """(pid, HH:MM) the holder wrote into the lock file, or '?' while it has not written yet."""
    for _ in range(3):
        text = os.pread(fd, 200, 0).decode(errors="replace")
        found = re.match(r"pid (\d+) started \d{4}-\d\d-\d\dT(\d\d:\d\d)", text)
        if found:
            return found.group(1), found.group(2)
        time.sleep(0.2)
    return "?", "?"


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds / 60:g} min" if seconds >= 60 \
        else f"{seconds:g} s"


def _say(message: str) -> None:
    print(message, flush=True)


@contextmanager
def refresh_lock(paths: Paths, log: Callable[[str], None] = _say, timeout: float | None = None,
                 what: str = "") -> Iterator[None]:
    """Hold the warehouse's run lock for the block; wait (saying so once) while another refresh holds it.

    Re-entrant for the thread that holds it, so `ibp run` can hold it across its run and its summary while the
    run's Warehouse resource takes it again. Raises RefreshLockTimeout after `timeout` seconds of waiting."""
    path = lock_file(paths)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    with _held_guard:
        mine = _held.get(key)
        if mine is not None and mine.thread == threading.get_ident():
            mine.depth += 1
        else:
            mine = None
    if mine is not None:
        try:
            yield
        finally:
            with _held_guard:
                mine.depth -= 1
        return

    limit = lock_timeout(timeout)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        waited_since = None
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                now = time.monotonic()
                if waited_since is None:
                    waited_since = now
                    pid, started = _holder(fd)
                    log(f"another refresh is running (pid {pid}, started {started}); this run waits for it "
                        f"(up to {_duration(limit)}; lock {path})")
                elif now - waited_since >= limit:
                    pid, started = _holder(fd)
                    raise RefreshLockTimeout(
                        f"another refresh (pid {pid}, started {started}) still holds {path} after "
                        f"{_duration(limit)} of waiting; this run gave up without touching the warehouse "
                        f"(IBP_LOCK_TIMEOUT sets the wait in seconds)") from None
                time.sleep(LOCK_POLL_SECONDS)
        if waited_since is not None:
            log(f"the other refresh finished after {time.monotonic() - waited_since:.0f}s of waiting; "
                "this run starts")
        os.ftruncate(fd, 0)
        what = what or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200]
        os.pwrite(fd, f"pid {os.getpid()} started {datetime.now().isoformat(timespec='seconds')} {what}\n"
                  .encode(), 0)
        with _held_guard:
            _held[key] = _Held(fd, threading.get_ident(), 1)
        try:
            yield
        finally:
            with _held_guard:
                _held.pop(key, None)
            os.ftruncate(fd, 0)  # information only: nobody holds it now
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def held_by_launcher(paths: Paths, token: str) -> bool:
    """Whether the run lock is held right now, and by the launcher that wrote `launcher <token>` into it."""
    path = lock_file(paths)
    if not token or not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # held: by whom?
            return f"launcher {token}" in os.pread(fd, 400, 0).decode(errors="replace")
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _rebuilds_tables(run: dg.DagsterRun) -> bool:
    """Whether the run may rewrite warehouse tables beyond scenario results (a full or partial refresh)."""
    selection = run.asset_selection
    if not selection:  # None or empty: the job's own selection (the refresh job is every asset)
        return True
    return any(tuple(key.path) not in PUBLISH_ONLY for key in selection)


class Warehouse(dg.ConfigurableResource):
    """Where the data lives. Empty data_dir means the environment's (IBP_DATA_DIR) or the project's data/.

    Within a Dagster run (and only there: sensors and schedules read without it) the resource holds the
    warehouse's run lock from initialisation to teardown, once per run with the in-process executor."""

    data_dir: str = ""
    lock_timeout_seconds: float | None = None  # None: IBP_LOCK_TIMEOUT or six hours
    # DuckDB's parallel aggregates add floating-point numbers in whichever order its threads finish, so sums and
    # everything computed from them differ in the last bits from run to run; one thread gives the same bits from
    # the same inputs (idempotent refreshes). Raise it on a big machine if speed matters more than that.
    threads: int = 1

    def paths(self) -> Paths:
        return get_paths(self.data_dir or None).ensure()

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = duckdb.connect(str(self.paths().warehouse), config={"threads": self.threads})
        try:
            yield con
        finally:
            con.close()

    def create_resource(self, context: dg.InitResourceContext):  # type: ignore[override]
        """In a run: a one-item generator that holds the run lock until Dagster tears the run's resources down
        (once per run with the in-process executor). Outside a run (sensors, schedules, build_resources): the
        resource itself, no lock, so a sensor never waits for a refresh and needs no context manager.

        (Not setup_for_execution/teardown_after_execution: overriding teardown makes every use of the resource a
        context manager, sensors and build_sensor_context included.)"""
        if context.run is None:
            return self
        return self._held_for_run(context)

    def _held_for_run(self, context: dg.InitResourceContext) -> Iterator["Warehouse"]:
        run = context.run
        log = context.log.info if context.log is not None else _say
        token = run.tags.get(LOCK_OWNER_TAG, "")
        if token and held_by_launcher(self.paths(), token):
            log(f"warehouse run lock held for this run by its launcher ({token}); this step goes ahead")
            if _rebuilds_tables(run):
                self._mark_rebuilding(run.run_id)
            yield self
            return
        with refresh_lock(self.paths(), log=log, timeout=self.lock_timeout_seconds,
                          what=f"dagster run {run.run_id} ({run.job_name})"):
            if _rebuilds_tables(run):
                self._mark_rebuilding(run.run_id)
            yield self

    def _mark_rebuilding(self, run_id: str) -> None:
        """Record that this run is rewriting the warehouse; publishing clears it (see publish.unfinished_refresh).

        Until then the warehouse may hold a mix of new and old step tables, which only this run may publish."""
        with self.connect() as con:
            con.execute("create schema if not exists meta")
            con.execute(f"create or replace table {REBUILD_TABLE} as "
                        "select ?::varchar as run_id, ?::timestamp as started_at", [run_id, datetime.now()])
