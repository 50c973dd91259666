"""Reading published files: encodings, binary detection, line numbers and XLSX, on small real slices."""
from __future__ import annotations

import gzip

import polars as pl
import pytest

from ibp_pipeline.config import PROJECT_ROOT
from ibp_pipeline.step1_current_state.ingest import load_file
from ibp_pipeline.step1_current_state.reading import FileRefused, decode, looks_binary, parse_csv, read_table
from ibp_pipeline.step1_current_state.sources import BY_NAME
from ibp_pipeline.step1_current_state.validation import validate

APRIL = PROJECT_ROOT / "data/sources/ae_monthly_provider_official/Monthly-AE-April-2024.csv"


def test_decode_prefers_utf8_and_falls_back_to_windows_1252():
    assert decode("Café £5".encode("utf-8")) == ("Café £5", "utf-8")
    assert decode("\ufeffOrg".encode("utf-8")) == ("Org", "utf-8")
    assert decode("Café £5".encode("cp1252")) == ("Café £5", "windows-1252")


@pytest.mark.parametrize("data, words", [
    (b"PK\x03\x04rest", "ZIP/XLSX"), (b"%PDF-1.7", "PDF"), (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
])
def test_binary_content_is_named(data, words):
    assert words in looks_binary(data)


def test_text_is_not_binary():
    assert looks_binary(APRIL.read_bytes()) is None


def test_line_numbers_are_the_files_own_with_blank_lines_and_multiline_cells():
    text = 'a,b\n1,2\n\n3,"x\ny"\n4,5\n'
    table = parse_csv(text, "utf-8")
    assert table.frame.get_column("_row_number").to_list() == [2, 4, 6]


def test_header_only_and_empty_files(tmp_path):
    empty = tmp_path / "e.csv"
    empty.write_bytes(b"")
    with pytest.raises(FileRefused, match="empty"):
        read_table(empty)
    header = tmp_path / "h.csv"
    header.write_text("Period,Org Code\n")
    assert read_table(header).frame.height == 0


def test_gzip_reads_like_the_plain_file(tmp_path):
    gz = tmp_path / "Monthly-AE-April-2024.csv.gz"
    gz.write_bytes(gzip.compress(APRIL.read_bytes()))
    assert read_table(gz).frame.equals(read_table(APRIL).frame)


def test_xlsx_publication_loads_like_its_csv(tmp_path, env_paths):
    """An official A&E month saved as a workbook gives the same typed rows as the CSV."""
    frame = pl.read_csv(APRIL, infer_schema=False)
    xlsx = tmp_path / "Monthly-AE-April-2024.xlsx"
    frame.with_columns(pl.col(c).cast(pl.Int64) for c in frame.columns[4:]).write_excel(xlsx)
    spec = BY_NAME["ae_monthly_official"]
    from_xlsx = validate(spec, read_table(xlsx), None).good
    from_csv = validate(spec, read_table(APRIL), None).good
    assert from_xlsx.drop("_row_number").equals(from_csv.drop("_row_number"))
    assert from_xlsx.get_column("_row_number").to_list()[:3] == [2, 3, 4]


def test_a_damaged_workbook_is_refused_with_a_reason(tmp_path, env_paths):
    import duckdb

    from ibp_pipeline.step1_current_state.ingest import ensure_schema

    bad = tmp_path / "Monthly-AE-May-2024.xlsx"
    bad.write_bytes(b"PK\x03\x04 not really a workbook")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_schema(con)
    out = load_file(con, BY_NAME["ae_monthly_official"], bad, env_paths, known_orgs=frozenset(), run_id="t")
    assert out.status == "refused" and "not a readable XLSX workbook" in out.message


@pytest.fixture
def env_paths(tmp_path):
    from ibp_pipeline.config import get_paths

    return get_paths(tmp_path / "data").ensure()


# ---- the fast path for large CSVs -------------------------------------------------------------------------------
def _fast_and_careful(monkeypatch, path, spec):
    """The same file validated through polars' fast path (number columns parsed as numbers when they are plain)
    and through the careful csv.reader path."""
    from ibp_pipeline.step1_current_state import reading

    careful = validate(spec, read_table(path, spec=spec), known_orgs=None)
    monkeypatch.setattr(reading, "FAST_CSV_BYTES", 0)  # every file is 'large'
    table = read_table(path, spec=spec)
    return table, validate(spec, table, known_orgs=None), careful


def test_the_fast_path_reads_number_columns_as_numbers_and_agrees_with_the_careful_one(monkeypatch):
    spec = BY_NAME["ae_monthly_official"]
    path = next((PROJECT_ROOT / "data" / "sources" / spec.folder).glob("December-2025-*.csv"))
    table, fast, careful = _fast_and_careful(monkeypatch, path, spec)
    assert table.frame["A&E attendances Type 1"].dtype == pl.Int64  # no text cell per number
    assert fast.good.equals(careful.good) and fast.problems.height == careful.problems.height == 0


def test_a_cell_that_is_not_a_plain_number_sends_the_fast_path_back_to_text(monkeypatch, tmp_path):
    spec = BY_NAME["ae_monthly_official"]
    original = next((PROJECT_ROOT / "data" / "sources" / spec.folder).glob("December-2025-*.csv"))
    lines = original.read_bytes().decode("utf-8-sig").splitlines()
    head = lines[0].split(",")
    col = head.index("A&E attendances Type 1")
    for i, value in ((3, "twelve"), (4, "-5"), (5, "-")):  # not a number, a negative count, a suppressed cell
        cells = lines[i].split(",")
        cells[col] = value
        lines[i] = ",".join(cells)
    path = tmp_path / "December-2025-CSV-edited.csv"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    table, fast, careful = _fast_and_careful(monkeypatch, path, spec)
    assert table.frame["A&E attendances Type 1"].dtype == pl.String
    assert fast.problems.equals(careful.problems)
    messages = fast.problems["message"].to_list()
    assert any("'twelve' is not a number" in m for m in messages)
    assert any(m.startswith("row 5, column 'A&E attendances Type 1': -5 is negative") for m in messages), messages
    assert fast.suppressed == careful.suppressed == {"-": 1}
