"""NHS England's 2025-2026 files as an analyst downloads them: recognised by content, read as published, and served
figures equal to the figures in the files.

Every expected figure is computed here straight from the file with a second, independent reader (csv and zipfile
for the CSVs and the RTT ZIP, openpyxl for XLSX, xlrd for the legacy XLS), never with the project's readers. The
files are the bundled copies under data/sources (the same bytes as ../shared/data/nhs_as_published), so no test
needs ../shared.
"""
from __future__ import annotations

import csv
import io
import shutil
import zipfile
from datetime import date

import duckdb
import openpyxl
import pytest
import xlrd
import xlsxwriter

from ibp_pipeline.config import PROJECT_ROOT
from ibp_pipeline.step1_current_state.reading import FileRefused, read_table
from ibp_pipeline.step1_current_state.recognise import Unrecognised, identify
from ibp_pipeline.step1_current_state.sources import BY_NAME
from ibp_pipeline.step1_current_state.validation import validate

SOURCES = PROJECT_ROOT / "data" / "sources"
RTT_ZIP = next((SOURCES / "rtt_full_extract").glob("*.zip"))
DM01_XLS = next((SOURCES / "diagnostics_dm01_web_file").glob("*.xls"))
KH03_XLSX = next((SOURCES / "beds_kh03_web_file").glob("*.xlsx"))
CANCER_XLSX = next((SOURCES / "cancer_combined_workbook").glob("*.xlsx"))
CWT_XLSX = next((SOURCES / "cancer_cwt_crs_extract").glob("*.xlsx"))
AE_DIR = SOURCES / "ae_monthly_provider_official"
MONTHS = ["JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY", "AUGUST", "SEPTEMBER", "OCTOBER",
          "NOVEMBER", "DECEMBER"]


# ---- served figures ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(bundled_run):
    con = duckdb.connect(str(bundled_run.paths.serving), read_only=True)
    yield con
    con.close()


def value(con, org: str, metric: str, month: str) -> float | None:
    rows = con.execute("select value from s1_current_state.metric_values where org_code = ? and metric_id = ? "
                       "and strftime(period_start, '%Y-%m') = ?", [org, metric, month]).fetchall()
    assert len(rows) <= 1
    return rows[0][0] if rows else None


def rtt_from_zip(org: str | None = None) -> dict[str, float]:
    """Part_2 / Part_3 / Part_1A / Part_1B 'C_999' sums of the RTT full extract, over commissioners (and over
    providers for England), read with zipfile and csv."""
    out = dict.fromkeys(("total", "within", "over52", "over65", "over78", "over104", "starts", "stops_a", "stops_n"),
                        0.0)
    with zipfile.ZipFile(RTT_ZIP) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".csv") and not n.startswith("__MACOSX"))
        with zf.open(name) as fh:
            for r in csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8", newline="")):
                if r["Treatment Function Code"] != "C_999" or (org and r["Provider Org Code"] != org):
                    continue
                part, total_all = r["RTT Part Type"], float(r["Total All"] or 0)
                if part == "Part_3":
                    out["starts"] += total_all
                elif part == "Part_1A":
                    out["stops_a"] += total_all
                elif part == "Part_1B":
                    out["stops_n"] += total_all
                elif part == "Part_2":
                    out["total"] += total_all
                    for k, v in r.items():
                        if k.startswith("Gt ") and v:
                            low = int(k.split()[1])
                            out["within"] += float(v) if low < 18 else 0
                            for weeks in (52, 65, 78, 104):
                                out[f"over{weeks}"] += float(v) if low >= weeks else 0
    return out


def test_rtt_april_2026_england_equals_the_extract(served):
    want = rtt_from_zip()
    # the figures, as NHS England publishes them
    assert (want["total"], round(100 * want["within"] / want["total"], 2), want["over52"]) == \
        (7_123_980, 64.90, 100_665)
    assert value(served, "ENGLAND", "rtt_waiting_list", "2026-04") == want["total"]
    assert value(served, "ENGLAND", "rtt_18wk_pct", "2026-04") == pytest.approx(100 * want["within"] / want["total"])
    for weeks in (52, 65, 78, 104):
        assert value(served, "ENGLAND", f"rtt_{weeks}wk_waiters", "2026-04") == want[f"over{weeks}"]
    assert value(served, "ENGLAND", "rtt_clock_starts", "2026-04") == want["starts"]
    assert value(served, "ENGLAND", "rtt_clock_stops_admitted", "2026-04") == want["stops_a"]
    assert value(served, "ENGLAND", "rtt_clock_stops_non_admitted", "2026-04") == want["stops_n"]


def test_needs_and_the_flow_model_start_from_the_published_clock_starts_and_stops(served):
    """Step 4's waiting-list needs and step 5's flow model use the extract's real flows, not estimates."""
    weeks = 52 / 12
    for org in ("ENGLAND", "RXL"):
        want = rtt_from_zip(None if org == "ENGLAND" else org)
        needs = {m: (r, est) for m, r, est in served.execute(
            "select measure, result, is_estimate from s4_gaps.needs where org_code = ? and need_type = "
            "'waiting_list' and period_start = '2026-04-01'", [org]).fetchall()}
        assert needs["weekly_demand"] == (pytest.approx(want["starts"] / weeks), False)
        assert needs["weekly_completed_pathways"][0] == pytest.approx((want["stops_a"] + want["stops_n"]) / weeks)
        assert needs["queue_size"] == (want["total"], False)
    want = rtt_from_zip()
    start = served.execute("""select list_size, clock_starts, clock_stops, anchor_month, anchor_source
                              from s5_impact.waiting_list_projection
                              where icb_code = 'ENGLAND' and scenario = 'baseline' and horizon = 0""").fetchone()
    assert start[:4] == (want["total"], want["starts"], want["stops_a"] + want["stops_n"], date(2026, 4, 1))
    assert "RTT full CSV extract" in start[4]


def test_rtt_provider_totals_sum_over_commissioners(served):
    want = rtt_from_zip("RXL")
    assert want["total"] > 0
    assert value(served, "RXL", "rtt_waiting_list", "2026-04") == want["total"]
    assert value(served, "RXL", "rtt_52wk_waiters", "2026-04") == want["over52"]


def test_ae_2025_england_equals_each_files_total_row(served):
    """Every 2025 month, the revised file where there is one: England equals the file's own TOTAL row."""
    expected: dict[str, tuple[float, float]] = {}
    for f in sorted(AE_DIR.glob("*2025*.csv"), key=lambda p: "revised" in p.name):  # revisions last: they win
        rows = list(csv.DictReader(io.StringIO(f.read_text(encoding="utf-8-sig"))))
        _, mon, year = next(r["Period"].strip().split("-") for r in rows if r["Period"].count("-") == 2)
        total = next(r for r in rows if r["Org Code"].strip().upper() == "TOTAL")
        att = sum(float(v) for k, v in total.items() if k.startswith("A&E attendances"))
        over = sum(float(v) for k, v in total.items() if k.startswith("Attendances over 4hrs"))
        expected[f"{year}-{MONTHS.index(mon.upper()) + 1:02d}"] = (att, 100 * (att - over) / att)
    assert len(expected) == 12
    for month, (att, pct) in expected.items():
        assert value(served, "ENGLAND", "ae_attendances", month) == att, month
        assert value(served, "ENGLAND", "ae_4hr_pct", month) == pytest.approx(pct), month


def test_dm01_xls_england_and_a_provider(served):
    sheet = xlrd.open_workbook(str(DM01_XLS)).sheet_by_name("Provider")
    header = [str(c).strip() for c in sheet.row_values(13)]  # Excel row 14
    col = {h: i for i, h in enumerate(header) if h}
    england = sheet.row_values(14)  # Excel row 15: 'Total'
    assert england[col["Provider Name"]] == "Total"
    wl, six = england[col["Total Waiting List"]], england[col["Number waiting 6+ Weeks"]]
    assert (wl, six) == (1_730_933, 378_816)
    assert value(served, "ENGLAND", "dm01_waiting_list", "2025-07") == wl
    assert value(served, "ENGLAND", "dm01_6wk_pct", "2025-07") == pytest.approx(100 * six / wl)
    rxl = next(sheet.row_values(i) for i in range(15, sheet.nrows) if sheet.cell_value(i, col["Provider Code"]) == "RXL")
    assert value(served, "RXL", "dm01_waiting_list", "2025-07") == rxl[col["Total Waiting List"]]
    # a provider with a row of zeros did not submit that month (the file's Notes say so): no value, not 0
    counts = [col[h] for h in ("Total Waiting List", "Planned tests / procedures", "Unscheduled tests / procedures",
                               "Waiting list tests / procedures (excluding planned)")]
    silent = [sheet.cell_value(i, col["Provider Code"]) for i in range(16, sheet.nrows)
              if sheet.cell_value(i, col["Provider Code"]) and all(sheet.cell_value(i, j) == 0 for j in counts)]
    assert silent
    assert all(value(served, code, "dm01_waiting_list", "2025-07") is None for code in silent)


def test_kh03_xlsx_england_general_and_acute(served):
    ws = openpyxl.load_workbook(KH03_XLSX, read_only=True, data_only=True)["NHS Trust by Sector"]
    rows = list(ws.iter_rows(min_row=15, max_row=16, values_only=True))
    header, england = rows
    ga = [i for i, h in enumerate(header) if h == "General & Acute"]  # Available, then Occupied
    assert england[[i for i, h in enumerate(header) if h == "Org Name"][0]] == "England"
    available, occupied = england[ga[0]], england[ga[1]]
    assert value(served, "ENGLAND", "kh03_ga_beds_available", "2025-04") == pytest.approx(available)
    assert value(served, "ENGLAND", "kh03_ga_bed_occupancy_pct", "2025-04") == pytest.approx(100 * occupied / available)


def test_cancer_combined_workbook_england_equals_its_total_rows(served):
    ws = openpyxl.load_workbook(CANCER_XLSX, read_only=True, data_only=True)["Provider Level Performance"]
    header = None
    totals: dict[str, tuple[float, float]] = {}
    for row in ws.iter_rows(values_only=True):
        cells = [c.strip() if isinstance(c, str) else c for c in row]
        if header is None:
            if "Org Code" in cells and "Standard" in cells:
                header = {h: i for i, h in enumerate(cells) if h}
            continue
        if cells[header["Org Code"]] != "Total" or cells[header["Cancer Type"]] != "ALL CANCERS":
            continue
        std, route = cells[header["Standard"]], cells[header["Referral Route/Stage"]]
        modality = cells[header["Treatment Modality"]]
        if (std, route, modality) in (("FDS", "ALL ROUTES", None), ("31D", "ALL STAGES", "ALL MODALITIES"),
                                      ("62D", "ALL ROUTES", "ALL MODALITIES")):
            totals[std] = (cells[header["Within"]], cells[header["Total"]])
    assert set(totals) == {"FDS", "31D", "62D"}
    for std, metric in (("FDS", "cancer_fds_pct"), ("31D", "cancer_31d_pct"), ("62D", "cancer_62d_pct")):
        within, total = totals[std]
        assert value(served, "ENGLAND", metric, "2026-01") == pytest.approx(100 * within / total), std


def test_cwt_crs_extract_provider_fds(served):
    wb = openpyxl.load_workbook(CWT_XLSX, read_only=True)
    ws = wb.active
    ws.reset_dimensions()  # the sheet's <dimension> says A1 (LAYOUTS.md)
    rows = ws.iter_rows(values_only=True)
    header = {h: i for i, h in enumerate(next(rows))}
    within = total = 0.0
    for r in rows:
        if r[header["ORG CODE"]] == "RXL" and r[header["STANDARD"]] == "28-day FDS" and r[header["MONTH"]] == "APR":
            within += r[header["WITHIN STANDARD"]]
            total += r[header["TOTAL TREATED"]]
    assert total > 0
    assert value(served, "RXL", "cancer_fds_pct", "2025-04") == pytest.approx(100 * within / total)


def test_a_month_of_totals_comes_from_one_source_and_says_which(served):
    rows = served.execute("""select distinct source, coverage from s1_current_state.metric_values
                             where org_code = 'ENGLAND' and metric_id = 'rtt_waiting_list'
                               and period_start = '2026-04-01'""").fetchall()
    assert rows == [("rtt_full_extract", rows[0][1])] and "independent sector" in rows[0][1]
    cat = served.execute("select coverage from s1_current_state.metric_catalogue where metric_id = 'ae_attendances'"
                         ).fetchone()[0]
    assert "independent sector" in cat and "healthyr" not in cat.split("|")[0]


def test_new_organisations_from_official_files_are_provisional(served):
    got = dict(served.execute("select org_code, provisional from s1_current_state.organisations "
                              "where org_code in ('A5D4Q', 'RXL', 'K0N6A')").fetchall())
    assert got["A5D4Q"] is True  # a UTC first published in 2025, named by the A&E file
    assert got["RXL"] is False
    assert got["K0N6A"] is False  # a trust opened on 2026-06-01, from the 2026 ODS etr file


# ---- recognition by content ----------------------------------------------------------------------------------

@pytest.mark.parametrize("source, original", [
    ("ae_monthly_official", AE_DIR / "December-2025-CSV-K7F4Sp.csv"),
    ("rtt_full_extract", RTT_ZIP),
    ("dm01_web_file", DM01_XLS),
    ("kh03_web_file", KH03_XLSX),
    ("cancer_combined_workbook", CANCER_XLSX),
    ("cancer_cwt_crs_extract", CWT_XLSX),
    ("ods_etr", SOURCES / "ods_published" / "etr.csv"),
    ("ods_eccg", SOURCES / "ods_published" / "eccg.csv"),
])
def test_files_are_recognised_by_content_under_any_name(tmp_path, source, original):
    also = {"cancer_combined_workbook": ["cancer_combined_workbook_system"]}.get(source, [])  # its System sheet
    suffix = "".join(original.suffixes[-1:])
    for name in (original.name, f"download (2){suffix}", f"my renamed file{suffix}"):
        copy = tmp_path / name
        shutil.copyfile(original, copy)
        assert [s.name for s in identify(copy)] == [source, *also], name


def test_an_unrecognised_file_says_what_it_found_and_what_it_is_closest_to(tmp_path):
    rows = list(csv.reader(io.StringIO((AE_DIR / "Monthly-AE-January-2025.csv").read_text(encoding="utf-8-sig"))))
    header = [h for h in rows[0] if h != "Org Code"]
    f = tmp_path / "ae.csv"
    f.write_text(",".join(header) + "\r\n")
    with pytest.raises(Unrecognised) as err:
        identify(f)
    msg = str(err.value)
    assert msg.startswith("no known publication holds this file: found header row 'Period, Parent Org")
    assert "closest: A&E attendances and emergency admissions" in msg and "missing 'Org Code'" in msg
    assert "\n" not in msg


def test_a_workbook_without_the_header_names_the_closest_sheet_and_row(tmp_path):
    f = tmp_path / "Monthly-Diagnostics-Web-File-Provider-August-2025.xlsx"
    wb = xlsxwriter.Workbook(str(f))
    ws = wb.add_worksheet("Provider")
    ws.write_row(1, 1, ["Period:", "August 2025"])
    ws.write_row(13, 1, ["Regional Team Code", "Regional Team Name", "Provider Code", "Provider Name",
                         "Total Waiting List"])
    ws.write_row(14, 1, ["Y56", "London", "RXL", "Blackpool", 10])
    wb.close()
    with pytest.raises(FileRefused) as err:
        read_table(f, spec=BY_NAME["dm01_web_file"])
    assert "sheet 'Provider' row 14 comes closest with 5 of" in str(err.value)
    with pytest.raises(Unrecognised) as err:
        identify(f)
    assert "sheets 'Provider'" in str(err.value) and "closest: Diagnostic waiting times" in str(err.value)


def test_title_rows_footnotes_and_suppressed_cells(tmp_path):
    """A sheet laid out as NHS England lays them out: title rows, a group-label row, the England row first, a
    blank spacer, suppressed cells and notes below the data."""
    f = tmp_path / "Beds-Open-Overnight-Web_File-Q2-2025-26.xlsx"
    wb = xlsxwriter.Workbook(str(f))
    ws = wb.add_worksheet("NHS Trust by Sector")
    ws.write_row(1, 1, ["Title:", "Beds"])
    ws.write_row(3, 1, ["Period:", "July to September 2025"])
    sectors = ["Total ", "General & Acute", "Learning Disabilities", "Maternity", "Mental Illness"]
    ws.write(12, 6, "Available")
    ws.write(12, 12, "Occupied")
    ws.write(12, 18, "% Occupied")
    ws.write_row(13, 1, ["Year", "Period End", "Region Code", "Org Code", "Org Name", *sectors, None, *sectors, None,
                         *sectors])
    ws.write_row(14, 1, ["2025-26", "September", None, None, "England", 30, 20, 0, 10, 0, None, 27, 18, 0, 9, 0, None,
                         0.9, 0.9, "-", 0.9, "-"])
    ws.write_row(16, 1, ["2025-26", "September", "Y62", "RXL", "BLACKPOOL", 20, 12, 0, 8, 0, None, 18, 11, 0, 7, 0,
                         None, 0.9, 0.92, "-", 0.88, "-"])
    ws.write_row(17, 1, ["2025-26", "September", "Y62", "RXR", "EAST LANCS", 10, 8, 0, 2, 0, None, 9, 7, 0, 2, 0,
                         None, 0.9, 0.88, "-", 1, "-"])
    ws.write(20, 1, "Note: figures are averages over the quarter.")
    wb.close()
    spec = BY_NAME["kh03_web_file"]
    table = read_table(f, spec=spec)
    result = validate(spec, table, frozenset({"RXL", "RXR"}))
    assert result.problems.height == 0
    assert result.good.get_column("org_code").to_list() == ["TOTAL", "RXL", "RXR"]
    assert result.good.get_column("_row_number").to_list() == [15, 17, 18]  # Excel's own row numbers
    assert result.good.get_column("period_start").unique().to_list() == [date(2025, 7, 1)]
    assert result.good.get_column("occupied_general_acute").to_list() == [18, 11, 7]
    assert result.suppressed == {"-": 6}
    assert "1 note row below the data not read" in table.notes


def test_text_in_a_number_cell_names_the_sheet_and_cell(tmp_path):
    f = tmp_path / "Monthly-Diagnostics-Web-File-Provider-August-2025.xlsx"
    spec = BY_NAME["dm01_web_file"]
    headers = [c.header for c in spec.columns if c.header != "Period"]
    wb = xlsxwriter.Workbook(str(f))
    ws = wb.add_worksheet("Provider")
    ws.write_row(4, 1, ["Period:", "August 2025"])
    ws.write_row(13, 1, headers)
    ws.write_row(14, 1, ["Y62", "North West", "RXL", "Blackpool", "lots"] + [0] * (len(headers) - 5))
    wb.close()
    result = validate(spec, read_table(f, spec=spec), frozenset({"RXL"}))
    [message] = result.problems.get_column("message").to_list()
    assert message == "Provider!F15: row 15, column 'Total Waiting List': 'lots' is not a number"


def test_an_ods_file_with_another_column_count_is_refused(tmp_path):
    f = tmp_path / "etr.csv"
    f.write_text('"RXL","BLACKPOOL TEACHING HOSPITALS NHS FOUNDATION TRUST","Y62"\r\n')
    with pytest.raises(FileRefused) as err:
        read_table(f, spec=BY_NAME["ods_etr"])
    assert str(err.value) == ("row 1 has 3 columns; this layout has 27 columns and no header row (an ODS data file "
                              "as published)")


# ---- the ICBs of today (April 2026) ----------------------------------------------------------------------------

def _etr_2026() -> dict[str, str]:
    """Trust -> ICB of today, read straight from the ODS etr file (column 4, 'high level health geography')."""
    rows = csv.reader(io.StringIO((SOURCES / "ods_published" / "etr.csv").read_text(encoding="utf-8")))
    return {r[0]: r[3] for r in rows}


def test_a_merged_icb_is_an_organisation_of_today_and_its_predecessors_are_history(served):
    orgs = {r[0]: r[1:] for r in served.execute(
        "select org_code, org_type, valid_from, valid_to, replaced_by from s1_current_state.organisations "
        "where org_code in ('D7T5G', 'QH8', 'QJG', 'QE1')").fetchall()}
    assert orgs["D7T5G"] == ("icb", date(2026, 4, 1), None, None)
    assert orgs["QH8"] == ("icb", date(2022, 7, 1), date(2026, 3, 31), "D7T5G")  # Mid and South Essex
    assert orgs["QE1"][2] is None  # Lancashire and South Cumbria lives on under its code
    essex = {code for code, icb in _etr_2026().items() if icb == "D7T5G"}
    members = {r[0] for r in served.execute("select org_code from s1_current_state.organisations "
                                            "where parent_icb_code = 'D7T5G' and org_type = 'nhs_trust'").fetchall()}
    assert essex and essex <= members


def test_a_merged_icb_has_continuous_restated_series(served):
    months = served.execute("""select strftime(period_start, '%Y-%m') from s1_current_state.metric_values
                               where org_code = 'D7T5G' and metric_id = 'ae_attendances' order by 1""").fetchall()
    months = [m[0] for m in months]
    assert months[0] <= "2016-04" and months[-1] == "2025-12"
    assert "2025-01" in months and "2021-06" in months
    rtt = served.execute("""select strftime(period_start, '%Y-%m') from s1_current_state.metric_values
                            where org_code = 'D7T5G' and metric_id = 'rtt_waiting_list'""").fetchall()
    assert {"2025-03", "2026-04"} <= {m[0] for m in rtt}
    # restated: the ICB of today summed over its providers as they map now, and says so
    value_, coverage = served.execute("""
        select value, coverage from s1_current_state.metric_values
        where org_code = 'D7T5G' and metric_id = 'ae_attendances' and period_start = '2025-01-01'""").fetchone()
    summed = served.execute("""
        select sum(v.value) from s1_current_state.metric_values v join s1_current_state.organisations o using (org_code)
        where v.org_level = 'provider' and o.parent_icb_code = 'D7T5G' and v.metric_id = 'ae_attendances'
          and v.period_start = '2025-01-01' and v.source = 'ae_monthly_official'""").fetchone()[0]
    assert value_ == summed
    assert "Restated" in coverage
    # the RTT extract names each provider's ICB of today: April 2026 for Essex equals the file's own sum
    with zipfile.ZipFile(RTT_ZIP) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".csv") and not n.startswith("__MACOSX"))
        with zf.open(name) as fh:
            want = sum(float(r["Total All"] or 0) for r in csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8"))
                       if r["Provider Parent Org Code"] == "D7T5G" and r["RTT Part Type"] == "Part_2"
                       and r["Treatment Function Code"] == "C_999")
    assert value(served, "D7T5G", "rtt_waiting_list", "2026-04") == want


def test_the_icbs_of_today_are_selectable_and_benchmarked(bundled_run):
    from ibp_pipeline.dashboards.organisations import selector_options
    from ibp_pipeline.dashboards.serving import Serving

    options = selector_options(Serving(bundled_run.paths.serving))
    icbs = set(options.filter(options["org_level"] == "icb")["org_code"].to_list())
    assert "D7T5G" in icbs and "QE1" in icbs and "QH8" not in icbs
    assert len(icbs) == len(set(_etr_2026().values()) - {""})
    from ibp_pipeline.dashboards.benchmarking import values_at

    compared = values_at(Serving(bundled_run.paths.serving), "ae_4hr_pct", "icb", date(2025, 12, 1))
    assert "D7T5G" in compared["org_code"].to_list() and "QH8" not in compared["org_code"].to_list()
    con = duckdb.connect(str(bundled_run.paths.serving), read_only=True)
    try:
        n = con.execute("select n_orgs from s2_triple_aim.benchmarks where scope = 'national_icb' "
                        "and metric_id = 'ae_4hr_pct' and period_start = '2025-12-01'").fetchone()[0]
    finally:
        con.close()
    assert n == compared.height  # the ICB benchmark is over the ICBs of today


def test_a_revision_loads_after_its_original_whatever_the_order_of_arrival(tmp_path):
    """`ibp ingest` of a year's files lists them as the shell does (July-2025-CSV-revised.csv before
    Monthly-AE-July-2025.csv); NHS England's revision must still be the figure that stays current."""
    import os

    from ibp_pipeline.step1_current_state.ingest import landing_order

    names = ["July-2025-CSV-revised.csv", "Monthly-AE-July-2025.csv", "Monthly-AE-June-2025.csv",
             "August-2025-CSV-revised.csv"]
    for i, name in enumerate(names):  # arrival order as listed
        (tmp_path / name).write_text("x")
        os.utime(tmp_path / name, ns=(1_000_000_000 * (i + 1),) * 2)
    ordered = [p.name for p in sorted(tmp_path.iterdir(), key=landing_order)]
    assert ordered == ["Monthly-AE-June-2025.csv", "Monthly-AE-July-2025.csv", "July-2025-CSV-revised.csv",
                       "August-2025-CSV-revised.csv"]
