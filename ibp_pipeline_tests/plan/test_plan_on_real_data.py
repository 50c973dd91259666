"""The plan on the bundled data: a draft prefilled from the served tables (expected figures read here straight from
the published files and the served tables, not through the draft's code), every trust of an ICB drafted, and the
round trip through `ibp plan draft` and `ibp plan load` with a planner's edit, a bad cell and a user who may not see
the trust."""
from __future__ import annotations

import csv
import datetime as dt
import gzip
from pathlib import Path

import duckdb
import pytest
from openpyxl import load_workbook

from ibp_pipeline import cli
from ibp_pipeline.config import PROJECT_ROOT
from ibp_pipeline.plan.period import Period
from ibp_pipeline.plan.prefill import draft

from ..conftest import icbs_of_today

WORKFORCE = PROJECT_ROOT / "data" / "sources" / "workforce_staff_group_org_monthly" / \
    "workforce_org_staff_group_monthly.csv.gz"
NCC = next((PROJECT_ROOT / "data" / "sources" / "finance_national_cost_collection_2024_25").glob("*.csv*"))
PERIOD = Period.parse("2026/27-2028/29")


def latest_fte(org: str, staff_group: str) -> tuple[str, float]:
    """The org's latest FTE for a staff group, read from the bundled NHS Workforce Statistics extract."""
    with gzip.open(WORKFORCE, "rt", encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["org_code"] == org and r["measure"] == "FTE"
                and r["staff_group"] == staff_group]
    last = max(r["period_month"] for r in rows)
    return last, sum(float(r["value"]) for r in rows if r["period_month"] == last)


def ncc_unit_cost(departments: set[str], prefix: str = "") -> float:
    """Activity-weighted national unit cost, read from the bundled National Cost Collection schedule."""
    opener = gzip.open if NCC.suffix == ".gz" else open
    with opener(NCC, "rt", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    keys = {k.lower(): k for k in rows[0]}
    dep, cur, act, cost = (keys[k] for k in ("department_code", "currency_code", "activity", "cost"))
    sel = [r for r in rows if r[dep] in departments and r[cur].startswith(prefix) and r[act] and r[cost]
           and float(r[act]) > 0]
    return sum(float(r[cost]) for r in sel) / sum(float(r[act]) for r in sel)


def cells(path: Path, sheet: str) -> dict[str, list]:
    ws = load_workbook(path, data_only=True)[sheet]
    return {r[0].value: [c.value for c in r[3:39]] for r in ws.iter_rows(min_row=5) if r[0].value}


def test_a_draft_is_prefilled_from_the_published_data_and_says_where_each_line_came_from(bundled_run):
    con = duckdb.connect(str(bundled_run.paths.serving), read_only=True)
    try:
        doc = draft(con, "RXL", PERIOD)
        forecast = dict(con.execute("select period_start, mean from s5_impact.forecasts where org_code = 'RXL' "
                                    "and metric_id = 'ae_attendances'").fetchall())
        target = con.execute("select target_value from s2_triple_aim.targets where org_code = 'RXL' and "
                             "metric_id = 'rtt_18wk_pct' and is_primary and in_force and period_start = "
                             "date '2027-03-01'").fetchone()[0]
    finally:
        con.close()
    months = PERIOD.months
    covered = [i for i, m in enumerate(months) if m in forecast]
    assert covered, "the A&E forecast covers some plan months"
    assert [doc.values["ae_attendances"][i] for i in covered] == [round(forecast[months[i]]) for i in covered]
    assert doc.values["rtt_18wk_pct"][months.index(dt.date(2027, 3, 1))] == round(target, 2)
    # staff in post: the published file's latest month, and the required FTE grows with weighted activity less 2%
    month, fte = latest_fte("RXL", "Nurses & health visitors")
    assert next(a.value for a in doc.assumptions if a.assumption_id == "baseline_fte_nurses_health_visitors") == \
        pytest.approx(round(fte, 2))
    assert month in doc.sources["fte_nurses_health_visitors_substantive"] or \
        dt.date.fromisoformat(month).strftime("%b %Y") in doc.sources["fte_nurses_health_visitors_substantive"]
    # national unit costs as the published schedule gives them
    assert doc.assumption("unit_cost_ae_attendances") == pytest.approx(ncc_unit_cost({"Emergency Care"}, "VB"),
                                                                        abs=0.01)
    assert doc.assumption("unit_cost_rtt_clock_stops_admitted") == pytest.approx(
        ncc_unit_cost({"Elective Inpatients", "Daycase"}), abs=0.01)
    # weighted activity per FTE improves by the framework's 2% each year (worked out here from the draft's numbers)
    wa = sum(doc.values[line] * doc.assumption(f"unit_cost_{line}") for line in
             ("ae_attendances", "ae_emergency_admissions", "rtt_clock_stops_admitted", "dm01_tests"))
    per_fte = [wa[y * 12:(y + 1) * 12].sum() / doc.values["fte_total"][y * 12:(y + 1) * 12].mean() for y in range(3)]
    assert per_fte[1] / per_fte[0] == pytest.approx(1.02, abs=2e-4)
    assert per_fte[2] / per_fte[1] == pytest.approx(1.02, abs=2e-4)
    # the first year breaks even by construction of other income, and every line says where it came from
    assert abs(doc.values["surplus"][:12].sum()) < 50  # pounds of rounding over a year
    assert all(doc.sources.get(k) for k in doc.values)


def test_every_nhs_trust_of_an_icb_gets_a_workbook(bundled_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IBP_DATA_DIR", str(bundled_run.paths.data))
    assert "QE1" in icbs_of_today()
    con = duckdb.connect(str(bundled_run.paths.serving), read_only=True)
    trusts = sorted(r[0] for r in con.execute("select org_code from s1_current_state.organisations where "
                                               "parent_icb_code = 'QE1' and org_type = 'nhs_trust' and valid_to "
                                               "is null").fetchall())
    con.close()
    assert cli.main(["plan", "draft", "--org", "QE1", "--trusts", "--out", str(tmp_path)]) == 0
    files = sorted(p.name for p in tmp_path.glob("*.xlsx"))
    assert files == [f"plan_{t}_2026-27-2028-29.xlsx" for t in trusts]
    assert f"{len(trusts)} plans in" in capsys.readouterr().out


def run(args: list[str], capsys) -> tuple[int, str, str]:
    rc = cli.main(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


def served_versions(data: Path) -> list[tuple]:
    con = duckdb.connect(str(data / "serving.duckdb"), read_only=True)
    try:
        return con.execute("select version, status, example, is_plan_of_record from plan.versions "
                           "where plan_id = 'RXL 2026/27-2028/29' order by version").fetchall()
    finally:
        con.close()


def test_draft_load_edit_reload_and_refuse(copied_run: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("IBP_DATA_DIR", str(copied_run))
    # a new data folder starts with the bundled example plan, served and labelled
    assert served_versions(copied_run) == [(1, "approved", True, True)]

    book = tmp_path / "rxl.xlsx"
    assert run(["plan", "draft", "--org", "RXL", "--out", str(book)], capsys)[0] == 0
    rc, out, err = run(["plan", "load", str(book), "--status", "draft"], capsys)
    assert rc == 0, err
    assert "stored as version 2 (draft)" in out and "Waiting-list arithmetic" in out
    # the stored numbers are the workbook's cells, read here with openpyxl
    store = duckdb.connect(str(copied_run / "plans.duckdb"), read_only=True)
    stored = store.execute("select line_id, month, value from plan.lines where version = 2 and not derived "
                           "and part = 'workforce'").fetchall()
    store.close()
    sheet = cells(book, "Workforce")
    months = PERIOD.months
    assert len(stored) == 24 * 36
    assert all(sheet[line][months.index(m)] == pytest.approx(v) for line, m, v in stored)
    assert served_versions(copied_run) == [(1, "approved", True, True), (2, "draft", False, False)]

    # the same workbook again: nothing new
    rc, out, _ = run(["plan", "load", str(book), "--status", "draft"], capsys)
    assert rc == 0 and "is this workbook already; nothing new stored" in out

    # a planner's edit in one cell: exactly that line moves, and the totals worked out from it
    wb = load_workbook(book)
    ws = wb["Workforce"]
    row = next(r for r in ws.iter_rows(min_row=5) if r[0].value == "fte_nurses_health_visitors_substantive")
    cell = row[3 + months.index(dt.date(2027, 6, 1))]
    cell.value = cell.value + 10
    wb.save(book)
    rc, out, err = run(["plan", "load", str(book), "--status", "approved"], capsys)
    assert rc == 0, err
    moved = out.split("what moved since version 2:")[1].split("triangulation")[0]
    assert moved.splitlines()[0].strip() == "2 lines"
    assert "Nurses and health visitors: substantive: Jun 2027 (+10.00 FTE)" in moved
    assert "All staff: Jun 2027 (+10.00 FTE) [worked out]" in moved
    assert served_versions(copied_run)[-1] == (3, "approved", False, True)

    # a bad cell: one line naming it, nothing stored, the plan of record unchanged
    address = cell.coordinate
    ws[address] = "twelve"
    wb.save(tmp_path / "bad.xlsx")
    rc, _, err = run(["plan", "load", str(tmp_path / "bad.xlsx"), "--status", "approved"], capsys)
    assert rc == 1
    assert f"bad.xlsx: Workforce!{address}: 'twelve' is not a number" in err
    assert "nothing loaded (1 problem); the plan of record is unchanged" in err
    assert [v[0] for v in served_versions(copied_run)] == [1, 2, 3]

    # a user of another ICB may not plan for RXL (nor draft it)
    from ibp_pipeline.access import add_user

    other = sorted(icbs_of_today() - {"QE1"})[0]
    add_user(copied_run / "config" / "users.yaml", "analyst", "icb", other, "a long enough password")
    rc, _, err = run(["plan", "load", str(book), "--user", "analyst"], capsys)
    assert rc == 1 and "cannot plan for RXL" in err
    rc, _, err = run(["plan", "draft", "--org", "RXL", "--out", str(tmp_path / "x.xlsx"), "--user", "analyst"],
                     capsys)
    assert rc == 1 and "cannot plan for RXL" in err
    triangulation = duckdb.connect(str(copied_run / "serving.duckdb"), read_only=True).execute(
        "select count(distinct version), count(*) from plan.triangulation where plan_id = 'RXL 2026/27-2028/29'"
    ).fetchone()
    assert triangulation[0] == 3 and triangulation[1] > 3 * 200
