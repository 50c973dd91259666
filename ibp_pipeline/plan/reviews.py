"""The review cycle: for each exception of a plan (a line off plan in a month), a review record saying what
happened, why, the action, its owner, its due date and whether it is open or closed. Reviews are data: every
revision is kept in the plan store (plan.reviews in data/plans.duckdb, which no refresh drops), the latest revision
of each is what the Plan page shows (dashboards/plan.reviews), and an open review is shown again every month until
it is closed.

Entered from a CSV (`ibp plan review FILE.csv`), one row per review, columns:
org_code, line, month (YYYY-MM), what_happened, why, action, owner, due_date (YYYY-MM-DD), status (open|closed).
Every row is checked; any problem is one line naming the row, the column, the value and the rule, and then
nothing is stored (a review half-loaded would mislead a board).
"""
from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from .lines import by_id

COLUMNS = ("org_code", "line", "month", "what_happened", "why", "action", "owner", "due_date", "status")
STATUSES = ("open", "closed")


@dataclass(frozen=True)
class Review:
    org_code: str
    line_id: str
    month: dt.date
    what_happened: str
    why: str
    action: str
    owner: str
    due_date: dt.date
    status: str


def _month(text: str) -> dt.date | None:
    try:
        d = dt.datetime.strptime(text.strip()[:7], "%Y-%m")
    except ValueError:
        return None
    return dt.date(d.year, d.month, 1) if len(text.strip()) in (7, 10) else None


def read_reviews(path: Path) -> tuple[list[Review], list[str]]:
    """The reviews in a CSV and the problems found (row numbers count the header as row 1)."""
    problems: list[str] = []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            return [], [f"{path.name}: no column {', '.join(missing)} (a review file has {', '.join(COLUMNS)})"]
        rows = [{k.strip().lower(): (v or "").strip() for k, v in r.items() if k} for r in reader]
    lines = by_id()
    out = []
    for n, r in enumerate(rows, start=2):
        def bad(column: str, rule: str) -> None:
            problems.append(f"{path.name}: row {n}, column '{column}': {r[column]!r} {rule}")

        month = _month(r["month"])
        if month is None:
            bad("month", "is not a month written YYYY-MM")
        try:
            due = dt.date.fromisoformat(r["due_date"])
        except ValueError:
            due = None
            bad("due_date", "is not a date written YYYY-MM-DD")
        if r["line"] not in lines or lines[r["line"]].derived:
            bad("line", "is not a plan line (a code from column A of the plan workbook)")
        if r["status"].lower() not in STATUSES:
            bad("status", "must be open or closed")
        for column in ("org_code", "what_happened", "action", "owner"):
            if not r[column]:
                bad(column, "is empty: every review says what happened, the action and its owner")
        if month and due and r["line"] in lines and r["status"].lower() in STATUSES:
            out.append(Review(r["org_code"].upper(), r["line"], month, r["what_happened"], r["why"], r["action"],
                              r["owner"], due, r["status"].lower()))
    return (out if not problems else []), problems


def save_reviews(store: Path, reviews: list[Review], who: str, source: str) -> list[int]:
    """Store each review as the next revision of its (organisation, line, month), in one transaction."""
    from .store import connect

    con = connect(store)
    try:
        con.execute("begin transaction")
        revisions = []
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        for r in reviews:
            last = con.execute("select max(revision) from plan.reviews where org_code = ? and line_id = ? and "
                               "month = ?", [r.org_code, r.line_id, r.month]).fetchone()[0] or 0
            con.execute("insert into plan.reviews values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [r.org_code, r.line_id, r.month, last + 1, r.what_happened, r.why, r.action, r.owner,
                         r.due_date, r.status, who, now, source])
            revisions.append(last + 1)
        con.execute("commit")
        return revisions
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.close()
