"""Read-only access to the served database, one short-lived connection per query.

The served tables are read from data/serving.duckdb, or from PostgreSQL with IBP_DASHBOARD_SOURCE=postgres
(postgres_serving.py; same interface). DuckDB lets a reader and a writer in different processes exclude each other (../shared/STACK.md), so the
dashboards never hold a connection: each query opens data/serving.duckdb read-only, reads, and closes. The
refresh replaces the file atomically (os.replace), so a query sees either the old copy or the new one, whole.
User input reaches SQL only as bound parameters ($name or ?); table and column names come from this code."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import duckdb
import polars as pl

from ibp_pipeline import settings

from .serving_errors import ServingUnavailable

if TYPE_CHECKING:
    from .postgres_serving import PostgresServing


@dataclass(frozen=True)
class Serving:
    path: Path

    @property
    def locator(self) -> str:
        """What serving_for() needs to open this reader again (the dashboards' cache keys hold it)."""
        return str(self.path)

    @property
    def label(self) -> str:
        """Where the figures were read, for a reader ('Source: ...')."""
        return f"data/{self.path.name}" if self.path.parent.name == "data" else self.path.name

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


def serving_from_env() -> "Serving | PostgresServing":
    """The served database the pipeline publishes (IBP_SERVING / IBP_DATA_DIR, as everywhere else), or its
    PostgreSQL copy when IBP_DASHBOARD_SOURCE=postgres."""
    from ..config import get_paths
    from .postgres_serving import SOURCE_ENV, PostgresServing

    source = settings.get(SOURCE_ENV, "duckdb").lower()
    if source == "postgres":
        return PostgresServing.from_env()
    if source != "duckdb":
        raise ServingUnavailable(f"{SOURCE_ENV}={source!r}: use duckdb (the default) or postgres")
    return Serving(get_paths().serving)


def serving_for(locator: str) -> "Serving | PostgresServing":
    """The reader a locator names (Serving.locator / PostgresServing.locator)."""
    from .postgres_serving import LOCATOR, PostgresServing

    return PostgresServing.from_env() if locator == LOCATOR else Serving(Path(locator))
