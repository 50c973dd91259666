"""The plan workbook a planner edits (`ibp plan draft`) and what is read back from it (`ibp plan load`).

Sheets: README (the organisation, the period, how to edit, the planner's notes), Activity, Workforce and Finance
(rows = lines, columns = months, a Source column saying where each row's numbers came from; grey rows are worked
out from the others and whatever is typed there is ignored), Assumptions (the figures the draft and the checks
use; a planner replaces them with the organisation's own) and Capital (one row per capital scheme).

Reading checks every cell and reports every problem in one line naming the sheet, the cell, the value and the rule
(`Workforce!F12: 'twelve' is not a number: FTE must be a number of 0 or more`); a workbook with any problem gives
no plan, so nothing half-read is ever stored.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
from openpyxl import Workbook, load_workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from .document import AssumptionRow, CapitalScheme, PlanDocument
from .lines import SHEETS, Line, by_id, part_lines
from .period import Period, PeriodError

HEADER_ROW = 4
FIRST_ROW = 5
FIRST_MONTH_COL = 4  # D: A code, B line, C unit
README_FIELDS = {"org_code": "Organisation code", "org_name": "Organisation", "period": "Plan period",
                 "drafted": "Drafted on", "data_as_of": "Data as of",
                 "example": "Example only, not the organisation's plan (yes or empty)",
                 "productivity_explanation": "Why productivity grows less than the framework asks (if it does)"}
CAPITAL_CATEGORIES = ("Backlog maintenance", "New capacity", "Digital", "Medical equipment", "Other")
CAPITAL_ROWS = 20
NHS_BLUE = "005EB8"
HEADER = PatternFill("solid", fgColor=NHS_BLUE)
DERIVED = PatternFill("solid", fgColor="E8EDEE")
WHITE_BOLD = Font(bold=True, color="FFFFFF")
SHEET_ORDER = ("README", "Activity", "Workforce", "Finance", "Assumptions", "Capital")


def _fmt(line: Line) -> str:
    return "0.0" if line.percent else ("#,##0.0" if line.unit == "FTE" else "#,##0")


def _title(ws, title: str, note: str) -> None:
    ws["A1"] = title
    ws["A1"].font = Font(bold=True, size=14)
    ws["A2"] = note
    ws["A2"].alignment = Alignment(wrap_text=False)


def _header(ws, labels: list[str]) -> None:
    for i, label in enumerate(labels, start=1):
        c = ws.cell(HEADER_ROW, i, label)
        c.fill, c.font = HEADER, WHITE_BOLD


def _formula(line_id: str, col: str, rows: dict[str, int]) -> str:
    if line_id in ("fte_total", "income_total", "pay_total"):
        prefix = line_id.split("_")[0] + "_"
        return "=" + "+".join(f"{col}{rows[i]}" for i in rows if i.startswith(prefix) and i != line_id)
    if line_id == "surplus":
        return f"={col}{rows['income_total']}-{col}{rows['pay_total']}-{col}{rows['non_pay']}+{col}{rows['cip']}"
    raise KeyError(line_id)


def _part_sheet(wb: Workbook, doc: PlanDocument, part: str) -> None:
    ws = wb.create_sheet(SHEETS[part])
    months = doc.period.months
    _title(ws, f"{SHEETS[part]}: {doc.org_name} ({doc.org_code}), plan {doc.period.label}",
           "Rows are plan lines, columns are months. Type over the white cells; grey rows are worked out from the "
           "others. The Source column says where each row's draft numbers came from.")
    _header(ws, ["Code", "Line", "Unit"] + [m.strftime("%b %Y") for m in months] + ["Source"])
    for j, m in enumerate(months):  # the month headers are dates, shown as 'Apr 2026'
        c = ws.cell(HEADER_ROW, FIRST_MONTH_COL + j, m)
        c.number_format = "mmm yyyy"
    src_col = FIRST_MONTH_COL + len(months)
    lines = part_lines(part)
    rows = {line.line_id: FIRST_ROW + i for i, line in enumerate(lines)}
    last = get_column_letter(src_col - 1)
    for line in lines:
        r = rows[line.line_id]
        ws.cell(r, 1, line.line_id)
        ws.cell(r, 2, line.label)
        ws.cell(r, 3, line.unit)
        vals = doc.values.get(line.line_id, np.full(len(months), np.nan))
        for j in range(len(months)):
            col = get_column_letter(FIRST_MONTH_COL + j)
            cell = ws.cell(r, FIRST_MONTH_COL + j)
            if line.derived:
                cell.value = _formula(line.line_id, col, rows)
                cell.fill = DERIVED
            elif not np.isnan(vals[j]):
                cell.value = round(float(vals[j]), line.decimals)
            cell.number_format = _fmt(line)
        ws.cell(r, src_col, doc.sources.get(line.line_id, ""))
        if line.derived:
            for c in (1, 2, 3):
                ws.cell(r, c).fill = DERIVED
            continue
        rule = ("between", "0", "100") if line.percent else ("greaterThanOrEqual", "0", None)
        dv = DataValidation(type="decimal", operator=rule[0], formula1=rule[1], formula2=rule[2],
                            allow_blank=line.optional, showErrorMessage=True, errorTitle="Not a valid number",
                            error=("a percentage from 0 to 100" if line.percent else "a number of 0 or more"))
        dv.add(f"{get_column_letter(FIRST_MONTH_COL)}{r}:{last}{r}")
        ws.add_data_validation(dv)
    ws.column_dimensions["A"].width = 30
    ws.column_dimensions["B"].width = 48
    ws.column_dimensions["C"].width = 12
    for j in range(len(months)):
        ws.column_dimensions[get_column_letter(FIRST_MONTH_COL + j)].width = 12
    ws.column_dimensions[get_column_letter(src_col)].width = 100
    ws.freeze_panes = ws.cell(FIRST_ROW, FIRST_MONTH_COL)


def write_workbook(doc: PlanDocument, path: Path) -> Path:
    """Write the plan workbook (see the module doc)."""
    wb = Workbook()
    ws = wb.active
    ws.title = "README"
    _title(ws, f"Operational plan {doc.period.label}: {doc.org_name} ({doc.org_code})",
           "A three-year plan in three parts (activity and performance, workforce, finance) with its assumptions "
           "and capital schemes, drafted by ibp_pipeline.")
    fields = {"org_code": doc.org_code, "org_name": doc.org_name, "period": doc.period.label,
              "drafted": dt.date.today().isoformat(), "data_as_of": doc.data_as_of,
              "productivity_explanation": doc.notes.get("productivity_explanation", ""),
              "example": "yes" if doc.example else ""}
    for i, (key, label) in enumerate(README_FIELDS.items()):
        ws.cell(HEADER_ROW + i, 1, label).font = Font(bold=True)
        ws.cell(HEADER_ROW + i, 2, fields[key])
    help_row = HEADER_ROW + len(README_FIELDS) + 1
    for i, text in enumerate((
            "How to use this workbook",
            "1. Each part has its own sheet: Activity (activity and performance), Workforce (FTE by staff group: "
            "substantive, bank, agency) and Finance (income, pay, non-pay, efficiency savings).",
            "2. Type over the white cells. Numbers only: 0 or more, percentages from 0 to 100. Leave no required "
            "cell empty (0 if none). Grey rows are totals and the surplus, worked out when the plan is loaded.",
            "3. The Assumptions sheet holds the figures the draft used (pay per FTE, unit costs, shares). Put your "
            "own there: the checks on load use the values in this workbook.",
            "4. Capital: one row per scheme, its cost by financial year and any beds it adds.",
            "5. Load it: ibp plan load FILE.xlsx --status draft (or submitted, approved). Every version is kept; "
            "the latest approved version is the plan of record.",
            "Every number in the draft says where it came from in its row's Source column. Published NHS data: "
            "Open Government Licence v3.0.")):
        ws.cell(help_row + i, 1, text).font = Font(bold=(i == 0))
    ws.column_dimensions["A"].width = 62
    ws.column_dimensions["B"].width = 60
    for part in ("activity", "workforce", "finance"):
        _part_sheet(wb, doc, part)
    _assumptions_sheet(wb, doc)
    _capital_sheet(wb, doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def _assumptions_sheet(wb: Workbook, doc: PlanDocument) -> None:
    ws = wb.create_sheet("Assumptions")
    _title(ws, "Assumptions", "The figures the draft used and the checks on load use. Replace a value with your "
                              "own and say where it came from in the Source column.")
    _header(ws, ["Code", "Assumption", "Value", "Unit", "Source"])
    for i, a in enumerate(doc.assumptions):
        r = FIRST_ROW + i
        for c, v in enumerate((a.assumption_id, a.label, a.value, a.unit, a.source), start=1):
            ws.cell(r, c, v)
    if doc.assumptions:
        dv = DataValidation(type="decimal", operator="greaterThanOrEqual", formula1="0", showErrorMessage=True,
                            error="a number of 0 or more")
        dv.add(f"C{FIRST_ROW}:C{FIRST_ROW + len(doc.assumptions) - 1}")
        ws.add_data_validation(dv)
    for col, width in zip("ABCDE", (34, 70, 14, 26, 120)):
        ws.column_dimensions[col].width = width


def _capital_sheet(wb: Workbook, doc: PlanDocument) -> None:
    ws = wb.create_sheet("Capital")
    _title(ws, "Capital schemes", "One row per scheme: its category, beds it adds (0 if none), the month it "
                                  "opens (YYYY-MM) and its cost in each financial year (GBP).")
    _header(ws, ["Scheme", "Category", "Beds added", "Opens (YYYY-MM)"] + doc.period.years)
    for i, s in enumerate(doc.capital):
        r = FIRST_ROW + i
        ws.cell(r, 1, s.name)
        ws.cell(r, 2, s.category)
        ws.cell(r, 3, s.beds_added)
        ws.cell(r, 4, s.start.strftime("%Y-%m") if s.start else None)
        for j, fy in enumerate(doc.period.years):
            ws.cell(r, 5 + j, s.by_year.get(fy, 0.0))
    end = FIRST_ROW + max(CAPITAL_ROWS, len(doc.capital)) - 1
    cat = DataValidation(type="list", formula1='"' + ",".join(CAPITAL_CATEGORIES) + '"', allow_blank=True)
    cat.add(f"B{FIRST_ROW}:B{end}")
    num = DataValidation(type="decimal", operator="greaterThanOrEqual", formula1="0", allow_blank=True)
    num.add(f"C{FIRST_ROW}:C{end}")
    num.add(f"E{FIRST_ROW}:{get_column_letter(4 + len(doc.period.years))}{end}")
    ws.add_data_validation(cat)
    ws.add_data_validation(num)
    ws.cell(HEADER_ROW, 4).comment = Comment("e.g. 2027-10", "ibp_pipeline")
    for col, width in zip("ABCD", (48, 22, 12, 16)):
        ws.column_dimensions[col].width = width


# ---- reading ------------------------------------------------------------------------------------------------------

_MONTH_TEXT = re.compile(r"^\s*(\d{4})-(\d{1,2})\s*$")


def _as_month(v) -> dt.date | None:
    if isinstance(v, dt.datetime):
        return dt.date(v.year, v.month, 1)
    if isinstance(v, dt.date):
        return dt.date(v.year, v.month, 1)
    if isinstance(v, str):
        m = _MONTH_TEXT.match(v)
        if m and 1 <= int(m.group(2)) <= 12:
            return dt.date(int(m.group(1)), int(m.group(2)), 1)
        try:
            d = dt.datetime.strptime(v.strip(), "%b %Y")
            return dt.date(d.year, d.month, 1)
        except ValueError:
            return None
    return None


def _number(v) -> float | None | str:
    """A cell's number; None when empty; the text when it is not a number."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, float)):
        return float(v)
    return str(v)


def _show(v) -> str:
    text = str(v)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def read_workbook(path: Path) -> tuple[PlanDocument | None, list[str]]:
    """The plan in a workbook and the problems found; the plan is None when there is any problem."""
    problems: list[str] = []
    try:
        wb = load_workbook(path, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a file that is not a workbook
        return None, [f"{path.name}: not an Excel workbook (.xlsx) that can be read: {str(exc).splitlines()[0]}"]
    missing = [s for s in SHEET_ORDER if s not in wb.sheetnames]
    if missing:
        return None, [f"{path.name}: no sheet named {name!r} (a plan has the sheets {', '.join(SHEET_ORDER)})"
                      for name in missing]
    readme = wb["README"]
    fields = {}
    labels = {label: key for key, label in README_FIELDS.items()}
    for row in readme.iter_rows(min_row=HEADER_ROW, max_row=HEADER_ROW + len(README_FIELDS) + 2, max_col=2):
        if row[0].value in labels:
            fields[labels[row[0].value]] = row[1]
    for key in ("org_code", "period"):
        if key not in fields or not str(fields[key].value or "").strip():
            problems.append(f"README: no {README_FIELDS[key]!r} (column A label, value in column B)")
    if problems:
        return None, problems
    org_code = str(fields["org_code"].value).strip().upper()
    try:
        period = Period.parse(str(fields["period"].value))
    except PeriodError as exc:
        return None, [f"README!{fields['period'].coordinate}: {exc}"]
    values: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    for part, sheet in SHEETS.items():
        _read_part(wb[sheet], part, period, values, sources, problems)
    assumptions = _read_assumptions(wb["Assumptions"], problems)
    capital = _read_capital(wb["Capital"], period, problems)
    if problems:
        return None, problems
    notes = {key: str(fields[key].value or "").strip() if key in fields else ""
             for key in ("productivity_explanation", "example")}
    doc = PlanDocument(org_code, str(fields.get("org_name").value if "org_name" in fields else org_code), period,
                       values, sources, assumptions, capital, notes,
                       str(fields["data_as_of"].value or "") if "data_as_of" in fields else "")
    return doc.derive(), []


def _read_part(ws, part: str, period: Period, values: dict, sources: dict, problems: list[str]) -> None:
    name = ws.title
    months = period.months
    cols: dict[dt.date, int] = {}
    src_col = None
    for cell in ws[HEADER_ROW][FIRST_MONTH_COL - 1:]:
        if cell.value is None:
            continue
        if isinstance(cell.value, str) and cell.value.strip().lower() == "source":
            src_col = cell.column
            continue
        m = _as_month(cell.value)
        if m is None:
            problems.append(f"{name}!{cell.coordinate}: {_show(cell.value)} is not a month (a month such as "
                            "Apr 2026 heads each column)")
        elif m not in period:
            problems.append(f"{name}!{cell.coordinate}: {m:%b %Y} is outside the plan period {period.label}")
        elif m in cols:
            problems.append(f"{name}!{cell.coordinate}: {m:%b %Y} heads two columns")
        else:
            cols[m] = cell.column
    for m in months:
        if m not in cols:
            problems.append(f"{name}!{HEADER_ROW}: no column for {m:%b %Y} (every month of {period.label} is needed)")
    known = {line.line_id: line for line in part_lines(part)}
    seen: set[str] = set()
    for row in ws.iter_rows(min_row=FIRST_ROW):
        code = row[0].value
        cells = {c.column: c for c in row}
        if code is None or not str(code).strip():
            stray = [c for col, c in cells.items() if col in cols.values() and _number(c.value) is not None]
            if stray:
                problems.append(f"{name}!{stray[0].coordinate}: a value in a row with no line code (column A)")
            continue
        code = str(code).strip()
        line = known.get(code)
        if line is None:
            other = by_id().get(code)
            where = f" (it belongs on the {SHEETS[other.part]} sheet)" if other else ""
            problems.append(f"{name}!{row[0].coordinate}: {_show(code)} is not a line of the {name} sheet{where}")
            continue
        if code in seen:
            problems.append(f"{name}!{row[0].coordinate}: line {code} appears twice")
            continue
        seen.add(code)
        if src_col and src_col in cells and cells[src_col].value:
            sources[code] = str(cells[src_col].value)
        if line.derived:
            continue
        out = np.full(len(months), np.nan)
        for j, m in enumerate(months):
            cell = cells.get(cols.get(m, -1))
            if cell is None:
                continue
            v = _number(cell.value)
            rule = "a percentage from 0 to 100" if line.percent else f"{line.unit} of 0 or more"
            if v is None:
                if not line.optional:
                    problems.append(f"{name}!{cell.coordinate}: empty: {line.label} needs a number ({rule}; "
                                    "0 if none)")
            elif isinstance(v, str):
                problems.append(f"{name}!{cell.coordinate}: {_show(v)} is not a number: {line.label} must be "
                                f"{rule}")
            elif not np.isfinite(v) or v < 0 or (line.percent and v > 100):
                problems.append(f"{name}!{cell.coordinate}: {v:g} is out of range: {line.label} must be {rule}")
            else:
                out[j] = v
        values[code] = out
    for code, line in known.items():
        if code not in seen:
            problems.append(f"{name}: line {code} ({line.label}) is missing (column A holds each line's code)")


def _read_assumptions(ws, problems: list[str]) -> list[AssumptionRow]:
    out = []
    for row in ws.iter_rows(min_row=FIRST_ROW, max_col=5):
        code = row[0].value
        if code is None or not str(code).strip():
            continue
        v = _number(row[2].value)
        if v is None or isinstance(v, str) or v < 0:
            problems.append(f"Assumptions!{row[2].coordinate}: {_show(row[2].value)} is not a number of 0 or more "
                            f"({code})")
            continue
        out.append(AssumptionRow(str(code).strip(), str(row[1].value or ""), v, str(row[3].value or ""),
                                 str(row[4].value or "")))
    return out


def _read_capital(ws, period: Period, problems: list[str]) -> list[CapitalScheme]:
    out = []
    years = period.years
    header = [c.value for c in ws[HEADER_ROW]]
    year_cols = {fy: header.index(fy) for fy in years if fy in header}
    for fy in years:
        if fy not in year_cols:
            problems.append(f"Capital!{HEADER_ROW}: no column for {fy}")
    for row in ws.iter_rows(min_row=FIRST_ROW):
        if not any(_number(c.value) is not None for c in row):
            continue
        name = str(row[0].value or "").strip()
        if not name:
            problems.append(f"Capital!{row[0].coordinate}: a scheme with no name")
            continue
        category = str(row[1].value or "").strip()
        if category not in CAPITAL_CATEGORIES:
            problems.append(f"Capital!{row[1].coordinate}: {_show(category)} is not a category "
                            f"({', '.join(CAPITAL_CATEGORIES)})")
        beds = _number(row[2].value)
        if isinstance(beds, str) or (beds is not None and beds < 0):
            problems.append(f"Capital!{row[2].coordinate}: {_show(row[2].value)}: beds added must be 0 or more")
            beds = None
        start = _as_month(row[3].value) if row[3].value is not None else None
        if row[3].value is not None and (start is None or start not in period):
            problems.append(f"Capital!{row[3].coordinate}: {_show(row[3].value)}: the month it opens must be a "
                            f"month of {period.label} written YYYY-MM")
        by_year = {}
        for fy, col in year_cols.items():
            cell = row[col] if col < len(row) else None
            v = _number(cell.value) if cell is not None else None
            if isinstance(v, str) or (v is not None and v < 0):
                problems.append(f"Capital!{cell.coordinate}: {_show(cell.value)}: a cost must be GBP of 0 or more")
            else:
                by_year[fy] = v or 0.0
        out.append(CapitalScheme(name, category, beds or 0.0, start, by_year))
    return out
