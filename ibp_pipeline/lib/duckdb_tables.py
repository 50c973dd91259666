"""Writing a polars frame into the warehouse: one way, used by every step; and reading and documenting a table's
columns."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import polars as pl


def replace_table(con: duckdb.DuckDBPyConnection, schema: str, table: str, frame: pl.DataFrame) -> int:
    """Replace schema.table with the frame (via Arrow, no copy through Python rows); returns its row count."""
    con.execute(f"create schema if not exists {schema}")
    name = f"_{schema}_{table}_frame"
    con.register(name, frame.to_arrow())
    try:
        con.execute(f"create or replace table {schema}.{table} as select * from {name}")
    finally:
        con.unregister(name)
    return frame.height


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str | None = None) -> bool:
    """Whether a table or view exists in the connected database (not in one attached beside it):
    table_exists(con, 'latest', 'rtt_incomplete') or table_exists(con, 'latest.rtt_incomplete'). The one check
    every step uses."""
    if name is None:
        schema, name = schema.split(".", 1)
    return bool(con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ? "
        "and table_catalog = current_database()", [schema, name]).fetchone()[0])


def table_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    """Column names of schema.table, [] when it does not exist."""
    rows = con.sql(f"select column_name from duckdb_columns() where schema_name = '{schema}' "
                   f"and table_name = '{table}' order by column_index").fetchall()
    return [r[0] for r in rows]


def comment_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str, comments: dict[str, str],
                    table_comment: str | None = None) -> None:
    """Document schema.table in the database: COMMENT ON TABLE, and COMMENT ON COLUMN for each of its columns that
    `comments` names (others are skipped)."""
    have = set(table_columns(con, schema, table))
    if table_comment:
        con.execute(f"comment on table {schema}.{table} is '{table_comment.replace(chr(39), chr(39) * 2)}'")
    for col, text in comments.items():
        if col in have:
            con.execute(f"comment on column {schema}.{table}.{col} is '{text.replace(chr(39), chr(39) * 2)}'")


def open_store(path: Path, ddl: Sequence[str], read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A kept database of its own (the plan store, the records store): read-only as it is, or for writing with its
    schema made first (every statement of ddl is idempotent: create ... if not exists)."""
    if read_only:
        return duckdb.connect(str(path), read_only=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    for sql in ddl:
        con.execute(sql)
    return con
