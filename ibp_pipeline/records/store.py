"""What people enter for the board, kept: the Integrated Performance Report's exception reports (narrative,
actions, owner, recovery date for a measure in special-cause concern or failing its target) and the risk register
(owner, impact, likelihood, controls).

Why a database of its own (data/records.duckdb, IBP_RECORDS_STORE): a refresh, `ibp rebuild` or a new warehouse
never touches it, so nothing a board was told is lost; back it up with the data folder. Every save is a new
revision (who, when, from where); nothing is updated or deleted, and the latest revision is what is shown.
Checks are pure functions that return problems in words, one line each, so the page, the CLI and tests say the
same thing.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import polars as pl

from ..lib.duckdb_tables import open_store, table_exists

DDL = (
    "create schema if not exists ipr",
    """create table if not exists ipr.exception_reports (
        org_code varchar, metric_id varchar, revision integer, narrative varchar, actions varchar, owner varchar,
        recovery_date date, entered_by varchar, entered_at timestamp, source varchar)""",
    """create table if not exists ipr.risks (
        org_code varchar, risk_id varchar, revision integer, title varchar, standard_id varchar, owner varchar,
        impact integer, likelihood integer, controls varchar, status varchar, entered_by varchar,
        entered_at timestamp, source varchar)""",
)
RISK_STATUSES = ("open", "closed")
# The NHS 5 x 5 risk matrix (National Patient Safety Agency, "A risk matrix for risk managers", 2008): the score is
# impact x likelihood; 1-3 low, 4-6 moderate, 8-12 high, 15-25 extreme.
RISK_LEVELS = ((3, "low"), (6, "moderate"), (12, "high"), (25, "extreme"))


@dataclass(frozen=True)
class ExceptionReport:
    org_code: str
    metric_id: str
    narrative: str
    actions: str
    owner: str
    recovery_date: dt.date


@dataclass(frozen=True)
class Risk:
    org_code: str
    risk_id: str
    title: str
    standard_id: str | None
    owner: str
    impact: int
    likelihood: int
    controls: str
    status: str = "open"


def risk_level(impact: int, likelihood: int) -> tuple[int, str]:
    """(score, level) on the NHS 5 x 5 matrix: 4 x 4 = 16 -> (16, 'extreme')."""
    score = impact * likelihood
    return score, next(level for top, level in RISK_LEVELS if score <= top)


def check_exception(r: ExceptionReport, today: dt.date | None = None) -> list[str]:
    """Problems with an exception report, in words (empty when it can be kept)."""
    problems = [f"{label} is empty: an exception report says what is happening, the actions and who owns them"
                for label, value in (("Narrative", r.narrative), ("Actions", r.actions), ("Owner", r.owner))
                if not value.strip()]
    if r.recovery_date < (today or dt.date.today()) - dt.timedelta(days=366):
        problems.append(f"Recovery date {r.recovery_date:%-d %B %Y} is more than a year ago: give the date the "
                        "measure is expected back within its limits or at target")
    return problems


def check_risk(r: Risk) -> list[str]:
    problems = [f"{label} is empty: every risk has a title, an owner and its controls"
                for label, value in (("Title", r.title), ("Owner", r.owner), ("Controls", r.controls))
                if not value.strip()]
    for label, value in (("Impact", r.impact), ("Likelihood", r.likelihood)):
        if not isinstance(value, int) or not 1 <= value <= 5:
            problems.append(f"{label} must be a whole number from 1 to 5 (the NHS 5 x 5 risk matrix), got {value!r}")
    if r.status not in RISK_STATUSES:
        problems.append(f"Status must be open or closed, got {r.status!r}")
    return problems


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    return open_store(path, DDL, read_only)


def _save(path: Path, table: str, key: dict[str, str], row: dict, who: str, source: str) -> int:
    con = connect(path)
    try:
        con.execute("begin transaction")
        where = " and ".join(f"{k} = ?" for k in key)
        revision = (con.execute(f"select max(revision) from ipr.{table} where {where}",
                                list(key.values())).fetchone()[0] or 0) + 1
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        values = {**row, "revision": revision, "entered_by": who, "entered_at": now, "source": source}
        columns = [c[0] for c in con.execute(f"describe ipr.{table}").fetchall()]
        con.execute(f"insert into ipr.{table} values ({', '.join('?' for _ in columns)})",
                    [values[c] for c in columns])
        con.execute("commit")
        return revision
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.close()


def save_exception(path: Path, report: ExceptionReport, who: str, source: str = "dashboard") -> int:
    """Keep an exception report as the next revision for its organisation and measure; returns the revision.
    ValueError (every problem, one line each) when it cannot be kept, and then nothing is stored."""
    problems = check_exception(report)
    if problems:
        raise ValueError("\n".join(problems))
    return _save(path, "exception_reports", {"org_code": report.org_code, "metric_id": report.metric_id},
                 asdict(report), who, source)


def save_risk(path: Path, risk: Risk, who: str, source: str = "dashboard") -> int:
    problems = check_risk(risk)
    if problems:
        raise ValueError("\n".join(problems))
    return _save(path, "risks", {"org_code": risk.org_code, "risk_id": risk.risk_id}, asdict(risk), who, source)


def _latest(path: Path, table: str, key: str, org_codes: list[str]) -> pl.DataFrame:
    """Latest revision of each record for the organisations; empty (with no columns) without a store."""
    if not path.exists() or not org_codes:
        return pl.DataFrame()
    try:
        con = connect(path, read_only=True)
    except duckdb.IOException:  # held by a writer for a moment: show nothing rather than fail the page
        return pl.DataFrame()
    try:
        if not table_exists(con, "ipr", table):
            return pl.DataFrame()
        return con.execute(f"""select * from ipr.{table} where org_code in (select unnest(?))
                               qualify row_number() over (partition by org_code, {key} order by revision desc) = 1
                               order by org_code, {key}""", [org_codes]).pl()
    finally:
        con.close()


def latest_exceptions(path: Path, org_codes: list[str]) -> pl.DataFrame:
    return _latest(path, "exception_reports", "metric_id", org_codes)


def latest_risks(path: Path, org_codes: list[str]) -> pl.DataFrame:
    return _latest(path, "risks", "risk_id", org_codes)
