"""Building the warehouse's `plan` tables: the store's versions copied in, and their triangulation."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl

from ..lib.duckdb_tables import replace_table, table_exists
from .actuals import tracked_versions
from .document import PlanDocument
from .lines import ACTIVITY
from .store import DDL, TABLES, ensure_store, plan_id, read_document
from .triangulation import CHECK_NAMES, triangulate

TARGETS = "s2_triple_aim.targets"
ORGS = "s1_current_state.organisations"


def copy_store(con: duckdb.DuckDBPyConnection, store: Path) -> dict[str, int]:
    """Replace plan.versions, lines, assumptions, capital and reviews with the store's (empty when there is no
    store)."""
    ensure_store(store)
    for t in TABLES:
        con.execute(f"drop table if exists plan.{t}")
    for sql in DDL:
        con.execute(sql)
    if store.exists():
        con.execute(f"attach '{store}' as plan_store (read_only)")
        try:
            held = {r[0] for r in con.execute("select table_name from information_schema.tables where "
                                              "table_catalog = 'plan_store' and table_schema = 'plan'").fetchall()}
            for t in TABLES:
                if t in held:  # a store made before a table existed has none of its rows
                    con.execute(f"insert into plan.{t} by name select * from plan_store.plan.{t}")
        finally:
            con.execute("detach plan_store")
    con.execute("alter table plan.versions add column is_plan_of_record boolean")
    con.execute("""update plan.versions v set is_plan_of_record = (v.status = 'approved' and v.version = (
                       select max(version) from plan.versions a where a.plan_id = v.plan_id
                       and a.status = 'approved'))""")
    return {t: con.execute(f"select count(*) from plan.{t}").fetchone()[0] for t in TABLES}


def org_targets(con: duckdb.DuckDBPyConnection, org_code: str) -> dict[str, dict[dt.date, float]]:
    """The organisation's primary trajectory of each standard a plan line is checked against."""
    if not table_exists(con, TARGETS):
        return {}
    metrics = [line.actual[0] for line in ACTIVITY if line.standard]
    rows = con.execute(f"select metric_id, period_start, target_value from {TARGETS} where org_code = ? "
                       f"and is_primary and in_force and metric_id in ({', '.join('?' * len(metrics))})",
                       [org_code, *metrics]).fetchall()
    out: dict[str, dict[dt.date, float]] = {}
    for metric, month, target in rows:
        out.setdefault(metric, {})[month] = target
    return out


def trusts_of(con: duckdb.DuckDBPyConnection, icb: str) -> list[str]:
    """The NHS trusts of an ICB today (ODS parent): the trusts whose plans an ICB's plan should add up to."""
    if not table_exists(con, ORGS):
        return []
    return [r[0] for r in con.execute(f"""select org_code from {ORGS}
                                          where parent_icb_code = ? and org_type = 'nhs_trust' and valid_to is null
                                          order by org_code""", [icb]).fetchall()]


def trust_plans(con: duckdb.DuckDBPyConnection, doc: PlanDocument, tracked: dict[str, int]
                ) -> dict[str, PlanDocument | None]:
    """Each NHS trust of an ICB -> its tracked plan for the ICB plan's period (None: none yet); {} for a trust."""
    out: dict[str, PlanDocument | None] = {}
    for trust in trusts_of(con, doc.org_code):
        pid = plan_id(trust, doc.period.label)
        out[trust] = read_document(con, pid, tracked[pid]) if pid in tracked else None
    return out


def build_triangulation(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """plan.triangulation: every check of every version (an ICB's also against its trusts' tracked plans);
    returns (rows, failed checks)."""
    rows = []
    tracked = dict(tracked_versions(con))
    for pid, version, org in con.execute("select plan_id, version, org_code from plan.versions").fetchall():
        doc = read_document(con, pid, version)
        for c in triangulate(doc, org_targets(con, org), trust_plans(con, doc, tracked)):
            rows.append({"plan_id": pid, "version": version, "check_id": c.check_id,
                         "check_name": CHECK_NAMES[c.check_id], "subject": c.subject, "period": c.period,
                         "status": c.status, "planned": c.planned, "expected": c.expected,
                         "tolerance": c.tolerance, "unit": c.unit, "message": c.message})
    frame = pl.DataFrame(rows, schema={
        "plan_id": pl.String, "version": pl.Int32, "check_id": pl.String, "check_name": pl.String,
        "subject": pl.String, "period": pl.String, "status": pl.String, "planned": pl.Float64,
        "expected": pl.Float64, "tolerance": pl.Float64, "unit": pl.String, "message": pl.String})
    replace_table(con, "plan", "triangulation", frame)
    return frame.height, frame.filter(pl.col("status") == "fail").height
