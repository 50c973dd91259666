"""Publish the served database: a complete copy of the tables dashboards read, swapped in atomically.

Why a copy: DuckDB lets one process write a file and excludes readers meanwhile (../shared/STACK.md trap 5).
The pipeline owns data/warehouse.duckdb; dashboards open only data/serving.duckdb read-only. A new serving file
is written beside the old one and renamed over it (os.replace is atomic on POSIX), so a reader sees either
the old complete copy or the new complete copy, never a half-written one.

Killed at any point (kill -9 included), a publish leaves the served file as it was: the new copy is written to
a hidden `.serving.duckdb.<pid>.building` file, checkpointed, closed, reopened to check it, synced to disk and
only then renamed; the next publish deletes the leftovers of a process that died. A run that rewrote warehouse
tables and did not finish leaves the warehouse partly rebuilt, and nothing but a run that finishes the rebuild
publishes from it (see Warehouse._mark_rebuilding).
"""
from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

import duckdb

from ibp_pipeline.lib.duckdb_tables import table_exists
from ibp_pipeline.warehouse_tables import served


class PublishRefused(Exception):
    """The build is not fit to serve; the served copy is left as it was."""


def tables_to_serve(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """The served tables of the catalogue (warehouse_tables.py) that the warehouse holds, by schema and name."""
    wanted = {(t.schema, t.name) for t in served()}
    rows = con.execute(
        "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE' "
        "and table_catalog = current_database() order by 1, 2").fetchall()
    return [(s, t) for s, t in rows if (s, t) in wanted]


def blocking_failures(con: duckdb.DuckDBPyConnection, run_id: str) -> list[str]:
    """Blocking checks of this run that failed: any one of them means wrong numbers."""
    if not table_exists(con, "dq", "check_results"):
        return []
    return [f"{s}: {c}: {d}" for s, c, d in con.execute(
        "select source, check_name, details from dq.check_results where run_id = ? and blocking and not passed",
        [run_id]).fetchall()]


def unfinished_refresh(con: duckdb.DuckDBPyConnection, run_id: str) -> str | None:
    """The id of another run that began rewriting the warehouse and never published, if any."""
    if not table_exists(con, "meta", "refresh_in_progress"):
        return None
    row = con.execute("select run_id from meta.refresh_in_progress where run_id <> ?", [run_id]).fetchone()
    return row[0] if row else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(serving: Path) -> list[Path]:
    """Delete half-built copies (and their WAL files) left by publishing processes that died; returns them."""
    pattern = re.compile(rf"^\.{re.escape(serving.name)}\.(\d+)\.building(\.wal)?$")
    removed = []
    for path in serving.parent.glob(f".{serving.name}.*.building*"):
        found = pattern.match(path.name)
        if found and int(found.group(1)) != os.getpid() and not _pid_alive(int(found.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(con: duckdb.DuckDBPyConnection, serving: Path, run_id: str) -> dict[str, int]:
    """Copy every served table into a fresh file and rename it over the served one; returns row counts."""
    failures = blocking_failures(con, run_id)
    if failures:
        raise PublishRefused(f"{len(failures)} blocking data-quality checks failed (first: {failures[0]})")
    other = unfinished_refresh(con, run_id)
    if other:
        raise PublishRefused(f"the working database is partly rebuilt: run {other[:8]} began a refresh and did not "
                             "finish it; run `ibp run` to complete it (the served copy is unchanged)")
    serving.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(serving)
    tmp = serving.with_name(f".{serving.name}.{os.getpid()}.building")
    tmp_wal = tmp.with_name(tmp.name + ".wal")
    tmp.unlink(missing_ok=True)
    tmp_wal.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    try:
        con.execute("attach '{}' as srv".format(str(tmp).replace("'", "''")))  # ATTACH takes no bound parameters
        try:
            for schema, table in tables_to_serve(con):
                con.execute(f"create schema if not exists srv.{schema}")
                con.execute(f"create table srv.{schema}.{table} as select * from {schema}.{table}")
                counts[f"{schema}.{table}"] = con.execute(f"select count(*) from srv.{schema}.{table}").fetchone()[0]
            con.execute("create schema if not exists srv.meta")
            con.execute("create table srv.meta.publication as select ? as run_id, ?::timestamp as published_at",
                        [run_id, datetime.now()])
            con.execute("checkpoint srv")  # everything in the file itself: a WAL would not follow the rename
        finally:
            con.execute("detach srv")
        if tmp_wal.exists():
            raise PublishRefused(f"the new served copy {tmp} was left with a write-ahead log; not published")
        check = duckdb.connect(str(tmp), read_only=True)  # what a reader will open: complete and readable
        try:
            got = check.execute("select run_id from meta.publication").fetchall()
            n = len(tables_to_serve(check))
        finally:
            check.close()
        if got != [(run_id,)] or n != len(counts):
            raise PublishRefused(f"the new served copy {tmp} did not read back whole ({n} of {len(counts)} tables)")
        _fsync(tmp)
        serving.with_name(serving.name + ".wal").unlink(missing_ok=True)  # a stray log must not replay on the new file
        os.replace(tmp, serving)
    except BaseException:
        tmp.unlink(missing_ok=True)
        tmp_wal.unlink(missing_ok=True)
        raise
    _fsync(serving.parent)  # the rename itself survives a power cut
    if table_exists(con, "meta", "refresh_in_progress"):  # this run's rebuild is served: the warehouse is whole
        con.execute("delete from meta.refresh_in_progress where run_id = ?", [run_id])
    return counts
