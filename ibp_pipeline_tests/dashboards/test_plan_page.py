"""The Plan page (dashboards/app_pages/plan.py) and its functions (ibp_pipeline/dashboards/plan.py): the bundled
example plan for RXL against the example ledger, with expected figures read here from the ledger CSV and the example
workbook (csv and openpyxl), and the pure functions on hand-made frames."""
from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from openpyxl import load_workbook

from ibp_pipeline.config import PROJECT_ROOT
from ibp_pipeline.dashboards import plan
from ibp_pipeline.dashboards.serving import Serving
from ibp_pipeline.plan.workbook import read_workbook

from .conftest import page_text

LEDGER = PROJECT_ROOT / "data" / "sources" / "finance_ledger_example" / "ledger_RXL_example.csv"
EXAMPLE = PROJECT_ROOT / "data" / "examples" / "plan_RXL_2026-27-2028-29_example.xlsx"


def example_cell(sheet: str, code: str, month: dt.date) -> float:
    ws = load_workbook(EXAMPLE, data_only=True)[sheet]
    col = next(c.column for c in ws[4] if isinstance(c.value, dt.datetime) and c.value.date() == month)
    row = next(r for r in ws.iter_rows(min_row=5) if r[0].value == code)
    return float(row[col - 1].value)


def ledger_amount(line: str, month: str) -> float:
    with LEDGER.open(encoding="utf-8", newline="") as fh:
        return next(float(r["amount_gbp"]) for r in csv.DictReader(fh) if r["line"] == line and r["month"] == month)


def test_triangulation_summary_and_plan_by_year_on_hand_made_rows():
    checks = pl.DataFrame({"check_name": ["Pay", "Pay", "Beds"], "status": ["pass", "fail", "explained"],
                           "message": ["ok", "2027/28: pay off", "why"]})
    summary = plan.triangulation_summary(checks)
    assert summary.rows() == [("Pay", "Does not agree", 1, 2, "2027/28: pay off"), ("Beds", "Explained", 1, 1, None)]
    lines = pl.DataFrame({"line_id": ["a"] * 3 + ["rtt_waiting_list"] * 3, "line": ["A"] * 3 + ["List"] * 3,
                          "unit": ["attendances"] * 3 + ["pathways"] * 3, "financial_year": ["2026/27"] * 6,
                          "value": [1.0, 2.0, 3.0, 10.0, 20.0, 30.0], "source": ["s"] * 6})
    assert plan.by_year(lines).select("Line", "2026/27").rows() == [("A", 6.0), ("List", 20.0)]  # flow sum, level mean


def test_the_waterfall_adds_up_from_planned_to_actual_surplus():
    rows = pl.DataFrame({"part": ["finance"] * 3, "line_id": ["income_ae", "pay_midwives", "cip"],
                         "line": ["Income", "Pay", "Savings"], "month": [dt.date(2026, 4, 1)] * 3,
                         "financial_year": ["2026/27"] * 3, "planned": [100e6, 60e6, 1e6],
                         "actual": [98e6, 63e6, 1e6]})
    fig, caption = plan.surplus_waterfall(rows)
    bar = fig.data[0]
    assert list(bar.measure) == ["absolute", "relative", "relative", "total"]
    assert [round(y, 6) for y in bar.y] == [41.0, -3.0, -2.0, 36.0]  # 100 - 60 + 1; pay +3m worse; income -2m
    assert "planned £41.00m, actual £36.00m" in caption


def test_the_plan_page_shows_the_example_plan_against_the_example_ledger(app):
    at = app("plan.py", org="RXL")
    text = page_text(at)
    assert "This is an **example** plan" in text and "example, not real figures" in text
    planned = example_cell("Finance", "pay_nurses_health_visitors", dt.date(2026, 4, 1))
    actual = ledger_amount("pay_nurses_health_visitors", "2026-04")
    pct = 100 * (actual - planned) / planned
    assert pct > 5  # the example ledger has nurses' pay 6% over plan
    expected = (f"Pay: Nurses and health visitors in April 2026: £{actual:,.0f} against a plan of £{planned:,.0f}, "
                f"{pct:.1f}% above plan, worse than planned.")
    assert expected in text
    assert "Do the parts agree?" in [t.label for t in at.tabs]
    summary = next(d.value for d in at.dataframe if "Verdict" in d.value.columns)
    assert set(summary["Check"]) == {"Waiting-list arithmetic", "Performance against the trajectory",
                                     "Productivity (weighted activity per FTE)", "Pay bill against FTE",
                                     "Activity income against activity", "Beds for the planned occupancy",
                                     "Treatment capacity for the planned waits", "Nurses for the planned beds"}
    activity = next(d.value for d in at.dataframe if "Forecast outturn" in d.value.columns)
    chance = activity.loc[activity["Line"].str.startswith("RTT waiting list"),
                          "Chance of meeting the plan for the year (%)"]
    assert len(chance) and 0 <= chance.iloc[0] <= 100
    assert any(c.proto.id.endswith("-plan_spc_chart_activity") for c in at.get("plotly_chart"))
    at.radio(key="plan_part").set_value("finance").run()
    assert not at.exception
    assert any(c.proto.id.endswith("-plan_waterfall") for c in at.get("plotly_chart"))
    assert "Surplus (+) or deficit (-), 2026/27 year to date (Apr 2026 to Sep 2026)" in page_text(at)
    budget = next(d.value for d in at.dataframe if "Within the budget?" in d.value.columns)
    assert budget.loc[budget["What"] == "The plan's surplus", "Year"].tolist() == ["2026/27", "2027/28", "2028/29"]


def test_an_organisation_without_a_plan_is_told_how_to_make_one(app):
    text = page_text(app("plan.py", org="RXN"))
    assert "No plan for" in text and "ibp plan draft --org RXN" in text


def test_the_workbook_downloaded_from_the_page_loads_back_with_the_same_numbers(served_db: Path, tmp_path: Path):
    db = Serving(served_db)
    versions = plan.versions(db, "RXL")
    v = versions.row(plan.tracked(versions), named=True)
    path = tmp_path / "download.xlsx"
    path.write_bytes(plan.workbook_bytes(plan.stored(db, v["plan_id"], v["version"])))
    doc, problems = read_workbook(path)
    assert problems == []
    assert doc.example and doc.org_code == "RXL"
    assert doc.values["pay_nurses_health_visitors"][0] == pytest.approx(
        example_cell("Finance", "pay_nurses_health_visitors", dt.date(2026, 4, 1)))


def test_reviews_are_entered_on_the_page_by_icb_and_admin_users_and_kept_in_the_plan_store(app, tmp_path,
                                                                                            monkeypatch):
    import duckdb

    from ibp_pipeline.access import User

    assert plan.may_review(None) and plan.may_review(User("a", "", "icb", "QE1"))
    assert plan.may_review(User("b", "", "admin", None)) and not plan.may_review(User("c", "", "trust", "RXL"))
    store = tmp_path / "plans.duckdb"
    monkeypatch.setenv("IBP_PLAN_STORE", str(store))
    at = app("plan.py", org="RXL")  # local mode: no users configured, so the form is offered
    at.text_area(key="review_what").input("Agency nurses covered sickness on two wards")
    at.text_area(key="review_action").input("Bank rota from May")
    save = next(b for b in at.button if b.label == "Save review")
    save.click().run()
    assert "Owner is empty" in page_text(at) and not store.exists()  # nothing stored without an owner
    at.text_input(key="review_owner").input("Director of Nursing")
    next(b for b in at.button if b.label == "Save review").click().run()
    assert not at.exception
    text = page_text(at)
    assert "Saved: revision 1 of the review of" in text
    assert "(open; owner Director of Nursing" in text and "Agency nurses covered sickness" in text  # at once
    con = duckdb.connect(str(store), read_only=True)
    rows = con.execute("select org_code, revision, owner, status, entered_by, source from plan.reviews").fetchall()
    con.close()
    assert rows == [("RXL", 1, "Director of Nursing", "open", "local mode (no login)", "dashboard")]


def test_a_review_saved_while_the_plan_store_is_held_says_so_and_saves_nothing(tmp_path, monkeypatch):
    """A second process holding the store (as a refresh or a plan load does for a moment) makes the save fail in
    words, not with a database error."""
    import subprocess
    import sys
    import time

    from ibp_pipeline.plan.store import connect

    store = tmp_path / "plans.duckdb"
    connect(store).close()  # an empty store
    monkeypatch.setenv("IBP_PLAN_STORE", str(store))
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(60)", str(store)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ValueError, match="The plan store is busy"):
            plan.save_review("RXL", "pay_midwives", dt.date(2026, 4, 1),
                             {"what_happened": "x", "action": "y", "owner": "z", "due_date": dt.date(2026, 7, 1),
                              "status": "open"}, "tester")
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.2)
    import duckdb

    con = duckdb.connect(str(store), read_only=True)
    assert con.execute("select count(*) from plan.reviews").fetchone()[0] == 0
    con.close()


def test_the_board_pack_carries_the_plan_its_exceptions_agreement_and_workforce(served_db: Path):
    """RXL's board pack: the example plan's banner, April's nurses' pay exception worked out here from the ledger
    CSV and the example workbook, the triangulation's checks and the Six Steps table."""
    import datetime as dt

    from ibp_pipeline.dashboards import board_pack

    html = board_pack.build(Serving(served_db), "RXL", dt.date(2025, 4, 1), dt.date(2026, 3, 1))
    assert "<h2>The plan</h2>" in html and "This is an example plan" in html
    planned = example_cell("Finance", "pay_nurses_health_visitors", dt.date(2026, 4, 1))
    actual = ledger_amount("pay_nurses_health_visitors", "2026-04")
    assert (f"Pay: Nurses and health visitors in April 2026: £{actual:,.0f} against a plan of £{planned:,.0f}, "
            f"{100 * (actual - planned) / planned:.1f}% above plan, worse than planned.") in html.replace("&#x27;", "'")
    for check in ("Waiting-list arithmetic", "Treatment capacity for the planned waits", "Nurses for the planned beds"):
        assert f"<td>{check}</td>" in html
    assert "Workforce plan (Six Steps)" in html and "<td>Nurses and health visitors</td>" in html
    assert "Chance of meeting the plan for the year (%)" in html
    assert "Budget: the plan's surplus against what is needed or proposed" in html
    september = example_cell("Finance", "pay_nurses_health_visitors", dt.date(2026, 9, 1))
    assert f"<td>£{september:,.0f}</td>" in html  # the latest month's plan, in pounds
    assert "drafted from data up to April 2026" in html
