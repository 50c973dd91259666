"""Six Steps workforce planning (Skills for Health) for each plan's tracked version, by staff group and month
(plan.workforce_six_steps):

1. Scope: the plan's organisation, period and staff groups (the staff groups of NHS Workforce Statistics).
2. Service change: the plan's weighted activity (activity at national unit costs) against the year before the plan,
   as an index (1.05 = 5% more activity).
3. Required workforce: the organisation's own ratio (latest staff in post per unit of weighted activity, less the
   framework's productivity a year: what the draft prefills) and, for its uncertainty, the ratios of its peer group
   (s2_triple_aim.peer_groups): staff in post per GBP 1m a year of A&E, emergency and diagnostic activity at
   national unit costs, their 25th to 75th percentile times the plan's own activity on the same basis.
4. Availability: staff in post carried forward month by month with the plan's leaver and joiner rates (Assumptions
   sheet; editable): available = last month's x (1 - leavers/12 + joiners/12).
5. Plan to deliver: the gap (required - available), the substantive recruitment the plan makes beyond that
   (planned substantive - available), the bank and agency FTE it plans to bridge, what is left unbridged, and the
   cost of the bank and agency (annual cost per FTE / 12, agency at its multiplier).
6. Implement and monitor: staff in post as published (substantive), where months overlap.
"""
from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import polars as pl

from ..lib.duckdb_tables import replace_table, table_exists
from .actuals import tracked_versions
from .assumptions import load
from .document import PlanDocument
from .period import financial_year
from .prefill import plan_prices, requirement_factor, weighted_activity
from .store import read_document

RATIO_BASIS = ("ae_attendances", "ae_emergency_admissions", "dm01_tests")  # priced lines peers publish monthly
COSTS = "s3_resources.activity_costs"
VALUES = "s1_current_state.metric_values"
PEERS = "s2_triple_aim.peer_groups"


def peer_ratios(con: duckdb.DuckDBPyConnection, org_code: str) -> dict[str, np.ndarray]:
    """Staff group -> each peer trust's latest staff in post per GBP 1m of A&E, emergency and diagnostic activity
    at national unit costs over its latest 12 months (the trust itself included)."""
    if not all(table_exists(con, t) for t in (COSTS, VALUES, PEERS)):
        return {}
    groups = [g.metric_id for g in load().staff_groups]
    rows = con.execute(f"""
        with peers as (select org_code from {PEERS} where peer_group_id =
                           (select peer_group_id from {PEERS} where org_code = ?)),
        costed as (select org_code, activity_type, period_start, estimated_cost_gbp from {COSTS}
                   where org_code in (select org_code from peers) and activity > 0
                     and (activity_type in ('ae_attendances', 'emergency_admissions')
                          or activity_detail = 'All DM01 tests')),
        last12 as (select org_code, activity_type, sum(estimated_cost_gbp) as cost from (
                       select *, row_number() over (partition by org_code, activity_type
                                                    order by period_start desc) as r from costed)
                   where r <= 12 group by all having count(*) = 12),
        activity as (select org_code, sum(cost) / 1e6 as gbp_m from last12 group by org_code
                     having count(*) = 3),
        staff as (select org_code, metric_id, value from {VALUES}
                  where org_code in (select org_code from peers) and metric_id in
                        ({', '.join('?' * len(groups))}) and value is not null
                  qualify row_number() over (partition by org_code, metric_id order by period_start desc) = 1)
        select s.metric_id, s.value / a.gbp_m from staff s join activity a using (org_code) where a.gbp_m > 0
    """, [org_code, *groups]).fetchall()
    out: dict[str, list[float]] = {}
    for metric, ratio in rows:
        out.setdefault(metric.removeprefix("workforce_fte_"), []).append(ratio)
    return {g: np.array(v) for g, v in out.items()}


def six_steps(doc: PlanDocument, ratios: dict[str, np.ndarray], actual: dict[str, dict[dt.date, float]],
              pid: str, version: int) -> list[dict]:
    """The rows for one plan version (see the module doc); pure, so tested on constructed plans."""
    months = doc.period.months
    n = len(months)
    base_wa = doc.assumption("baseline_weighted_activity_gbp") / 12
    wa = weighted_activity(doc.values, plan_prices(doc))
    index = wa / base_wa if base_wa else np.ones(n)
    basis = weighted_activity(doc.values, plan_prices(doc, RATIO_BASIS))
    fys = [financial_year(m) for m in months]
    annual_basis = {fy: basis[[f == fy for f in fys]].sum() / 1e6 for fy in doc.period.years}
    p = doc.assumption("productivity_pct_a_year") / 100
    leave, join = doc.assumption("leaver_rate_pct_a_year") / 100, doc.assumption("joiner_rate_pct_a_year") / 100
    mult = doc.assumption("agency_cost_multiplier")
    factor = requirement_factor(wa, base_wa * 12, p, months)
    out = []
    for g in load().staff_groups:
        base = doc.assumption(f"baseline_fte_{g.id}")
        required = base * factor
        peers = ratios.get(g.id, np.array([]))
        low, high = (np.percentile(peers, [25, 75]) if len(peers) >= 4 else (np.nan, np.nan))
        available = np.empty(n)
        level = base
        for i in range(n):
            level = level * (1 - leave / 12 + join / 12)
            available[i] = level
        sub, bank, agency = (np.nan_to_num(doc.values[f"fte_{g.id}_{c}"]) for c in ("substantive", "bank", "agency"))
        cost = doc.assumption(f"annual_cost_{g.id}") / 12
        for i, m in enumerate(months):
            yearly = annual_basis[fys[i]]
            out.append({
                "plan_id": pid, "version": version, "org_code": doc.org_code, "example": doc.example,
                "staff_group": g.id, "staff_group_label": g.label, "month": m, "financial_year": fys[i],
                "activity_index": float(index[i]), "required_fte": float(required[i]),
                "required_fte_peer_low": float(low * yearly) if np.isfinite(low) else None,
                "required_fte_peer_high": float(high * yearly) if np.isfinite(high) else None,
                "peer_count": int(len(peers)), "available_fte": float(available[i]),
                "planned_substantive_fte": float(sub[i]), "planned_bank_fte": float(bank[i]),
                "planned_agency_fte": float(agency[i]), "gap_fte": float(required[i] - available[i]),
                "recruitment_fte": float(sub[i] - available[i]), "bridge_fte": float(bank[i] + agency[i]),
                "unbridged_fte": float(required[i] - sub[i] - bank[i] - agency[i]),
                "bridge_cost_gbp": float((bank[i] + mult * agency[i]) * cost),
                "actual_fte": actual.get(g.id, {}).get(m)})
    return out


def build_workforce_six_steps(con: duckdb.DuckDBPyConnection) -> int:
    """plan.workforce_six_steps for every plan's tracked version; returns its rows."""
    rows: list[dict] = []
    for pid, version in tracked_versions(con):
        doc = read_document(con, pid, version)
        actual: dict[str, dict[dt.date, float]] = {}
        if table_exists(con, VALUES):
            for metric, month, value in con.execute(
                    f"select metric_id, period_start, value from {VALUES} where org_code = ? and metric_id like "
                    "'workforce_fte_%' and value is not null", [doc.org_code]).fetchall():
                actual.setdefault(metric.removeprefix("workforce_fte_"), {})[month] = value
        rows += six_steps(doc, peer_ratios(con, doc.org_code), actual, pid, version)
    frame = pl.DataFrame(rows, schema=SCHEMA) if rows else pl.DataFrame(schema=SCHEMA)
    replace_table(con, "plan", "workforce_six_steps", frame)
    return frame.height


SCHEMA = {"plan_id": pl.String, "version": pl.Int32, "org_code": pl.String, "example": pl.Boolean,
          "staff_group": pl.String, "staff_group_label": pl.String, "month": pl.Date, "financial_year": pl.String,
          "activity_index": pl.Float64, "required_fte": pl.Float64, "required_fte_peer_low": pl.Float64,
          "required_fte_peer_high": pl.Float64, "peer_count": pl.Int32, "available_fte": pl.Float64,
          "planned_substantive_fte": pl.Float64, "planned_bank_fte": pl.Float64, "planned_agency_fte": pl.Float64,
          "gap_fte": pl.Float64, "recruitment_fte": pl.Float64, "bridge_fte": pl.Float64,
          "unbridged_fte": pl.Float64, "bridge_cost_gbp": pl.Float64, "actual_fte": pl.Float64}
