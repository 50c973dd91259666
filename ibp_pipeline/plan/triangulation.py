"""Do the plan's activity, workforce and money agree? Each check passes or fails with its numbers, on load and in
the plan.triangulation table. Pure functions of a PlanDocument (and the organisation's trajectories), so they are
tested on constructed plans with known answers.

- waiting_list: next month's list = list + clock starts - clock stops - validation removals, within the
  Assumptions sheet's tolerance (% of the list).
- trajectory: each performance line against the trajectory of the standards registry for the organisation
  (at least the target where higher is better, at most where lower is better; 0.05 points of rounding allowed).
- productivity: weighted activity (activity x the Assumptions sheet's unit costs) per FTE improves by at least the
  framework's % a year, year on year (the first plan year against the year before, from the Assumptions sheet);
  a shortfall with a reason on the README sheet is 'explained'.
- pay: each staff group's pay in a year against its FTE x annual cost per FTE (agency at its multiplier), within
  the tolerance plus the pay of the FTE the workbook's rounding to 0.01 can move.
- income: activity income grows with weighted activity, year on year, within the tolerance in points.
- beds: the planned beds hold the planned occupied beds at the occupancy ceiling (92%); the shortfall in beds is
  the capacity the plan needs and does not plan.
- capacity: step 4's queueing (NHSRwaitinglist) on the plan's own RTT activity: to reach the 18-week % it plans for
  the year's last month, the list must be no bigger than demand x the mean wait that % implies (Little's law, with
  waits taken as exponential, so mean wait = 18 / -ln(1 - %)); the clock stops and removals it plans must be at
  least the capacity that takes (relief capacity, to bring the list down to that size over the year, when it is
  bigger; else the target capacity, demand with its variability allowance), within the Assumptions sheet's
  tolerance.
- staff: nurses (substantive, bank and agency) per planned G&A bed stay within the Assumptions sheet's tolerance of
  the year before the plan's (its staff in post over its average beds): beds the plan adds need staff it plans.
- system (an ICB's plan only): the ICB's activity, beds, staff and money against the sum of its NHS trusts' plans
  for the same period, line by line and year by year, within the Assumptions sheet's tolerance; 'not checked',
  naming the trusts, until every trust has a plan.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from ..step4_gaps.needs import waiting_list_needs
from . import prefill
from .assumptions import load
from .document import PlanDocument
from .lines import ACTIVITY, ACTIVITY_INCOME, by_id
from .period import financial_year

ROUNDING_POINTS = 0.05


@dataclass(frozen=True)
class Check:
    check_id: str  # waiting_list, trajectory, productivity, pay, income, beds
    subject: str  # what was checked, in words
    period: str  # a month (YYYY-MM) or a financial year
    status: str  # pass, fail, explained, not checked
    planned: float | None
    expected: float | None
    tolerance: float | None
    unit: str
    message: str


CHECK_NAMES = {"waiting_list": "Waiting-list arithmetic", "trajectory": "Performance against the trajectory",
               "productivity": "Productivity (weighted activity per FTE)", "pay": "Pay bill against FTE",
               "income": "Activity income against activity", "beds": "Beds for the planned occupancy",
               "capacity": "Treatment capacity for the planned waits", "staff": "Nurses for the planned beds",
               "system": "The ICB's plan against its trusts' plans"}
SYSTEM_LINES = ("rtt_clock_starts", "rtt_clock_stops_admitted", "rtt_clock_stops_non_admitted", "rtt_waiting_list",
                "ae_attendances", "ae_emergency_admissions", "dm01_tests", "ga_beds", "fte_total", "income_total",
                "pay_total", "surplus")
WEEKS_PER_MONTH = 52 / 12
RTT_WEEKS = 18.0


def _v(doc: PlanDocument, line_id: str) -> np.ndarray:
    return np.nan_to_num(doc.values.get(line_id, np.zeros(len(doc.period.months))))


def _years(doc: PlanDocument) -> list[tuple[str, np.ndarray]]:
    fys = np.array([financial_year(m) for m in doc.period.months])
    return [(fy, fys == fy) for fy in doc.period.years]


def waiting_list(doc: PlanDocument) -> list[Check]:
    tol = doc.assumption("waiting_list_tolerance_pct")
    wl = _v(doc, "rtt_waiting_list")
    flows = (_v(doc, "rtt_clock_starts") - _v(doc, "rtt_clock_stops_admitted")
             - _v(doc, "rtt_clock_stops_non_admitted") - _v(doc, "rtt_validation_removals"))
    out = []
    for i in range(1, len(wl)):
        expected = wl[i - 1] + flows[i]
        allowed = tol / 100 * wl[i - 1]
        ok = abs(wl[i] - expected) <= allowed + 0.5
        m = doc.period.months[i]
        out.append(Check("waiting_list", "RTT waiting list", f"{m:%Y-%m}", "pass" if ok else "fail", wl[i],
                         expected, allowed, "pathways",
                         f"{m:%b %Y}: the plan's list of {wl[i]:,.0f} "
                         + ("agrees with" if ok else "does not agree with")
                         + f" last month's {wl[i - 1]:,.0f} + starts - stops - removals = {expected:,.0f} "
                         f"(difference {wl[i] - expected:+,.0f}; allowed {allowed:,.0f}, {tol:g}% of the list)"))
    return out


def trajectory(doc: PlanDocument, targets: dict[str, dict[dt.date, float]]) -> list[Check]:
    """targets: metric id -> month -> target (the organisation's primary trajectory)."""
    out = []
    for line in ACTIVITY:
        if not line.standard:
            continue
        by_month = targets.get(line.actual[0], {})
        planned = doc.values.get(line.line_id)
        for i, m in enumerate(doc.period.months):
            if m not in by_month or planned is None or np.isnan(planned[i]):
                continue
            t, p = by_month[m], planned[i]
            worse = (t - p) if line.direction == "at_least" else (p - t)
            ok = worse <= ROUNDING_POINTS
            word = "at least" if line.direction == "at_least" else "at most"
            out.append(Check("trajectory", line.label, f"{m:%Y-%m}", "pass" if ok else "fail", p, t,
                             ROUNDING_POINTS, "%",
                             f"{m:%b %Y}: {line.label} planned at {p:.1f}%, the trajectory asks {word} {t:.1f}%"
                             + ("" if ok else f" ({worse:.1f} points short)")))
    return out


def weighted_activity(doc: PlanDocument) -> np.ndarray:
    """The plan's activity at the unit costs of its own Assumptions sheet."""
    return prefill.weighted_activity(doc.values, prefill.plan_prices(doc))


def productivity(doc: PlanDocument) -> list[Check]:
    p = doc.assumption("productivity_pct_a_year")
    groups = [g.id for g in load().staff_groups]
    base_fte = sum(doc.assumption(f"baseline_fte_{g}") for g in groups)
    base_wa = doc.assumption("baseline_weighted_activity_gbp")
    prev = base_wa / base_fte if base_fte else None
    prev_label = f"{int(doc.period.years[0][:4]) - 1}/{doc.period.years[0][2:4]}"
    wa, fte = weighted_activity(doc), _v(doc, "fte_total")
    reason = doc.notes.get("productivity_explanation", "").strip()
    out = []
    for fy, mask in _years(doc):
        avg_fte = fte[mask].mean()
        now = wa[mask].sum() / avg_fte if avg_fte else None
        if now is None or not prev:
            out.append(Check("productivity", "Weighted activity per FTE", fy, "not checked", now, prev, p,
                             "% a year", f"{fy}: no FTE planned, or none the year before: productivity cannot "
                                         "be worked out"))
        else:
            change = 100 * (now / prev - 1)
            ok = change >= p - 0.01
            status = "pass" if ok else ("explained" if reason else "fail")
            out.append(Check("productivity", "Weighted activity per FTE", fy, status, change, p, 0.01,
                             "% a year",
                             f"{fy}: weighted activity per FTE £{now:,.0f} against £{prev:,.0f} in "
                             f"{prev_label}: {change:+.1f}% (the framework asks at least {p:g}% a year)"
                             + ("" if ok else (f"; the plan says why: {reason}" if reason else
                                               "; say why on the README sheet, or plan more activity or fewer "
                                               "FTE"))))
            prev = now
        prev_label = fy
    return out


def pay(doc: PlanDocument) -> list[Check]:
    tol = doc.assumption("pay_tolerance_pct")
    out = []
    for g in load().staff_groups:
        planned_all, expected_all = _v(doc, f"pay_{g.id}"), prefill.pay_expected(doc, g.id)
        # the workbook keeps FTE to 0.01: up to 0.005 FTE off in each contract, agency at its multiplier
        rounding = (0.005 * (2 + doc.assumption("agency_cost_multiplier"))
                    * doc.assumption(f"annual_cost_{g.id}") / 12)
        for fy, mask in _years(doc):
            planned, expected = planned_all[mask].sum(), expected_all[mask].sum()
            diff = planned - expected
            ok = abs(diff) <= tol / 100 * expected + rounding * mask.sum() + 1
            out.append(Check("pay", f"Pay: {g.label}", fy, "pass" if ok else "fail", planned, expected, tol, "GBP",
                             f"{fy}: {g.label} pay £{planned:,.0f} against FTE x average cost "
                             f"£{expected:,.0f} ({(100 * diff / expected) if expected else 0:+.1f}%, allowed "
                             f"{tol:g}%)"))
    return out


def income(doc: PlanDocument) -> list[Check]:
    tol = doc.assumption("income_tolerance_points")
    wa = weighted_activity(doc)
    inc = np.sum([_v(doc, i) for i in ACTIVITY_INCOME], axis=0)
    years = _years(doc)
    out = []
    for (fy0, m0), (fy, m1) in zip(years, years[1:]):
        if wa[m0].sum() <= 0 or inc[m0].sum() <= 0:
            continue
        g_wa = 100 * (wa[m1].sum() / wa[m0].sum() - 1)
        g_inc = 100 * (inc[m1].sum() / inc[m0].sum() - 1)
        ok = abs(g_inc - g_wa) <= tol
        out.append(Check("income", "Activity income", fy, "pass" if ok else "fail", g_inc, g_wa, tol,
                         "% growth", f"{fy}: activity income grows {g_inc:+.1f}% on {fy0}, weighted activity "
                                     f"{g_wa:+.1f}% (allowed {tol:g} points apart)"))
    return out


def beds(doc: PlanDocument) -> list[Check]:
    ceiling = doc.assumption("bed_occupancy_ceiling_pct")
    planned, occ = _v(doc, "ga_beds"), _v(doc, "ga_occupancy_pct")
    needed = planned * occ / ceiling
    out = []
    for fy, mask in _years(doc):
        idx = np.flatnonzero(mask)
        worst = idx[np.argmax(needed[idx] - planned[idx])]
        short = needed[worst] - planned[worst]
        ok = short <= 0.5
        m = doc.period.months[worst]
        out.append(Check("beds", "General and acute beds", fy, "pass" if ok else "fail", planned[worst],
                         needed[worst], 0.5, "beds",
                         f"{fy}: the plan's occupied beds fit its beds at {ceiling:g}% occupancy"
                         if ok else
                         f"{fy}: in {m:%b %Y} the plan fills {occ[worst]:.1f}% of {planned[worst]:,.0f} beds; holding "
                         f"{ceiling:g}% needs {needed[worst]:,.0f} beds, {short:,.0f} more than planned"))
    return out


def capacity(doc: PlanDocument) -> list[Check]:
    tol = doc.assumption("capacity_tolerance_pct")
    wl, pct = _v(doc, "rtt_waiting_list"), _v(doc, "rtt_18wk_pct")
    starts = _v(doc, "rtt_clock_starts")
    cleared = (_v(doc, "rtt_clock_stops_admitted") + _v(doc, "rtt_clock_stops_non_admitted")
               + _v(doc, "rtt_validation_removals"))
    out = []
    for fy, mask in _years(doc):
        idx = np.flatnonzero(mask)
        share = pct[idx[-1]] / 100
        demand, clear = starts[idx].mean() / WEEKS_PER_MONTH, cleared[idx].mean() / WEEKS_PER_MONTH
        queue = wl[idx[0] - 1] if idx[0] > 0 else wl[idx[0]]
        if demand <= 0 or not 0 < share < 1 or queue <= 0:
            out.append(Check("capacity", "RTT clock stops", fy, "not checked", clear, None, tol, "pathways a week",
                             f"{fy}: no clock starts, list or 18-week % planned: the capacity cannot be worked out"))
            continue
        factor = -math.log(1 - share)  # exponential waits: P(wait <= 18) = 1 - exp(-18 / mean wait)
        need = waiting_list_needs(demand, clear, queue, None, RTT_WEEKS, factor, relief_weeks=len(idx)
                                  * WEEKS_PER_MONTH)
        over = queue > need["target_queue_size"]  # then only relief capacity reaches the target list in the year
        needed = max(need["target_capacity"], need["relief_capacity"]) if over else need["target_capacity"]
        ok = clear >= needed * (1 - tol / 100)
        how = "bring the list down to it over the year" if over else "keep it there"
        out.append(Check("capacity", "RTT clock stops", fy, "pass" if ok else "fail", clear, needed, tol,
                         "pathways a week",
                         f"{fy}: {pct[idx[-1]]:.1f}% within 18 weeks by {doc.period.months[idx[-1]]:%b %Y} needs a "
                         f"list of about {need['target_queue_size']:,.0f} or fewer for {demand:,.0f} new pathways a "
                         f"week (a mean wait of {need['target_mean_wait']:.1f} weeks); from {queue:,.0f}, to {how} "
                         f"takes {needed:,.0f} clock stops and removals a week; the plan has {clear:,.0f}"
                         + ("" if ok else f", {100 * (1 - clear / needed):.1f}% short (allowed {tol:g}%)")))
    return out


def staff(doc: PlanDocument) -> list[Check]:
    tol = doc.assumption("staffing_tolerance_pct")
    base_beds = doc.assumption("baseline_ga_beds", default=0.0)  # drafted per organisation; none in older plans
    base_nurses = doc.assumption("baseline_fte_nurses_health_visitors", default=0.0)
    nurses = sum(_v(doc, f"fte_nurses_health_visitors_{c}") for c in ("substantive", "bank", "agency"))
    planned_beds = _v(doc, "ga_beds")
    out = []
    for fy, mask in _years(doc):
        beds_y, nurses_y = planned_beds[mask].mean(), nurses[mask].mean()
        if base_beds <= 0 or base_nurses <= 0 or beds_y <= 0:
            out.append(Check("staff", "Nurses per G&A bed", fy, "not checked", None, None, tol, "FTE per bed",
                             f"{fy}: no beds or nurses planned, or none the year before: not checked"))
            continue
        now, before = nurses_y / beds_y, base_nurses / base_beds
        change = 100 * (now / before - 1)
        ok = change >= -tol
        out.append(Check("staff", "Nurses per G&A bed", fy, "pass" if ok else "fail", now, before, tol,
                         "FTE per bed",
                         f"{fy}: {nurses_y:,.0f} nurses for {beds_y:,.0f} beds, {now:.2f} per bed against {before:.2f} "
                         f"the year before the plan ({change:+.1f}%"
                         + (")" if ok else f"; allowed {tol:g}% fewer): the beds need "
                                           f"{before * (1 - tol / 100) * beds_y - nurses_y:,.0f} more nurses")))
    return out


def _amount(v: float, unit: str) -> str:
    return f"£{v:,.0f}" if unit == "GBP" else (f"{v:,.1f} FTE" if unit == "FTE" else f"{v:,.0f} {unit}")


def system(doc: PlanDocument, trusts: dict[str, PlanDocument | None]) -> list[Check]:
    """trusts: each NHS trust of the ICB -> its plan for the same period (None: no plan yet). [] for a trust's
    plan (no trusts)."""
    if not trusts:
        return []
    tol = doc.assumption("system_tolerance_pct")
    missing = sorted(code for code, d in trusts.items() if d is None)
    if missing:
        return [Check("system", "The ICB's plan and its trusts' plans", fy, "not checked", None, None, tol, "",
                      f"{fy}: {len(trusts) - len(missing)} of {len(trusts)} NHS trusts of {doc.org_code} have a "
                      f"plan for {doc.period.label} (none yet from {', '.join(missing)}): the ICB's plan is checked "
                      "against their sum once every trust has one") for fy in doc.period.years]
    lines = by_id()
    out = []
    for line_id in SYSTEM_LINES:
        line = lines[line_id]
        mine = _v(doc, line_id)
        theirs = np.sum([_v(d, line_id) for d in trusts.values() if d is not None], axis=0)
        agg = np.mean if line.stock else np.sum
        for fy, mask in _years(doc):
            planned, expected = float(agg(mine[mask])), float(agg(theirs[mask]))
            # a surplus near break-even has no scale of its own: measure it against the year's income
            scale = abs(expected) if line_id != "surplus" else abs(float(_v(doc, "income_total")[mask].sum()))
            of = "" if line_id != "surplus" else " of income"
            ok = abs(planned - expected) <= tol / 100 * scale + 0.5
            pct = f"{100 * (planned - expected) / scale:+.1f}%{of}" if scale else "against none"
            out.append(Check("system", line.label, fy, "pass" if ok else "fail", planned, expected, tol, line.unit,
                             f"{fy}: {line.label}: the ICB plans {_amount(planned, line.unit)}; its {len(trusts)} "
                             f"trusts' plans add up to {_amount(expected, line.unit)} ({pct}, allowed {tol:g}%{of})"))
    return out


def triangulate(doc: PlanDocument, targets: dict[str, dict[dt.date, float]] | None = None,
                trusts: dict[str, PlanDocument | None] | None = None) -> list[Check]:
    """Every check on one plan; `trusts` only for an ICB's plan (its NHS trusts' plans, for the system check)."""
    return (waiting_list(doc) + trajectory(doc, targets or {}) + productivity(doc) + pay(doc) + income(doc)
            + beds(doc) + capacity(doc) + staff(doc) + system(doc, trusts or {}))


def summary(checks: list[Check]) -> list[str]:
    """One line per check: how many periods pass, and the first failure's sentence."""
    out = []
    for check_id, name in CHECK_NAMES.items():
        these = [c for c in checks if c.check_id == check_id]
        if not these:
            out.append(f"{name}: not checked (nothing to check)")
            continue
        failed = [c for c in these if c.status == "fail"]
        explained = [c for c in these if c.status == "explained"]
        line = f"{name}: {len(these) - len(failed) - len(explained)} of {len(these)} pass"
        if explained:
            line += f", {len(explained)} explained"
        if failed:
            line += f", {len(failed)} fail; first: {failed[0].message}"
        out.append(line)
    return out
