"""Rebuild a past run's outputs from its archived inputs (`ibp rebuild RUN --out DIR`).

Every file a run reads is copied, byte for byte, to archive/<source>/<sha256[:16]>_<name> and recorded in
meta.file_loads (load id, run id, sha256, archive path, time). The inputs of a run are therefore every load recorded
up to the end of that run, in load order. A rebuild stages exactly those archived files, each checked against its
sha256, into the landing folder of a NEW data folder, in the same order, and runs the normal refresh there: the
working and served databases of the original are never touched.

What is not archived is the code and its configuration (standards.yaml, initiatives.yaml, scenarios): a rebuild
uses the installed version. To reproduce a run made by older code, check out that version first.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from ..step1_current_state.ingest import sha256_of, stage_file


class RebuildError(Exception):
    """A one-line reason a rebuild cannot start (unknown run, a missing or altered archive file)."""


@dataclass(frozen=True)
class ArchivedInput:
    load_id: int
    source: str
    file_name: str
    archive_path: Path
    sha256: str
    status: str


def run_ends(con: duckdb.DuckDBPyConnection) -> dict[str, datetime]:
    """run id -> the last moment it wrote (a file load or a check result): one writer at a time, so every load
    recorded up to that moment was an input of that run or of an earlier one."""
    rows = con.execute("""
        select run_id, max(t) from (
            select run_id, loaded_at as t from meta.file_loads
            union all select run_id, checked_at from dq.check_results)
        where run_id is not null group by 1""").fetchall()
    return dict(rows)


def resolve_run(con: duckdb.DuckDBPyConnection, run: str) -> tuple[str, datetime]:
    """A run id, or its first characters as `ibp run` prints them (e.g. 1a2b3c4d)."""
    ends = run_ends(con)
    matches = sorted(r for r in ends if r.startswith(run.strip())) if run.strip() else []
    if len(matches) == 1:
        return matches[0], ends[matches[0]]
    recent = ", ".join(r[:8] for r, _ in sorted(ends.items(), key=lambda kv: kv[1], reverse=True)[:5])
    if not matches:
        raise RebuildError(f"no run '{run}' in this warehouse (the latest: {recent or 'none yet'})")
    raise RebuildError(f"'{run}' matches {len(matches)} runs ({', '.join(m[:12] for m in matches[:5])}); "
                       "give more of the run id")


def inputs_of_run(con: duckdb.DuckDBPyConnection, run_id: str, end: datetime) -> list[ArchivedInput]:
    """The archived files a run read or had already read, in load order; the same bytes once (a file first
    refused for its size and loaded later is one input, and so is a workbook that feeds two sources, such as the
    cancer workbook's provider and system sheets: the loader routes it to each by content)."""
    rows = con.execute("select load_id, source, file_name, archive_path, sha256, status from meta.file_loads "
                       "where loaded_at <= ? order by load_id", [end]).fetchall()
    seen: set[str] = set()
    inputs = []
    for load_id, source, name, archive, sha, status in rows:
        if sha in seen:
            continue
        seen.add(sha)
        inputs.append(ArchivedInput(load_id, source, name, Path(archive), sha, status))
    return inputs


def stage_inputs(inputs: list[ArchivedInput], landing: Path) -> list[Path]:
    """Copy each archived file into landing/ under its original (safe) name, checked against its sha256, with
    modification times in load order (the loader takes landing files in order of arrival)."""
    landing.mkdir(parents=True, exist_ok=True)
    staged = []
    base_ns = 1_000_000_000 * 1_000_000_000  # 2001-09-09: a fixed, increasing clock, whatever today is
    for i, item in enumerate(inputs):
        if item.archive_path.is_symlink() or not item.archive_path.is_file():
            raise RebuildError(f"load {item.load_id} ({item.source}, {item.file_name}): archived file "
                               f"{item.archive_path} is missing; the run cannot be rebuilt without it")
        if sha256_of(item.archive_path) != item.sha256:
            raise RebuildError(f"load {item.load_id} ({item.source}, {item.file_name}): archived file "
                               f"{item.archive_path} no longer has the bytes that were loaded (sha256 differs)")
        dest = stage_file(item.archive_path, landing, name=item.file_name)  # a revision under the same name too
        os.utime(dest, ns=(base_ns + i * 1_000_000, base_ns + i * 1_000_000))
        staged.append(dest)
    return staged


def prepare_rebuild(warehouse: Path, run: str, out: Path) -> tuple[str, datetime, list[Path]]:
    """Resolve the run in `warehouse`, and stage its inputs in out/landing (out must be new or empty)."""
    if out.exists() and any(out.iterdir()):
        raise RebuildError(f"{out} is not empty; a rebuild writes a new data folder (give a new --out)")
    if not warehouse.is_file():
        raise RebuildError(f"no warehouse at {warehouse}; run `ibp run` first")
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.IOException as exc:
        raise RebuildError(f"cannot open {warehouse} to read its load history ({str(exc).splitlines()[0]}); "
                           "if a refresh is running, try again when it has finished") from None
    try:
        run_id, end = resolve_run(con, run)
        inputs = inputs_of_run(con, run_id, end)
    finally:
        con.close()
    return run_id, end, stage_inputs(inputs, out / "landing")


def rebuild_environment(out: Path) -> dict[str, str]:
    """Environment for the refresh of a rebuild: everything under `out`, no bundled sources (each input comes
    from the archive through landing/)."""
    empty = out / "no_bundled_sources"
    empty.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if k not in ("IBP_LANDING_DIR", "IBP_ARCHIVE_DIR", "IBP_WAREHOUSE", "IBP_SERVING", "IBP_REPORTS_DIR",
                        "DAGSTER_HOME")}
    env.update(IBP_DATA_DIR=str(out), IBP_SOURCES_DIR=str(empty), IBP_REFERENCE_DIR=str(empty))
    return env
