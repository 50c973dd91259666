"""Dev helper: build `raw.*` tables and `latest.*` views straight from the bundled CSVs.

Why: step-1 code (organisations, metric values) is written against the loader's contract, and this lets it be
developed and tested before the real loader exists. It is deliberately naive: one load (`_load_id` = 1), no
archiving, no data-quality checks, `latest.<name>` is a plain `select *`. The shape is the contract's:

- every spec column under its loaded `name`, typed by kind (code/text/ae_period -> VARCHAR,
  count/number/fraction -> DOUBLE, date -> DATE); cells in the spec's null tokens are NULL;
- `period_start DATE` (first day of the month, or of the quarter for period_grain='quarter'; for
  `discharge_daily` the day column is `day` and period_start is its month) when the spec has a period column;
- `_load_id BIGINT`, `_row_number BIGINT` (1-based data row within its file), `_source_file VARCHAR`.

Usage:  .venv/bin/python scripts/dev_raw_tables.py data/dev.duckdb [--sources data/sources]
"""
from __future__ import annotations

import argparse
import csv
import fnmatch
import gzip
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ibp_pipeline.step1_current_state.ingest import SQL_TYPES  # noqa: E402
from ibp_pipeline.step1_current_state.sources import SOURCES, SourceSpec, norm_header  # noqa: E402

SQL_TYPE = SQL_TYPES  # the loader's own column types: one mapping, never two that drift


def spec_files(spec: SourceSpec, sources_dir: Path) -> list[Path]:
    """Files in the spec's folder matching one of its patterns (case-insensitive, optional .gz). Only plain CSV
    layouts: a publication read as published (a ZIP, a workbook, a headerless ODS file) gets its empty,
    contract-shaped table here; the real loader (ingest.load_source) reads those."""
    folder = (sources_dir / spec.folder).resolve()
    if not folder.is_dir() or spec.layout != "csv":
        return []
    pats = [p.lower() for p in spec.patterns]
    return [f for f in sorted(folder.iterdir()) if f.suffix.lower() in (".csv", ".gz")
            and any(fnmatch.fnmatch(f.name.lower(), p) or fnmatch.fnmatch(f.name.lower(), p + ".gz") for p in pats)]


def read_header(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
        return next(csv.reader(fh))


def sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def column_expr(raw: str, kind: str) -> str:
    """Cast one VARCHAR cell to the kind's type (numbers may carry thousands separators)."""
    if kind in ("count", "number", "fraction"):
        return f"try_cast(replace(trim({raw}), ',', '') as double)"
    if kind == "date":
        return f"try_cast(trim({raw}) as date)"
    return f"nullif(trim({raw}), '')"


def period_expr(spec: SourceSpec) -> str | None:
    """SQL for period_start from the (already typed) period column."""
    if not spec.period_column:
        return None
    col = spec.column(spec.period_column)
    if col.kind == "ae_period":  # 'MSitAE-APRIL-2024'
        src = f"strptime(split_part({col.name}, '-', 2) || ' ' || split_part({col.name}, '-', 3), '%B %Y')"
    elif col.kind == "month_text":  # 'July 2025', or a quarter 'April to June 2025' (its first month)
        src = (f"strptime(split_part(trim({col.name}), ' ', 1) || ' ' || "
               f"regexp_extract({col.name}, '(\\d{{4}})\\s*$', 1), '%B %Y')")
    else:
        src = col.name
    unit = "quarter" if spec.period_grain == "quarter" else "month"
    return f"cast(date_trunc('{unit}', {src}) as date)"


def file_select(spec: SourceSpec, path: Path, header: list[str]) -> str:
    """One file as a SELECT with the contract's columns; cells are read as text by position then cast."""
    by_norm = {norm_header(h): i for i, h in enumerate(header)}
    missing = [c.header for c in spec.columns if c.required and norm_header(c.header) not in by_norm]
    if missing:
        raise ValueError(f"{spec.name}: {path.name} lacks columns {missing}")
    names = [f"c{i}" for i in range(len(header))]
    nulls = ", ".join(sql_str(t) for t in spec.null_tokens)
    reader = (f"read_csv({sql_str(str(path))}, header=true, all_varchar=true, names=[{', '.join(map(sql_str, names))}],"
              f" nullstr=[{nulls}], quote='\"', escape='\"')")
    cols = []
    for c in spec.columns:
        i = by_norm.get(norm_header(c.header))
        raw = f"c{i}" if i is not None else "cast(null as varchar)"
        cols.append(f"cast({column_expr(raw, c.kind)} as {SQL_TYPE[c.kind]}) as {c.name}")
    return (f"select {', '.join(cols)}, row_number() over () as _row_number, {sql_str(path.name)} as _source_file "
            f"from {reader}")


def empty_select(spec: SourceSpec) -> str:
    cols = ", ".join(f"cast(null as {SQL_TYPE[c.kind]}) as {c.name}" for c in spec.columns)
    return f"select {cols}, cast(null as bigint) as _row_number, cast(null as varchar) as _source_file limit 0"


def build_spec(con: duckdb.DuckDBPyConnection, spec: SourceSpec, sources_dir: Path) -> int:
    """Create raw.<name> and latest.<name> for one spec; return its row count."""
    files = spec_files(spec, sources_dir)
    body = " union all by name ".join(file_select(spec, f, read_header(f)) for f in files) or empty_select(spec)
    period = period_expr(spec)
    extra = f", {period} as period_start" if period else ""
    cols = ", ".join(spec.loaded_columns)
    con.execute(f"create or replace table raw.{spec.name} as select {cols}{extra}, cast(1 as bigint) as _load_id, "
                f"cast(_row_number as bigint) as _row_number, _source_file from ({body})")
    con.execute(f"create or replace view latest.{spec.name} as select * from raw.{spec.name}")
    return con.execute(f"select count(*) from raw.{spec.name}").fetchone()[0]


def build_dev_raw_tables(con: duckdb.DuckDBPyConnection,
                         sources_dir: Path = ROOT / "data" / "sources") -> dict[str, int]:
    """Build every spec's raw table and latest view from sources_dir; return row counts by source name."""
    con.execute("create schema if not exists raw")
    con.execute("create schema if not exists latest")
    return {spec.name: build_spec(con, spec, Path(sources_dir)) for spec in SOURCES}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("database", help="DuckDB file to write (created if missing)")
    ap.add_argument("--sources", default=str(ROOT / "data" / "sources"), help="folder of bundled publications")
    args = ap.parse_args()
    t0 = time.perf_counter()
    with duckdb.connect(args.database) as con:
        counts = build_dev_raw_tables(con, Path(args.sources))
    for name, n in counts.items():
        print(f"{name:28s} {n:8d}" + ("   (no file: empty table)" if n == 0 else ""))
    print(f"built {len(counts)} raw tables in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
