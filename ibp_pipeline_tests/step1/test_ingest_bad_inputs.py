"""The step-1 loader against bad input files: real slices of the bundled publications, one defect per file.

Base: the official A&E layout, header exactly as published, the first 15 provider rows of
data/sources/ae_monthly_provider_official/Monthly-AE-April-2024.csv and its TOTAL row (line 2, as published),
recomputed to equal the sum of those 15 rows. Line numbers in the files built here: header = 1, TOTAL = 2, the
n-th provider row = n + 2. Every bad file is the good slice with one named edit. Other sources (a gzip slice of
ae_trust_monthly.csv.gz, the ODS reference files) are used where the case needs them.

Every test checks, for each file it loads: the status in meta.file_loads, the exact quarantine rows (line
number, published column header, value, rule), that each message is one line naming row, column and reason, that
nothing is silently dropped (every data line is either in raw.<source> or in dq.quarantine, and rows_read ==
rows_loaded + rows_quarantined; a refused file has one quarantine row with row_number NULL), and that the
original bytes are archived under archive/<source>/<sha256[:16]>_<safe name>.

Real DuckDB (one file per test under tmp_path), real project code, no mocks.
Defects found here earlier (rename hints, published column names, multi-line cells, revision load order) each
keep a focused test.
"""
from __future__ import annotations

import copy
import csv
import dataclasses
import datetime
import gzip
import hashlib
import io
import shutil
import zipfile
from pathlib import Path

import duckdb
import pytest

from ibp_pipeline.config import Paths, get_paths
from ibp_pipeline.step1_current_state import ingest
from ibp_pipeline.step1_current_state.reading import FileRefused
from ibp_pipeline.step1_current_state.sources import BY_NAME, REFERENCE_SOURCES
from ibp_pipeline.step1_current_state.validation import map_headers

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
AE = BY_NAME["ae_monthly_official"]
AE_TRUST = BY_NAME["ae_trust_monthly"]
AE_FILE = DATA / "sources" / "ae_monthly_provider_official" / "Monthly-AE-April-2024.csv"
AE_TRUST_FILE = DATA / "sources" / "ae_trust_monthly_2021_2024" / "ae_trust_monthly.csv.gz"

GOOD_NAME = "Monthly-AE-April-2024.csv"
TYPE1 = "A&E attendances Type 1"
OTHER = "A&E attendances Other A&E Department"
FIRST_MEASURE = 4  # Period, Org Code, Parent Org, Org name, then the 18 counts


# ---- the real slices ------------------------------------------------------------------------------------------

def _read_csv_text(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


_AE_ROWS = _read_csv_text(AE_FILE.read_text(encoding="utf-8"))
AE_HEADER: list[str] = _AE_ROWS[0]
assert _AE_ROWS[1][1] == "TOTAL", "the bundled file publishes its TOTAL row on line 2"
_AE_TOTAL_PUBLISHED: list[str] = _AE_ROWS[1]
AE_PROVIDERS: list[list[str]] = _AE_ROWS[2:17]
AE_ORGS = frozenset(r[1] for r in AE_PROVIDERS)
KNOWN = AE_ORGS  # the organisation registry used by most tests: exactly the slice's 15 providers

_TRUST_ROWS = _read_csv_text(gzip.decompress(AE_TRUST_FILE.read_bytes()).decode("utf-8"))
TRUST_HEADER, TRUST_ROWS = _TRUST_ROWS[0], _TRUST_ROWS[1:13]
TRUST_ORGS = frozenset(r[0] for r in TRUST_ROWS)


def col(header: str) -> int:
    return AE_HEADER.index(header)


def total_of(providers: list[list[str]]) -> list[str]:
    """The TOTAL row as published, with every measure recomputed as the sum of the given provider rows."""
    total = list(_AE_TOTAL_PUBLISHED)
    for j in range(FIRST_MEASURE, len(AE_HEADER)):
        total[j] = str(sum(int(r[j]) for r in providers))
    return total


def good_ae() -> list[list[str]]:
    """TOTAL (line 2) then the 15 provider rows (lines 3..17); a fresh copy to edit."""
    providers = copy.deepcopy(AE_PROVIDERS)
    return [total_of(providers)] + providers


def line_of(rows: list[list[str]], org: str) -> int:
    """File line number of an organisation's row (header = line 1)."""
    return next(i for i, r in enumerate(rows) if r[1] == org) + 2


def set_cell(rows: list[list[str]], org: str, header: str, value: str) -> int:
    """Edit one cell in place; returns the row's line number."""
    i = line_of(rows, org) - 2
    rows[i][col(header)] = value
    return i + 2


def cell(org: str, header: str) -> float:
    return float(next(r for r in AE_PROVIDERS if r[1] == org)[col(header)])


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")  # the bundled file uses \n and minimal quoting
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def test_slice_is_the_published_file_start():
    """Guard: the good slice really is the bundled file's first 17 lines apart from the recomputed TOTAL."""
    published = AE_FILE.read_text(encoding="utf-8").splitlines()
    built = csv_text(AE_HEADER, good_ae()).splitlines()
    assert built[0] == published[0]
    assert built[2:] == published[2:17]
    assert built[1].startswith("MSitAE-APRIL-2024,TOTAL,-,TOTAL,")


# ---- the warehouse under test ---------------------------------------------------------------------------------

QROW = tuple  # a dq.quarantine row: (row_number, column_name, value, rule, message)


@dataclasses.dataclass
class Env:
    con: duckdb.DuckDBPyConnection
    paths: Paths
    originals: dict[str, bytes] = dataclasses.field(default_factory=dict)

    def write(self, name: str, data: str | bytes, folder: Path | None = None) -> Path:
        folder = folder or self.paths.landing
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        raw = data.encode("utf-8") if isinstance(data, str) else data
        path.write_bytes(raw)
        self.originals[name] = raw
        return path

    def load(self, path: Path, spec=AE, known=KNOWN) -> ingest.FileOutcome:
        return ingest.load_file(self.con, spec, path, self.paths, known_orgs=known, run_id="test-run")

    def write_and_load(self, name: str, data: str | bytes, spec=AE, known=KNOWN) -> ingest.FileOutcome:
        return self.load(self.write(name, data), spec, known)

    def file_load(self, load_id: int) -> dict:
        cur = self.con.execute("select * from meta.file_loads where load_id = ?", [load_id])
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
        assert len(rows) == 1, f"expected one meta.file_loads row for load {load_id}, got {len(rows)}"
        return dict(zip(names, rows[0]))

    def quarantine(self, load_id: int) -> list[QROW]:
        return self.con.execute(
            "select row_number, column_name, value, rule, message from dq.quarantine where load_id = ? "
            "order by row_number nulls first, rule", [load_id]).fetchall()

    def raw(self, spec, load_id: int) -> dict[str, dict]:
        """raw rows of one load, by org code (or the spec's first key column)."""
        if not ingest.table_exists(self.con, "raw", spec.name):
            return {}
        cur = self.con.execute(f"select * from {spec.table} where _load_id = ? order by _row_number", [load_id])
        names = [d[0] for d in cur.description]
        key = spec.org_column or spec.key[0]
        return {r[names.index(key)]: dict(zip(names, r)) for r in cur.fetchall()}

    def latest(self, spec=AE) -> dict[str, dict]:
        cur = self.con.execute(f"select * from latest.{spec.name}")
        names = [d[0] for d in cur.description]
        return {r[names.index(spec.org_column)]: dict(zip(names, r)) for r in cur.fetchall()}

    def counts(self, spec=AE) -> dict[str, int]:
        out = {t: self.con.execute(f"select count(*) from {t}").fetchone()[0]
               for t in ("meta.file_loads", "dq.quarantine")}
        if ingest.table_exists(self.con, "raw", spec.name):
            out[spec.table] = self.con.execute(f"select count(*) from {spec.table}").fetchone()[0]
        out["archive_files"] = sum(1 for p in self.paths.archive.rglob("*") if p.is_file())
        return out


def make_env(root: Path) -> Env:
    root.mkdir(parents=True, exist_ok=True)
    paths = dataclasses.replace(
        get_paths(root), data=root, sources=root / "sources", landing=root / "landing",
        reference=root / "reference", archive=root / "archive", warehouse=root / "warehouse.duckdb",
        serving=root / "serving.duckdb", reports=root / "reports", dagster_home=root / "dagster_home")
    for p in (paths.sources, paths.landing, paths.reference, paths.archive):
        p.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(paths.warehouse))
    ingest.ensure_schema(con)
    return Env(con, paths)


@pytest.fixture
def env(tmp_path: Path):
    e = make_env(tmp_path)
    yield e
    e.con.close()


# ---- shared assertions ----------------------------------------------------------------------------------------

def assert_one_line(message: str) -> None:
    assert message and "\n" not in message and "\r" not in message, f"message is not one line: {message!r}"


def assert_accounted(env: Env, outcome: ingest.FileOutcome, spec=AE, *, data_lines: int | None = None) -> dict:
    """Provenance and 'nothing silently dropped' for one load; returns its meta.file_loads row."""
    fl = env.file_load(outcome.load_id)
    name = fl["file_name"]
    q = env.quarantine(outcome.load_id)
    raw = env.raw(spec, outcome.load_id)
    assert fl["status"] == outcome.status
    assert_one_line(fl["message"])
    for row_number, column, value, rule, message in q:
        assert_one_line(message)
        assert message.startswith(f"{name}: "), message
        if row_number is not None:
            assert f"row {row_number}" in message
            if column is not None:
                assert f"'{column}'" in message or column in message
    if fl["status"] == "refused":
        assert (fl["rows_read"], fl["rows_loaded"], fl["rows_quarantined"]) == (0, 0, 0)
        assert len(q) == 1 and q[0][0] is None, f"a refused file has exactly one file-level quarantine row: {q}"
        assert q[0][4] == f"{name}: {fl['message']}"
        assert raw == {}
    else:
        assert fl["rows_read"] == fl["rows_loaded"] + fl["rows_quarantined"]
        assert len(raw) == fl["rows_loaded"] == outcome.rows_loaded
        bad_lines = {r[0] for r in q}
        assert None not in bad_lines
        assert len(bad_lines) == fl["rows_quarantined"] == outcome.rows_quarantined
        good_lines = {r["_row_number"] for r in raw.values()}
        assert not good_lines & bad_lines, "a row is both loaded and quarantined"
        if data_lines is not None:  # every data line of the file is accounted for, exactly once
            assert good_lines | bad_lines == set(range(2, data_lines + 2))
            assert fl["rows_read"] == data_lines
    # the original is archived, by sha256, inside the archive folder, byte for byte
    original = env.originals[name]
    sha = hashlib.sha256(original).hexdigest()
    assert fl["sha256"] == sha
    archived = Path(fl["archive_path"])
    assert archived.name == f"{sha[:16]}_{ingest.safe_name(name)}"
    assert archived.resolve().is_relative_to((env.paths.archive / spec.name).resolve())
    assert archived.read_bytes() == original
    return fl


def assert_good_slice_loads(env: Env, name: str = GOOD_NAME) -> ingest.FileOutcome:
    """Another (good) file still loads completely into the same warehouse."""
    out = env.write_and_load(name, csv_text(AE_HEADER, good_ae()))
    assert out.status == "loaded", out.message
    assert out.rows_loaded == 16 and out.rows_quarantined == 0
    assert_accounted(env, out, data_lines=16)
    assert set(env.raw(AE, out.load_id)) == AE_ORGS | {"TOTAL"}
    return out


def total_aside(name: str) -> tuple:
    """The TOTAL row set aside when provider rows were quarantined (column_name checked separately)."""
    return (2, "total_not_verifiable",
            f"{name}: row 2, column 'Org Code': TOTAL row set aside; provider rows of this file were quarantined, "
            "so it cannot be checked against their sum")


def without_column(q: list[QROW]) -> list[tuple]:
    return [(r[0], r[3], r[4]) if r[3] == "total_not_verifiable" else r for r in q]


# ---- 1, 2: missing and renamed columns ------------------------------------------------------------------------

def _drop_column(header: str) -> str:
    j = col(header)
    return csv_text([h for i, h in enumerate(AE_HEADER) if i != j],
                    [[c for i, c in enumerate(r) if i != j] for r in good_ae()])


def test_missing_org_code_column_is_refused(env):
    name = "Monthly-AE-April-2024-no-org-code.csv"
    out = env.write_and_load(name, _drop_column("Org Code"))
    assert out.status == "refused"
    fl = assert_accounted(env, out)
    assert fl["message"].startswith("missing required column 'Org Code'")
    [(row, column, value, rule, message)] = env.quarantine(out.load_id)
    assert (row, column, value, rule) == (None, None, None, "missing_column")
    assert message.startswith(f"{name}: missing required column 'Org Code'")
    assert_good_slice_loads(env)


def test_missing_column_hint_does_not_suggest_a_header_already_in_use(env):
    out = env.write_and_load("Monthly-AE-April-2024-no-org-code.csv", _drop_column("Org Code"))
    assert out.status == "refused"
    message = env.file_load(out.load_id)["message"]
    assert message.startswith("missing required column 'Org Code'")
    assert "(found 'Org name'" not in message


def test_renamed_org_code_column_is_refused_with_a_hint(env):
    name = "Monthly-AE-April-2024-renamed.csv"
    header = ["Organisation Code" if h == "Org Code" else h for h in AE_HEADER]
    out = env.write_and_load(name, csv_text(header, good_ae()))
    assert out.status == "refused"
    fl = assert_accounted(env, out)
    expected = "missing required column 'Org Code' (found 'Organisation Code': renamed?)"
    assert fl["message"] == expected
    assert env.quarantine(out.load_id) == [(None, None, None, "missing_column", f"{name}: {expected}")]
    assert_good_slice_loads(env)


def test_headers_match_ignoring_case_spacing_and_bom(env):
    variants = [h.lower() for h in AE_HEADER]
    variants[col("Org Code")] = "  org   CODE "
    variants[col(TYPE1)] = "A&E  ATTENDANCES   type 1"
    mapping = map_headers(AE, variants)
    assert mapping["org_code"] == "  org   CODE "
    assert mapping["ae_attendances_type_1"] == "A&E  ATTENDANCES   type 1"
    assert mapping["period"] == "period"
    assert len(mapping) == len(AE.columns)
    assert map_headers(AE, ["org code" if h == "Org Code" else h for h in AE_HEADER])["org_code"] == "org code"
    with pytest.raises(FileRefused) as exc:
        map_headers(AE, [h for h in AE_HEADER if h != TYPE1])
    assert exc.value.rule == "missing_column" and f"'{TYPE1}'" in str(exc.value)
    # and a whole file with such headers (plus a UTF-8 byte-order mark) loads like the published one
    data = "\ufeff" + csv_text(variants, good_ae())
    out = env.write_and_load("Monthly-AE-April-2024-lower.csv", data.encode("utf-8"))
    assert out.status == "loaded", out.message
    fl = assert_accounted(env, out, data_lines=16)
    assert fl["encoding"] == "utf-8"
    raw = env.raw(AE, out.load_id)
    assert set(raw) == AE_ORGS | {"TOTAL"}
    assert raw["ACH01"]["ae_attendances_other_ae_department"] == cell("ACH01", OTHER)


# ---- 3, 4, 5: bad cells ---------------------------------------------------------------------------------------

def test_text_in_numeric_column_quarantines_that_row_and_sets_total_aside(env):
    name = "Monthly-AE-April-2024-text.csv"
    rows = good_ae()
    line = set_cell(rows, "AD913", TYPE1, "abc")
    out = env.write_and_load(name, csv_text(AE_HEADER, rows))
    assert out.status == "partial"
    fl = assert_accounted(env, out, data_lines=16)
    assert (fl["rows_read"], fl["rows_loaded"], fl["rows_quarantined"]) == (16, 14, 2)
    q = env.quarantine(out.load_id)
    assert without_column(q) == [
        total_aside(name),
        (line, TYPE1, "abc", "not_a_number", f"{name}: row {line}, column '{TYPE1}': 'abc' is not a number"),
    ]
    assert line == 6
    raw = env.raw(AE, out.load_id)
    assert set(raw) == AE_ORGS - {"AD913"}
    assert raw["ACH01"]["ae_attendances_other_ae_department"] == cell("ACH01", OTHER)
    assert f"row {line}, column '{TYPE1}': 'abc' is not a number" in fl["message"]


def test_total_set_aside_names_the_published_column(env):
    rows = good_ae()
    set_cell(rows, "AD913", TYPE1, "abc")
    out = env.write_and_load("Monthly-AE-April-2024-text.csv", csv_text(AE_HEADER, rows))
    q = {r[3]: r for r in env.quarantine(out.load_id)}
    assert q["total_not_verifiable"][1] == "Org Code"


def test_negative_count_is_quarantined(env):
    name = "Monthly-AE-April-2024-negative.csv"
    rows = good_ae()
    line = set_cell(rows, "AQN04", OTHER, "-2897")
    out = env.write_and_load(name, csv_text(AE_HEADER, rows))
    assert out.status == "partial"
    assert_accounted(env, out, data_lines=16)
    assert without_column(env.quarantine(out.load_id)) == [
        total_aside(name),
        (line, OTHER, "-2897", "negative_count",
         f"{name}: row {line}, column '{OTHER}': -2897 is negative; counts cannot be below zero"),
    ]
    assert set(env.raw(AE, out.load_id)) == AE_ORGS - {"AQN04"}


def _load_reference(env: Env) -> frozenset[str]:
    """The real ODS/ONS reference files and the committed supplement, loaded by the loader itself."""
    shutil.copytree(DATA / "sources" / "org_reference", env.paths.sources / "org_reference")
    shutil.copytree(DATA / "sources" / "ods_published", env.paths.sources / "ods_published")
    paths = dataclasses.replace(env.paths, reference=DATA / "reference")  # read only: archive goes to tmp
    for spec in REFERENCE_SOURCES:
        summary = ingest.load_source(env.con, spec, paths, run_id="test-run", log=lambda _m: None)
        assert summary.files and all(f.status == "loaded" for f in summary.files), summary.files
    return ingest.known_org_codes(env.con)


def test_unknown_organisation_code_is_quarantined(env):
    known = _load_reference(env)
    assert AE_ORGS <= known, "every provider of the real slice is in the real organisation reference"
    assert "ZZ999" not in known
    name = "Monthly-AE-April-2024-unknown-org.csv"
    rows = good_ae()
    line = line_of(rows, "ARN03")
    rows[line - 2][col("Org Code")] = "ZZ999"
    rows[line - 2][col("Org name")] = ""  # no name: it cannot enter as a provisional organisation
    out = env.write_and_load(name, csv_text(AE_HEADER, rows), known=known)
    assert out.status == "partial"
    assert_accounted(env, out, data_lines=16)
    assert without_column(env.quarantine(out.load_id)) == [
        total_aside(name),
        (line, "Org Code", "ZZ999", "unknown_org",
         f"{name}: row {line}, column 'Org Code': organisation code 'ZZ999' is not in the organisation reference "
         "and the row gives it no name, so it cannot enter as a provisional organisation"),
    ]
    assert set(env.raw(AE, out.load_id)) == AE_ORGS - {"ARN03"}


def test_a_new_organisation_named_by_an_official_publication_enters_as_provisional(env):
    """A code NHS England's own file names (with a name and a parent) is not bad data: it loads, is counted in
    the TOTAL check, and the load says it entered as provisional."""
    known = _load_reference(env)
    name = "Monthly-AE-May-2024-new-org.csv"
    rows = [[c.replace("APRIL", "MAY") for c in r] for r in good_ae()]
    line = line_of(rows, "ARN03")
    rows[line - 2][col("Org Code")] = "ZZ998"
    rows[line - 2][col("Org name")] = "NEW URGENT TREATMENT CENTRE"
    out = env.write_and_load(name, csv_text(AE_HEADER, rows), known=known)
    assert out.status == "loaded", out.message
    assert env.quarantine(out.load_id) == []
    assert "ZZ998" in env.raw(AE, out.load_id) and "TOTAL" in env.raw(AE, out.load_id)
    assert "1 organisation not yet in the ODS reference entered as provisional: ZZ998 (NEW URGENT TREATMENT " \
           "CENTRE)" in out.message


# ---- 6: duplicates --------------------------------------------------------------------------------------------

def _with_copy_after(org: str, edit: tuple[str, str] | None = None) -> tuple[list[list[str]], int]:
    """The good slice (TOTAL of the 15 originals) with a copy of org's row inserted right after it."""
    rows = good_ae()
    i = line_of(rows, org) - 2
    dup = list(rows[i])
    if edit:
        dup[col(edit[0])] = edit[1]
    rows.insert(i + 1, dup)
    return rows, i + 2


def test_identical_duplicate_row_keeps_the_first(env):
    name = "Monthly-AE-April-2024-dup.csv"
    rows, first = _with_copy_after("ACH01")
    out = env.write_and_load(name, csv_text(AE_HEADER, rows))
    assert out.status == "partial"
    fl = assert_accounted(env, out, data_lines=17)
    assert (fl["rows_read"], fl["rows_loaded"], fl["rows_quarantined"]) == (17, 15, 2)
    q = env.quarantine(out.load_id)
    assert without_column(q[:1]) == [total_aside(name)]
    [(row, column, value, rule, message)] = q[1:]
    assert (row, rule) == (first + 1, "duplicate_row")
    assert "Org Code" in column and value.endswith("ACH01")
    assert message.startswith(f"{name}: row {first + 1}: duplicate of row {first} (same ")
    assert message.endswith("ACH01); the first is kept")
    raw = env.raw(AE, out.load_id)
    assert set(raw) == AE_ORGS
    assert raw["ACH01"]["_row_number"] == first


def test_duplicate_quarantine_names_published_key_columns(env):
    rows, first = _with_copy_after("ACH01")
    out = env.write_and_load("Monthly-AE-April-2024-dup.csv", csv_text(AE_HEADER, rows))
    q = {r[3]: r for r in env.quarantine(out.load_id)}
    assert q["duplicate_row"][1:3] == ("Period / Org Code", "MSitAE-APRIL-2024 / ACH01")


def test_conflicting_duplicate_quarantines_every_copy(env):
    name = "Monthly-AE-April-2024-conflict.csv"
    rows, first = _with_copy_after("ACH01", (OTHER, "4420"))  # published 4419
    out = env.write_and_load(name, csv_text(AE_HEADER, rows))
    assert out.status == "partial"
    fl = assert_accounted(env, out, data_lines=17)
    assert (fl["rows_read"], fl["rows_loaded"], fl["rows_quarantined"]) == (17, 14, 3)
    q = env.quarantine(out.load_id)
    assert without_column(q[:1]) == [total_aside(name)]
    assert [(r[0], r[3]) for r in q[1:]] == [(first, "conflicting_duplicate"), (first + 1, "conflicting_duplicate")]
    for row, column, value, _rule, message in q[1:]:
        assert "Org Code" in column and value.endswith("ACH01")
        assert message.startswith(f"{name}: row {row}: ")
        assert message.endswith("ACH01 appears more than once with different values; none of them is loaded")
    assert set(env.raw(AE, out.load_id)) == AE_ORGS - {"ACH01"}


# ---- 7, 8: empty, header-only and non-CSV files ---------------------------------------------------------------

def test_empty_file_is_refused(env):
    name = "Monthly-AE-April-2024-empty.csv"
    out = env.write_and_load(name, b"")
    assert out.status == "refused"
    fl = assert_accounted(env, out)
    assert fl["message"] == "file is empty"
    assert env.quarantine(out.load_id) == [(None, None, None, "empty_file", f"{name}: file is empty")]
    assert_good_slice_loads(env)


def test_header_only_file_loads_zero_rows(env):
    out = env.write_and_load("Monthly-AE-April-2024-header.csv", csv_text(AE_HEADER, []))
    assert out.status == "loaded", out.message
    fl = assert_accounted(env, out, data_lines=0)
    assert (fl["rows_read"], fl["rows_loaded"], fl["rows_quarantined"]) == (0, 0, 0)
    assert env.quarantine(out.load_id) == []
    assert env.latest() == {}
    assert_good_slice_loads(env)


def _png() -> bytes:
    return bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000000000500010d0a2db40000000049454e44ae426082")


def _zip_of_good_slice() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(GOOD_NAME, csv_text(AE_HEADER, good_ae()))
    return buf.getvalue()


@pytest.mark.parametrize("kind, data, why", [
    ("png", _png(), "not a CSV file: it contains binary data (NUL bytes), not CSV text"),
])
def test_non_csv_bytes_are_refused_and_archived(env, kind, data, why):
    name = f"Monthly-AE-April-2024-{kind}.csv"
    out = env.write_and_load(name, data)
    assert out.status == "refused"
    fl = assert_accounted(env, out)  # includes: archived byte for byte under its sha256 prefix
    assert fl["message"] == why
    assert env.quarantine(out.load_id) == [(None, None, None, "not_csv", f"{name}: {why}")]
    assert_good_slice_loads(env)


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_the_one_csv_in_a_zip_loads_like_the_csv_and_mac_junk_is_ignored(env):
    """The RTT full extract comes zipped: the CSV inside is read, __MACOSX/ and ._ entries are not."""
    plain = env.write_and_load(GOOD_NAME, csv_text(AE_HEADER, good_ae()))
    rows_plain = env.con.execute(f"select * exclude (_load_id, _source_file) from {AE.table} where _load_id = ? "
                                 "order by _row_number", [plain.load_id]).fetchall()
    zipped = env.write_and_load("Monthly-AE-May-2024.zip", _zip({
        "__MACOSX/._Monthly-AE-April-2024.csv": b"\x00\x05\x16\x07junk", ".DS_Store": b"\x00\x00junk",
        "Monthly-AE-April-2024.csv": csv_text(AE_HEADER, [[c.replace("APRIL", "MAY") for c in r] for r in good_ae()])}))
    assert zipped.status == "loaded", zipped.message
    rows_zip = env.con.execute(f"select * exclude (_load_id, _source_file, period_start, period) from {AE.table} "
                               "where _load_id = ? order by _row_number", [zipped.load_id]).fetchall()
    assert len(rows_zip) == len(rows_plain) > 0
    assert "read Monthly-AE-April-2024.csv from the ZIP" in zipped.message


@pytest.mark.parametrize("entries, rule, why", [
    ({"a.csv": b"x,y\r\n1,2\r\n", "b.csv": b"x,y\r\n3,4\r\n"}, "zip_several_csv",
     "ZIP holds 2 CSV files (a.csv, b.csv); a publication's ZIP holds one, so which to load is not clear: load them "
     "one by one"),
    ({"readme.pdf": b"%PDF-1.4", "__MACOSX/._x.csv": b"junk"}, "zip_without_csv",
     "ZIP holds no CSV file (it holds readme.pdf); a publication's ZIP holds one CSV"),
])
def test_a_zip_with_two_csvs_or_none_is_refused_and_kept(env, entries, rule, why):
    name = "Monthly-AE-April-2024.zip"
    out = env.write_and_load(name, _zip(entries))
    assert out.status == "refused"
    fl = assert_accounted(env, out)
    assert fl["message"] == why
    assert env.quarantine(out.load_id) == [(None, None, None, rule, f"{name}: {why}")]


# ---- 9: Windows-1252 ------------------------------------------------------------------------------------------

def test_windows_1252_file_is_decoded_and_says_so(env):
    name = "Monthly-AE-April-2024-cp1252.csv"
    rows = good_ae()
    set_cell(rows, "8J094", "Org name", "BADGER CAFÉ £ LTD")
    data = csv_text(AE_HEADER, rows).encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    out = env.write_and_load(name, data)
    assert out.status == "loaded", out.message
    fl = assert_accounted(env, out, data_lines=16)
    assert fl["encoding"] == "windows-1252"
    assert fl["message"] == "16 rows loaded (2024-04 to 2024-04); read as windows-1252, not UTF-8"
    assert env.quarantine(out.load_id) == []
    assert env.raw(AE, out.load_id)["8J094"]["org_name"] == "BADGER CAFÉ £ LTD"


# ---- 10: TOTAL mismatch ---------------------------------------------------------------------------------------

def test_total_not_equal_to_sum_of_rows_refuses_the_file(env):
    name = "Monthly-AE-April-2024-bad-total.csv"
    rows = good_ae()
    true_sum = int(rows[0][col(OTHER)])
    rows[0][col(OTHER)] = str(true_sum + 100)
    out = env.write_and_load(name, csv_text(AE_HEADER, rows))
    assert out.status == "refused"
    fl = assert_accounted(env, out)
    expected = (f"TOTAL row does not equal the sum of the provider rows: {OTHER}: TOTAL {true_sum + 100:,} "
                f"vs sum of rows {true_sum:,}")
    assert fl["message"] == expected
    assert env.quarantine(out.load_id) == [(None, None, None, "total_mismatch", f"{name}: {expected}")]
    assert_good_slice_loads(env)


# ---- 11, 12: revisions ----------------------------------------------------------------------------------------

REVISED = {"ACH01": 4500, "AXG": 2400}  # published 4419 and 2355 (A&E attendances Other A&E Department)
REVISED_NAME = "Monthly-AE-April-2024-revised.csv"


def _revised_rows() -> list[list[str]]:
    providers = copy.deepcopy(AE_PROVIDERS)
    for r in providers:
        if r[1] in REVISED:
            r[col(OTHER)] = str(REVISED[r[1]])
    return [total_of(providers)] + providers


def test_revision_replaces_latest_and_keeps_history(env):
    assert ingest.matches(AE, REVISED_NAME)
    first = assert_good_slice_loads(env)
    second = env.write_and_load(REVISED_NAME, csv_text(AE_HEADER, _revised_rows()))
    assert second.status == "loaded", second.message
    fl = assert_accounted(env, second, data_lines=16)
    assert fl["rows_replaced"] == second.rows_replaced == 16  # every key of the month was published again
    assert "16 replace earlier published values (revision)" in fl["message"]
    latest = env.latest()
    assert set(latest) == AE_ORGS | {"TOTAL"}
    for org, new in REVISED.items():
        assert latest[org]["ae_attendances_other_ae_department"] == new
        assert latest[org]["_load_id"] == second.load_id
        history = env.con.execute(
            "select _load_id, ae_attendances_other_ae_department, _source_file from raw.ae_monthly_official "
            "where org_code = ? order by _load_id", [org]).fetchall()
        assert history == [(first.load_id, cell(org, OTHER), GOOD_NAME), (second.load_id, new, REVISED_NAME)]
    assert latest["TOTAL"]["ae_attendances_other_ae_department"] == float(_revised_rows()[0][col(OTHER)])
    assert env.con.execute("select count(*) from raw.ae_monthly_official").fetchone()[0] == 32


def test_revision_with_a_bad_row_keeps_that_orgs_previous_value(env):
    first = assert_good_slice_loads(env)
    name = "Monthly-AE-April-2024-revised-bad.csv"
    rows = _revised_rows()
    line = set_cell(rows, "AJN", OTHER, "-344")  # published 344
    out = env.write_and_load(name, csv_text(AE_HEADER, rows))
    assert out.status == "partial"
    fl = assert_accounted(env, out, data_lines=16)
    assert fl["rows_replaced"] == 14  # 14 good provider rows; AJN and the TOTAL were not loaded
    assert without_column(env.quarantine(out.load_id)) == [
        total_aside(name),
        (line, OTHER, "-344", "negative_count",
         f"{name}: row {line}, column '{OTHER}': -344 is negative; counts cannot be below zero"),
    ]
    latest = env.latest()
    assert latest["AJN"]["ae_attendances_other_ae_department"] == cell("AJN", OTHER)
    assert latest["AJN"]["_load_id"] == first.load_id
    for org, new in REVISED.items():
        assert (latest[org]["ae_attendances_other_ae_department"], latest[org]["_load_id"]) == (new, out.load_id)


def test_rebuild_with_original_and_revision_in_folder_keeps_the_revision(env):
    folder = env.paths.sources / AE.folder
    env.write(GOOD_NAME, csv_text(AE_HEADER, good_ae()), folder)
    env.write(REVISED_NAME, csv_text(AE_HEADER, _revised_rows()), folder)
    ingest.load_source(env.con, AE, env.paths, run_id="test-run", known_orgs=KNOWN, log=lambda _m: None)
    latest = env.latest()
    assert {org: latest[org]["ae_attendances_other_ae_department"] for org in REVISED} == REVISED


# ---- 13: idempotence ------------------------------------------------------------------------------------------

def test_same_bytes_again_change_nothing(env):
    first = assert_good_slice_loads(env)
    before = env.counts()
    again = env.load(env.paths.landing / GOOD_NAME)
    assert again.status == "unchanged"
    assert again.load_id == first.load_id and again.rows_loaded == 0
    assert again.message == f"same bytes as load {first.load_id} (loaded); nothing changed"
    copy_path = env.write("Monthly-AE-April-2024-copy.csv", env.originals[GOOD_NAME])  # same bytes, new name
    assert env.load(copy_path).status == "unchanged"
    assert env.counts() == before


def test_load_source_twice_makes_no_new_loads(env):
    rows = good_ae()
    set_cell(rows, "AD913", TYPE1, "abc")
    env.write(GOOD_NAME, csv_text(AE_HEADER, good_ae()))
    env.write("Monthly-AE-May-2024-partial.csv", csv_text(AE_HEADER, [
        [c.replace("APRIL", "MAY") for c in r] for r in rows]))
    env.write("Monthly-AE-June-2024-empty.csv", b"")
    # any name: the file is recognised by its header; it holds the same bytes as the first, so nothing new loads
    env.write("not-an-ae-file.csv", csv_text(AE_HEADER, good_ae()))
    logged: list[str] = []
    first = ingest.load_source(env.con, AE, env.paths, run_id="run-1", known_orgs=KNOWN, log=logged.append)
    assert sorted(f.status for f in first.files) == ["loaded", "partial", "refused", "unchanged"]
    assert len(logged) == 3 and all("\n" not in m for m in logged)
    for f in first.files:
        if f.status != "unchanged":
            assert_accounted(env, f)
    before = env.counts()
    logged.clear()
    second = ingest.load_source(env.con, AE, env.paths, run_id="run-2", known_orgs=KNOWN, log=logged.append)
    assert [f.status for f in second.files] == ["unchanged"] * 4
    assert logged == []
    assert env.counts() == before
    assert env.con.execute("select count(*) from meta.file_loads where run_id = 'run-2'").fetchone()[0] == 0


# ---- 14: gzip -------------------------------------------------------------------------------------------------

def _raw_without_provenance(env: Env, spec) -> list[tuple]:
    cols = ", ".join(f'"{c}"' for c in spec.loaded_columns + ["period_start", "_row_number"])
    return env.con.execute(f"select {cols} from {spec.table} order by _row_number").fetchall()


def test_gzip_copy_loads_the_same_rows_as_plain_csv(tmp_path):
    text = csv_text(AE_HEADER, good_ae())
    plain, gz = make_env(tmp_path / "plain"), make_env(tmp_path / "gz")
    p = plain.write_and_load(GOOD_NAME, text)
    g = gz.write_and_load(GOOD_NAME + ".gz", gzip.compress(text.encode("utf-8")))
    assert (p.status, g.status) == ("loaded", "loaded")
    assert_accounted(plain, p, data_lines=16)
    assert_accounted(gz, g, data_lines=16)
    assert _raw_without_provenance(plain, AE) == _raw_without_provenance(gz, AE)
    assert len(_raw_without_provenance(gz, AE)) == 16
    # a slice of a bundled gzip source, found by load_source under its published name
    trust_text = csv_text(TRUST_HEADER, TRUST_ROWS)
    plain.write("ae_trust_monthly.csv", trust_text)
    gz.write("ae_trust_monthly.csv.gz", gzip.compress(trust_text.encode("utf-8")))
    for e in (plain, gz):
        [f] = ingest.load_source(e.con, AE_TRUST, e.paths, run_id="t", known_orgs=TRUST_ORGS, log=lambda _m: None).files
        assert f.status == "loaded" and f.rows_loaded == len(TRUST_ROWS), f.message
        assert_accounted(e, f, AE_TRUST, data_lines=len(TRUST_ROWS))
    assert _raw_without_provenance(plain, AE_TRUST) == _raw_without_provenance(gz, AE_TRUST)
    first = _raw_without_provenance(gz, AE_TRUST)[0]
    assert first[:3] == ("R0A", datetime.date(2021, 4, 1), 36777.0)
    plain.con.close()
    gz.con.close()


# ---- 15: ragged rows ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("edit, fields", [("extra", 23), ("short", 21)])
def test_ragged_row_is_quarantined_rest_loads(env, edit, fields):
    name = f"Monthly-AE-April-2024-ragged-{edit}.csv"
    rows = good_ae()
    line = line_of(rows, "AJN")
    rows[line - 2] = rows[line - 2] + ["999"] if edit == "extra" else rows[line - 2][:-1]
    out = env.write_and_load(name, csv_text(AE_HEADER, rows))
    assert out.status == "partial"
    assert_accounted(env, out, data_lines=16)
    assert without_column(env.quarantine(out.load_id)) == [
        total_aside(name),
        (line, None, ",".join(rows[line - 2])[:120], "wrong_field_count",
         f"{name}: row {line}: has {fields} fields, the header has 22"),
    ]
    assert set(env.raw(AE, out.load_id)) == AE_ORGS - {"AJN"}


# ---- messages stay one line, rows keep their line number, when a cell holds a line break ----------------------

def _newline_in_cell() -> tuple[str, int]:
    rows = good_ae()
    line = set_cell(rows, "ACH01", TYPE1, "ab\ncd")  # a quoted cell spanning lines 5 and 6
    return csv_text(AE_HEADER, rows), line


def test_cell_with_line_break_is_quarantined_and_later_rows_load(env):
    name = "Monthly-AE-April-2024-linebreak.csv"
    text, line = _newline_in_cell()
    out = env.write_and_load(name, text)
    assert out.status == "partial"
    fl = env.file_load(out.load_id)
    assert fl["rows_read"] == fl["rows_loaded"] + fl["rows_quarantined"] == 16
    q = env.quarantine(out.load_id)
    assert [(r[1], r[2], r[3]) for r in q if r[3] != "total_not_verifiable"] == [(TYPE1, "ab\ncd", "not_a_number")]
    raw = env.raw(AE, out.load_id)
    assert set(raw) == AE_ORGS - {"ACH01"}
    assert raw["AD913"]["_row_number"] == line + 2  # the file's own line number, after the 2-line record


def test_message_is_one_line_when_the_bad_value_holds_a_line_break(env):
    text, _line = _newline_in_cell()
    out = env.write_and_load("Monthly-AE-April-2024-linebreak.csv", text)
    for *_, message in env.quarantine(out.load_id):
        assert_one_line(message)
    assert_one_line(env.file_load(out.load_id)["message"])


def test_multi_line_record_is_reported_at_its_first_line(env):
    text, line = _newline_in_cell()
    out = env.write_and_load("Monthly-AE-April-2024-linebreak.csv", text)
    q = {r[3]: r for r in env.quarantine(out.load_id)}
    assert q["not_a_number"][0] == line == 5


# ---- 16: file names -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("../../Monthly-AE-April-2024.csv", "Monthly-AE-April-2024.csv"),
    ("/etc/passwd", "passwd"),
    ("..", "unnamed"),
    (".", "unnamed"),
    ("", "unnamed"),
    ("sub/../..", "unnamed"),
    (".hidden.csv", "hidden.csv"),
    ("..\\..\\Monthly-AE-April-2024.csv", "_.._Monthly-AE-April-2024.csv"),
    ("Monthly AE; $(rm -rf ~).csv", "Monthly_AE_rm_-rf_.csv"),
    ("Monthly-AE-Été-2024.csv", "Monthly-AE-_t_-2024.csv"),
    ("a\x00b\nc.csv", "a_b_c.csv"),
    ("x" * 300 + ".csv", "x" * 146 + ".csv"),  # cut in the stem: the extension stays
])
def test_safe_name_strips_directories_and_odd_characters(name, expected):
    got = ingest.safe_name(name)
    assert got == expected
    assert "/" not in got and "\\" not in got and not got.startswith(".")
    assert len(got) <= 150


def test_archive_path_stays_inside_the_archive_folder(env):
    name = "Monthly-AE-..\\..\\April 2024;$(id).csv"  # legal on disk, matches 'Monthly-AE-*.csv'
    assert ingest.matches(AE, name)
    out = env.write_and_load(name, csv_text(AE_HEADER, good_ae()))
    assert out.status == "loaded", out.message
    fl = assert_accounted(env, out, data_lines=16)  # archive name == sha256[:16] + '_' + safe_name(name)
    archived = Path(fl["archive_path"])
    assert archived.parent == env.paths.archive / AE.name
    assert archived.name == f"{fl['sha256'][:16]}_Monthly-AE-.._.._April_2024_id_.csv"
    assert [p for p in env.paths.archive.rglob("*") if p.is_file()] == [archived]


def test_sql_in_a_file_name_is_stored_as_text_never_run(env):
    """A file name reaches the warehouse only as a bound value: the hostile name is recorded as it came."""
    name = "Monthly-AE-April-2024'); drop table meta.file_loads; --.csv"
    assert ingest.matches(AE, name)
    out = env.write_and_load(name, csv_text(AE_HEADER, good_ae()))
    assert out.status == "loaded", out.message
    fl = assert_accounted(env, out, data_lines=16)
    assert fl["file_name"] == name
    tables = {r[0] for r in env.con.execute("select table_schema || '.' || table_name from information_schema.tables"
                                            ).fetchall()}
    assert {"meta.file_loads", "raw.ae_monthly_official", "dq.quarantine"} <= tables


# ---- the local finance ledger ---------------------------------------------------------------------------------

LEDGER = BY_NAME["finance_ledger"]
LEDGER_FILE = DATA / "sources" / "finance_ledger_example" / "ledger_RXL_example.csv"


def test_a_finance_ledger_with_bad_rows_quarantines_them_and_loads_the_rest(env: Env):
    """The bundled example ledger's first 8 rows, with text in an amount, an unknown organisation, an impossible
    month and a month-and-line given twice with different amounts: each bad row kept aside in one line naming its
    row and column, the good rows loaded."""
    rows = _read_csv_text(LEDGER_FILE.read_text(encoding="utf-8"))
    header, data = rows[0], [list(r) for r in rows[1:9]]
    assert header == ["org_code", "month", "line", "amount_gbp", "note"]
    data[1][3] = "ten million"          # line 3: text in a number
    data[2][0] = "ZZZ99"                # line 4: an organisation nobody knows
    data[3][1] = "2026-13"              # line 5: no such month
    data[5] = [data[4][0], data[4][1], data[4][2], "1", data[4][4]]  # line 7 repeats line 6's key, another amount
    out = env.write_and_load("ledger_RXL_bad.csv", csv_text(header, data), spec=LEDGER, known=frozenset({"RXL"}))
    assert out.status == "partial", out.message
    fl = env.file_load(out.load_id)
    quarantined = env.quarantine(out.load_id)
    for row_number, column, _, _, message in quarantined:
        assert_one_line(message)
        assert message.startswith("ledger_RXL_bad.csv: ") and f"row {row_number}" in message
    bad = {(r[0], r[1]) for r in quarantined}
    assert (3, "amount_gbp") in bad and (4, "org_code") in bad and (5, "month") in bad
    assert {r[0] for r in quarantined} == {3, 4, 5, 6, 7}  # a key given twice: neither amount is loaded
    loaded = env.con.execute("select line, amount_gbp, period_start, _row_number from raw.finance_ledger "
                             "order by _row_number").fetchall()
    # nothing dropped: every data line is loaded or quarantined, once; the original is archived byte for byte
    assert (fl["rows_read"], fl["rows_loaded"], fl["rows_quarantined"]) == (8, 3, 5)
    assert {r[3] for r in loaded} == {2, 8, 9}
    assert Path(fl["archive_path"]).read_bytes() == env.originals["ledger_RXL_bad.csv"]
    assert [(r[0], r[2]) for r in loaded] == [(data[0][2], datetime.date(2026, 4, 1)),
                                             (data[6][2], datetime.date(2026, 4, 1)),
                                             (data[7][2], datetime.date(2026, 4, 1))]
    assert loaded[0][1] == float(data[0][3])
