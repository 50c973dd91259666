"""The warehouse connection as a Dagster resource. The pipeline is the only writer of its working database;
dashboards read the separately published serving copy (see operations/publish.py)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import dagster as dg
import duckdb

from .config import Paths, get_paths


class Warehouse(dg.ConfigurableResource):
    """Where the data lives. Empty data_dir means the environment's (IBP_DATA_DIR) or the project's data/."""

    data_dir: str = ""

    def paths(self) -> Paths:
        return get_paths(self.data_dir or None).ensure()

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = duckdb.connect(str(self.paths().warehouse))
        try:
            yield con
        finally:
            con.close()
