"""The plan's finance part is the budget. Its surplus in each financial year is the headroom it leaves, and what
the rest of the pipeline says is needed or could be chosen costs money against it:
- step 4's needs that carry a cost (the pay of the staff the beds short at 92% occupancy need, a year);
- each scenario's initiatives (steps 5 and 6: the latest run of each scenario, its monthly cost on the
  organisation summed over the months of the year it covers).

One row per plan version, year and item, with the headroom left after that item alone: the items are alternatives
a board weighs (a need, or a scenario), not one sum.
"""
from __future__ import annotations

import duckdb
import numpy as np
import polars as pl

from ..lib.duckdb_tables import replace_table, table_exists
from .actuals import tracked_versions
from .period import financial_year
from .store import read_document

NEEDS = "s4_gaps.needs"
RESULTS, RUNS = "s6_scenarios.results", "s6_scenarios.runs"
SCHEMA = {"plan_id": pl.String, "version": pl.Int32, "org_code": pl.String, "financial_year": pl.String,
          "kind": pl.String, "item": pl.String, "cost_gbp": pl.Float64, "headroom_gbp": pl.Float64,
          "headroom_after_gbp": pl.Float64, "fits": pl.Boolean, "months_costed": pl.Int32, "source": pl.String}
BREAK_EVEN_GBP = 1_000.0  # the workbook keeps each cell to the pound: a surplus this close to 0 breaks even
KINDS = {"headroom": "The plan's surplus", "need": "A need (step 4)", "scenario": "A scenario's initiatives"}


def budget_rows(headroom: dict[str, float], needs: list[tuple[str, float, str]],
                scenarios: list[tuple[str, str, float, int]]) -> list[dict]:
    """headroom: year -> the plan's surplus; needs: (what, cost a year, source); scenarios: (scenario, year, cost in
    that year, months costed). Rows for every year of the plan, in order: its headroom, then each item against it."""
    out = []
    for fy, room in headroom.items():
        out.append({"financial_year": fy, "kind": "headroom", "item": "The plan's surplus (deficit if negative)",
                    "cost_gbp": None, "headroom_gbp": room, "headroom_after_gbp": room,
                    "fits": room >= -BREAK_EVEN_GBP, "months_costed": 12,
                    "source": "the plan's Finance sheet: income less pay, non-pay and savings"})
        items = [("need", what, cost, 12, source) for what, cost, source in needs]
        items += [("scenario", name, cost, months, f"the latest run of scenario '{name}' ({months} month(s) of "
                                                   f"{fy} in its forecast)")
                  for name, year, cost, months in scenarios if year == fy and cost > 0]
        for kind, what, cost, months, source in items:
            out.append({"financial_year": fy, "kind": kind, "item": what, "cost_gbp": cost, "headroom_gbp": room,
                        "headroom_after_gbp": room - cost, "fits": room - cost >= -BREAK_EVEN_GBP,
                        "months_costed": months, "source": source})
    return out


def _needs(con: duckdb.DuckDBPyConnection, org: str) -> list[tuple[str, float, str]]:
    if not table_exists(con, NEEDS):
        return []
    return con.execute(f"""select description, result, formula || ' (' || source || ', ' ||
                                  strftime(period_start, '%b %Y') || ')'
                           from {NEEDS} where org_code = ? and unit = 'gbp per year' and result > 0
                           qualify row_number() over (partition by measure order by period_start desc) = 1
                           order by measure""", [org]).fetchall()


def _scenarios(con: duckdb.DuckDBPyConnection, org: str) -> list[tuple[str, str, float, int]]:
    if not (table_exists(con, RESULTS) and table_exists(con, RUNS)):
        return []
    rows = con.execute(f"""with latest as (select scenario, arg_max(run_id, run_at) as run_id from {RUNS}
                                           group by scenario)
                           select r.scenario, r.period_start, sum(r.cost_gbp)
                           from {RESULTS} r join latest using (scenario, run_id)
                           where r.org_code = ? group by 1, 2""", [org]).fetchall()
    totals: dict[tuple[str, str], list[float]] = {}
    for scenario, month, cost in rows:
        totals.setdefault((scenario, financial_year(month)), []).append(float(cost or 0.0))
    return [(s, fy, float(np.sum(c)), len(c)) for (s, fy), c in sorted(totals.items())]


def build_budget(con: duckdb.DuckDBPyConnection) -> int:
    """plan.budget for every plan's tracked version; returns its rows."""
    rows: list[dict] = []
    for pid, version in tracked_versions(con):
        doc = read_document(con, pid, version)
        fys = np.array([financial_year(m) for m in doc.period.months])
        surplus = np.nan_to_num(doc.values["surplus"])
        headroom = {fy: float(surplus[fys == fy].sum()) for fy in doc.period.years}
        for r in budget_rows(headroom, _needs(con, doc.org_code), _scenarios(con, doc.org_code)):
            rows.append({"plan_id": pid, "version": version, "org_code": doc.org_code, **r})
    frame = pl.DataFrame(rows, schema=SCHEMA) if rows else pl.DataFrame(schema=SCHEMA)
    replace_table(con, "plan", "budget", frame)
    return frame.height
