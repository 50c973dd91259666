"""Triangulation on constructed plans whose answers are worked out by hand (constructed.py)."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from ibp_pipeline.plan.document import PlanDocument
from ibp_pipeline.plan.triangulation import (SYSTEM_LINES, beds, capacity, income, pay, productivity, staff, system,
                                             trajectory, triangulate, waiting_list)

from .constructed import constructed


def failures(checks):
    return [c for c in checks if c.status == "fail"]


def test_the_constructed_plan_passes_every_check():
    checks = triangulate(constructed(), {"rtt_18wk_pct": {dt.date(2027, 3, 1): 65.0}})
    assert checks and not failures(checks)
    assert {c.check_id for c in checks} == {"waiting_list", "trajectory", "productivity", "pay", "income", "beds",
                                            "capacity", "staff"}
    prod = [c for c in checks if c.check_id == "productivity"]
    assert [round(c.planned, 6) for c in prod] == [2.0, 2.0, 2.0]  # exactly 2% a year by construction


def test_a_list_500_too_high_in_one_month_fails_that_month_and_the_next():
    doc = constructed()
    doc.values["rtt_waiting_list"][5] += 500  # September 2026
    bad = failures(waiting_list(doc))
    assert [(c.period, round(c.planned - c.expected)) for c in bad] == [("2026-09", 500), ("2026-10", -500)]
    assert bad[0].tolerance == pytest.approx(100.0)  # 1% of last month's 10,000
    assert "10,500" in bad[0].message and "10,000" in bad[0].message


def test_performance_below_an_at_least_trajectory_and_above_an_at_most_one_fails_by_the_gap():
    doc = constructed()
    march = dt.date(2027, 3, 1)
    checks = trajectory(doc, {"rtt_18wk_pct": {march: 72.0}, "dm01_6wk_pct": {march: 65.0},
                              "ae_4hr_pct": {march: 70.0}})
    bad = {c.subject: c for c in failures(checks)}
    assert set(bad) == {"RTT patients waiting under 18 weeks", "Diagnostic patients waiting 6 weeks or more"}
    assert "2.0 points short" in bad["RTT patients waiting under 18 weeks"].message
    assert "5.0 points short" in bad["Diagnostic patients waiting 6 weeks or more"].message


def test_flat_activity_fails_productivity_after_the_first_year_unless_the_plan_says_why():
    doc = constructed()
    for line in ("ae_attendances", "ae_emergency_admissions", "rtt_clock_stops_admitted", "dm01_tests"):
        doc.values[line] = np.full(36, doc.values[line][0])
    checks = productivity(doc)
    assert [c.status for c in checks] == ["pass", "fail", "fail"]
    assert [round(c.planned, 6) for c in checks] == [2.0, 0.0, 0.0]
    doc.notes["productivity_explanation"] = "a new hospital opens in 2029"
    assert [c.status for c in productivity(doc)] == ["pass", "explained", "explained"]


def test_pay_five_per_cent_above_fte_times_cost_fails_that_group_and_year_only():
    doc = constructed()
    doc.values["pay_nurses_health_visitors"][12:24] *= 1.05
    bad = failures(pay(doc))
    assert [(c.subject, c.period) for c in bad] == [("Pay: Nurses and health visitors", "2027/28")]
    assert bad[0].planned == pytest.approx(1_260_000) and bad[0].expected == pytest.approx(1_200_000)
    assert "+5.0%" in bad[0].message


def test_income_that_grows_20_per_cent_while_activity_grows_2_fails():
    doc = constructed()
    doc.values["income_ae"][24:] *= 1.2
    bad = failures(income(doc))
    assert [c.period for c in bad] == ["2028/29"]
    assert bad[0].expected == pytest.approx(2.0)


def test_occupancy_above_92_per_cent_needs_more_beds_than_planned():
    doc = constructed()
    doc.values["ga_occupancy_pct"][30] = 96.0  # October 2028, 100 beds
    bad = failures(beds(doc))
    assert [c.period for c in bad] == ["2028/29"]
    assert bad[0].expected == pytest.approx(100 * 96 / 92)
    assert "4 more than planned" in bad[0].message


def test_an_18_week_promise_the_clock_stops_cannot_keep_fails_the_capacity_check_by_its_queueing_answer():
    """Plan 95% within 18 weeks by March 2027 with the constructed flows: demand is 10,000 a month, 2,307.7 a week;
    exponential waits give a mean wait of 18 / -ln(0.05) = 6.009 weeks, so a list of 2,307.7 x 6.009 = 13,867 or
    fewer (Little's law). The list of 10,000 is within it, so the capacity needed is the target capacity:
    demand + (1 + 1) / 2 x -ln(0.05) / 18 = 2,307.7 + 0.166 a week: the plan's clearances (exactly demand) pass
    within 2%. At 99%: mean wait 3.909 weeks, target list 9,020; a list of 20,000 is bigger, so the relief
    capacity applies: demand + (20,000 - 9,020) / 52.14 weeks = 2,518 a week, 8.4% more than planned."""
    doc = constructed()
    doc.values["rtt_18wk_pct"][:12] = 95.0
    first = capacity(doc)[0]
    assert first.status == "pass" and first.expected == pytest.approx(10000 * 12 / 52 + math.log(20) / 18, rel=1e-9)
    doc.values["rtt_18wk_pct"][:12] = 99.0
    doc.values["rtt_waiting_list"][:] = 20000.0
    demand = 10000 * 12 / 52
    target_list = demand * 18 / -math.log(0.01)
    needed = demand + (20000 - target_list) / 52
    first = capacity(doc)[0]
    assert first.status == "fail" and first.expected == pytest.approx(needed, rel=1e-9)
    assert first.planned == pytest.approx(demand)
    assert f"about {target_list:,.0f} or fewer" in first.message and "short" in first.message


def test_beds_added_without_nurses_fail_the_staffing_check():
    """The constructed plan staffs 100 beds with 100 nurses, as the year before. From April 2027 it opens 20 beds
    with no more nurses: 100 / 120 = 0.833 per bed, 16.7% fewer than 1.00, beyond the 5% allowed, and 120 x 0.95 -
    100 = 14 more nurses are needed; 2026/27 still passes."""
    doc = constructed()
    doc.values["ga_beds"][12:] = 120.0
    checks = staff(doc)
    assert [c.status for c in checks] == ["pass", "fail", "fail"]
    assert checks[1].planned == pytest.approx(100 / 120) and checks[1].expected == pytest.approx(1.0)
    assert "(-16.7%; allowed 5% fewer): the beds need 14 more nurses" in checks[1].message
    older = constructed()
    older.assumptions = [a for a in older.assumptions if a.assumption_id != "baseline_ga_beds"]
    assert {c.status for c in staff(older)} == {"not checked"}  # a plan drafted before the check: no baseline


def halved() -> PlanDocument:
    """The constructed plan split evenly between two trusts: every input line at half."""
    doc = constructed()
    doc.org_code = "RXA"
    doc.values = {k: v / 2 for k, v in doc.values.items()}
    return doc.derive()


def test_an_icb_plan_is_checked_against_the_sum_of_its_trusts_plans():
    """The ICB plans the constructed figures; two trusts plan half each, so every line adds up. One trust then
    plans 10% more A&E attendances: 2026/27's ICB 120,000 against the trusts' 5,000 x 12 + 5,500 x 12 = 126,000,
    -4.8%, beyond the 2% allowed; every other line and year still agrees. With a trust's plan missing, nothing is
    compared and the check names the trust that has none."""
    icb = constructed()
    icb.org_code = "QE1"
    checks = system(icb, {"RXA": halved(), "RXB": halved()})
    assert checks and not failures(checks) and len(checks) == len(SYSTEM_LINES) * 3
    more = halved()
    more.values["ae_attendances"] = more.values["ae_attendances"] * 1.1
    bad = failures(system(icb, {"RXA": halved(), "RXB": more.derive()}))
    assert {(c.subject, c.period) for c in bad} >= {("A&E attendances", "2026/27")}
    first = next(c for c in bad if c.period == "2026/27" and c.subject == "A&E attendances")
    assert (first.planned, first.expected) == (pytest.approx(120_000), pytest.approx(126_000))
    assert "(-4.8%, allowed 2%)" in first.message
    assert not any(c.subject not in ("A&E attendances", "Income: total", "Surplus (+) or deficit (-)") for c in bad)
    # a break-even surplus is measured against income, not against itself: £10 against £16 agrees
    even = constructed()
    even.org_code = "QE1"
    even.values["income_other"] = even.values["income_other"] - even.derive().values["surplus"] + 10 / 12
    split = [halved(), halved()]
    for d in split:
        d.values["income_other"] = d.values["income_other"] - d.derive().values["surplus"] + 8 / 12
    surplus = [c for c in system(even.derive(), dict(zip(("RXA", "RXB"), (d.derive() for d in split))))
               if c.subject == "Surplus (+) or deficit (-)"]
    assert [c.status for c in surplus] == ["pass"] * 3 and "of income" in surplus[0].message
    waiting = system(icb, {"RXA": halved(), "RXB": None})
    assert [c.status for c in waiting] == ["not checked"] * 3 and "none yet from RXB" in waiting[0].message
    assert system(constructed(), {}) == []  # a trust's plan has no trusts to add up


def test_the_refresh_checks_an_icb_plan_against_its_trusts_tracked_plans(tmp_path):
    """In a real DuckDB: an ICB (QE1) with two NHS trusts and a closed one; the ICB's plan and both open trusts'
    plans stored and copied as a refresh does; plan.triangulation then holds the system check for the ICB only,
    and it agrees (the trusts plan half each). The closed trust is not asked for a plan."""
    import duckdb

    from ibp_pipeline.plan.store import save_version
    from ibp_pipeline.plan.tables import build_triangulation, copy_store

    store = tmp_path / "plans.duckdb"
    icb = constructed()
    icb.org_code = "QE1"
    for doc, sha in ((icb, "a"), (halved(), "b")):
        save_version(store, doc, "approved", "test", sha, "plan.xlsx")
    other = halved()
    other.org_code = "RXB"
    save_version(store, other, "submitted", "test", "c", "plan.xlsx")
    con = duckdb.connect()
    con.execute("create schema plan; create schema s1_current_state")
    con.execute("create table s1_current_state.organisations as select * from (values "
                "('RXA', 'QE1', 'nhs_trust', null::date), ('RXB', 'QE1', 'nhs_trust', null::date), "
                "('RXC', 'QE1', 'nhs_trust', '2024-03-31'::date)) t(org_code, parent_icb_code, org_type, valid_to)")
    copy_store(con, store)
    build_triangulation(con)
    rows = con.execute("select plan_id, status, count(*) from plan.triangulation where check_id = 'system' "
                       "group by 1, 2").fetchall()
    con.close()
    assert rows == [("QE1 2026/27-2028/29", "pass", len(SYSTEM_LINES) * 3)]
