"""Read-only access to the served database, one short-lived connection per query.

DuckDB lets a reader and a writer in different processes exclude each other (../shared/STACK.md), so the
dashboards never hold a connection: each query opens data/serving.duckdb read-only, reads, and closes. The
refresh replaces the file atomically (os.replace), so a query sees either the old copy or the new one, whole.
User input reaches SQL only as bound parameters ($name or ?); table and column names come from this code."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import duckdb
import polars as pl


class ServingUnavailable(RuntimeError):
    """The served database does not exist yet, or cannot be read."""


@dataclass(frozen=True)
class Serving:
    path: Path

    def version(self) -> str:
        """Changes whenever a refresh publishes a new copy: use it in cache keys so new data shows at once."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError as exc:
            raise ServingUnavailable(f"{self.path} does not exist yet: run `ibp run` to build and publish it") from exc
        return f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}"

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        """Run one read-only query with bound parameters and return a polars frame."""
        if not self.path.exists():
            raise ServingUnavailable(f"{self.path} does not exist yet: run `ibp run` to build and publish it")
        con = duckdb.connect(str(self.path), read_only=True)
        try:
            return con.sql(sql, params=params).pl() if params else con.sql(sql).pl()
        finally:
            con.close()

    def has_table(self, schema: str, table: str) -> bool:
        return bool(self.query("select count(*) as n from information_schema.tables where table_schema = ? "
                               "and table_name = ?", [schema, table])["n"][0])


def serving_from_env() -> Serving:
    """The served database the pipeline publishes (IBP_SERVING / IBP_DATA_DIR, as everywhere else)."""
    from ..config import get_paths

    return Serving(get_paths().serving)
