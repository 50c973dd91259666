"""Step 4 needs: what it would take to close each gap, by organisation, at the latest period of each source.

Why: a gap in points ("we are at 60% against 92%") does not tell a leader what to do. These rows turn each gap
into a quantity a plan can hold: clock stops a week, beds, attendances seen within 4 hours, tests a week, FTE and
pounds. Every row carries its formula in words, its inputs (JSON) and its assumptions, so a reader can redo it.

Table s4_gaps.needs, one row per organisation x need measure:
org_code, org_name, org_level ('provider','icb','region','england'), period_start (the data month used),
need_type ('waiting_list','beds','ae_4hr','diagnostics','workforce'), measure, description, result, unit,
formula (text), inputs (JSON text: every number the formula used, with its source), assumptions (text),
source, is_estimate (bool).

Need types (parameters of build_needs in brackets)
- waiting_list (RTT, queueing theory as in NHSRwaitinglist; see queueing.py): demand, clearances, queue and mean
  wait -> queue size, mean wait, target mean wait, target queue size, Kingman variability term, target
  capacity, relief capacity, capacity needed (relief capacity when the queue is more than twice its target, as
  R/wl_stats.R does, else target capacity), extra capacity needed (capacity needed - current clearances), load,
  pressure.
  * Published clock starts and stops first (the RTT full CSV extract, April 2026 in the bundle;
    rtt_pathways.real_flows): for every trust, ICB, region and England that has them, weekly demand = that
    month's clock starts x 12/52, weekly completed pathways = its clock stops (admitted + non-admitted) x 12/52,
    queue = its published list, and weekly clearances = demand - the weekly list change between that list and
    the organisation's own published list up to 13 months before (March 2025 in the bundle). An ICB's, region's
    or England's change is the sum of its providers' own changes, because its earlier total covers NHS trusts
    only. None of these rows is an estimate. The two paths below remain for organisations and months without
    published flows.
  * ICB: weekly demand = mean monthly new RTT pathways (clock starts) x 12/52 over the latest `demand_months`
    months of latest.rtt_icb_flows (commissioner based); queue = that file's incomplete pathways in the latest
    month. Weekly clearances = all removals from the flow balance, demand - (list change per week over the
    window), so that load and extra capacity count everything that leaves the list (NHSRwaitinglist's removal
    rate) on the same basis as trusts; the reported completed pathways (clock stops only, without validation
    removals: nationally 348,000 a week against 404,000 removals) are their own row, weekly_completed_pathways.
    Region and England sum their ICBs.
  * Trust without published flows: weekly demand is ESTIMATED as the mean, over the
    latest `demand_months` months, of the patients on the list who started waiting in the last week
    (latest.rtt_incomplete band wk_gt_0_to_1, treatment function C_999 = trust total): weekly additions still
    waiting at month end, a slight undercount (patients whose clock stopped within a week are missed). Checked
    nationally, April 2024 to March 2025: the band averages 332,000 a week on a 7.03 million provider list (4.7%
    of the list a week); the ICB flows file has 402,000 new pathways a week on 8.75 million (4.6%), so per
    patient waiting the two agree, and the absolute gap is the flows file's larger list (it counts 1.2 times the
    provider file's pathways). Weekly clearances are ESTIMATED from the flow balance: demand - (list change per
    week over the window). A cross-check, demand apportioned from the parent ICB's clock starts by the trust's
    share of the ICB's provider-based list, is given in the inputs.
  * Mean wait: from the weekly bands of the incomplete list (each band at its midpoint; 104+ weeks at 104.5).
    For ICBs, regions and England the bands of the providers whose ODS parent ICB (region) it is are summed.
  * cv of demand and capacity default to 1 (Poisson arrivals and exponential service, the R package's default);
    at RTT volumes the Kingman term is a fraction of a patient a week.
- beds (G&A, monthly SitRep via metric_values ga_bed_occupancy_pct): beds needed to run the current occupied
  beds at 92% and at 85% occupancy (occupied / 0.92, occupied / 0.85) and the gap to available beds (positive =
  beds short).
- ae_4hr: extra attendances seen within 4 hours needed in the month = max(0, target% x attendances - attendances
  within 4 hours). The target is the org's row for ae_4hr_pct in s2_triple_aim.targets (rows flagged is_primary,
  or primary, the month itself or the latest earlier month; target_value in percent, 0-100), else the 2025/26
  planning level of 78% by March 2026 (a default).
- diagnostics (DM01 'Total' rows): excess 6+ week waiters = max(0, waiting 6+ weeks - 1% x total waiting); extra
  tests a week to clear them over `diagnostics_weeks` weeks (default relief_weeks) = excess / weeks, and that as
  a % of current weekly activity (monthly tests x 12/52). Assumes the extra tests go to the longest waiters and
  demand and the rest of the list stay as they are.
- workforce: FTE implied by the extra beds of the 92% case (the positive part of the gap) at the peer median
  staff-per-G&A-bed ratio from s3_resources.resource_map (fte_per_ga_bed and nurses_per_ga_bed; the national
  median of the same level when the org has no peer group; the org's own ratio for England), and the annual
  cost of those FTE at `cost_per_fte_gbp`.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl

from ibp_pipeline.lib.duckdb_tables import replace_table, table_exists
from ibp_pipeline.step3_resources.resource_map import ORGS, TABLE as RESOURCE_MAP, VALUES
from ibp_pipeline.step1_current_state.rtt_pathways import LIST, provider_bands_sql, real_flows
from ibp_pipeline.step4_gaps import queueing as q

SCHEMA = "s4_gaps"
TABLE = f"{SCHEMA}.needs"
TARGETS = "s2_triple_aim.targets"
WEEKS_PER_MONTH = 52 / 12
LIST_CHANGE_MONTHS = 13  # the RTT extract's April 2026 against the provider file's March 2025

# A&E default when s2_triple_aim.targets has no row: 2025/26 planning guidance, at least 78% by March 2026.
AE_DEFAULT_TARGET_PCT = 78.0
AE_DEFAULT_TARGET_SOURCE = ("2025/26 NHS planning guidance: 4-hour A&E performance of at least 78% by March 2026 "
                            "(default used because s2_triple_aim.targets had no row for this organisation)")

# Average annual cost of one FTE, built from NHS pay scales so it can be checked and changed.
AFC_BAND5_TOP_2025_26_GBP = 37_796.0  # Agenda for Change 2025/26 (England, from 1 April 2025), Band 5 top point
EMPLOYER_PENSION_RATE = 0.237  # NHS Pension Scheme employer contribution, 23.7% of pensionable pay
EMPLOYER_NI_RATE = 0.15  # employer National Insurance from April 2025 ...
EMPLOYER_NI_THRESHOLD_GBP = 5_000.0  # ... above the secondary threshold of GBP 5,000 a year
DEFAULT_COST_PER_FTE_GBP = round(AFC_BAND5_TOP_2025_26_GBP * (1 + EMPLOYER_PENSION_RATE)
                                 + EMPLOYER_NI_RATE * (AFC_BAND5_TOP_2025_26_GBP - EMPLOYER_NI_THRESHOLD_GBP))
COST_PER_FTE_SOURCE = (
    "Agenda for Change 2025/26 pay scales (NHS Employers, England, effective 1 April 2025): Band 5 top point "
    "GBP 37,796, plus employer pension 23.7% and employer National Insurance 15% above GBP 5,000 = about "
    "GBP 51,700 a year. A proxy for the average cost of one FTE across staff groups (registered nurses, support "
    "staff and doctors together); it leaves out unsocial-hours enhancements, overtime, bank and agency premiums "
    "and non-pay costs, and doctors cost more.")

OUTPUT_COLUMNS = ("org_code", "org_name", "org_level", "period_start", "need_type", "measure", "description",
                  "result", "unit", "formula", "inputs", "assumptions", "source", "is_estimate")

WL_BANDS: tuple[tuple[str, float], ...] = tuple(
    [(f"wk_gt_{i}_to_{i + 1}", float(i)) for i in range(104)] + [("wk_104_plus", 104.0)])


# ---- pure maths -------------------------------------------------------------------------------------------------
def waiting_list_needs(demand: float, clearances: float | None, queue: float, mean_wait: float | None,
                       target_wait: float, factor: float = 4, relief_weeks: float = 26, cv_demand: float = 1,
                       cv_capacity: float = 1) -> dict[str, float | bool | None]:
    """Queueing answers for one waiting list (all per week). clearances and mean_wait may be None (unknown)."""
    target_queue = float(q.calc_target_queue_size(demand, target_wait, factor))
    target_cap = float(q.calc_target_capacity(demand, target_wait, factor, cv_demand, cv_capacity))
    relief = float(q.calc_relief_capacity(demand, queue, target_queue, relief_weeks))
    too_big = bool(q.queue_too_big(queue, target_queue))
    needed = relief if too_big else target_cap
    return {
        "target_mean_wait": float(q.calc_target_mean_wait(target_wait, factor)),
        "target_queue_size": target_queue,
        "kingman_term": float(q.kingman_term(target_wait, factor, cv_demand, cv_capacity)),
        "target_capacity": target_cap,
        "relief_capacity": relief,
        "queue_too_big": too_big,
        "capacity_needed": needed,
        "extra_capacity_needed": None if clearances is None else needed - clearances,
        "load": None if not clearances else float(q.calc_queue_load(demand, clearances)),
        "pressure": None if mean_wait is None or math.isnan(mean_wait)
        else float(q.calc_waiting_list_pressure(mean_wait, target_wait)),
    }


def bed_needs(occupied: float, available: float, occupancy_pct: float) -> dict[str, float]:
    """Beds needed to run `occupied` beds at occupancy_pct (occupied / (pct/100)) and the gap to available beds
    (positive = beds short)."""
    needed = occupied / (occupancy_pct / 100.0)
    return {"beds_needed": needed, "beds_gap": needed - available}


def ae_needs(attendances: float, within_4h: float, target_pct: float) -> dict[str, float]:
    """Extra attendances within 4 hours needed in the period: max(0, target% x attendances - within 4 hours)."""
    return {"extra_within_4h": max(0.0, target_pct / 100.0 * attendances - within_4h),
            "current_pct": 100.0 * within_4h / attendances if attendances else float("nan")}


def diagnostics_needs(total_waiting: float, waiting_6plus: float, monthly_activity: float | None,
                      target_pct: float = 1.0, horizon_weeks: float = 26) -> dict[str, float | None]:
    """Extra tests a week to bring 6+ week waiters down to target_pct of the list over horizon_weeks:
    excess = max(0, waiting_6plus - target% x total_waiting); extra per week = excess / horizon_weeks;
    uplift = extra per week / (monthly_activity x 12/52) x 100."""
    excess = max(0.0, waiting_6plus - target_pct / 100.0 * total_waiting)
    per_week = excess / horizon_weeks
    weekly = None if not monthly_activity else monthly_activity / WEEKS_PER_MONTH
    return {"excess_6plus": excess, "extra_tests_per_week": per_week, "weekly_activity": weekly,
            "uplift_pct": None if not weekly else 100.0 * per_week / weekly}


def workforce_needs(extra_beds: float, staff_per_bed: float, cost_per_fte: float) -> dict[str, float]:
    """FTE implied by extra beds at a staff-per-bed ratio, and its annual cost. Negative gaps (spare beds) count
    as zero: this is what it would take, not a saving."""
    fte = max(0.0, extra_beds) * staff_per_bed
    return {"fte": fte, "cost_gbp": fte * cost_per_fte}


# ---- row building -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Org:
    code: str
    level: str
    period: object


def _clean(v: object) -> object:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, (np.floating,)):
        return _clean(float(v))
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def _row(org: _Org, need_type: str, measure: str, description: str, result: object, unit: str, formula: str,
         inputs: dict, assumptions: str, source: str, is_estimate: bool) -> dict:
    return {"org_code": org.code, "org_level": org.level, "period_start": org.period, "need_type": need_type,
            "measure": measure, "description": description,
            "result": None if result is None else _clean(float(result)), "unit": unit, "formula": formula,
            "inputs": json.dumps({k: _clean(v) for k, v in inputs.items()}, sort_keys=False),
            "assumptions": assumptions, "source": source, "is_estimate": is_estimate}


def _levels_sql(table: str, sum_cols: list[str], extra_keys: str = "period_start") -> str:
    """Provider rows of `table` (org_code, period_start, sum_cols...) plus ICB/region/England sums by ODS parent."""
    sums = ", ".join(f"sum({c}) as {c}" for c in sum_cols)
    plain = ", ".join(sum_cols)
    parts = [f"select org_code, 'provider' as org_level, {extra_keys}, {plain}, 1 as providers from {table}"]
    for level, expr in (("icb", "o.parent_icb_code"), ("region", "o.region_code"), ("england", "'ENGLAND'")):
        parts.append(f"select {expr} as org_code, '{level}' as org_level, {extra_keys}, {sums}, count(*) as providers "
                     f"from {table} t left join {ORGS} o using (org_code) where {expr} is not null group by all")
    return " union all ".join(f"({p})" for p in parts)


def _mean_wait(row: dict) -> float:
    return q.mean_wait_from_bands([row[c] for c, _ in WL_BANDS], [lb for _, lb in WL_BANDS])


def _waiting_list_rows(con: duckdb.DuckDBPyConnection, p: dict) -> list[dict]:
    rows: list[dict] = []
    provider_bands = provider_bands_sql(con)
    if provider_bands is None:
        return rows
    months = int(p["demand_months"])
    band_cols = [c for c, _ in WL_BANDS]
    band_sum = " + ".join(f"coalesce({c}, 0)" for c in band_cols)
    con.sql(f"""create or replace temp table _s4_rtt as
                select provider_code as org_code, period_start,
                       {', '.join(f'coalesce({c}, 0) as {c}' for c in band_cols)},
                       coalesce(total_incomplete, {band_sum}) as queue
                from ({provider_bands})""")
    con.sql(f"create or replace temp table _s4_rtt_lv as {_levels_sql('_s4_rtt', [*band_cols, 'queue'])}")
    trust_last = con.sql("select max(period_start) from _s4_rtt").fetchone()[0]
    if trust_last is None:
        return rows
    bands = {(r["org_code"], r["org_level"], r["period_start"]): r
             for r in con.sql("select * from _s4_rtt_lv").pl().iter_rows(named=True)}
    common = {"target_wait_weeks": p["target_wait"], "factor": p["factor"], "relief_weeks": p["relief_weeks"],
              "cv_demand": p["cv_demand"], "cv_capacity": p["cv_capacity"]}
    base_assumptions = (f"target wait {p['target_wait']} weeks (RTT 92% standard), factor {p['factor']} (mean "
                        f"wait = target / factor), relief within {p['relief_weeks']} weeks; cv of demand "
                        f"{p['cv_demand']} and of capacity {p['cv_capacity']} (1 = Poisson arrivals, exponential "
                        "service: the NHSRwaitinglist default); mean wait from weekly bands at their midpoints, "
                        "104+ weeks at 104.5; factor 4 aims at about 98% within the target if waits are roughly "
                        "exponential, stricter than the 92% standard (92% corresponds to a factor of about "
                        "ln(1 / 0.08) = 2.5)")

    # Published clock starts and stops (the RTT full CSV extract), at every level that has them.
    real_rows, covered = _real_flow_rows(con, p, bands, common, base_assumptions)
    rows.extend(real_rows)

    # ICB (and region, England) flows of the ICB flows file, where no published month is newer.
    icb_demand: dict[str, float] = {}
    if table_exists(con, "latest.rtt_icb_flows") and not any(level != "provider" for _, level in covered):
        flow_last = con.sql("select max(period_start) from latest.rtt_icb_flows").fetchone()[0]
        con.sql(f"""create or replace temp table _s4_flows as
                    select upper(trim(icb_code)) as icb_code, period_start, "new" as new_pathways,
                           completed, incomplete
                    from latest.rtt_icb_flows
                    where period_start > date '{flow_last}' - interval '{months} months'""")
        flows = con.sql(f"""
            with lv as (
                select icb_code as org_code, 'icb' as org_level, period_start, new_pathways, completed, incomplete
                from _s4_flows
                union all
                select o.region_code, 'region', f.period_start, sum(new_pathways), sum(completed), sum(incomplete)
                from _s4_flows f join {ORGS} o on o.org_code = f.icb_code where o.region_code is not null group by all
                union all
                select 'ENGLAND', 'england', period_start, sum(new_pathways), sum(completed), sum(incomplete)
                from _s4_flows group by all)
            select org_code, org_level, count(*) as months, avg(new_pathways) as new_per_month,
                   avg(completed) as completed_per_month,
                   arg_max(incomplete, period_start) as queue, arg_min(incomplete, period_start) as first_queue,
                   max(period_start) as last_month, min(period_start) as first_month
            from lv group by all""").pl()
        for r in flows.iter_rows(named=True):
            if r["last_month"] != flow_last or not r["new_per_month"] or not r["queue"]:
                continue
            demand = r["new_per_month"] / WEEKS_PER_MONTH
            completed = (r["completed_per_month"] or 0) / WEEKS_PER_MONTH
            if r["org_level"] == "icb":
                icb_demand[r["org_code"]] = demand
            weeks_span = (r["months"] - 1) * WEEKS_PER_MONTH
            change = (r["queue"] - r["first_queue"]) / weeks_span if weeks_span > 0 else None
            clear = completed if change is None else demand - change
            b = bands.get((r["org_code"], r["org_level"], flow_last))
            mean_wait = _mean_wait(b) if b else None
            org = _Org(r["org_code"], r["org_level"], flow_last)
            src = "latest.rtt_icb_flows (new, completed, incomplete pathways); latest.rtt_incomplete (weekly bands)"
            demand_inputs = {"mean_new_pathways_per_month": r["new_per_month"], "months": r["months"],
                             "window": f"{r['first_month']} to {r['last_month']}", "weeks_per_month": "52/12"}
            rows.append(_row(org, "waiting_list", "weekly_demand", "RTT clock starts a week (new pathways)", demand,
                             "patients per week", "mean monthly new pathways x 12 / 52", demand_inputs,
                             "commissioner-based flows (patients of the ICB's population, wherever treated)", src,
                             False))
            rows.append(_row(org, "waiting_list", "weekly_completed_pathways",
                             "RTT clock stops a week (completed pathways)", completed, "patients per week",
                             "mean monthly completed pathways x 12 / 52",
                             {"mean_completed_pathways_per_month": r["completed_per_month"], "months": r["months"],
                              "window": f"{r['first_month']} to {r['last_month']}"},
                             "reported clock stops only: validation and other removals are not in it", src, False))
            rows.append(_row(org, "waiting_list", "weekly_clearances",
                             "All removals from the list a week (clock stops, validation and other removals)", clear,
                             "patients per week", "weekly demand - (list at end - list at start) / weeks between",
                             {"weekly_demand": demand, "list_start": r["first_queue"], "list_end": r["queue"],
                              "weeks_between": weeks_span, "weekly_list_change": change,
                              "weekly_completed_pathways": completed},
                             "the flow balance of the same file, so load and extra capacity are measured against "
                             "everything that leaves the list, as NHSRwaitinglist's removal rate is, and on the same "
                             "basis as trusts; completed pathways alone are in weekly_completed_pathways", src, False))
            rows.extend(_queue_rows(org, demand, clear, r["queue"], mean_wait, p, common, base_assumptions
                                    + "; queue = the flows file's incomplete pathways in the latest month "
                                      "(commissioner based); mean wait from providers with this ODS parent", src,
                                    estimate=False, queue_source="latest.rtt_icb_flows.incomplete"))

    # Trusts.
    con.sql(f"""create or replace temp table _s4_trust as
                select org_code, count(*) as months, avg(wk_gt_0_to_1) as demand,
                       arg_max(queue, period_start) as queue, arg_min(queue, period_start) as first_queue,
                       max(period_start) as last_month, min(period_start) as first_month
                from _s4_rtt where period_start > date '{trust_last}' - interval '{months} months'
                group by all""")
    trusts = con.sql(f"""
        select t.*, coalesce(o.parent_icb_code_2022, o.parent_icb_code) as parent_icb_code,
               sum(t.queue) over (partition by coalesce(o.parent_icb_code_2022, o.parent_icb_code))
                   as parent_icb_provider_queue  -- the ICB flows are published for the ICBs of 2022-2026
        from _s4_trust t left join {ORGS} o using (org_code)
        where t.last_month = date '{trust_last}'""").pl()
    for r in trusts.iter_rows(named=True):
        if not r["demand"] or not r["queue"] or (r["org_code"], "provider") in covered:
            continue
        org = _Org(r["org_code"], "provider", trust_last)
        demand = r["demand"]
        weeks_span = (r["months"] - 1) * WEEKS_PER_MONTH
        change = (r["queue"] - r["first_queue"]) / weeks_span if weeks_span > 0 else None
        clear = None if change is None else demand - change
        apportioned = None
        if r["parent_icb_code"] in icb_demand and r["parent_icb_provider_queue"]:
            apportioned = icb_demand[r["parent_icb_code"]] * r["queue"] / r["parent_icb_provider_queue"]
        b = bands.get((r["org_code"], "provider", trust_last))
        mean_wait = _mean_wait(b) if b else None
        src = "latest.rtt_incomplete (treatment function C_999, weekly bands)"
        rows.append(_row(org, "waiting_list", "weekly_demand",
                         "RTT clock starts a week, ESTIMATED from the patients who joined the list in the last week",
                         demand, "patients per week", "mean over the window of band wk_gt_0_to_1 (waiting 0-1 week)",
                         {"mean_wk_gt_0_to_1": demand, "months": r["months"],
                          "window": f"{r['first_month']} to {r['last_month']}",
                          "cross_check_apportioned_icb_demand": apportioned, "parent_icb_code": r["parent_icb_code"],
                          "cross_check_formula": "parent ICB weekly new pathways x trust list / parent ICB's "
                                                 "provider-based list"},
                         "trust clock starts are not in the bundle: patients still waiting who started in the last "
                         "week approximate weekly additions (misses clocks that stopped within the week)", src, True))
        rows.append(_row(org, "waiting_list", "weekly_clearances",
                         "RTT removals a week, ESTIMATED from the flow balance", clear, "patients per week",
                         "weekly demand - (list at end - list at start) / weeks between",
                         {"weekly_demand": demand, "list_start": r["first_queue"], "list_end": r["queue"],
                          "weeks_between": weeks_span, "weekly_list_change": change},
                         "all removals (treatment, validation, other) implied by the list change; inherits the "
                         "demand estimate's undercount", src, True))
        rows.extend(_queue_rows(org, demand, clear, r["queue"], mean_wait, p, common,
                                base_assumptions + "; demand and clearances are estimates (see their rows)", src,
                                estimate=True, queue_source="latest.rtt_incomplete.total_incomplete"))
    for t in ("_s4_rtt", "_s4_rtt_lv", "_s4_flows", "_s4_trust"):
        con.sql(f"drop table if exists {t}")
    return rows


def _real_flow_rows(con: duckdb.DuckDBPyConnection, p: dict, bands: dict, common: dict,
                    base_assumptions: str) -> tuple[list[dict], set[tuple[str, str]]]:
    """Waiting-list needs from published clock starts and stops (rtt_pathways.real_flows): each organisation at
    the latest month it has them, with the list change from its own published list LIST_CHANGE_MONTHS months (or
    fewer) before. Returns the rows and the (org_code, org_level) pairs they cover."""
    flows = real_flows(con)
    if flows.height == 0:
        return [], set()
    last = flows.group_by("org_code", "org_level").agg(pl.col("period_start").max().alias("period_start"))
    flows = flows.join(last, on=["org_code", "org_level", "period_start"])
    earlier = con.sql(f"""
        select org_code, org_level, period_start as before_period, value as list_before
        from {VALUES} where metric_id = '{LIST}' and value is not null""").pl()
    paired = (flows.join(earlier, on=["org_code", "org_level"], how="left")
              .filter(pl.col("before_period").is_null() | (
                  (pl.col("before_period") < pl.col("period_start"))
                  & (pl.col("before_period") >= pl.col("period_start").dt.offset_by(f"-{LIST_CHANGE_MONTHS}mo"))))
              .sort("before_period", nulls_last=False)
              .group_by("org_code", "org_level", maintain_order=True).last())
    src = ("RTT full CSV extract (Part_3 clock starts, Part_1A/1B clock stops, Part_2 list and weekly bands), "
           "summed over commissioners, via s1_current_state.metric_values")
    gap_months = ((pl.col("period_start").dt.year() - pl.col("before_period").dt.year()) * 12
                  + pl.col("period_start").dt.month() - pl.col("before_period").dt.month())
    paired = paired.with_columns(weeks=gap_months * WEEKS_PER_MONTH).with_columns(
        change=(pl.col("list_size") - pl.col("list_before")) / pl.col("weeks"))
    # An ICB's, region's or England's earlier list may cover fewer providers (NHS trusts only before 2026): its
    # list change is the sum of its providers' own changes, each provider against its own earlier list.
    parents: dict[tuple[str, str], str | None] = {}
    for code, icb, region in con.sql(f"select org_code, parent_icb_code, region_code from {ORGS}").fetchall():
        parents[(code, "icb")], parents[(code, "region")] = icb, region
    changes: dict[tuple[str, str], list[float]] = {}
    for code, change in paired.filter(pl.col("org_level") == "provider", pl.col("change").is_not_null()).select(
            "org_code", "change").iter_rows():
        for level in ("icb", "region"):
            if parents.get((code, level)):
                changes.setdefault((parents[(code, level)], level), []).append(change)
        changes.setdefault(("ENGLAND", "england"), []).append(change)
    rows, covered = [], set()
    for r in paired.sort("org_level", "org_code").iter_rows(named=True):
        r["providers_with_change"] = None
        if r["org_level"] != "provider":  # math.fsum: the same sum whatever order the providers come in
            parts = changes.get((r["org_code"], r["org_level"]), [])
            r["change"] = math.fsum(parts) if parts else None
            r["providers_with_change"] = len(parts)
        if not r["starts"] or not r["list_size"]:
            continue
        org = _Org(r["org_code"], r["org_level"], r["period_start"])
        demand, completed, queue = r["starts"] / WEEKS_PER_MONTH, r["stops"] / WEEKS_PER_MONTH, r["list_size"]
        change, weeks = r["change"], r["weeks"]
        clear = completed if change is None else demand - change
        month = f"{r['period_start']:%B %Y}"
        rows.append(_row(org, "waiting_list", "weekly_demand", "RTT clock starts a week (new pathways, published)",
                         demand, "patients per week", "clock starts in the month x 12 / 52",
                         {"clock_starts": r["starts"], "month": month, "weeks_per_month": "52/12"},
                         "one month's published clock starts (seasonal: April has about the average of a year)",
                         src, False))
        rows.append(_row(org, "waiting_list", "weekly_completed_pathways",
                         "RTT clock stops a week (completed pathways, published)", completed, "patients per week",
                         "(admitted + non-admitted clock stops in the month) x 12 / 52",
                         {"clock_stops": r["stops"], "month": month},
                         "reported clock stops only: validation and other removals are not in it", src, False))
        rows.append(_row(org, "waiting_list", "weekly_clearances",
                         "All removals from the list a week (clock stops, validation and other removals)", clear,
                         "patients per week", "weekly demand - (list now - list before) / weeks between",
                         {"weekly_demand": demand,
                          "list_start": r["list_before"] if r["org_level"] == "provider" else None,
                          "list_end": queue,
                          "list_start_month": r["before_period"], "weeks_between": weeks,
                          "weekly_list_change": change, "weekly_completed_pathways": completed,
                          "providers_with_change": r["providers_with_change"]},
                         "the list change is the average over the weeks between two published lists (up to "
                         f"{LIST_CHANGE_MONTHS} months apart); for an ICB, region or England the sum of its "
                         "providers' own changes (its earlier total may cover fewer providers); without an earlier "
                         "list, the clock stops alone", src, False))
        b = bands.get((r["org_code"], r["org_level"], r["period_start"]))
        rows.extend(_queue_rows(org, demand, clear, queue, _mean_wait(b) if b else None, p, common,
                                base_assumptions + "; demand, clock stops and the list are published figures",
                                src, estimate=False, queue_source="RTT full CSV extract, Part_2 incomplete pathways"))
        covered.add((r["org_code"], r["org_level"]))
    return rows, covered


def _queue_rows(org: _Org, demand: float, clear: float | None, queue: float, mean_wait: float | None, p: dict,
                common: dict, assumptions: str, src: str, estimate: bool, queue_source: str) -> list[dict]:
    n = waiting_list_needs(demand, clear, queue, mean_wait, p["target_wait"], p["factor"], p["relief_weeks"],
                           p["cv_demand"], p["cv_capacity"])
    ins = {"weekly_demand": demand, "weekly_clearances": clear, "queue_size": queue, "queue_source": queue_source,
           "mean_wait_weeks": mean_wait, **common}
    wl = "waiting_list"
    out = [
        _row(org, wl, "queue_size", "Patients waiting (incomplete RTT pathways)", queue, "patients",
             queue_source, {"queue_size": queue}, "latest month", src, False),
        _row(org, wl, "mean_wait_weeks", "Mean wait of the patients on the list", mean_wait, "weeks",
             "sum(band count x band midpoint) / sum(band count)", {"mean_wait_weeks": mean_wait},
             "bands at midpoints; 104+ weeks at 104.5", src, False),
        _row(org, wl, "target_mean_wait", "Mean wait that meets the target", n["target_mean_wait"], "weeks",
             "target_wait / factor (NHSRwaitinglist calc_target_mean_wait)", ins, assumptions, src, False),
        _row(org, wl, "target_queue_size", "Waiting list size that meets the target", n["target_queue_size"],
             "patients", "demand x target_wait / factor (Little's law; calc_target_queue_size)", ins, assumptions,
             src, estimate),
        _row(org, wl, "kingman_term", "Variability allowance on top of demand", n["kingman_term"],
             "patients per week", "(cv_demand^2 + cv_capacity^2) / 2 x factor / target_wait", ins, assumptions,
             src, False),
        _row(org, wl, "target_capacity", "Weekly capacity to hold the list at its target once there",
             n["target_capacity"], "patients per week",
             "demand + (cv_demand^2 + cv_capacity^2) / 2 x factor / target_wait (Kingman; calc_target_capacity)",
             ins, assumptions, src, estimate),
        _row(org, wl, "relief_capacity", f"Weekly capacity to reach the target list size in {p['relief_weeks']} "
             "weeks", n["relief_capacity"], "patients per week",
             "demand + (queue_size - target_queue_size) / relief_weeks (calc_relief_capacity)",
             {**ins, "target_queue_size": n["target_queue_size"]}, assumptions, src, estimate),
        _row(org, wl, "capacity_needed", "Weekly capacity needed: relief capacity if the list is more than twice "
             "its target size, else target capacity", n["capacity_needed"], "patients per week",
             "relief_capacity if queue_size > 2 x target_queue_size else target_capacity (as NHSRwaitinglist "
             "wl_stats)", {**ins, "target_queue_size": n["target_queue_size"], "queue_too_big": n["queue_too_big"],
                           "relief_capacity": n["relief_capacity"], "target_capacity": n["target_capacity"]},
             assumptions, src, estimate),
        _row(org, wl, "extra_capacity_needed", "Extra clock stops a week over current clearances",
             n["extra_capacity_needed"], "patients per week", "capacity_needed - weekly_clearances",
             {**ins, "capacity_needed": n["capacity_needed"]}, assumptions, src, True),
        _row(org, wl, "load", "Queue load: arrivals per removal (above 1 the list grows)", n["load"], "ratio",
             "demand / clearances (calc_queue_load)", ins, assumptions, src, estimate),
        _row(org, wl, "pressure", "Waiting list pressure (above 1 the list will likely miss its target)",
             n["pressure"], "ratio", "2 x mean_wait / target_wait (calc_waiting_list_pressure)", ins, assumptions,
             src, False),
    ]
    return out


def _bed_rows(con: duckdb.DuckDBPyConnection, occupancies: tuple[float, ...]) -> list[dict]:
    data = con.sql(f"""select org_code, org_level, period_start, numerator as occupied, denominator as available,
                              value as occupancy_pct, source
                       from {VALUES}
                       where metric_id = 'ga_bed_occupancy_pct' and numerator is not null and denominator > 0
                         and period_start = (select max(period_start) from {VALUES}
                                             where metric_id = 'ga_bed_occupancy_pct')""").pl()
    rows = []
    for r in data.iter_rows(named=True):
        org = _Org(r["org_code"], r["org_level"], r["period_start"])
        ins = {"ga_beds_occupied": r["occupied"], "ga_beds_available": r["available"],
               "current_occupancy_pct": r["occupancy_pct"]}
        src = f"{VALUES}.ga_bed_occupancy_pct ({r['source']}: numerator occupied, denominator available)"
        for pct in occupancies:
            b = bed_needs(r["occupied"], r["available"], pct)
            tag = f"{pct:g}pct"
            a = (f"occupied G&A beds in the latest month held constant; run at {pct:g}% occupancy; monthly "
                 "average, so winter peaks need more")
            rows.append(_row(org, "beds", f"beds_needed_at_{tag}", f"G&A beds needed to run today's occupied beds at "
                             f"{pct:g}% occupancy", b["beds_needed"], "beds", f"ga_beds_occupied / {pct / 100:g}",
                             {**ins, "occupancy_target_pct": pct}, a, src, False))
            rows.append(_row(org, "beds", f"beds_gap_at_{tag}", f"Beds short (+) or spare (-) at {pct:g}% occupancy",
                             b["beds_gap"], "beds", f"ga_beds_occupied / {pct / 100:g} - ga_beds_available",
                             {**ins, "occupancy_target_pct": pct, "beds_needed": b["beds_needed"]}, a, src, False))
    return rows


def _ae_targets(con: duckdb.DuckDBPyConnection, period: object) -> dict[str, tuple[float, str, object]]:
    """org_code -> (target %, where from, target period) from s2_triple_aim.targets, if present."""
    if not table_exists(con, TARGETS):
        return {}
    cols = {c[0] for c in con.sql(f"describe {TARGETS}").fetchall()}
    flag = next((c for c in ("is_primary", "primary") if c in cols), None)  # step 2 writes is_primary
    primary = f'and coalesce("{flag}", true)' if flag else ""
    std = "standard_id" if "standard_id" in cols else "null"
    df = con.sql(f"""select org_code, target_value, {std}::varchar as standard_id, period_start
                     from {TARGETS}
                     where metric_id = 'ae_4hr_pct' and target_value is not null {primary}
                       and period_start <= date '{period}'
                     qualify row_number() over (partition by org_code order by period_start desc) = 1""").pl()
    return {r["org_code"]: (float(r["target_value"]),
                            f"{TARGETS} (standard {r['standard_id']}, target for {r['period_start']})",
                            r["period_start"]) for r in df.iter_rows(named=True)}


def _ae_rows(con: duckdb.DuckDBPyConnection, default_pct: float) -> list[dict]:
    last = con.sql(f"select max(period_start) from {VALUES} where metric_id = 'ae_4hr_pct'").fetchone()[0]
    if last is None:
        return []
    data = con.sql(f"""select org_code, org_level, period_start, numerator as within_4h, denominator as attendances,
                              value, source
                       from {VALUES}
                       where metric_id = 'ae_4hr_pct' and period_start = date '{last}' and denominator > 0""").pl()
    targets = _ae_targets(con, last)
    rows = []
    for r in data.iter_rows(named=True):
        pct, where, _ = targets.get(r["org_code"], (default_pct, AE_DEFAULT_TARGET_SOURCE, None))
        a = ae_needs(r["attendances"], r["within_4h"], pct)
        org = _Org(r["org_code"], r["org_level"], r["period_start"])
        rows.append(_row(org, "ae_4hr", "extra_within_4h_per_month",
                         "Extra A&E attendances seen within 4 hours needed in the month to reach the target",
                         a["extra_within_4h"], "attendances per month",
                         "max(0, target_pct / 100 x attendances - attendances within 4 hours)",
                         {"attendances": r["attendances"], "within_4h": r["within_4h"],
                          "current_pct": a["current_pct"], "target_pct": pct, "target_source": where},
                         "same attendances as the latest month; all A&E types, booked appointments included",
                         f"{VALUES}.ae_4hr_pct ({r['source']})", False))
    return rows


def _diagnostic_rows(con: duckdb.DuckDBPyConnection, target_pct: float, weeks: float) -> list[dict]:
    if not table_exists(con, "latest.dm01_diagnostics"):
        return []
    con.sql("""create or replace temp table _s4_dm01 as
               select upper(trim(provider_code)) as org_code, period_start, sum(total_waiting) as total_waiting,
                      sum(waiting_6plus_wks) as waiting_6plus,
                      sum(coalesce(activity_waiting_list, 0) + coalesce(activity_planned, 0)
                          + coalesce(activity_unscheduled, 0)) as activity
               from latest.dm01_diagnostics
               where diagnostic_test = 'Total' and total_waiting > 0 and waiting_6plus_wks is not null
                 and period_start = (select max(period_start) from latest.dm01_diagnostics)
               group by all""")
    data = con.sql(_levels_sql("_s4_dm01", ["total_waiting", "waiting_6plus", "activity"])).pl()
    con.sql("drop table if exists _s4_dm01")
    rows = []
    src = "latest.dm01_diagnostics ('Total' rows: total_waiting, waiting_6plus_wks, activity columns)"
    a = (f"target: no more than {target_pct:g}% waiting 6+ weeks; the extra tests go to the longest waiters over "
         f"{weeks:g} weeks; demand and the rest of the list unchanged; weekly activity = monthly x 12/52")
    for r in data.iter_rows(named=True):
        d = diagnostics_needs(r["total_waiting"], r["waiting_6plus"], r["activity"], target_pct, weeks)
        org = _Org(r["org_code"], r["org_level"], r["period_start"])
        ins = {"total_waiting": r["total_waiting"], "waiting_6plus": r["waiting_6plus"],
               "monthly_activity": r["activity"], "target_pct": target_pct, "horizon_weeks": weeks,
               "current_6plus_pct": 100.0 * r["waiting_6plus"] / r["total_waiting"], "providers": r["providers"]}
        rows.append(_row(org, "diagnostics", "excess_6plus_waiters", "Patients waiting 6+ weeks above the 1% level",
                         d["excess_6plus"], "patients", "max(0, waiting_6plus - target_pct / 100 x total_waiting)",
                         ins, a, src, False))
        rows.append(_row(org, "diagnostics", "extra_tests_per_week",
                         f"Extra tests a week to reach the 6-week standard in {weeks:g} weeks",
                         d["extra_tests_per_week"], "tests per week", "excess_6plus_waiters / horizon_weeks",
                         {**ins, "excess_6plus_waiters": d["excess_6plus"]}, a, src, True))
        rows.append(_row(org, "diagnostics", "extra_tests_pct_of_activity",
                         "Extra tests as a % of current weekly test activity", d["uplift_pct"], "percent",
                         "100 x extra_tests_per_week / (monthly activity x 12 / 52)",
                         {**ins, "extra_tests_per_week": d["extra_tests_per_week"],
                          "weekly_activity": d["weekly_activity"]}, a, src, True))
    return rows


def _workforce_rows(con: duckdb.DuckDBPyConnection, bed_rows: list[dict], cost_per_fte: float) -> list[dict]:
    gaps = {(r["org_code"], r["org_level"]): (r["result"], r["period_start"])
            for r in bed_rows if r["measure"] == "beds_gap_at_92pct"}
    if not gaps:
        return []
    ratios = con.sql(f"""
        select org_code, org_level, measure_id, period_start, value, peer_median, peer_group_id, peer_count,
               national_median, national_count
        from {RESOURCE_MAP}
        where measure_id in ('fte_per_ga_bed', 'nurses_per_ga_bed') and value is not null
        qualify row_number() over (partition by org_code, org_level, measure_id order by period_start desc) = 1
    """).pl()
    rows = []
    for r in ratios.iter_rows(named=True):
        key = (r["org_code"], r["org_level"])
        if key not in gaps or gaps[key][0] is None:
            continue
        gap, period = gaps[key]
        if r["peer_median"] is not None and r["peer_group_id"] is not None:
            ratio = r["peer_median"]
            basis = f"peer median of peer group {r['peer_group_id']} ({r['peer_count']} trusts)"
        elif r["national_median"] is not None:
            ratio, basis = r["national_median"], f"national median of {r['national_count']} {r['org_level']} rows"
        else:
            ratio, basis = r["value"], "the organisation's own ratio (no comparator at this level)"
        w = workforce_needs(gap, ratio, cost_per_fte)
        org = _Org(r["org_code"], r["org_level"], period)
        staff = "all staff" if r["measure_id"] == "fte_per_ga_bed" else "nurses and health visitors"
        tag = "fte" if r["measure_id"] == "fte_per_ga_bed" else "nurse_fte"
        ins = {"extra_beds_at_92pct": gap, "beds_period": period, "ratio_measure": r["measure_id"],
               "staff_per_bed": ratio, "ratio_basis": basis, "ratio_period": r["period_start"],
               "own_ratio": r["value"], "cost_per_fte_gbp": cost_per_fte}
        a = ("extra beds = the positive part of the 92% occupancy bed gap; staffed like peers (workforce_fte covers "
             "the whole trust, not only G&A wards); ratio from the latest month with workforce data")
        if r["org_level"] != "provider":
            a += "; the bed gap is net across the organisation's trusts (spare beds in one offset shortages in another)"
        src = f"{RESOURCE_MAP}.{r['measure_id']}; s4_gaps.needs beds_gap_at_92pct"
        rows.append(_row(org, "workforce", f"extra_{tag}_for_beds",
                         f"FTE ({staff}) implied by the extra beds at the comparator staff-per-bed ratio", w["fte"],
                         "fte", "max(0, beds_gap_at_92pct) x staff_per_bed", ins, a, src, True))
        if r["measure_id"] == "fte_per_ga_bed":
            rows.append(_row(org, "workforce", "extra_fte_cost_gbp_per_year",
                             "Annual pay cost of the extra FTE", w["cost_gbp"], "gbp per year",
                             "extra_fte_for_beds x cost_per_fte_gbp", {**ins, "extra_fte": w["fte"],
                                                                       "cost_per_fte_source": COST_PER_FTE_SOURCE},
                             a + "; " + COST_PER_FTE_SOURCE, src, True))
    return rows


def build_needs(con: duckdb.DuckDBPyConnection, target_wait_weeks: float = 18, factor: float = 4,
                relief_weeks: float = 26, *, cv_demand: float = 1.0, cv_capacity: float = 1.0,
                demand_months: int = 12, occupancy_targets: tuple[float, ...] = (92.0, 85.0),
                ae_default_target_pct: float = AE_DEFAULT_TARGET_PCT, diagnostics_target_pct: float = 1.0,
                diagnostics_weeks: float | None = None,
                cost_per_fte_gbp: float = DEFAULT_COST_PER_FTE_GBP) -> int:
    """Create s4_gaps.needs (see the module docstring); return its row count. Needs step 1 and
    s3_resources.resource_map (for the workforce ratios); uses s2_triple_aim.targets when present."""
    for t in (VALUES, ORGS, RESOURCE_MAP):
        if not table_exists(con, t):
            raise RuntimeError(f"{t} is missing: build step 1 and s3_resources.resource_map first")
    if 92.0 not in occupancy_targets:
        occupancy_targets = (92.0, *occupancy_targets)
    p = {"target_wait": float(target_wait_weeks), "factor": float(factor), "relief_weeks": float(relief_weeks),
         "cv_demand": float(cv_demand), "cv_capacity": float(cv_capacity), "demand_months": int(demand_months)}
    beds = _bed_rows(con, tuple(float(x) for x in occupancy_targets))
    rows = (_waiting_list_rows(con, p) + beds + _ae_rows(con, float(ae_default_target_pct))
            + _diagnostic_rows(con, float(diagnostics_target_pct),
                               float(diagnostics_weeks if diagnostics_weeks is not None else relief_weeks))
            + _workforce_rows(con, beds, float(cost_per_fte_gbp)))
    schema = {"org_code": pl.String, "org_level": pl.String, "period_start": pl.Date, "need_type": pl.String,
              "measure": pl.String, "description": pl.String, "result": pl.Float64, "unit": pl.String,
              "formula": pl.String, "inputs": pl.String, "assumptions": pl.String, "source": pl.String,
              "is_estimate": pl.Boolean}
    frame = pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
    names = con.sql(f"select org_code, org_name from {ORGS}").pl().unique(subset=["org_code"], keep="first")
    frame = (frame.join(names, on="org_code", how="left").select(OUTPUT_COLUMNS)
             .sort(["need_type", "org_level", "org_code", "measure"]))
    replace_table(con, *TABLE.split("."), frame)
    return con.sql(f"select count(*) from {TABLE}").fetchone()[0]
