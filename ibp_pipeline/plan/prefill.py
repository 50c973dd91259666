"""Draft a plan from the served tables: activity from the forecasts, performance from the standards' trajectories,
FTE from activity and the productivity the framework asks, pay at the assumed cost per FTE, activity income at
national unit costs. Every line says where its numbers came from (PlanDocument.sources).

The rules, for one line's months (`monthly_series`): a month already published keeps its published value; a month
the forecast covers takes the forecast's mean; a later month repeats the same calendar month of the forecast's last
twelve months (seasonality kept, no trend beyond the forecast's horizon); a series with no forecast holds its
latest published value. Performance lines take each month's target from the organisation's trajectory (the primary
standard in s2_triple_aim.targets) and hold the last target after it ends.

Workforce (Six Steps: the workforce the activity requires): weighted activity is activity priced at national unit
costs (A&E attendances, emergency admissions, admitted RTT clock stops, DM01 tests). Each staff group's substantive
FTE in a plan year = its latest published FTE x (weighted activity that year / weighted activity of the year before
the plan) / (1 + productivity)^(years since), so weighted activity per FTE improves by exactly the productivity the
framework asks. Bank and agency FTE are the Assumptions sheet's shares of substantive FTE.
Finance: pay = FTE x annual cost per FTE / 12 (basic pay with on-costs; agency at its cost multiplier); non-pay =
the assumed ratio x pay; efficiency savings = the assumed % of pay and non-pay; activity income = activity x unit
cost; other income is set so the first plan year breaks even, and its monthly values are repeated in later years.
"""
from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np

from .assumptions import annual_cost_per_fte, load, on_cost_text
from .document import AssumptionRow, PlanDocument
from .lines import ACTIVITY, ACTIVITY_INCOME, by_id
from .period import Period, fy_label

VALUES = "s1_current_state.metric_values"
FORECASTS = "s5_impact.forecasts"
TARGETS = "s2_triple_aim.targets"
COSTS = "s3_resources.activity_costs"
ORGS = "s1_current_state.organisations"
FLOWS = "s5_impact.waiting_list_projection"

# priced activity: plan line -> (activity_costs activity_type, activity_detail, income line)
PRICED = {"ae_attendances": ("ae_attendances", "all", "income_ae"),
          "ae_emergency_admissions": ("emergency_admissions", "all", "income_emergency"),
          "rtt_clock_stops_admitted": ("elective_admissions", "all", "income_elective"),
          "dm01_tests": ("diagnostic_tests", "All DM01 tests", "income_diagnostics")}
assert {v[2] for v in PRICED.values()} == set(ACTIVITY_INCOME)


class DraftError(ValueError):
    """The organisation or the served tables cannot give a draft (one line saying why)."""


def _month_name(d: dt.date) -> str:
    return d.strftime("%b %Y")


def _months(n: int) -> str:
    return f"{n} month" + ("" if n == 1 else "s")


def monthly_series(months: list[dt.date], actual: dict[dt.date, float], forecast: dict[dt.date, float]
                   ) -> tuple[np.ndarray, str]:
    """Values for `months` by the rules in the module doc, and how they were made (in words)."""
    out = np.full(len(months), np.nan)
    used = {"published": 0, "forecast": 0, "repeated": 0, "held": 0}
    last12 = sorted(forecast)[-12:]
    by_calendar = {d.month: forecast[d] for d in last12}
    latest = max(actual) if actual else None
    for i, m in enumerate(months):
        if m in actual:
            out[i], kind = actual[m], "published"
        elif m in forecast:
            out[i], kind = forecast[m], "forecast"
        elif forecast and m > max(forecast) and m.month in by_calendar:
            out[i], kind = by_calendar[m.month], "repeated"
        elif latest is not None:
            out[i], kind = actual[latest], "held"
        else:
            continue
        used[kind] += 1
    words = []
    if used["published"]:
        words.append(f"{_months(used['published'])} as published")
    if used["forecast"]:
        words.append(f"{_months(used['forecast'])} the forecast's mean (from {_month_name(min(forecast))})")
    if used["repeated"]:
        words.append(f"{_months(used['repeated'])} after the forecast's end ({_month_name(max(forecast))}) repeat "
                     f"its last 12 months")
    if used["held"]:
        words.append(f"{_months(used['held'])} hold the latest published value ({_month_name(latest)})")
    return out, "; ".join(words)


class Served:
    """The served tables a draft reads, for one organisation."""

    def __init__(self, con: duckdb.DuckDBPyConnection, org_code: str):
        self.con = con
        row = con.execute(f"select org_name, org_type, parent_icb_code, valid_to from {ORGS} where org_code = ?",
                          [org_code]).fetchone()
        if row is None:
            raise DraftError(f"{org_code} is not an organisation in the served data (an ODS code such as RXL, "
                             "or an ICB such as QE1)")
        self.org_code, (self.org_name, self.org_type, self.parent_icb, valid_to) = org_code, row
        if valid_to is not None:
            raise DraftError(f"{org_code} ({self.org_name}) closed on {valid_to:%-d %B %Y}: plan for its successor")
        self.icb = org_code if self.org_type == "icb" else self.parent_icb
        self.data_as_of = str(con.execute(f"select max(period_start) from {VALUES}").fetchone()[0])

    def actual(self, metric_id: str) -> dict[dt.date, float]:
        rows = self.con.execute(f"select period_start, value from {VALUES} where org_code = ? and metric_id = ? "
                                "and period_grain = 'month' and value is not null", [self.org_code, metric_id])
        return dict(rows.fetchall())

    def forecast(self, metric_id: str) -> dict[dt.date, float]:
        rows = self.con.execute(f"select period_start, mean from {FORECASTS} where org_code = ? and metric_id = ?",
                                [self.org_code, metric_id])
        return dict(rows.fetchall())

    def targets(self, metric_id: str) -> tuple[dict[dt.date, float], str | None]:
        rows = self.con.execute(f"""select period_start, target_value, standard_name from {TARGETS}
                                    where org_code = ? and metric_id = ? and is_primary and in_force
                                    order by period_start""", [self.org_code, metric_id]).fetchall()
        return {r[0]: r[1] for r in rows}, (rows[-1][2] if rows else None)

    def unit_costs(self) -> dict[str, tuple[float, str]]:
        rows = self.con.execute(f"""select activity_type, activity_detail, sum(estimated_cost_gbp) / sum(activity),
                                           any_value(price_base)
                                    from {COSTS} where activity > 0 group by all""").fetchall()
        found = {(a, d): (float(c), base) for a, d, c, base in rows if c is not None}
        out = {}
        for line_id, key in PRICED.items():
            if key[:2] not in found:
                raise DraftError(f"no national unit cost for {key[0]} ({key[1]}) in the served data: run `ibp run`")
            out[line_id] = found[key[:2]]
        return out

    def dm01_tests(self) -> dict[dt.date, float]:
        rows = self.con.execute(f"""select period_start, activity from {COSTS} where org_code = ?
                                    and activity_type = 'diagnostic_tests' and activity_detail = 'All DM01 tests'""",
                                [self.org_code])
        return dict(rows.fetchall())

    def removals_rate(self) -> tuple[float, str]:
        row = self.con.execute(f"""select any_value(removals_rate), any_value(removals_from),
                                          any_value(removals_to)
                                   from {FLOWS} where icb_code = ? and scenario = 'baseline'""",
                               [self.icb]).fetchone()
        if row is None or row[0] is None:
            return 0.0, "no validation removal rate for this ICB: none assumed"
        return float(row[0]), (f"{self.icb}'s monthly validation removal rate ({row[0]:.2%} of the list, from "
                               f"{row[1]:%b %Y} to {row[2]:%b %Y}) x last month's list")


def _activity(s: Served, months: list[dt.date], values: dict, sources: dict) -> None:
    for line in ACTIVITY:
        if line.line_id in ("rtt_clock_stops_admitted", "rtt_clock_stops_non_admitted", "rtt_validation_removals",
                            "dm01_tests"):
            continue
        metric = line.actual[0]
        if line.standard:
            targets, name = s.targets(metric)
            if targets:
                firsts = [m for m in months if m in targets]
                last = max(targets)
                vals = np.array([targets.get(m, targets[last] if m > last else np.nan) for m in months])
                if not np.isnan(vals).any():
                    held = sum(m > last for m in months)
                    values[line.line_id] = vals
                    sources[line.line_id] = (f"the trajectory of '{name}' ({_months(len(firsts))})"
                                             + (f"; held at its last target ({targets[last]:.1f}%) after "
                                                f"{_month_name(last)}" if held else ""))
                    continue
        vals, how = monthly_series(months, s.actual(metric), s.forecast(metric))
        if np.isnan(vals).all():
            if line.optional:
                values[line.line_id] = vals
                sources[line.line_id] = "not published for this organisation: enter your own, or leave empty"
                continue
            vals = np.zeros(len(months))
            how = "not published for this organisation: 0 (enter your own if it applies)"
        values[line.line_id] = vals
        sources[line.line_id] = how


def _rtt_flows(s: Served, months: list[dt.date], values: dict, sources: dict, before: float | None) -> None:
    """Clock starts held at the latest published month; removals at the ICB's rate; clock stops are what takes the
    list from last month's to this month's (list + starts - removals - next list), split as last published."""
    starts, how = monthly_series(months, s.actual("rtt_clock_starts"), {})
    values["rtt_clock_starts"] = np.nan_to_num(starts)
    sources["rtt_clock_starts"] = how or "not published for this organisation: 0"
    rate, rate_how = s.removals_rate()
    wl = values["rtt_waiting_list"]
    prev = np.concatenate([[before if before is not None else wl[0]], wl[:-1]])
    removals = rate * prev
    values["rtt_validation_removals"] = removals
    sources["rtt_validation_removals"] = rate_how
    adm, non = s.actual("rtt_clock_stops_admitted"), s.actual("rtt_clock_stops_non_admitted")
    last = max(adm) if adm else None
    share = adm[last] / (adm[last] + non[last]) if last and last in non and adm[last] + non[last] > 0 else 0.5
    total = np.maximum(prev + values["rtt_clock_starts"] - removals - wl, 0.0)
    for i, m in enumerate(months):
        if m in adm and m in non:  # published: keep as published
            total[i] = adm[m] + non[m]
    values["rtt_clock_stops_admitted"] = total * share
    values["rtt_clock_stops_non_admitted"] = total * (1 - share)
    basis = (f"the clock stops that take the planned list from last month's to this month's (list + clock starts "
             f"- removals - next list); split {share:.0%} admitted as in "
             f"{_month_name(last) if last else 'no published month (half and half)'}")
    sources["rtt_clock_stops_admitted"] = sources["rtt_clock_stops_non_admitted"] = basis


def _dm01(s: Served, months: list[dt.date], values: dict, sources: dict) -> None:
    tests = s.dm01_tests()
    last12 = sorted(tests)[-12:]
    by_cal = {d.month: tests[d] for d in last12}
    values["dm01_tests"] = np.array([tests.get(m, by_cal.get(m.month, 0.0)) for m in months])
    sources["dm01_tests"] = (f"DM01 tests done in the same calendar month of {_month_name(last12[0])} to "
                             f"{_month_name(last12[-1])} (waiting list + planned + unscheduled), repeated"
                             if last12 else "not published for this organisation: 0")


def activity_values(s: Served, period: Period) -> tuple[dict, dict]:
    """The activity and performance lines for a period (also used for the year before the plan)."""
    months = period.months
    values: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    _activity(s, months, values, sources)
    wl_actual = s.actual("rtt_waiting_list")
    before_month = dt.date(period.first_year, 3, 1)
    before = wl_actual.get(before_month) or s.forecast("rtt_waiting_list").get(before_month)
    _rtt_flows(s, months, values, sources, before)
    _dm01(s, months, values, sources)
    return values, sources


def requirement_factor(wa: np.ndarray, base_year_wa: float, productivity: float, months: list[dt.date]
                       ) -> np.ndarray:
    """For each month: the plan year's weighted activity against the year before the plan's, less `productivity`
    a year compounded to that plan year (1 = the staff in post are what the activity requires)."""
    first = months[0].year - (months[0].month < 4)
    years = np.array([m.year - first - (m.month < 4) for m in months])
    annual = np.array([wa[years == y].sum() for y in range(years.max() + 1)])
    growth = annual / base_year_wa if base_year_wa > 0 else np.ones_like(annual)
    return (growth / (1 + productivity) ** (np.arange(len(annual)) + 1))[years]


def weighted_activity(values: dict[str, np.ndarray], prices: dict[str, float]) -> np.ndarray:
    """Activity priced at unit costs, month by month (the lines `prices` names; by default every priced line):
    the measure of productivity's numerator."""
    n = len(next(iter(values.values())))
    return np.sum([np.nan_to_num(values.get(line, np.zeros(n))) * price for line, price in prices.items()], axis=0)


def plan_prices(doc: PlanDocument, lines=tuple(PRICED)) -> dict[str, float]:
    """The unit costs a plan carries in its Assumptions sheet (unit_cost_<line>), for the given priced lines."""
    return {line: doc.assumption(f"unit_cost_{line}") for line in lines}


def draft(con: duckdb.DuckDBPyConnection, org_code: str, period: Period,
          overrides: dict[str, float] | None = None) -> PlanDocument:
    """A prefilled plan for one organisation (see the module doc); `overrides` replace assumptions' values by id
    (their source then says so)."""
    doc_assumptions = load()
    s = Served(con, org_code)
    values, sources = activity_values(s, period)
    base_period = Period(period.first_year - 1, period.first_year - 1)
    base_values, _ = activity_values(s, base_period)
    unit = s.unit_costs()
    prices = {k: v[0] for k, v in unit.items()}
    overrides = overrides or {}
    rows = [AssumptionRow(a.id, a.label, overrides.get(a.id, a.value), a.unit,
                          a.source if a.id not in overrides else f"set for this plan (was {a.value:g}: {a.source})")
            for a in doc_assumptions.assumptions]
    for line_id, (price, base) in unit.items():
        rows.append(AssumptionRow(f"unit_cost_{line_id}", f"National unit cost: {line_id.replace('_', ' ')}",
                                  round(price, 2), "GBP", base))
    on = doc_assumptions.on_costs
    for g in doc_assumptions.staff_groups:
        rows.append(AssumptionRow(f"annual_cost_{g.id}", f"Annual cost of one FTE: {g.label}",
                                  round(annual_cost_per_fte(g.annual_basic_pay_gbp, on)), "GBP a year",
                                  f"{g.pay_basis}: GBP {g.annual_basic_pay_gbp:,.0f} + on-costs "
                                  f"({on_cost_text(on)})"))
    doc = PlanDocument(org_code, s.org_name, period, values, sources, rows, data_as_of=s.data_as_of)
    _workforce(s, doc, weighted_activity(base_values, prices), prices)
    beds = base_values.get("ga_beds")
    known = beds[np.isfinite(beds)] if beds is not None else np.array([])
    doc.assumptions.append(AssumptionRow(
        "baseline_ga_beds", f"General and acute beds in {fy_label(period.first_year - 1)} (average)",
        round(float(known.mean()), 1) if known.size else 0.0, "beds",
        "the same rules as the plan's beds line, for the year before the plan (0: none published)"))
    _finance(doc, prices)
    lines = by_id()
    for line_id, vals in doc.values.items():  # kept as the workbook shows them, so a round trip is exact
        doc.values[line_id] = np.round(vals, lines[line_id].decimals)
    return doc.derive()


def _workforce(s: Served, doc: PlanDocument, base_wa: np.ndarray, prices: dict[str, float]) -> None:
    months = doc.period.months
    p = doc.assumption("productivity_pct_a_year") / 100
    factor = requirement_factor(weighted_activity(doc.values, prices), float(base_wa.sum()), p, months)
    doc.assumptions.append(AssumptionRow(
        "baseline_weighted_activity_gbp", f"Weighted activity in {fy_label(doc.period.first_year - 1)}",
        round(float(base_wa.sum())), "GBP at national unit costs",
        "the same rules as the plan's activity lines, for the year before the plan"))
    for g in load().staff_groups:
        latest = s.actual(g.metric_id)
        if latest:
            last = max(latest)
            fte, basis = latest[last], f"{_month_name(last)} staff in post (NHS Workforce Statistics)"
        else:
            fte, basis = 0.0, "no staff in post published for this organisation"
        sub = fte * factor
        doc.values[f"fte_{g.id}_substantive"] = sub
        doc.sources[f"fte_{g.id}_substantive"] = (
            f"{basis}, {fte:,.1f} FTE, x weighted activity against {fy_label(doc.period.first_year - 1)}, less "
            f"{p:.0%} productivity a year (the workforce the plan's activity requires)")
        doc.assumptions.append(AssumptionRow(f"baseline_fte_{g.id}", f"Staff in post: {g.label}", round(fte, 2),
                                             "FTE", basis))
        for c, share_id in (("bank", "bank_share_pct"), ("agency", "agency_share_pct")):
            share = doc.assumption(share_id) / 100
            doc.values[f"fte_{g.id}_{c}"] = sub * share
            doc.sources[f"fte_{g.id}_{c}"] = f"substantive FTE x the {c} share ({share:.1%}, Assumptions sheet)"


def pay_expected(doc: PlanDocument, group_id: str) -> np.ndarray:
    """A staff group's monthly pay implied by its FTE and the Assumptions sheet's annual cost per FTE."""
    cost = doc.assumption(f"annual_cost_{group_id}") / 12
    mult = doc.assumption("agency_cost_multiplier")
    v = doc.values
    return (np.nan_to_num(v[f"fte_{group_id}_substantive"]) + np.nan_to_num(v[f"fte_{group_id}_bank"])
            + mult * np.nan_to_num(v[f"fte_{group_id}_agency"])) * cost


def _finance(doc: PlanDocument, prices: dict[str, float]) -> None:
    months = doc.period.months
    for line_id, (_, _, income) in PRICED.items():
        doc.values[income] = np.nan_to_num(doc.values[line_id]) * prices[line_id]
        doc.sources[income] = f"the plan's {line_id.replace('_', ' ')} x the national unit cost (Assumptions sheet)"
    pay = np.zeros(len(months))
    for g in load().staff_groups:
        doc.values[f"pay_{g.id}"] = pay_expected(doc, g.id)
        doc.sources[f"pay_{g.id}"] = ("(substantive + bank FTE + agency FTE x the agency cost multiplier) x the "
                                      "annual cost of one FTE / 12 (Assumptions sheet)")
        pay += doc.values[f"pay_{g.id}"]
    doc.values["non_pay"] = pay * doc.assumption("non_pay_to_pay_ratio")
    doc.sources["non_pay"] = "total pay x the non-pay ratio (Assumptions sheet)"
    doc.values["cip"] = (pay + doc.values["non_pay"]) * doc.assumption("cip_pct_a_year") / 100
    doc.sources["cip"] = "(pay + non-pay) x the efficiency savings % (Assumptions sheet)"
    activity_income = np.sum([doc.values[i] for i in ACTIVITY_INCOME], axis=0)
    plug = pay + doc.values["non_pay"] - doc.values["cip"] - activity_income
    first = plug[:12]
    doc.values["income_other"] = np.array([first[i % 12] for i in range(len(months))])
    doc.sources["income_other"] = (f"set so {doc.period.years[0]} breaks even (its costs less activity income), "
                                   "repeated in later years: replace with your contracts and other income")
