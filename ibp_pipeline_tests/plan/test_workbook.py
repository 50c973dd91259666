"""The plan workbook: written, read back exactly, and every bad cell reported in one line naming its sheet and cell.
Cells are found here with openpyxl by their line code and month header, not with the reader under test."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from openpyxl import load_workbook

from ibp_pipeline.plan.period import Period, PeriodError
from ibp_pipeline.plan.workbook import read_workbook, write_workbook

from .constructed import constructed


@pytest.fixture
def workbook(tmp_path: Path) -> Path:
    return write_workbook(constructed(), tmp_path / "plan.xlsx")


def cell_of(path: Path, sheet: str, code: str, month: dt.date) -> str:
    ws = load_workbook(path)[sheet]
    row = next(r[0].row for r in ws.iter_rows(min_row=5) if r[0].value == code)
    col = next(c.column_letter for c in ws[4] if isinstance(c.value, dt.datetime) and c.value.date() == month)
    return f"{col}{row}"


def edit(path: Path, sheet: str, address: str, value) -> None:
    wb = load_workbook(path)
    wb[sheet][address] = value
    wb.save(path)


def test_period_months_and_labels():
    p = Period.parse("2026/27-2028/29")
    assert (len(p.months), p.months[0], p.months[-1], p.years) == (
        36, dt.date(2026, 4, 1), dt.date(2029, 3, 1), ["2026/27", "2027/28", "2028/29"])
    assert Period.parse("2027/28").label == "2027/28"
    for bad in ("2026/28", "2026-2027", "2028/29-2026/27"):
        with pytest.raises(PeriodError):
            Period.parse(bad)


def test_an_untouched_workbook_reads_back_the_same_numbers(workbook: Path):
    doc, problems = read_workbook(workbook)
    assert problems == []
    original = constructed()
    for line_id, values in original.values.items():
        np.testing.assert_allclose(np.nan_to_num(doc.values[line_id]), np.nan_to_num(values), err_msg=line_id)
    assert [(a.assumption_id, a.value) for a in doc.assumptions] == \
        [(a.assumption_id, a.value) for a in original.assumptions]
    assert [(s.name, s.beds_added, s.start, s.by_year) for s in doc.capital] == \
        [("New ward", 20.0, dt.date(2027, 10, 1), {"2026/27": 0.0, "2027/28": 2_000_000.0, "2028/29": 500_000.0})]
    # the sheets a planner sees: a README, the three parts, assumptions, capital; a data validation on inputs
    wb = load_workbook(workbook)
    assert wb.sheetnames == ["README", "Activity", "Workforce", "Finance", "Assumptions", "Capital"]
    assert wb["Workforce"].data_validations.dataValidation
    assert all(row[-1].value for row in wb["Activity"].iter_rows(min_row=5))  # every row says its source


def test_a_planner_edit_changes_that_line_and_what_is_worked_out_from_it(workbook: Path):
    address = cell_of(workbook, "Finance", "pay_midwives", dt.date(2027, 6, 1))
    edit(workbook, "Finance", address, 150_000)
    doc, problems = read_workbook(workbook)
    assert problems == []
    before = constructed()
    moved = {k for k in doc.values if not np.allclose(np.nan_to_num(doc.values[k]), np.nan_to_num(before.values[k]))}
    assert moved == {"pay_midwives", "pay_total", "surplus"}
    assert doc.values["surplus"][14] == pytest.approx(before.values["surplus"][14] - 50_000)


@pytest.mark.parametrize("sheet, code, month, value, expect", [
    ("Workforce", "fte_nurses_health_visitors_substantive", dt.date(2027, 6, 1), "twelve",
     "'twelve' is not a number: Nurses and health visitors: substantive must be FTE of 0 or more"),
    ("Workforce", "fte_midwives_bank", dt.date(2026, 4, 1), -3, "-3 is out of range"),
    ("Activity", "ae_4hr_pct", dt.date(2028, 1, 1), 104, "104 is out of range: A&E patients seen within 4 hours must "
                                                          "be a percentage from 0 to 100"),
    ("Activity", "ae_attendances", dt.date(2026, 5, 1), None, "empty: A&E attendances needs a number"),
])
def test_a_bad_cell_is_one_line_naming_sheet_cell_value_and_rule(workbook, sheet, code, month, value, expect):
    address = cell_of(workbook, sheet, code, month)
    edit(workbook, sheet, address, value)
    doc, problems = read_workbook(workbook)
    assert doc is None
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{sheet}!{address}: ") and expect in problems[0]


def test_a_missing_sheet_a_month_outside_the_period_and_an_unknown_line_are_named(workbook: Path, tmp_path: Path):
    wb = load_workbook(workbook)
    del wb["Workforce"]
    wb.save(tmp_path / "no_workforce.xlsx")
    assert read_workbook(tmp_path / "no_workforce.xlsx") == (
        None, ["no_workforce.xlsx: no sheet named 'Workforce' (a plan has the sheets README, Activity, Workforce, "
               "Finance, Assumptions, Capital)"])

    wb = load_workbook(workbook)
    wb["Activity"]["D4"] = dt.datetime(2029, 4, 1)  # April 2026's column now says April 2029
    wb["Finance"]["A5"] = "income_lottery"
    wb["Capital"]["B5"] = "Helipad"
    wb.save(tmp_path / "bad.xlsx")
    _, problems = read_workbook(tmp_path / "bad.xlsx")
    assert "Activity!D4: Apr 2029 is outside the plan period 2026/27-2028/29" in problems
    assert "Activity!4: no column for Apr 2026 (every month of 2026/27-2028/29 is needed)" in problems
    assert "Finance!A5: 'income_lottery' is not a line of the Finance sheet" in problems
    assert any(p.startswith("Capital!B5: 'Helipad' is not a category") for p in problems)
