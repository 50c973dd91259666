"""Drafting and loading plans for the command line (and the dashboards): who may plan for which organisation,
the served tables a draft is built from, and a load that stores a version only when every cell is good."""
from __future__ import annotations

import getpass
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from ..access import load_users, users_file_path, visible_orgs
from ..config import Paths
from .compare import changed_checks, changed_lines
from .document import PlanDocument
from .period import Period
from .prefill import DraftError, draft
from .store import Stored, plan_id, read_document, save_version
from .tables import org_targets
from .triangulation import Check, triangulate
from .workbook import read_workbook, write_workbook


def served(paths: Paths) -> duckdb.DuckDBPyConnection:
    if not paths.serving.exists():
        raise DraftError(f"no served data yet ({paths.serving}): run `ibp run` first")
    return duckdb.connect(str(paths.serving), read_only=True)


def access_problem(con: duckdb.DuckDBPyConnection, who: str, org_code: str) -> str | None:
    """Why this user may not plan for this organisation, or None. With no users file (local mode) anyone may.
    Planning is narrower than seeing: a trust user sees its peers on the dashboards but plans for its own trust
    only; an ICB user plans for the ICB and its organisations; an admin for any."""
    users = load_users(users_file_path())
    if not users:
        return None
    user = users.get(who)
    if user is None:
        return f"{who} is not a user in {users_file_path()} (add one with `ibp user add`, or pass --user)"
    if user.role == "trust":
        allowed: set[str] | None = {user.org_code or ""}
    else:
        orgs = con.sql("select org_code, org_type, parent_icb_code from s1_current_state.organisations").pl()
        allowed = visible_orgs(user, orgs, pl.DataFrame(schema={"org_code": pl.String, "peer_group_id": pl.Int64}))
    if allowed is not None and org_code not in allowed:
        return f"{user.display} cannot plan for {org_code}"
    return None


def default_user() -> str:
    return getpass.getuser()


def draft_file(con: duckdb.DuckDBPyConnection, org_code: str, period: Period, out: Path) -> Path:
    return write_workbook(draft(con, org_code, period), out)


@dataclass
class LoadResult:
    problems: list[str] = field(default_factory=list)
    stored: Stored | None = None
    checks: list[Check] = field(default_factory=list)
    previous: int | None = None  # the version compared with (the latest before this one)
    moved: list[str] = field(default_factory=list)  # lines whose numbers changed since it
    verdicts: list[str] = field(default_factory=list)  # checks whose verdict changed since it


def _previous(paths: Paths, pid: str) -> tuple[int, PlanDocument] | None:
    """The latest stored version of a plan, before this load."""
    if not paths.plan_store.exists():
        return None
    con = duckdb.connect(str(paths.plan_store), read_only=True)
    try:
        row = con.execute("select max(version) from plan.versions where plan_id = ?", [pid]).fetchone()
        return (row[0], read_document(con, pid, row[0])) if row and row[0] else None
    finally:
        con.close()


def load_file(paths: Paths, file: Path, status: str, who: str) -> LoadResult:
    """Read, check and store one workbook as a new version; nothing is stored when there is any problem."""
    doc, problems = read_workbook(file)
    if problems:
        return LoadResult([f"{file.name}: {p}" for p in problems])
    con = served(paths)
    try:
        known = con.execute("select org_name, valid_to from s1_current_state.organisations where org_code = ?",
                            [doc.org_code]).fetchone()
        if known is None:
            return LoadResult([f"{file.name}: README: {doc.org_code!r} is not an organisation in the served data"])
        if known[1] is not None:
            return LoadResult([f"{file.name}: README: {doc.org_code} ({known[0]}) closed on {known[1]:%-d %B %Y}"])
        refused = access_problem(con, who, doc.org_code)
        if refused:
            return LoadResult([f"{file.name}: {refused}"])
        targets = org_targets(con, doc.org_code)
    finally:
        con.close()
    previous = _previous(paths, plan_id(doc.org_code, doc.period.label))
    stored = save_version(paths.plan_store, doc, status, who, hashlib.sha256(file.read_bytes()).hexdigest(),
                          file.name)
    checks = triangulate(doc, targets)
    result = LoadResult([], stored, checks)
    if previous and stored.new:
        result.previous = previous[0]
        result.moved = changed_lines(previous[1], doc)
        result.verdicts = changed_checks(triangulate(previous[1], targets), checks)
    return result


def versions(paths: Paths) -> pl.DataFrame:
    """Every stored version, newest first (for `ibp plan list`)."""
    if not paths.plan_store.exists():
        return pl.DataFrame()
    con = duckdb.connect(str(paths.plan_store), read_only=True)
    try:
        return con.sql("select plan_id, version, status, loaded_by, loaded_at, file_name from plan.versions "
                       "order by plan_id, version desc").pl()
    finally:
        con.close()
