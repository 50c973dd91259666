"""Incremental step 5: a series whose inputs have not changed since the last run keeps its forecast and backtest.

Why: when one month of one publication lands, most series are exactly what they were (every other publication,
and organisations the new file does not cover), yet refitting and backtesting every series is the largest cost
of steps 5 after the Monte Carlo. Each series gets a fingerprint: a hash of everything its forecast is computed
from (its prepared values, numerators, denominators and labels, the method's parameters, and the source code of
the forecasting modules, so any change to the method refits everything). A series whose fingerprint equals the one
recorded beside the table in the last run keeps its rows; the others are refitted. Fingerprints are recorded in
meta.series_fingerprints (output, org_code, metric_id, fingerprint) in the same transaction as the table, so
a run killed in between never leaves rows and fingerprints that disagree.

A refitted series shares its batch with fewer others than in a full run; numpy's summation order can then move
the last bits of a value (measured: up to about 1e-12 relative when the chunk count changes). A full rebuild
(`ibp rebuild`, or deleting the fingerprints table) recomputes everything.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from ibp_pipeline.lib.duckdb_tables import replace_table, table_exists

SCHEMA = "s5_impact"
FINGERPRINTS_SCHEMA, FINGERPRINTS_TABLE = "meta", "series_fingerprints"
FINGERPRINTS = f"{FINGERPRINTS_SCHEMA}.{FINGERPRINTS_TABLE}"  # bookkeeping, not served (publish serves meta.file_loads)
KEY = ["org_code", "metric_id"]
CODE_FILES = ("forecasting.py", "forecast_tables.py", "series_reuse.py")


@functools.cache
def code_version() -> str:
    """sha256 of the forecasting modules' source: a change to the method invalidates every stored result."""
    h = hashlib.sha256()
    for name in CODE_FILES:
        h.update((Path(__file__).parent / name).read_bytes())
    return h.hexdigest()


def fingerprints(keys: pl.DataFrame, value: np.ndarray, num: np.ndarray, den: np.ndarray, lengths: np.ndarray,
                 params: str) -> list[str]:
    """One hex digest per series: its label row, its first `length` values, numerators and denominators (as
    float64 bytes), the method's parameters and the code version."""
    head = f"{code_version()}|{params}".encode()
    out = []
    for i, row in enumerate(keys.iter_rows(named=True)):
        n = int(lengths[i])
        h = hashlib.blake2b(head, digest_size=16)
        h.update(json.dumps(row, sort_keys=True, default=str).encode())
        for a in (value, num, den):
            h.update(np.ascontiguousarray(a[i, :n], dtype=np.float64).tobytes())
        out.append(h.hexdigest())
    return out


@dataclass
class Reuse:
    """Which series of one output keep last run's rows: keys of every series now (in order), their fingerprints,
    and the mask of those whose rows are reused."""
    output: str
    keys: pl.DataFrame
    fingerprints: list[str]
    reused: np.ndarray

    @property
    def changed_rows(self) -> np.ndarray:
        return np.flatnonzero(~self.reused)

    def summary(self) -> str:
        return f"{int(self.reused.sum())} of {len(self.reused)} series unchanged since the last run (rows reused)"


def plan_reuse(con: duckdb.DuckDBPyConnection, output: str, keys: pl.DataFrame, fps: list[str]) -> Reuse:
    """Compare the fingerprints with those stored for `output` (a table of s5_impact); a series is reused when
    its fingerprint matches and the table still holds its rows."""
    reused = np.zeros(len(fps), dtype=bool)
    if fps and table_exists(con, FINGERPRINTS_SCHEMA, FINGERPRINTS_TABLE) and table_exists(con, SCHEMA, output):
        now = keys.select(KEY).with_columns(fingerprint=pl.Series(fps, dtype=pl.String),
                                            _i=pl.int_range(pl.len(), dtype=pl.Int64))
        con.register("_reuse_now", now.to_arrow())
        try:
            hits = con.execute(f"""
                select n._i from _reuse_now n
                join {FINGERPRINTS} f on f.output = ? and f.org_code = n.org_code
                     and f.metric_id = n.metric_id and f.fingerprint = n.fingerprint
                where exists (select 1 from {SCHEMA}.{output} t
                              where t.org_code = n.org_code and t.metric_id = n.metric_id)""",
                               [output]).fetchall()
        finally:
            con.unregister("_reuse_now")
        reused[[h[0] for h in hits]] = True
    return Reuse(output, keys.select(KEY), fps, reused)


def reused_rows(con: duckdb.DuckDBPyConnection, reuse: Reuse) -> pl.DataFrame | None:
    """Last run's rows of the reused series (None when none is reused)."""
    if not reuse.reused.any():
        return None
    keep = reuse.keys.filter(pl.Series(reuse.reused))
    con.register("_reuse_keep", keep.to_arrow())
    try:
        return con.sql(f"select t.* from {SCHEMA}.{reuse.output} t semi join _reuse_keep k "
                       f"using (org_code, metric_id)").pl()
    finally:
        con.unregister("_reuse_keep")


def combine(reused: pl.DataFrame | None, fresh: pl.DataFrame, order: list[str]) -> pl.DataFrame:
    """Reused and freshly computed rows as one frame in `order` (the fresh frame's types win)."""
    parts = [f for f in (fresh, reused) if f is not None and not f.is_empty()]
    if not parts:
        return fresh
    if len(parts) == 2:
        parts[1] = parts[1].select(fresh.columns).cast(fresh.schema)  # type: ignore[arg-type]
    return pl.concat(parts, how="vertical").sort(order)


def write_with_fingerprints(con: duckdb.DuckDBPyConnection, reuse: Reuse, frame: pl.DataFrame) -> int:
    """Replace s5_impact.<output> with frame and record every series' fingerprint for it, in one transaction."""
    prints = reuse.keys.with_columns(output=pl.lit(reuse.output),
                                     fingerprint=pl.Series(reuse.fingerprints, dtype=pl.String))
    con.execute("begin transaction")
    try:
        n = replace_table(con, SCHEMA, reuse.output, frame)
        con.execute("create schema if not exists meta")
        con.execute(f"create table if not exists {FINGERPRINTS} (output varchar, org_code varchar, "
                    "metric_id varchar, fingerprint varchar)")
        con.execute(f"delete from {FINGERPRINTS} where output = ?", [reuse.output])
        con.register("_reuse_prints", prints.select("output", *KEY, "fingerprint").to_arrow())
        try:
            con.execute(f"insert into {FINGERPRINTS} select * from _reuse_prints")
        finally:
            con.unregister("_reuse_prints")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return n
