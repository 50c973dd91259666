"""Read + validate + load of each publication as NHS England publishes it, and the RTT full extract against
DuckDB's own read_csv of the same CSV, in one run.

    .venv/bin/python benchmarks/bench_published.py [--repeat 3] [--dir ../shared/data/nhs_as_published]

Each file is recognised by content (as `ibp ingest` does), then archived, read, validated and loaded into a fresh
DuckDB warehouse by the project's loader; the figure is the median of --repeat runs. DuckDB's baseline unpacks the
ZIP's CSV to a temporary file (DuckDB reads no ZIP) and runs `create table as select * from read_csv(...)`: the
unpacking is not counted against it. Machines here are noisy: read the ratio, not the seconds.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

import duckdb

from ibp_pipeline.config import PROJECT_ROOT, get_paths
from ibp_pipeline.step1_current_state.ingest import ensure_schema, known_org_codes, load_file, load_source
from ibp_pipeline.step1_current_state.reading import JUNK_ENTRY, _checked_workbook
from ibp_pipeline.step1_current_state.recognise import _identify, identify
from ibp_pipeline.step1_current_state.sources import REFERENCE_SOURCES

BUNDLED = ("ae_monthly_provider_official", "rtt_full_extract", "diagnostics_dm01_web_file", "beds_kh03_web_file",
           "cancer_combined_workbook", "cancer_cwt_crs_extract", "ods_published")


def published_files(folder: Path | None) -> list[Path]:
    if folder is not None:
        return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in (".csv", ".zip", ".xls",
                                                                                             ".xlsx"))
    src = PROJECT_ROOT / "data" / "sources"
    return sorted(p for d in BUNDLED for p in (src / d).iterdir() if p.name != "SOURCE.txt" and
                  ("2025" in p.name or "2026" in p.name or d != "ae_monthly_provider_official"))


def time_load(path: Path, repeat: int) -> tuple[float, str, int]:
    """Median seconds to identify, archive, read, validate and load one file into a fresh warehouse."""
    times, status, rows = [], "", 0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            paths = get_paths(Path(tmp)).ensure()
            con = duckdb.connect(str(paths.warehouse))
            for spec in REFERENCE_SOURCES:  # the organisation reference, loaded first as in a run (not timed)
                load_source(con, spec, paths, run_id="bench", log=lambda _m: None)
            known = known_org_codes(con)
            ensure_schema(con)
            _identify.cache_clear()  # recognition and the workbook safety scan are timed too, as in a run
            _checked_workbook.cache_clear()
            rows = 0
            t = time.perf_counter()
            for spec in identify(path):
                con.execute("begin transaction")
                out = load_file(con, spec, path, paths, known_orgs=None if spec.reference else known, run_id="bench",
                                force=True)
                con.execute("commit")
                status, rows = out.status, rows + out.rows_loaded
            times.append(time.perf_counter() - t)
            con.close()
    return statistics.median(times), status, rows


def time_duckdb_read_csv(zip_path: Path, repeat: int) -> float:
    """Median seconds for DuckDB's own read_csv of the CSV inside the ZIP into a table."""
    times = []
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(zip_path) as zf:
        entry = next(i for i in zf.infolist() if not JUNK_ENTRY.search(i.filename) and i.filename.endswith(".csv"))
        csv_path = Path(zf.extract(entry, tmp))
        for _ in range(repeat):
            con = duckdb.connect(str(Path(tmp) / "baseline.duckdb"))
            con.execute("drop table if exists t")
            t = time.perf_counter()
            con.execute("create table t as select * from read_csv(?)", [str(csv_path)])
            times.append(time.perf_counter() - t)
            con.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="a folder of files as published (default: the bundle)")
    args = parser.parse_args()
    rtt_seconds = None
    print(f"{'file':<62}{'publication':<26}{'rows':>9}{'seconds':>9}")
    for path in published_files(args.dir):
        seconds, status, rows = time_load(path, args.repeat)
        names = ", ".join(s.name for s in identify(path))
        print(f"{path.name[:61]:<62}{names[:25]:<26}{rows:>9,}{seconds:>9.2f}  {status}")
        if "rtt_full_extract" in names and rtt_seconds is None:
            rtt_seconds, rtt_path = seconds, path
    if rtt_seconds is not None:
        baseline = time_duckdb_read_csv(rtt_path, args.repeat)
        print(f"\nRTT full extract: read + validate + load {rtt_seconds:.2f}s; DuckDB read_csv of the same CSV "
              f"{baseline:.2f}s; ratio {rtt_seconds / baseline:.2f}x")


if __name__ == "__main__":
    main()
