"""Plan against actual on the constructed plan (constructed.py) with hand-made actuals in a real DuckDB: variance,
year to date, outturn, exceptions, and a ledger line that is no plan line."""
from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pytest

from ibp_pipeline.plan.actuals import plan_vs_actual, unknown_ledger_lines

from .constructed import constructed


@pytest.fixture
def con():
    c = duckdb.connect()
    c.execute("create schema s1_current_state; create schema latest; create schema s5_impact")
    c.execute("create table s1_current_state.metric_values (org_code varchar, metric_id varchar, period_start date, "
              "period_grain varchar, value double)")
    c.execute("create table s5_impact.forecasts (org_code varchar, metric_id varchar, period_start date, "
              "mean double)")
    c.execute("create table latest.finance_ledger (org_code varchar, period_start date, line varchar, "
              "amount_gbp double)")
    # A&E attendances: April 10,600 (plan 10,000: +6%), May 9,900 (-1%); the forecast says 9,000 a month after
    for m, v in ((4, 10600.0), (5, 9900.0)):
        c.execute("insert into s1_current_state.metric_values values ('RXL', 'ae_attendances', ?, 'month', ?)",
                  [dt.date(2026, m, 1), v])
    for m in range(6, 13):
        c.execute("insert into s5_impact.forecasts values ('RXL', 'ae_attendances', ?, 9000)", [dt.date(2026, m, 1)])
    # the ledger: midwives' pay 3% over plan in April, and a line the plan does not have
    c.execute("insert into latest.finance_ledger values ('RXL', '2026-04-01', 'pay_midwives', 103000), "
              "('RXL', '2026-04-01', 'consultancy', 25000)")
    yield c
    c.close()


def test_variance_year_to_date_outturn_and_exceptions(con):
    doc = constructed()
    rows = {(r["line_id"], r["month"]): r for r in plan_vs_actual(con, doc, "RXL 2026/27-2028/29", 1)}
    april, may = rows[("ae_attendances", dt.date(2026, 4, 1))], rows[("ae_attendances", dt.date(2026, 5, 1))]
    assert (april["variance"], april["variance_pct"], april["is_exception"]) == (600.0, pytest.approx(6.0), True)
    assert "above plan" in april["sentence"] and april["favourable"] is None  # more attendances: neither good nor bad
    assert (may["ytd_planned"], may["ytd_actual"]) == (20000.0, 20500.0)
    assert may["is_exception"] is False
    # outturn 2026/27: two actual months, seven forecast months (Jun-Dec), three plan months (Jan-Mar at 10,000)
    assert may["outturn"] == pytest.approx(10600 + 9900 + 7 * 9000 + 3 * 10000)
    assert may["outturn_method"] == "actual months; then the forecast; then the plan"
    pay = rows[("pay_midwives", dt.date(2026, 4, 1))]
    assert pay["variance_pct"] == pytest.approx(3.0) and pay["favourable"] is False and not pay["is_exception"]
    assert pay["sentence"] == ("Pay: Midwives in April 2026: £103,000 against a plan of £100,000, 3.0% above plan, "
                               "worse than planned.")


def test_a_ledger_line_the_plan_does_not_have_is_an_exception_not_dropped(con):
    rows = unknown_ledger_lines(con, constructed(), "RXL 2026/27-2028/29", 1)
    assert len(rows) == 1 and rows[0]["is_exception"] and rows[0]["actual"] == 25000
    assert "'consultancy', which is not a line of the plan" in rows[0]["sentence"]


def test_chance_of_meeting_the_plan_matches_the_normal_distribution():
    """One month known (100), one drawn from a symmetric forecast (mean 50, 80% interval +/- 12.816, so sd 10): a
    year's plan of 150 is met half the time, one of 137.184 (1.2816 sd below) nine times in ten; a year already
    known is met or not, with no draw."""
    from ibp_pipeline.plan.actuals import chance_of_meeting
    from ibp_pipeline.plan.lines import by_id
    from ibp_pipeline.simulation.engine import ar1_noise, stream

    cip = by_id()["cip"]  # a flow where above plan is good news
    z = ar1_noise(stream(1, "test"), 1, 200_000)
    known, mean, scale = np.array([100.0, np.nan]), np.array([0.0, 50.0]), np.array([0.0, 10.0])
    assert chance_of_meeting(known, mean, scale, scale, z, cip, 150.0) == pytest.approx(0.5, abs=0.005)
    assert chance_of_meeting(known, mean, scale, scale, z, cip, 137.184) == pytest.approx(0.9, abs=0.005)
    wl = by_id()["rtt_waiting_list"]  # a level where below plan is good news: the year's average
    assert chance_of_meeting(known, mean, scale, scale, z, wl, 75.0) == pytest.approx(0.5, abs=0.005)
    done, none = np.array([100.0, 60.0]), np.zeros((0, 1), dtype=np.float32)
    assert chance_of_meeting(done, done, done, done, none, cip, 160.0) == 1.0
    assert chance_of_meeting(done, done, done, done, none, cip, 160.5) == 0.0


def test_the_variance_gets_an_xmr_chart_and_the_year_a_chance(con):
    """Twelve months of the 4-hour % (plan 78%): eleven months 1 point either side of 77, then a month 10 points
    below: that month is special cause concern on the variance chart (below its lower limit); the variance's centre
    line is the mean variance, worked out here by hand."""
    c = con
    values = [77.0 + (1 if m % 2 else -1) for m in range(11)] + [67.0]
    months = [dt.date(2026 + (3 + k) // 12, (3 + k) % 12 + 1, 1) for k in range(12)]
    for m, v in zip(months, values):
        c.execute("insert into s1_current_state.metric_values values ('RXL', 'ae_4hr_pct', ?, 'month', ?)", [m, v])
    doc = constructed()
    plan = doc.values["ae_4hr_pct"]
    rows = [r for r in plan_vs_actual(c, doc, "RXL 2026/27-2028/29", 1) if r["line_id"] == "ae_4hr_pct"]
    assert len(rows) == 12
    variances = [v - plan[i] for i, v in enumerate(values)]
    assert rows[0]["variance_centre"] == pytest.approx(sum(variances) / 12)
    assert rows[-1]["variance_variation"] == "special_cause_concern"
    assert rows[0]["variance_variation"] == "common_cause"
    # the whole year is known: the chance is 1 or 0, by the year's average against the plan's
    met = sum(values) / 12 >= sum(plan[:12]) / 12
    assert rows[-1]["p_meeting_plan"] == (1.0 if met else 0.0)
    assert rows[-1]["p_meeting_method"] == "the year's months are all known: no draw"
