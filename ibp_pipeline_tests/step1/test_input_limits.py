"""Input limits: the size limit (IBP_MAX_FILE_MB), gzip and XLSX bombs, zip slip, file names and the archive.

Real files written to tmp_path (a bomb is generated streaming, never held in memory), loaded by the real loader
(load_source / load_file, what every source asset and so `ibp run`, `ibp ingest` and the landing sensor call)
into a real DuckDB warehouse under tmp_path. The slices and helpers are those of test_ingest_bad_inputs.py.
"""
from __future__ import annotations

import csv
import gzip
import io
import hashlib
import os
import struct
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest
import xlsxwriter

from ibp_pipeline import cli
from ibp_pipeline.step1_current_state import ingest, reading
from ibp_pipeline.step1_current_state.reading import DEFAULT_MAX_BYTES, MB, FileRefused, max_input_bytes

from .test_ingest_bad_inputs import (AE, AE_FILE, AE_HEADER, AE_ORGS, DATA, GOOD_NAME, KNOWN, Env, assert_accounted,
                                     csv_text, good_ae, make_env)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("IBP_MAX_FILE_MB", raising=False)
    e = make_env(tmp_path / "data")
    yield e
    e.con.close()


def one_line(message: str) -> bool:
    return bool(message) and len(message.splitlines()) == 1


def load_all(env: Env) -> dict[str, ingest.FileOutcome]:
    """load_source over the landing folder, as a refresh does; outcomes by file name."""
    summary = ingest.load_source(env.con, AE, env.paths, run_id="test-run", known_orgs=KNOWN, log=lambda _m: None)
    return {f.file.name: f for f in summary.files}


def quarantine_rules(env: Env, load_id: int) -> list[tuple]:
    return env.con.execute("select row_number, rule, message from dq.quarantine where load_id = ?",
                           [load_id]).fetchall()


def assert_good_slice_current(env: Env, load_id: int) -> None:
    """Nothing already loaded is lost: the good slice's rows are all still the current ones."""
    rows = env.con.execute("select org_code, _load_id from latest.ae_monthly_official").fetchall()
    assert dict(rows) == {org: load_id for org in AE_ORGS | {"TOTAL"}}


# ---- the limit and its default --------------------------------------------------------------------------------

def _uncompressed_size(path: Path) -> int:
    if path.name.endswith(".gz"):  # ISIZE: the last 4 bytes of a gzip file (every bundled file is < 4 GB)
        with path.open("rb") as fh:
            fh.seek(-4, os.SEEK_END)
            return struct.unpack("<I", fh.read(4))[0]
    return path.stat().st_size


def test_default_limit_is_comfortably_above_every_bundled_file(monkeypatch):
    monkeypatch.delenv("IBP_MAX_FILE_MB", raising=False)
    sizes = {p: _uncompressed_size(p) for folder in ("sources", "reference") for p in (DATA / folder).rglob("*")
             if p.is_file() and p.suffix in (".csv", ".gz", ".xlsx")}
    largest = max(sizes.values())
    assert 20 * MB < largest < 40 * MB  # rtt_trust_waits_over_18_52.csv.gz: 25 MB once decompressed
    assert max_input_bytes() == DEFAULT_MAX_BYTES == 200 * MB
    assert DEFAULT_MAX_BYTES > 5 * largest


@pytest.mark.parametrize("value, expected", [("0.5", MB // 2), ("1", MB), ("300", 300 * MB), (" 2 ", 2 * MB)])
def test_limit_is_read_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("IBP_MAX_FILE_MB", value)
    assert max_input_bytes() == expected


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan", "inf", "1e400", "200MB"])
def test_a_bad_limit_stops_with_one_line_naming_the_variable(monkeypatch, value, env):
    monkeypatch.setenv("IBP_MAX_FILE_MB", value)
    with pytest.raises(ValueError) as exc:
        max_input_bytes()
    assert one_line(str(exc.value)) and "IBP_MAX_FILE_MB" in str(exc.value) and repr(value) in str(exc.value)
    env.write(GOOD_NAME, csv_text(AE_HEADER, good_ae()))
    with pytest.raises(ValueError, match="IBP_MAX_FILE_MB"):  # a configuration error, not a refused file
        load_all(env)
    assert env.counts()["meta.file_loads"] == 0


# ---- an over-limit CSV ----------------------------------------------------------------------------------------

def test_over_limit_csv_is_refused_kept_and_loads_once_the_limit_is_raised(env, monkeypatch):
    env.write(GOOD_NAME, csv_text(AE_HEADER, good_ae()))  # ~3 KB: under the limit
    good = load_all(env)[GOOD_NAME]
    assert good.status == "loaded"
    big_name = "Monthly-AE-April-2024-full.csv"  # the whole published month, 29 KB
    big = env.write(big_name, AE_FILE.read_bytes())
    size = big.stat().st_size
    monkeypatch.setenv("IBP_MAX_FILE_MB", "0.02")  # 20 KB
    out = load_all(env)[big_name]
    assert out.status == "refused"
    fl = assert_accounted(env, out)  # one quarantine row, file named, archived byte for byte
    expected = (f"file is {size:,} bytes ({size / 1024:.1f} KB), over the input limit of 0.02 MB; to load it, set "
                "IBP_MAX_FILE_MB=1 (or more) and run again")
    assert fl["message"] == expected
    assert quarantine_rules(env, out.load_id) == [(None, "file_too_large", f"{big_name}: {expected}")]
    assert out.line() == f"refused   {big_name} -> ae_monthly_official: {expected} (file kept in ae_monthly_official/)"
    assert_good_slice_current(env, good.load_id)
    # the same limit again: nothing new is recorded
    assert load_all(env)[big_name].status == "unchanged"
    # raising the limit as the message says: the same bytes are tried again and load
    monkeypatch.setenv("IBP_MAX_FILE_MB", "1")
    again = load_all(env)[big_name]
    assert again.load_id != out.load_id
    # this test's registry knows 15 providers only; the others are named by the official file, so they enter as
    # provisional organisations instead of being quarantined: every row of the file loads
    published_rows = sum(1 for _ in csv.DictReader(io.StringIO(AE_FILE.read_text(encoding="utf-8-sig"))))
    assert (again.status, again.rows_loaded) == ("loaded", published_rows)
    assert load_all(env)[big_name].status == "unchanged"


def test_the_limit_is_measured_after_decompression(env, monkeypatch):
    data = AE_FILE.read_bytes()
    gz = env.write("Monthly-AE-April-2024.csv.gz", gzip.compress(data))
    assert gz.stat().st_size < 10_000 < len(data)
    monkeypatch.setenv("IBP_MAX_FILE_MB", "0.01")  # 10 KB: the gzip file fits, its content does not
    out = load_all(env)["Monthly-AE-April-2024.csv.gz"]
    assert out.status == "refused"
    message = assert_accounted(env, out)["message"]
    assert message == ("file decompresses to more than 10.2 KB, over the input limit of 0.01 MB; to load it, set "
                       "IBP_MAX_FILE_MB higher and run again")


# ---- bombs ----------------------------------------------------------------------------------------------------

def write_gzip_bomb(path: Path, gib: int = 1) -> None:
    """gib GiB of zeros as a ~1 MB gzip file, written member by member (as `cat a.gz b.gz` makes one file)."""
    member = gzip.compress(bytes(MB), compresslevel=9, mtime=0)  # 1 MiB of zeros -> ~1 KB
    with path.open("wb") as fh:
        for _ in range(1024 * gib):
            fh.write(member)


def test_gzip_bomb_is_refused_without_being_decompressed(env, monkeypatch):
    name = "Monthly-AE-May-2024.csv.gz"
    bomb = env.paths.landing / name
    write_gzip_bomb(bomb)
    assert bomb.stat().st_size < 2 * MB
    env.originals[name] = bomb.read_bytes()
    monkeypatch.setenv("IBP_MAX_FILE_MB", "32")
    tracemalloc.start()
    started = time.perf_counter()
    try:
        out = load_all(env)[name]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.status == "refused"
    assert peak < 80 * MB, f"peak {peak / MB:.0f} MB: decompressed beyond the limit of 32 MB"
    assert time.perf_counter() - started < 60
    fl = assert_accounted(env, out)  # the ~1 MB original is archived as is
    assert fl["message"] == ("file decompresses to more than 32.0 MB, over the input limit of 32 MB; to load it, set "
                             "IBP_MAX_FILE_MB higher and run again")
    assert quarantine_rules(env, out.load_id)[0][1] == "file_too_large"
    assert sum(p.stat().st_size for p in env.paths.archive.rglob("*") if p.is_file()) < 2 * MB
    assert load_all(env)[name].status == "unchanged"  # the re-check on the next run is bounded too


def test_gzip_bomb_under_the_default_limit(env):
    name = "Monthly-AE-May-2024.csv.gz"
    write_gzip_bomb(env.paths.landing / name)
    out = load_all(env)[name]
    assert out.status == "refused"
    assert env.file_load(out.load_id)["message"].startswith(
        "file decompresses to more than 200.0 MB, over the input limit of 200 MB; ")


def write_zip(path: Path, entries: dict[str, bytes | str], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in entries.items():
            z.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return path


def write_xlsx_bomb(path: Path, mib: int = 64) -> None:
    """A workbook whose sheet XML is mib MiB of whitespace (~1000x compression), written streaming."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with z.open("xl/worksheets/sheet1.xml", "w") as fh:
            fh.write(b'<?xml version="1.0"?><worksheet><sheetData>')
            for _ in range(mib):
                fh.write(b" " * MB)
            fh.write(b"</sheetData></worksheet>")


@pytest.fixture
def no_fastexcel(monkeypatch):
    """Fails loudly if a workbook reaches fastexcel (the checks must refuse it before)."""
    def refuse(*_a, **_k):
        raise AssertionError("fastexcel was called")
    monkeypatch.setattr(reading.pl, "read_excel", refuse)


def load_one(env: Env, path: Path) -> tuple[ingest.FileOutcome, dict, list[tuple]]:
    env.originals[path.name] = path.read_bytes()
    out = env.load(path)
    fl = assert_accounted(env, out)
    return out, fl, quarantine_rules(env, out.load_id)


def test_xlsx_bomb_is_refused_by_its_compression_ratio(env, no_fastexcel):
    bomb = env.paths.landing / "Monthly-AE-May-2024.xlsx"
    write_xlsx_bomb(bomb)
    assert bomb.stat().st_size < MB
    out, fl, q = load_one(env, bomb)
    assert out.status == "refused" and q[0][1] == "zip_bomb"
    sheet = zipfile.ZipFile(bomb).getinfo("xl/worksheets/sheet1.xml")
    assert sheet.file_size == 64 * MB + 67 and sheet.file_size > 500 * sheet.compress_size
    assert fl["message"] == (f"workbook part 'xl/worksheets/sheet1.xml' expands "
                             f"{sheet.file_size / sheet.compress_size:,.0f} times ({sheet.compress_size:,} to "
                             f"{sheet.file_size:,} bytes); refused as a likely zip bomb")


def test_xlsx_over_the_limit_once_unpacked_is_refused_as_too_large(env, monkeypatch, no_fastexcel):
    bomb = env.paths.landing / "Monthly-AE-May-2024.xlsx"
    write_xlsx_bomb(bomb)
    monkeypatch.setenv("IBP_MAX_FILE_MB", "32")
    out, fl, q = load_one(env, bomb)
    assert out.status == "refused" and q[0][1] == "file_too_large"
    total = sum(i.file_size for i in zipfile.ZipFile(bomb).infolist())
    assert fl["message"] == (f"workbook unpacks to {total:,} bytes (64.0 MB), over the input limit of 32 MB; to load "
                             "it, set IBP_MAX_FILE_MB=65 (or more) and run again")


def test_xlsx_cell_bomb_is_refused_before_calamine_allocates_it(env, no_fastexcel):
    """Two cells, A1 and XFD1048576: 5 KB on disk, but calamine would allocate 512 GB and abort the process."""
    path = env.paths.landing / "Monthly-AE-May-2024.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet()
    ws.write_row(0, 0, AE_HEADER)
    ws.write(1048575, 16383, "x")
    wb.close()
    out, fl, q = load_one(env, path)
    assert out.status == "refused" and q[0][1] == "zip_bomb"
    assert fl["message"] == ("workbook part 'xl/worksheets/sheet1.xml' spans 1,048,576 rows x 16,384 columns "
                             "(17,179,869,184 cells), over the 26,214,400 cells the input limit of 200 MB allows "
                             "(IBP_MAX_FILE_MB); refused as a likely XLSX bomb")


@pytest.mark.parametrize("cells", [
    '<row r="1"><c r="A1"/><c r="AAAAAAAA1"/></row>',  # a column beyond XFD
    '<row r="1"><c r="A1"/></row><row r="99999999999999"><c r="B99999999999999"/></row>',
    '<x:row r="1"><x:c r="$A$1"/></x:row><x:row r="1048576"><x:c r="$XFD$1048576"/></x:row>',  # prefixed, $
    '<row r="1000000">' + "<c/>" * 50 + "</row>",  # no r on the cells: counted one after another
])
def test_sheet_spanning_too_many_cells_is_refused(env, no_fastexcel, cells):
    sheet = f'<?xml version="1.0"?><worksheet xmlns:x="urn:x"><sheetData>{cells}</sheetData></worksheet>'
    path = write_zip(env.paths.landing / "Monthly-AE-May-2024.xlsx", {"xl/worksheets/sheet1.xml": sheet})
    out, fl, q = load_one(env, path)
    assert (out.status, q[0][1]) == ("refused", "zip_bomb")
    assert fl["message"].startswith("workbook part 'xl/worksheets/sheet1.xml' spans ")


def test_xlsx_whose_declared_sizes_lie_is_refused(env, no_fastexcel):
    """A part declared 1,000 bytes that inflates to 4 MB: zipfile stops at 1,000 and the CRC check fails."""
    path = write_zip(env.paths.landing / "Monthly-AE-May-2024.xlsx", {"xl/worksheets/sheet1.xml": " " * (4 * MB)})
    data = bytearray(path.read_bytes())
    real = struct.pack("<I", 4 * MB)
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local header, central directory
        at = data.find(sig)
        assert data[at + offset:at + offset + 4] == real
        data[at + offset:at + offset + 4] = struct.pack("<I", 1000)
    path.write_bytes(bytes(data))
    assert zipfile.ZipFile(path).infolist()[0].file_size == 1000
    out, fl, q = load_one(env, path)
    assert out.status == "refused" and q[0][1] == "not_xlsx"
    assert fl["message"] == ("not a readable XLSX workbook (part 'xl/worksheets/sheet1.xml': BadZipFile: Bad CRC-32 "
                             "for file 'xl/worksheets/sheet1.xml')")


@pytest.mark.parametrize("entry", ["../../evil.xml", "xl/../../evil.xml", "/etc/evil.xml", "C:\\evil.xml",
                                   "\\\\server\\share\\evil.xml", "xl\\..\\..\\evil.xml"])
def test_zip_slip_entry_is_refused(env, tmp_path, entry, no_fastexcel):
    path = write_zip(env.paths.landing / "Monthly-AE-May-2024.xlsx",
                     {"[Content_Types].xml": "<Types/>", entry: "<worksheet/>"})
    out, fl, q = load_one(env, path)
    assert out.status == "refused" and q[0][1] == "unsafe_zip_entry"
    assert fl["message"] == f"workbook part '{entry}' has an absolute or '..' path; refused (zip slip)"
    assert not list(tmp_path.rglob("evil.xml")) and not Path("/etc/evil.xml").exists()


def test_xml_entity_bomb_in_a_workbook_is_refused(env, no_fastexcel):
    lol = "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    sheet = f'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY lol0 "lol">{lol}]><worksheet>&lol9;</worksheet>'
    path = write_zip(env.paths.landing / "Monthly-AE-May-2024.xlsx", {"xl/worksheets/sheet1.xml": sheet})
    out, fl, q = load_one(env, path)
    assert out.status == "refused" and q[0][1] == "zip_bomb"
    assert "DOCTYPE" in fl["message"] and one_line(fl["message"])


def test_workbook_with_thousands_of_parts_or_odd_compression_is_refused(env, no_fastexcel):
    many = write_zip(env.paths.landing / "Monthly-AE-May-2024.xlsx", {f"p{i}.bin": b"" for i in range(10_001)})
    out, fl, q = load_one(env, many)
    assert (out.status, q[0][1]) == ("refused", "zip_bomb")
    assert fl["message"] == "workbook has 10,001 parts (a real one has a few dozen); refused as a likely zip bomb"
    bz = write_zip(env.paths.landing / "Monthly-AE-June-2024.xlsx", {"xl/worksheets/sheet1.xml": "<w/>"},
                   zipfile.ZIP_BZIP2)
    out, fl, q = load_one(env, bz)
    assert (out.status, q[0][1]) == ("refused", "not_xlsx")
    assert "compression method 12" in fl["message"]


def test_a_real_workbook_still_loads(env):
    path = env.paths.landing / "Monthly-AE-April-2024.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet()
    ws.write_row(0, 0, AE_HEADER)
    for i, row in enumerate(good_ae(), 1):
        ws.write_row(i, 0, [int(c) if c.isdigit() else c for c in row])
    wb.close()
    env.originals[path.name] = path.read_bytes()
    out = env.load(path)
    assert out.status == "loaded", out.message
    assert_accounted(env, out, data_lines=16)


def test_check_size_is_what_the_next_run_uses(tmp_path):
    plain = tmp_path / "a.csv"
    plain.write_bytes(b"x" * 2000)
    reading.check_size(plain, 2000)
    with pytest.raises(FileRefused) as exc:
        reading.check_size(plain, 1999)
    assert exc.value.rule == "file_too_large"


# ---- file names -----------------------------------------------------------------------------------------------

LONG = "Monthly-AE-" + "x" * 230 + "-2024.csv"  # 245 characters: legal on disk, too long for us
ODD_NAMES = [
    ".Monthly-AE-April-2024.csv",  # would be taken for a copy in progress (dot-file) and never loaded
    "..Monthly-AE-April-2024.csv",
    "Monthly-AE-Avril-été-2024.csv",
    "Monthly-AE-April 2024 (1).csv",
    "Monthly-AE-April;$(id)`rm`.csv",
    "Monthly-AE-April\n2024.csv",
    LONG,
]


@pytest.mark.parametrize("name", ODD_NAMES + [os.fsdecode(b"Monthly-AE-\xc9t\xe9-2024.csv")])
def test_stage_file_keeps_odd_names_inside_the_landing_folder(tmp_path, name):
    src_dir, landing = tmp_path / "downloads", tmp_path / "landing"
    src_dir.mkdir()
    landing.mkdir()
    src = src_dir / name
    src.write_bytes(b"Period,Org Code\n")
    dest = cli.stage_file(src, landing)
    assert dest.parent == landing and dest.read_bytes() == src.read_bytes()
    assert dest.name == ingest.safe_name(name)
    assert not dest.name.startswith(".") and len(dest.name) <= 150
    assert dest.name.endswith(".csv") and ingest.matches(AE, dest.name), "the staged file is still recognised"
    assert [p.name for p in landing.iterdir()] == [dest.name], "no temporary file left behind"


def test_stage_file_with_a_traversing_path(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0")
    landing = tmp_path / "landing"
    landing.mkdir()
    dest = cli.stage_file(Path(f"{tmp_path}/a/b/../../etc/passwd"), landing)
    assert dest == landing / "passwd"
    assert ingest.safe_name("../../etc/passwd") == "passwd"
    assert ingest.safe_name("/etc/passwd") == "passwd"


@pytest.mark.parametrize("name, expected", [
    ("a\x00b.csv", "a_b.csv"),
    ("\x00", "_"),
    ("Monthly-AE-" + "x" * 300 + "-2024.csv.gz", "Monthly-AE-" + "x" * 132 + ".csv.gz"),
    ("x" * 400, "x" * 150),
    ("." * 200, "unnamed"),
    ("名前.csv", "_.csv"),
])
def test_safe_name_edge_cases(name, expected):
    assert ingest.safe_name(name) == expected
    assert len(ingest.safe_name(name)) <= 150


def test_stage_file_never_overwrites_a_different_file(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / GOOD_NAME).write_text("first")
    (b / GOOD_NAME).write_text("second")
    first = cli.stage_file(a / GOOD_NAME, landing)
    second = cli.stage_file(b / GOOD_NAME, landing)
    assert first != second and first.read_text() == "first" and second.read_text() == "second"
    assert second.parent == landing and ingest.matches(AE, second.name)
    assert cli.stage_file(a / GOOD_NAME, landing) == first  # the same bytes again: the same file
    assert len(list(landing.iterdir())) == 2


def test_ingest_of_a_name_with_a_nul_byte_says_no_such_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IBP_DATA_DIR", str(tmp_path / "data"))
    assert cli.main(["ingest", "Monthly-AE-April\x00-2024.csv"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("refused ") and "no such file" in out and len(out.splitlines()) == 1
    assert not any((tmp_path / "data" / "landing").iterdir())


def test_landing_drops_with_odd_names_load_with_one_line_messages(env):
    """Files copied straight into data/landing/ (not through ibp ingest): a name is any bytes but '/' and NUL."""
    names = [n for n in ODD_NAMES if not n.startswith(".")] + [os.fsdecode(b"Monthly-AE-\xc9t\xe9-2024.csv")]
    text = csv_text(AE_HEADER, good_ae())
    for i, name in enumerate(names):  # different bytes each, so that each is a new load
        (env.paths.landing / name).write_bytes((text + "\n" * (i + 1)).encode())
    (env.paths.landing / ".Monthly-AE-April-2024.csv.part").write_bytes(b"half a fi")  # a copy in progress
    logged: list[str] = []
    summary = ingest.load_source(env.con, AE, env.paths, run_id="r", known_orgs=KNOWN, log=logged.append)
    assert sorted(f.file.name for f in summary.files) == sorted(names)  # the dot-file is not picked up
    assert {f.status for f in summary.files} == {"loaded"}
    assert len(logged) == len(names) and all(one_line(line) for line in logged)
    rows = env.con.execute("select file_name, archive_path, message from meta.file_loads").fetchall()
    archive = (env.paths.archive / AE.name).resolve()
    for file_name, archive_path, message in rows:
        assert one_line(message)
        assert Path(archive_path).resolve().parent == archive
        assert len(Path(archive_path).name) <= 16 + 1 + 150
    assert os.fsdecode(b"Monthly-AE-\xc9t\xe9-2024.csv") not in {r[0] for r in rows}  # stored readable, not broken
    assert "Monthly-AE-\ufffdt\ufffd-2024.csv" in {r[0] for r in rows}


# ---- the archive ----------------------------------------------------------------------------------------------

def test_a_different_file_with_the_same_name_never_overwrites_the_archive(env):
    first = env.write_and_load(GOOD_NAME, csv_text(AE_HEADER, good_ae()))
    first_archive = Path(env.file_load(first.load_id)["archive_path"])
    first_bytes = first_archive.read_bytes()
    rows = good_ae()
    rows[3][5] = "1"
    rows[0] = good_ae()[0]
    second = env.write_and_load(GOOD_NAME, csv_text(AE_HEADER, rows))  # same name, other bytes
    second_archive = Path(env.file_load(second.load_id)["archive_path"])
    assert second_archive != first_archive
    assert first_archive.read_bytes() == first_bytes
    assert second_archive.read_bytes() == env.originals[GOOD_NAME]
    assert len([p for p in env.paths.archive.rglob("*") if p.is_file()]) == 2


def test_an_archive_name_taken_by_other_bytes_is_not_overwritten(env):
    """A 64-bit prefix collision (or a file put there by hand): the new file is archived under its full sha256."""
    data = csv_text(AE_HEADER, good_ae()).encode()
    sha = hashlib.sha256(data).hexdigest()
    squatter = env.paths.archive / AE.name / f"{sha[:16]}_{GOOD_NAME}"
    squatter.parent.mkdir(parents=True)
    squatter.write_bytes(b"someone else's bytes")
    out = env.write_and_load(GOOD_NAME, data)
    assert out.status == "loaded"
    archived = Path(env.file_load(out.load_id)["archive_path"])
    assert archived.name == f"{sha}_{GOOD_NAME}" and archived.read_bytes() == data
    assert squatter.read_bytes() == b"someone else's bytes"
    again = env.write_and_load("Monthly-AE-April-2024-copy.csv", data)
    assert again.status == "unchanged"


def test_a_symlink_in_the_landing_folder_is_refused_not_followed(env, tmp_path):
    """A link could point anywhere on the machine; what is read is archived and shown in quarantine."""
    good = env.write(GOOD_NAME, csv_text(AE_HEADER, good_ae()))
    outside = tmp_path / "outside" / "secret.csv"
    outside.parent.mkdir()
    outside.write_text(csv_text(AE_HEADER, good_ae()).replace("E54000", "SECRET"))
    link = env.paths.landing / "Monthly-AE-May-2024.csv"
    link.symlink_to(outside)
    (env.paths.landing / "Monthly-AE-June-2024.csv").symlink_to(tmp_path / "nowhere.csv")  # dangling
    out = load_all(env)
    assert out[good.name].status == "loaded"
    for name in ("Monthly-AE-May-2024.csv", "Monthly-AE-June-2024.csv"):
        assert out[name].status == "refused" and one_line(out[name].message)
        assert "symbolic link" in out[name].message and "ibp ingest" in out[name].message
        assert [r[1] for r in quarantine_rules(env, out[name].load_id)] == ["symlink_refused"]
    assert link.is_symlink() and outside.exists()  # nothing moved or lost
    archived = [p for p in env.paths.archive.rglob("*") if p.is_file()]
    assert all(b"SECRET" not in p.read_bytes() for p in archived) and len(archived) == 1  # only the real file
    assert env.con.execute("select count(*) from raw.ae_monthly_official where _source_file like 'Monthly-AE-Ma%'"
                           ).fetchone()[0] == 0
    again = load_all(env)  # a second refresh does not record the same refusal again
    assert again["Monthly-AE-May-2024.csv"].status == "unchanged"
    assert_good_slice_current(env, out[good.name].load_id)
