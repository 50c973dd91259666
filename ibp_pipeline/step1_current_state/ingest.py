"""Load publication files into the warehouse with provenance: archive, sha256, load id, quarantine.

Every file that arrives is archived under data/archive/<source>/ by its sha256 before anything else, so
nothing is ever lost. Good rows append to raw.<source> (history, tagged with the load id); latest.<source> is
the current row per key (the newest publication wins, so a revision replaces a month while the older values
stay queryable in raw; for a snapshot with no date of its own, such as an ODS file, the newest snapshot wins,
so an older one ingested late is history only). Bad rows and refused files go to dq.quarantine with a one-line
reason. Loading the same bytes again changes nothing.
"""
from __future__ import annotations

import fnmatch
import hashlib
import re
import shutil
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Callable

import duckdb
import polars as pl

from ..config import Paths
from ..lib.duckdb_tables import table_exists
from .reading import FileRefused, check_size, max_input_bytes, read_table, show_name
from .recognise import identify
from .sources import BY_NAME, DATA_SOURCES, REFERENCE_SOURCES, SOURCES, SourceSpec
from .validation import PROBLEM_SCHEMA, check_total_row, validate

Log = Callable[[str], None]
SQL_TYPES = {"text": "VARCHAR", "code": "VARCHAR", "ae_period": "VARCHAR", "month_text": "VARCHAR", "number": "DOUBLE",
             "count": "DOUBLE",
             "fraction": "DOUBLE", "date": "DATE"}

DDL = """
create schema if not exists raw;
create schema if not exists latest;
create schema if not exists meta;
create schema if not exists dq;
create sequence if not exists meta.load_id_seq start 1;
create table if not exists meta.file_loads (
    load_id bigint primary key, run_id varchar, source varchar, file_name varchar, original_path varchar,
    archive_path varchar, sha256 varchar, bytes bigint, encoding varchar, status varchar, rows_read bigint,
    rows_loaded bigint, rows_quarantined bigint, rows_replaced bigint, period_min date, period_max date,
    message varchar, loaded_at timestamp);
create table if not exists dq.quarantine (
    load_id bigint, run_id varchar, source varchar, file_name varchar, sha256 varchar, row_number bigint,
    column_name varchar, value varchar, rule varchar, message varchar, quarantined_at timestamp);
"""


@dataclass
class FileOutcome:
    source: str
    file: Path
    status: str  # loaded | partial | refused | unchanged
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_replaced: int = 0
    message: str = ""
    load_id: int | None = None

    def line(self) -> str:
        """One readable line for the analyst."""
        return f"{self.status:<9} {show_name(self.file.name, 255)} -> {self.source}: {self.message}"


@dataclass
class SourceSummary:
    source: str
    files: list[FileOutcome] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def safe_name(name: str) -> str:
    """A file name that cannot climb out of its folder or hide: letters, digits, . _ - only, at most 150
    characters; a long name is cut in its stem so that it keeps its extension (.csv, .csv.gz, .xlsx)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name).lstrip(".") or "unnamed"
    if len(cleaned) <= 150:
        return cleaned
    ext = re.search(r"(\.[A-Za-z0-9]{1,5}){1,2}$", cleaned)
    ext_text = ext.group(0) if ext else ""
    return cleaned[: 150 - len(ext_text)] + ext_text


def db_text(text: str) -> str:
    """A file name or path as DuckDB can store it: bytes that are not UTF-8 (a surrogate escape) become U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def matches(spec: SourceSpec, file_name: str) -> bool:
    name = file_name.lower()
    for suffix in (".gz",):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return any(fnmatch.fnmatch(name, p.lower()) for p in spec.patterns) or any(
        fnmatch.fnmatch(name, p.lower().replace(".csv", ".xlsx")) for p in spec.patterns)


def spec_for_file(file_name: str) -> SourceSpec | None:
    return next((s for s in SOURCES if matches(s, file_name)), None)


REVISION_MARK = re.compile(r"[-_ ]?\(?(revised|revision|rev)\)?(?=[-_. ]|$)", re.IGNORECASE)
MONTH_IN_NAME = re.compile(r"(?i)(january|february|march|april|may|june|july|august|september|october|november|"
                           r"december)[-_ ]?(\d{4})")
MONTH_NUMBER = {m: i for i, m in enumerate(("january", "february", "march", "april", "may", "june", "july",
                                             "august", "september", "october", "november", "december"), 1)}


def load_order(path: Path) -> tuple[str, str, bool, str]:
    """A revised publication loads after its original (the newest load wins), whatever the names sort as:
    files are ordered by the month their name gives ('July-2025-CSV-revised.csv' and 'Monthly-AE-July-2025.csv'
    are both July 2025), then the original before the revision."""
    stem = path.name.split(".")[0]
    month = MONTH_IN_NAME.search(stem)
    when = f"{month.group(2)}-{MONTH_NUMBER[month.group(1).lower()]:02d}" if month else ""
    return when, REVISION_MARK.sub("", stem).lower() if not when else "", bool(REVISION_MARK.search(stem)), path.name


def landing_order(path: Path) -> tuple:
    """Landing files load by the month their name gives, a revision after its original, then in order of arrival:
    `ibp ingest` of a year's files at once (in whatever order the shell lists them) still lets NHS England's
    revised July replace the first July, never the reverse. Files whose name gives no month come first."""
    when, stem, revised, name = load_order(path)
    return when, revised, path.lstat().st_mtime_ns, stem, name


def stage_file(src: Path, landing: Path, name: str | None = None) -> Path:
    """Copy a file into the landing folder under a safe name (of `name`, default its own), atomically, never
    overwriting other content: different bytes under a taken name get the name with their sha256's start."""
    name = safe_name(name or src.name)
    dest = landing / name
    if dest.exists() and sha256_of(dest) != sha256_of(src):
        dest = landing / f"{Path(name).stem}-{sha256_of(src)[:8]}{''.join(Path(name).suffixes)}"
    tmp = landing / f".{name}.part"
    shutil.copyfile(src, tmp)
    tmp.replace(dest)
    return dest


def files_for(spec: SourceSpec, paths: Paths) -> list[Path]:
    """Bundled files of this source, then landing-folder drops in order of arrival (modification time)."""
    bundled = paths.reference if spec.folder == "@reference" else paths.sources / spec.folder
    found = sorted((p for p in bundled.glob("*") if p.is_file() and matches(spec, p.name)), key=load_order) \
        if bundled.is_dir() else []
    if paths.landing.is_dir():
        found += sorted((p for p in paths.landing.glob("*") if (p.is_file() or p.is_symlink())
                         and not p.name.startswith(".") and _landed_as(p, spec)),
                        key=landing_order)
    return found


def _landed_as(path: Path, spec: SourceSpec) -> bool:
    """A landing-folder file belongs to the publication its content is recognised as (the name is only a hint).
    A file recognised by nothing (a damaged or changed layout) goes to the publication its name suggests, whose
    loader refuses it with the reason (a missing column, say) and keeps it; a symbolic link is never opened."""
    if path.is_symlink():
        return matches(spec, path.name)
    try:
        return spec in identify(path)
    except FileRefused:
        return matches(spec, path.name)


def create_raw_table(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> None:
    cols = [f'"{c.name}" {SQL_TYPES[c.kind]}' for c in spec.columns]
    if spec.period_column:
        cols.append("period_start DATE")
    cols += ["_load_id BIGINT", "_row_number BIGINT", "_source_file VARCHAR"]
    con.execute(f"create table if not exists {spec.table} ({', '.join(cols)})")


def snapshot_date_sql(spec: SourceSpec) -> str:
    """SQL aggregate dating a snapshot file: the newest of its snapshot date columns (NULLs ignored)."""
    return "greatest(" + ", ".join(f'max("{c}")' for c in spec.snapshot_dates) + ")"


def refresh_latest(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> None:
    """latest.<source>: the newest loaded row for every key; for a snapshot source, the row of the newest snapshot
    (then the newest load of it), computed from raw, so a late older snapshot never becomes current."""
    create_raw_table(con, spec)
    key = ", ".join(f'r."{k}"' for k in spec.key)
    if not spec.snapshot_dates:
        con.execute(
            f"create or replace view latest.{spec.name} as select r.* from {spec.table} r "
            f"qualify row_number() over (partition by {key} order by r._load_id desc, r._row_number) = 1")
        return
    con.execute(
        f"create or replace view latest.{spec.name} as select r.* from {spec.table} r "
        f"join (select _load_id, {snapshot_date_sql(spec)} as as_of from {spec.table} group by _load_id) s "
        "on s._load_id = r._load_id "
        f"qualify row_number() over (partition by {key} "
        "order by s.as_of desc nulls last, r._load_id desc, r._row_number) = 1")


def known_org_codes(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """Every organisation code the reference knows (ODS trusts, successors, ICBs, regions, supplement) and the
    provisional ones official publications have named."""
    parts = {
        "ods_trusts_2025": ["org_code", "icb_code", "nhs_region_code", "icb_ons_code"],
        "ods_trusts_2020": ["org_code", "stp_code", "nhs_region_code"],
        "ods_trusts_2026": ["org_code", "icb_code_2026", "nhs_region_code"],
        "ods_successors": ["old_code", "new_code"],
        "trust_mergers": ["trust_code_old", "trust_code_new"],
        "subicb_icb_region": ["sub_icb_code", "icb_code", "icb_ons_code", "nhs_region_code", "nhs_region_ons_code"],
        "trust_region_2021": ["nhs_trust22_code", "nhs_region21_nhs_code"],
        "organisations_supplement": ["org_code"],
        "ods_etr": ["org_code", "high_level_health_geography", "national_grouping"],
        "ods_eccg": ["org_code", "high_level_health_geography", "national_grouping"],
    }
    selects = [f'select "{c}" as code from latest.{t}' for t, cols in parts.items()
               if table_exists(con, "latest", t) for c in cols]
    # provisional organisations: codes an official publication already loaded names (a file that names no
    # organisation, such as the CWT-CRS extract, then knows them too)
    selects += [f'select "{s.org_column}" from latest.{s.name} where nullif(trim("{s.org_name_column}"), \'\') '
                "is not null" for s in SOURCES if s.org_name_column and table_exists(con, "latest", s.name)]
    codes = {"ENGLAND"}
    if selects:
        codes |= {r[0] for r in con.execute(" union ".join(selects)).fetchall() if r[0]}
    return frozenset(codes)


def _archive(path: Path, spec: SourceSpec, sha: str, paths: Paths) -> Path:
    """Copy the original into archive/<source>/<sha256[:16]>_<safe name>; an archived file is never replaced.

    If that name is taken by different bytes (a 64-bit prefix collision, or a file put there by hand), the full
    sha256 is used instead, so the earlier archive stays as it was."""
    dest = paths.archive / spec.name / f"{sha[:16]}_{safe_name(path.name)}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and sha256_of(dest) != sha:
        dest = dest.with_name(f"{sha}_{safe_name(path.name)}")
        if dest.exists() and sha256_of(dest) != sha:
            raise RuntimeError(f"archive file {dest} exists with other content; not overwriting it")
    if not dest.exists():
        tmp = dest.with_suffix(dest.suffix + ".part")
        shutil.copyfile(path, tmp)
        tmp.replace(dest)
    return dest


def _already_loaded(con: duckdb.DuckDBPyConnection, spec: SourceSpec, sha: str) -> tuple | None:
    """(load id, status, message, rule of a refusal) of the newest load of these bytes, or None."""
    return con.execute(
        "select load_id, status, message, (select min(q.rule) from dq.quarantine q where q.load_id = f.load_id "
        "and q.row_number is null) from meta.file_loads f where source = ? and sha256 = ? "
        "order by load_id desc limit 1", [spec.name, sha]).fetchone()


SIZE_RULES = ("file_too_large", "zip_bomb")  # refusals that depend on IBP_MAX_FILE_MB


def _fits_now(previous: tuple | None, path: Path, max_bytes: int) -> bool:
    """A file refused for its size is tried again once the limit (IBP_MAX_FILE_MB) has been raised enough."""
    if not previous or previous[1] != "refused" or previous[3] not in SIZE_RULES:
        return False
    try:
        check_size(path, max_bytes)
    except FileRefused:
        return False
    return True


def _record(con, load_id, run_id, spec, path, archived, sha, encoding, status, rows_read, loaded, quarantined,
            replaced, pmin, pmax, message) -> None:
    con.execute(
        "insert into meta.file_loads values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [load_id, run_id, spec.name, db_text(path.name), db_text(str(path)), db_text(str(archived)), sha,
         path.lstat().st_size, encoding, status,
         rows_read, loaded, quarantined, replaced, pmin, pmax, message, datetime.now()])


def _quarantine(con, problems: pl.DataFrame, load_id, run_id, spec, path, sha) -> None:
    if problems.height == 0:
        return
    frame = problems.with_columns(
        pl.lit(load_id, pl.Int64).alias("load_id"), pl.lit(run_id).alias("run_id"), pl.lit(spec.name).alias("source"),
        pl.lit(db_text(path.name)).alias("file_name"), pl.lit(sha).alias("sha256"),
        (pl.lit(f"{show_name(path.name, 255)}: ") + pl.col("message")).alias("message"),
        pl.lit(datetime.now()).alias("quarantined_at"))
    con.register("_incoming_problems", frame.to_arrow())
    con.execute(
        "insert into dq.quarantine select load_id, run_id, source, file_name, sha256, row_number, \"column\", value, "
        "rule, message, quarantined_at from _incoming_problems")
    con.unregister("_incoming_problems")


def _count_replaced(con, spec: SourceSpec, good: pl.DataFrame) -> int:
    """How many incoming keys already have a current value (a revision of published figures)."""
    if good.height == 0 or not table_exists(con, "latest", spec.name):
        return 0
    con.register("_incoming_keys", good.select(list(spec.key)).to_arrow())
    on = " and ".join(f'l."{k}" is not distinct from i."{k}"' for k in spec.key)
    n = con.execute(f"select count(*) from _incoming_keys i join latest.{spec.name} l on {on}").fetchone()[0]
    con.unregister("_incoming_keys")
    return int(n)


def _snapshot_note(con: duckdb.DuckDBPyConnection, spec: SourceSpec, good: pl.DataFrame, replaced: int
                   ) -> tuple[str, int]:
    """How a snapshot stands against those already loaded, for the load message, and how many current rows it
    replaces: an older snapshot (ingested after a newer one) replaces none and is kept as history."""
    dates = [d for c in spec.snapshot_dates if good.height and (d := good.get_column(c).max()) is not None]
    incoming = max(dates) if dates else None
    loaded = con.execute(f"select {snapshot_date_sql(spec)} from {spec.table}").fetchone()[0] \
        if table_exists(con, "raw", spec.name) else None
    shown = f"ODS snapshot of {incoming:%Y-%m-%d}" if incoming else "ODS snapshot with no open or close date"
    if loaded is None:
        return shown, replaced
    if incoming is None or incoming < loaded:
        why = f"older than the snapshot already loaded ({loaded:%Y-%m-%d})" if incoming else "it cannot be dated"
        added = good.height - replaced
        also = f"; {added:,} organisation{'s' * (added > 1)} only it lists added" if added else ""
        return f"{shown}: {why}; kept as history, current organisations unchanged{also}", 0
    if incoming > loaded:
        return (f"{shown}: newer than the snapshot already loaded ({loaded:%Y-%m-%d}); {replaced:,} organisations "
                "now take its values"), replaced
    return f"{shown}, as the snapshot already loaded: {replaced:,} organisations take this later copy's values", \
        replaced


def load_file(con: duckdb.DuckDBPyConnection, spec: SourceSpec, path: Path, paths: Paths, *,
              known_orgs: frozenset[str] | None, run_id: str, force: bool = False, today: date | None = None,
              max_bytes: int | None = None) -> FileOutcome:
    """Archive, validate and load one file; never raises for bad content.

    Every input is limited to max_bytes (default IBP_MAX_FILE_MB) once decompressed. An unexpected error while
    reading or validating refuses the file (rule loader_error) instead of stopping every other load."""
    max_bytes = max_bytes or max_input_bytes()
    if path.is_symlink() and path.parent == paths.landing:
        return _refuse_symlink(con, spec, path, run_id)
    sha = sha256_of(path)
    previous = _already_loaded(con, spec, sha)
    if previous and not force and not _fits_now(previous, path, max_bytes):
        return FileOutcome(spec.name, path, "unchanged", message=f"same bytes as load {previous[0]} ({previous[1]}); "
                           "nothing changed", load_id=previous[0])
    archived = _archive(path, spec, sha, paths)
    load_id = con.execute("select nextval('meta.load_id_seq')").fetchone()[0]
    encoding = ""
    try:
        try:
            table = read_table(path, max_bytes, spec)
            encoding = table.encoding
            result = validate(spec, table, None if spec.reference else known_orgs, today)
            good, aside = check_total_row(spec, result.good, complete=result.problems.height == 0)
        except (FileRefused, MemoryError, RecursionError):
            raise
        except Exception as exc:  # a loader defect must not stop the other files and sources
            raise FileRefused(f"could not be read: {type(exc).__name__}: {str(exc)[:200]} (a loader defect: "
                              "please report it with this file)", "loader_error") from exc
    except FileRefused as exc:
        problems = pl.DataFrame({"row_number": [None], "column": [None], "value": [None], "rule": [exc.rule],
                                 "message": [str(exc)]}, schema=PROBLEM_SCHEMA)
        _quarantine(con, problems, load_id, run_id, spec, path, sha)
        _record(con, load_id, run_id, spec, path, archived, sha, encoding, "refused", 0, 0, 0, 0, None, None, str(exc))
        return FileOutcome(spec.name, path, "refused", message=f"{exc} (file kept in {archived.parent.name}/)",
                           load_id=load_id)
    problems = result.problems if aside is None else pl.concat([result.problems, aside.cast(PROBLEM_SCHEMA)])
    replaced = _count_replaced(con, spec, good)
    snapshot = ""
    if spec.snapshot_dates:  # dated against the snapshots loaded so far, before this one joins them
        snapshot, replaced = _snapshot_note(con, spec, good, replaced)
    create_raw_table(con, spec)
    con.register("_incoming", good.to_arrow())
    con.execute(f"insert into {spec.table} by name select *, {int(load_id)}::bigint as _load_id, "
                f"? as _source_file from _incoming", [db_text(path.name)])
    con.unregister("_incoming")
    _quarantine(con, problems, load_id, run_id, spec, path, sha)
    bad_rows = problems.get_column("row_number").n_unique() if problems.height else 0
    pmin = pmax = None
    if "period_start" in good.columns and good.height:
        pmin, pmax = good.get_column("period_start").min(), good.get_column("period_start").max()
    status = "partial" if problems.height else "loaded"
    span = f" ({pmin:%Y-%m} to {pmax:%Y-%m})" if pmin else ""
    message = f"{good.height:,} rows loaded{span}"
    if snapshot:
        message += f", {snapshot}"
    elif replaced:
        message += f", {replaced:,} replace earlier published values (revision)"
    if problems.height:
        first = problems.row(0, named=True)["message"]
        message += f", {bad_rows:,} rows quarantined (first: {first})"
    if encoding not in ("utf-8", "xlsx", ""):
        message += f"; read as {encoding}, not UTF-8"
    message += _reading_notes(table.notes, result.suppressed, result.provisional)
    message += _unassigned_note(spec, good)
    _record(con, load_id, run_id, spec, path, archived, sha, encoding, status, result.rows_read, good.height,
            bad_rows, replaced, pmin, pmax, message)
    refresh_latest(con, spec)
    return FileOutcome(spec.name, path, status, good.height, bad_rows, replaced, message, load_id)


def _reading_notes(notes: list[str], suppressed: dict[str, int], provisional: dict[str, str]) -> str:
    """What the reader inferred or set aside, and the new organisations, as the tail of the load message."""
    parts = list(notes)
    if suppressed:
        parts.append("suppressed cells read as missing: " + ", ".join(f"{n:,} '{m}'" for m, n in suppressed.items()))
    if provisional:
        shown = ", ".join(f"{c} ({show_name(n or '', 40)})" for c, n in list(provisional.items())[:3])
        more = f" and {len(provisional) - 3} more" if len(provisional) > 3 else ""
        parts.append(f"{len(provisional)} organisation{'s' if len(provisional) > 1 else ''} not yet in the ODS "
                     f"reference entered as provisional: {shown}{more}")
    return "; " + "; ".join(parts) if parts else ""


def _unassigned_note(spec: SourceSpec, good: pl.DataFrame) -> str:
    """Rows the publisher attributes to no organisation ('UNKNOWN'), said in the load message: they are loaded as
    published and counted in England, so they must be seen as that, not as bad data or a missing organisation."""
    if not (spec.unassigned_code and spec.org_column) or good.height == 0:
        return ""
    codes = good.get_column(spec.org_column)
    n = int((codes == spec.unassigned_code).sum())
    if not n:
        return ""
    total = (f"; the {spec.total_code} rows include them and equal the sum of every other row" if spec.total_code
             and (codes == spec.total_code).any() else "")
    return (f"; {n:,} '{spec.unassigned_code}' row{'s' if n > 1 else ''} (no organisation attributed by the "
            f"publisher) loaded as published, not as an organisation{total}")


def _refuse_symlink(con: duckdb.DuckDBPyConnection, spec: SourceSpec, path: Path, run_id: str) -> FileOutcome:
    """A symbolic link in the landing folder is never followed: it could point anywhere on the machine, and what
    the pipeline reads is archived and shown in quarantine. The link stays where it is; the refusal is recorded
    once (keyed on where it points)."""
    target = str(path.readlink())
    sha = hashlib.sha256(f"symlink:{target}".encode()).hexdigest()
    message = (f"a symbolic link (to {target}) is not followed: the landing folder takes real files only; "
               "copy the file in with `ibp ingest FILE`")
    previous = _already_loaded(con, spec, sha)
    if previous:
        return FileOutcome(spec.name, path, "unchanged", message=f"already refused in load {previous[0]}: {message}",
                           load_id=previous[0])
    load_id = con.execute("select nextval('meta.load_id_seq')").fetchone()[0]
    problems = pl.DataFrame({"row_number": [None], "column": [None], "value": [None], "rule": ["symlink_refused"],
                             "message": [message]}, schema=PROBLEM_SCHEMA)
    _quarantine(con, problems, load_id, run_id, spec, path, sha)
    _record(con, load_id, run_id, spec, path, path, sha, "", "refused", 0, 0, 0, 0, None, None, message)
    return FileOutcome(spec.name, path, "refused", message=message, load_id=load_id)


def load_source(con: duckdb.DuckDBPyConnection, spec: SourceSpec, paths: Paths, *, run_id: str,
                known_orgs: frozenset[str] | None = None, log: Log = print, force: bool = False) -> SourceSummary:
    """Load every new file of one source; the latest view always exists afterwards (maybe empty)."""
    ensure_schema(con)
    summary = SourceSummary(spec.name)
    files = files_for(spec, paths)
    for i, path in enumerate(files, 1):
        con.execute("begin transaction")
        try:
            outcome = load_file(con, spec, path, paths, known_orgs=known_orgs, run_id=run_id, force=force)
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        summary.files.append(outcome)
        if outcome.status != "unchanged":
            log(f"[{spec.name} {i}/{len(files)}] {outcome.line()}")
    refresh_latest(con, spec)
    return summary


def source_by_name(name: str) -> SourceSpec:
    return BY_NAME[name]


def load_all_sources(con: duckdb.DuckDBPyConnection, paths: Paths, *, run_id: str, log: Log = print
                     ) -> list[SourceSummary]:
    """Every source in the order the asset graph loads them (outside Dagster: rebuild checks, acceptance tests):
    the organisation reference, then the publications that name their organisations, then the others, each
    checked against every code known by then (provisional organisations included)."""
    out = [load_source(con, spec, paths, run_id=run_id, log=log) for spec in REFERENCE_SOURCES]
    for spec in sorted(DATA_SOURCES, key=lambda s: s.org_name_column is None):
        out.append(load_source(con, spec, paths, run_id=run_id, known_orgs=known_org_codes(con), log=log))
    return out
