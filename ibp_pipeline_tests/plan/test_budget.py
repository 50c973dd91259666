"""The budget: the plan's surplus as headroom, with a need and a scenario against it, on hand-made figures; and
on the bundled run, the example plan's headroom read here from its workbook's Finance sheet."""
from __future__ import annotations

import pytest

from ibp_pipeline.plan.budget import budget_rows


def test_each_item_stands_alone_against_the_years_headroom():
    rows = budget_rows({"2026/27": 1_000_000.0, "2027/28": -200_000.0},
                       [("Pay of the staff for 10 beds", 600_000.0, "s4")],
                       [("more_beds", "2026/27", 1_500_000.0, 11), ("more_beds", "2027/28", 0.0, 12)])
    by = [(r["financial_year"], r["kind"], r["headroom_after_gbp"], r["fits"]) for r in rows]
    assert by == [("2026/27", "headroom", 1_000_000.0, True), ("2026/27", "need", 400_000.0, True),
                  ("2026/27", "scenario", -500_000.0, False),
                  ("2027/28", "headroom", -200_000.0, False), ("2027/28", "need", -800_000.0, False)]
    assert rows[2]["months_costed"] == 11 and "11 month(s) of 2026/27" in rows[2]["source"]
    # a plan drafted to break even is off by the pounds its cells were rounded to: it still breaks even
    assert budget_rows({"2026/27": -12.0}, [], [])[0]["fits"]
    assert not budget_rows({"2026/27": -1_001.0}, [], [])[0]["fits"]


def test_the_example_plans_headroom_is_its_finance_sheets_surplus(bundled_run):
    """2026/27's headroom: the example workbook's income less pay, non-pay and savings, added up here from its input
    cells (the totals and the surplus are Excel formulas, so they are not read)."""
    import datetime as dt

    import duckdb
    from openpyxl import load_workbook

    from ibp_pipeline.config import PROJECT_ROOT

    ws = load_workbook(PROJECT_ROOT / "data" / "examples" / "plan_RXL_2026-27-2028-29_example.xlsx")["Finance"]
    months = [c.value.date() if isinstance(c.value, dt.datetime) else None for c in ws[4]]
    codes = {r[0].value: r for r in ws.iter_rows(min_row=5) if r[0].value}
    first_year = [i for i, m in enumerate(months) if m and dt.date(2026, 4, 1) <= m <= dt.date(2027, 3, 1)]
    assert len(first_year) == 12

    def total(prefix: str) -> float:
        return sum(float(codes[c][i].value or 0) for c in codes if str(c).startswith(prefix)
                   and not str(c).endswith("_total") for i in first_year)

    expected = total("income_") - total("pay_") - total("non_pay") + total("cip")
    con = duckdb.connect(str(bundled_run.paths.serving), read_only=True)
    rows = con.execute("select kind, headroom_gbp, cost_gbp, headroom_after_gbp from plan.budget where org_code = "
                       "'RXL' and financial_year = '2026/27' order by kind").fetchall()
    con.close()
    head = [r for r in rows if r[0] == "headroom"]
    assert len(head) == 1 and head[0][1] == pytest.approx(expected, abs=1.0)
    for kind, room, cost, after in rows:
        if kind != "headroom":
            assert after == pytest.approx(room - cost)
