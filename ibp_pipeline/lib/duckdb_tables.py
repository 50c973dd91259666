"""Writing a polars frame into the warehouse: one way, used by every step."""
from __future__ import annotations

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


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    """Whether schema.name exists in the connected database."""
    return bool(con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name]).fetchone()[0])
