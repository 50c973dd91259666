"""Publish the served database: a complete copy of the tables dashboards read, swapped in atomically.

Why a copy: DuckDB lets one process write a file and excludes readers meanwhile (../shared/STACK.md trap 5).
The pipeline owns data/warehouse.duckdb; dashboards open only data/serving.duckdb read-only. A new serving file
is written beside the old one and renamed over it (os.replace is atomic on POSIX), so a reader sees either
the old complete copy or the new complete copy, never a half-written one.
"""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import duckdb

SERVED_SCHEMAS = ("s1_current_state", "s2_triple_aim", "s3_resources", "s4_gaps", "s5_impact", "s6_scenarios")
SERVED_TABLES = {"dq": ("check_results", "quarantine"), "meta": ("file_loads",)}


class PublishRefused(Exception):
    """The build is not fit to serve; the served copy is left as it was."""


def tables_to_serve(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    rows = con.execute(
        "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE' "
        "and table_catalog = current_database() order by 1, 2").fetchall()
    return [(s, t) for s, t in rows if s in SERVED_SCHEMAS or t in SERVED_TABLES.get(s, ())]


def blocking_failures(con: duckdb.DuckDBPyConnection, run_id: str) -> list[str]:
    """Blocking checks of this run that failed: any one of them means wrong numbers."""
    exists = con.execute("select count(*) from information_schema.tables where table_schema='dq' "
                         "and table_name='check_results'").fetchone()[0]
    if not exists:
        return []
    return [f"{s}: {c}: {d}" for s, c, d in con.execute(
        "select source, check_name, details from dq.check_results where run_id = ? and blocking and not passed",
        [run_id]).fetchall()]


def publish(con: duckdb.DuckDBPyConnection, serving: Path, run_id: str) -> dict[str, int]:
    """Copy every served table into a fresh file and rename it over the served one; returns row counts."""
    failures = blocking_failures(con, run_id)
    if failures:
        raise PublishRefused(f"{len(failures)} blocking data-quality checks failed (first: {failures[0]})")
    serving.parent.mkdir(parents=True, exist_ok=True)
    tmp = serving.with_name(f".{serving.name}.{os.getpid()}.building")
    tmp.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    con.execute("attach '{}' as srv".format(str(tmp).replace("'", "''")))  # ATTACH takes no bound parameters
    try:
        for schema, table in tables_to_serve(con):
            con.execute(f"create schema if not exists srv.{schema}")
            con.execute(f"create table srv.{schema}.{table} as select * from {schema}.{table}")
            counts[f"{schema}.{table}"] = con.execute(f"select count(*) from srv.{schema}.{table}").fetchone()[0]
        con.execute("create schema if not exists srv.meta")
        con.execute("create table srv.meta.publication as select ? as run_id, ?::timestamp as published_at",
                    [run_id, datetime.now()])
    finally:
        con.execute("detach srv")
    os.replace(tmp, serving)
    return counts
