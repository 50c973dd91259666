"""The cancer combined workbook's 'System Level Performance' sheet: a second source read from the same file, its ICB
rows by commissioner kept apart from the provider-summed ICB figures, 'UNKNOWN' loaded and counted in England.

Every expected figure is read here from the workbook with openpyxl, never with the project's readers. The workbook is
../shared's copy as published when it is there, else the bundled copy under data/sources (the same bytes).
"""
from __future__ import annotations

import dataclasses
import shutil
from collections import defaultdict

import duckdb
import openpyxl
import pytest
from openpyxl.utils import get_column_letter

from ibp_pipeline.config import PROJECT_ROOT, get_paths
from ibp_pipeline.step1_current_state.catalogue import build_metric_catalogue
from ibp_pipeline.step1_current_state.ingest import files_for, known_org_codes, load_source
from ibp_pipeline.step1_current_state.metric_values import build_metric_values
from ibp_pipeline.step1_current_state.organisations import build_organisations
from ibp_pipeline.step1_current_state.reading import read_table
from ibp_pipeline.step1_current_state.recognise import identify
from ibp_pipeline.step1_current_state.sources import BY_NAME, REFERENCE_SOURCES
from ibp_pipeline.step1_current_state.validation import check_total_row, validate

NAME = "January-2026-Monthly-Combined-Workbook-Provisional.xlsx"
SHARED_XLSX = PROJECT_ROOT.parent / "shared" / "data" / "nhs_as_published" / "cancer" / NAME
XLSX = SHARED_XLSX if SHARED_XLSX.is_file() else PROJECT_ROOT / "data" / "sources" / "cancer_combined_workbook" / NAME
SHEET = "System Level Performance"
SYSTEM = BY_NAME["cancer_combined_workbook_system"]
HEADLINE_ROWS = {"FDS": ("ALL ROUTES", None), "31D": ("ALL STAGES", "ALL MODALITIES"),
                 "62D": ("ALL ROUTES", "ALL MODALITIES")}
METRIC = {"FDS": "cancer_fds_pct_icb_patients", "31D": "cancer_31d_pct_icb_patients",
          "62D": "cancer_62d_pct_icb_patients"}


def sheet_rows() -> tuple[dict[str, int], list[tuple]]:
    """The header (name -> column index) and the data rows of the System sheet, read with openpyxl."""
    ws = openpyxl.load_workbook(XLSX, read_only=True, data_only=True)[SHEET]
    rows = ws.iter_rows(values_only=True)
    header = next({c: i for i, c in enumerate(r) if c} for r in rows if "Org Code" in r and "System" in r)
    return header, [r for r in rows if r[header["Org Code"]]]


@pytest.fixture(scope="module")
def published() -> dict:
    """Straight from the sheet: each commissioner's name, Within / Total of the headline rows, sums per breakdown."""
    header, rows = sheet_rows()

    def col(r: tuple, h: str):
        return r[header[h]]

    names, headline, by_breakdown = {}, {}, defaultdict(lambda: defaultdict(float))
    for r in rows:
        code, std = col(r, "Org Code"), col(r, "Standard")
        names[code] = col(r, "System")
        group = "Total" if code == "Total" else "rows"
        key = (std, col(r, "Cancer Type"), col(r, "Referral Route/Stage"), col(r, "Treatment Modality"))
        for h in ("Total", "Within", "After"):
            by_breakdown[(group, *key)][h] += col(r, h) or 0
        if col(r, "Cancer Type") == "ALL CANCERS" and (col(r, "Referral Route/Stage"),
                                                       col(r, "Treatment Modality")) == HEADLINE_ROWS.get(std):
            headline[(code, std)] = (col(r, "Within"), col(r, "Total"))
    unknown = [r for r in rows if col(r, "Org Code") == "UNKNOWN"]
    return {"names": names, "headline": headline, "by_breakdown": by_breakdown, "unknown_rows": len(unknown),
            "unknown_total": sum(col(r, "Total") or 0 for r in unknown), "rows": len(rows),
            "total_rows": sum(1 for r in rows if col(r, "Org Code") == "Total")}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> tuple[duckdb.DuckDBPyConnection, dict]:
    """The organisation reference, then the workbook dropped in the landing folder under a browser's name, loaded
    by both cancer workbook sources as the asset graph orders them; organisations and metric values built."""
    tmp = tmp_path_factory.mktemp("system_sheet")
    bundled = get_paths().sources
    sources = tmp / "sources"  # the reference only: the workbook reaches the pipeline through the landing folder
    sources.mkdir()
    for folder in {s.folder for s in REFERENCE_SOURCES} - {"@reference"}:
        (sources / folder).symlink_to(bundled / folder)
    paths = dataclasses.replace(get_paths(tmp / "data"), sources=sources).ensure()
    shutil.copyfile(XLSX, paths.landing / "download (2).xlsx")
    con = duckdb.connect(str(paths.warehouse))
    for spec in REFERENCE_SOURCES:
        load_source(con, spec, paths, run_id="t", log=lambda _m: None)
    outcomes = {}
    for name in ("cancer_combined_workbook", "cancer_combined_workbook_system"):
        summary = load_source(con, BY_NAME[name], paths, run_id="t", known_orgs=known_org_codes(con),
                              log=lambda _m: None)
        [outcomes[name]] = summary.files
    build_organisations(con)
    build_metric_catalogue(con)
    build_metric_values(con)
    yield con, outcomes
    con.close()


def test_one_workbook_feeds_the_provider_and_the_system_sources(tmp_path, loaded):
    copy = tmp_path / "my renamed file.xlsx"
    shutil.copyfile(XLSX, copy)
    assert [s.name for s in identify(copy)] == ["cancer_combined_workbook", "cancer_combined_workbook_system"]
    paths = dataclasses.replace(get_paths(tmp_path / "data"), landing=tmp_path)
    assert files_for(SYSTEM, paths)[-1] == copy and files_for(BY_NAME["cancer_combined_workbook"], paths)[-1] == copy
    _con, outcomes = loaded
    assert {o.status for o in outcomes.values()} == {"loaded"}
    assert {o.file.name for o in outcomes.values()} == {"download (2).xlsx"}


def test_the_publication_adds_up_england_is_icbs_hubs_and_unknown(published):
    """What the loader relies on, checked on the sheet itself: every breakdown's 'Total' row is the sum of the
    other rows, and those are the 42 ICBs of 2022-2026, NHS England's commissioning hubs and 'UNKNOWN'."""
    names = published["names"]
    icbs = {c for c, n in names.items() if n.endswith("INTEGRATED CARE BOARD")}
    hubs = {c for c, n in names.items() if "COMMISSIONING HUB" in n}
    assert len(icbs) == 42 and hubs and set(names) == icbs | hubs | {"UNKNOWN", "Total"}
    totals = {k[1:]: v for k, v in published["by_breakdown"].items() if k[0] == "Total"}
    others = {k[1:]: v for k, v in published["by_breakdown"].items() if k[0] == "rows"}
    assert totals.keys() == others.keys()
    for key, sums in totals.items():
        assert sums == pytest.approx(others[key]), key
    # England's headlines as NHS England publishes them (the provider sheet's headline figures)
    pct = {std: round(100 * w / t, 2) for (code, std), (w, t) in published["headline"].items() if code == "Total"}
    assert pct == {"FDS": 72.76, "31D": 89.83, "62D": 68.39}


def test_icb_and_england_figures_equal_the_sheet(loaded, published):
    con, _ = loaded
    got = {(org, metric): (value, num, den, level) for org, metric, value, num, den, level in con.execute(
        "select org_code, metric_id, value, numerator, denominator, org_level from s1_current_state.metric_values "
        "where source = 'cancer_combined_workbook_system' and period_start = '2026-01-01'").fetchall()}
    icbs = {c for c, n in published["names"].items() if n.endswith("INTEGRATED CARE BOARD")}
    want = {("ENGLAND" if code == "Total" else code, METRIC[std]): (100 * w / t, w, t)
            for (code, std), (w, t) in published["headline"].items() if code in icbs | {"Total"} and t}
    assert len(want) == 43 * 3 and got.keys() == want.keys()  # no row for UNKNOWN or a commissioning hub
    for key, (value, num, den) in want.items():
        assert got[key][:3] == (pytest.approx(value), num, den), key
        assert got[key][3] == ("england" if key[0] == "ENGLAND" else "icb"), key


def test_commissioner_figures_never_collide_with_provider_summed_icbs(loaded):
    con, _ = loaded
    assert con.execute("select count(*) - count(distinct (org_code, period_start, metric_id)) "
                       "from s1_current_state.metric_values").fetchone() == (0,)
    qe1 = dict(con.execute("select metric_id, source from s1_current_state.metric_values where org_code = 'QE1' "
                           "and metric_id like 'cancer_fds_pct%' and period_start = '2026-01-01'").fetchall())
    # Lancashire and South Cumbria lives on under its 2022 code: both figures, each under its own metric
    assert qe1 == {"cancer_fds_pct": "cancer_combined_workbook",
                   "cancer_fds_pct_icb_patients": "cancer_combined_workbook_system"}
    names = dict(con.execute("select metric_id, name from s1_current_state.metric_catalogue").fetchall())
    assert "the ICB's own patients" in names["cancer_fds_pct_icb_patients"]


def test_unknown_is_loaded_counted_in_england_and_said_so(loaded, published):
    con, outcomes = loaded
    load = outcomes["cancer_combined_workbook_system"]
    assert load.rows_loaded == published["rows"] and load.rows_quarantined == 0
    n = published["unknown_rows"]
    assert f"{n:,} 'UNKNOWN' rows" in load.message and "the TOTAL rows include them" in load.message
    assert con.execute("select count(*) from dq.quarantine where load_id = ?", [load.load_id]).fetchone() == (0,)
    assert con.execute("select count(*), sum(total) from latest.cancer_combined_workbook_system "
                       "where org_code = 'UNKNOWN'").fetchone() == (n, published["unknown_total"])
    assert con.execute("select count(*) from s1_current_state.organisations where org_code = 'UNKNOWN'"
                       ).fetchone() == (0,)
    assert "UNKNOWN" not in known_org_codes(con)


def test_a_bad_cell_in_the_system_sheet_names_the_sheet_and_cell(tmp_path, published):
    """Text in QE1's FDS 'Within' cell (the sheet copied cell for cell with openpyxl): that row is quarantined naming
    System Level Performance!<cell>, England's rows are set aside (they can no longer be checked against the other
    rows), 'UNKNOWN' still loads."""
    wb = openpyxl.Workbook(write_only=True)
    out = wb.create_sheet(SHEET)
    header, cell = None, None
    for i, row in enumerate(openpyxl.load_workbook(XLSX, read_only=True, data_only=True)[SHEET]
                            .iter_rows(values_only=True), 1):
        row = list(row)
        if header is None and "Org Code" in row:
            header = {c: j for j, c in enumerate(row) if c}
        elif header and cell is None and [row[header[h]] for h in ("Org Code", "Standard", "Cancer Type")] == \
                ["QE1", "FDS", "ALL CANCERS"]:
            row[header["Within"]] = "n/k"
            cell, row_number = f"{get_column_letter(header['Within'] + 1)}{i}", i
        out.append(row)
    f = tmp_path / NAME
    wb.save(f)
    known = frozenset(c for c in published["names"] if c not in ("Total", "UNKNOWN"))
    result = validate(SYSTEM, read_table(f, spec=SYSTEM), known)
    [message] = result.problems.get_column("message").to_list()
    assert message == f"{SHEET}!{cell}: row {row_number}, column 'Within': 'n/k' is not a number"
    good, aside = check_total_row(SYSTEM, result.good, complete=False)
    assert aside.height == published["total_rows"]
    assert good.filter(good["org_code"] == "UNKNOWN").height == published["unknown_rows"]
