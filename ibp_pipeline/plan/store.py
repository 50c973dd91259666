"""Every version of every plan, in data/plans.duckdb (IBP_PLAN_STORE): a database of its own, so a refresh, a
rebuild of the warehouse or `ibp rebuild` never drops a plan. Each load adds a version (status, who, when, the
workbook's sha256) in one transaction; nothing is ever updated or deleted. The plan of record is the latest approved
version. The refresh copies these tables into the warehouse's `plan` schema, and from there they are served."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from ..config import PROJECT_ROOT
from ..lib.duckdb_tables import open_store
from .document import PlanDocument
from .lines import by_id
from .period import financial_year

# A plan for one real trust, labelled an example on its README sheet and wherever it is shown, so a new data folder
# has a plan to show; a workbook an analyst loads for the same trust becomes the next version.
EXAMPLE = PROJECT_ROOT / "data" / "examples" / "plan_RXL_2026-27-2028-29_example.xlsx"
EXAMPLE_LOADER = "ibp (bundled example, not a real plan)"

STATUSES = ("draft", "submitted", "approved")
DDL = (
    "create schema if not exists plan",
    """create table if not exists plan.versions (
        plan_id varchar, org_code varchar, org_name varchar, period varchar, version integer, status varchar,
        loaded_by varchar, loaded_at timestamp, sha256 varchar, file_name varchar, data_as_of varchar,
        productivity_explanation varchar, example boolean, primary key (plan_id, version))""",
    """create table if not exists plan.lines (
        plan_id varchar, version integer, part varchar, line_id varchar, line varchar, unit varchar,
        staff_group varchar, contract varchar, derived boolean, month date, financial_year varchar, value double,
        source varchar)""",
    """create table if not exists plan.assumptions (
        plan_id varchar, version integer, assumption_id varchar, assumption varchar, value double, unit varchar,
        source varchar)""",
    "alter table plan.versions add column if not exists example boolean",  # stores made before it existed
    """create table if not exists plan.reviews (
        org_code varchar, line_id varchar, month date, revision integer, what_happened varchar, why varchar,
        action varchar, owner varchar, due_date date, status varchar, entered_by varchar, entered_at timestamp,
        source varchar)""",
    """create table if not exists plan.capital (
        plan_id varchar, version integer, scheme varchar, category varchar, beds_added double, opens date,
        financial_year varchar, cost_gbp double)""",
)
TABLES = ("versions", "lines", "assumptions", "capital", "reviews")


def plan_id(org_code: str, period_label: str) -> str:
    return f"{org_code} {period_label}"


@dataclass(frozen=True)
class Stored:
    plan_id: str
    version: int
    status: str
    new: bool  # False when the same workbook with the same status was the latest version already


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    return open_store(path, DDL, read_only)


def _line_rows(doc: PlanDocument, pid: str, version: int) -> pl.DataFrame:
    lines = by_id()
    rows = []
    for line_id, vals in doc.values.items():
        line = lines[line_id]
        for m, v in zip(doc.period.months, vals):
            rows.append((pid, version, line.part, line_id, line.label, line.unit, line.staff_group, line.contract,
                         line.derived, m, financial_year(m), None if np.isnan(v) else float(v),
                         doc.sources.get(line_id, "")))
    return pl.DataFrame(rows, orient="row", schema={
        "plan_id": pl.String, "version": pl.Int32, "part": pl.String, "line_id": pl.String, "line": pl.String,
        "unit": pl.String, "staff_group": pl.String, "contract": pl.String, "derived": pl.Boolean,
        "month": pl.Date, "financial_year": pl.String, "value": pl.Float64, "source": pl.String})


def save_version(path: Path, doc: PlanDocument, status: str, who: str, sha256: str, file_name: str) -> Stored:
    """Store the plan as its next version (or say it is the latest already)."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    pid = plan_id(doc.org_code, doc.period.label)
    con = connect(path)
    try:
        con.execute("begin transaction")
        latest = con.execute("select version, sha256, status from plan.versions where plan_id = ? "
                             "order by version desc limit 1", [pid]).fetchone()
        if latest and latest[1] == sha256 and latest[2] == status:
            con.execute("rollback")
            return Stored(pid, latest[0], status, False)
        version = (latest[0] if latest else 0) + 1
        con.execute("insert into plan.versions values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [pid, doc.org_code, doc.org_name, doc.period.label, version, status, who,
                     dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), sha256, file_name, doc.data_as_of,
                     doc.notes.get("productivity_explanation", ""), doc.example])
        frame = _line_rows(doc, pid, version)
        con.register("_lines", frame.to_arrow())
        con.execute("insert into plan.lines select * from _lines")
        con.unregister("_lines")
        con.executemany("insert into plan.assumptions values (?, ?, ?, ?, ?, ?, ?)",
                        [[pid, version, a.assumption_id, a.label, a.value, a.unit, a.source]
                         for a in doc.assumptions])
        cap = [[pid, version, s.name, s.category, s.beds_added, s.start, fy, cost]
               for s in doc.capital for fy, cost in s.by_year.items()]
        if cap:
            con.executemany("insert into plan.capital values (?, ?, ?, ?, ?, ?, ?, ?)", cap)
        con.execute("commit")
        return Stored(pid, version, status, True)
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.close()


def ensure_store(path: Path, example: Path = EXAMPLE) -> None:
    """A data folder's first use of the store: the bundled example plan, as version 1 (approved), so the plan's
    pages have something to show. Never when the store exists (an analyst's versions are never touched)."""
    import hashlib

    from .workbook import read_workbook

    if path.exists() or not example.exists():
        return
    doc, problems = read_workbook(example)
    if problems:
        raise ValueError(f"the bundled example plan {example.name} does not load: {problems[0]}")
    save_version(path, doc, "approved", EXAMPLE_LOADER, hashlib.sha256(example.read_bytes()).hexdigest(),
                 example.name)


def plan_of_record(con: duckdb.DuckDBPyConnection, pid: str) -> int | None:
    """The latest approved version of a plan, or None."""
    row = con.execute("select max(version) from plan.versions where plan_id = ? and status = 'approved'",
                      [pid]).fetchone()
    return row[0] if row else None


def read_document(con: duckdb.DuckDBPyConnection, pid: str, version: int, schema: str = "plan") -> PlanDocument:
    """A stored version as a PlanDocument (values, sources, assumptions, capital, notes)."""
    head = con.execute(f"select org_code, org_name, period, data_as_of, productivity_explanation, example "
                       f"from {schema}.versions where plan_id = ? and version = ?", [pid, version]).fetchone()
    if head is None:
        raise KeyError(f"no version {version} of plan {pid}")
    args = [pid, version]
    return document_from_rows(
        head,
        con.execute(f"select line_id, month, value, source from {schema}.lines where plan_id = ? and version = ?",
                    args).fetchall(),
        con.execute(f"select assumption_id, assumption, value, unit, source from {schema}.assumptions "
                    "where plan_id = ? and version = ?", args).fetchall(),
        con.execute(f"select scheme, category, beds_added, opens, financial_year, cost_gbp from {schema}.capital "
                    "where plan_id = ? and version = ?", args).fetchall())


def document_from_rows(head: tuple, line_rows: list[tuple], assumption_rows: list[tuple],
                       capital_rows: list[tuple]) -> PlanDocument:
    """A PlanDocument from stored rows: head (org_code, org_name, period, data_as_of, productivity_explanation,
    example), lines (line_id, month, value, source), assumptions (id, label, value, unit, source), capital
    (scheme, category, beds_added, opens, financial_year, cost_gbp)."""
    from .document import AssumptionRow, CapitalScheme
    from .period import Period

    period = Period.parse(head[2])
    index = {m: i for i, m in enumerate(period.months)}
    values: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    for line_id, month, value, source in line_rows:
        arr = values.setdefault(line_id, np.full(len(index), np.nan))
        arr[index[month]] = np.nan if value is None else value
        sources[line_id] = source
    schemes: dict[str, CapitalScheme] = {}
    for name, cat, beds, opens, fy, cost in capital_rows:
        schemes.setdefault(name, CapitalScheme(name, cat, beds, opens, {})).by_year[fy] = cost
    return PlanDocument(head[0], head[1], period, values, sources, [AssumptionRow(*r) for r in assumption_rows],
                        list(schemes.values()),
                        {"productivity_explanation": head[4] or "", "example": "yes" if head[5] else ""},
                        head[3] or "")
