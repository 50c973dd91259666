"""ODS organisation snapshots load by the date of the snapshot, not by the order they arrive in.

The ODS etr file states no date of its own, so its newest open or close date dates it. An analyst who ingests the
2025 etr.csv after the 2026 one must still be served the ICBs of April 2026. The 2026 file is the bundled copy
(data/sources/ods_published/etr.csv, as published); the older snapshot is written here from it, in the same
27-position layout: the April 2026 Essex ICB (D7T5G) back to its 2022 predecessor (QH8, Mid and South Essex), and
nothing opened or closed after 2025. Every expectation is read from the files with csv, never with the project's
reader; no test needs ../shared.
"""
from __future__ import annotations

import csv
import gzip
import io
import shutil
from datetime import date
from pathlib import Path

import pytest

from ibp_pipeline.step1_current_state import ingest
from ibp_pipeline.step1_current_state.organisations import build_organisations
from ibp_pipeline.step1_current_state.sources import BY_NAME

from .test_ingest_bad_inputs import DATA, Env, make_env

ETR = BY_NAME["ods_etr"]
ETR_2026 = DATA / "sources" / "ods_published" / "etr.csv"
ORG_REFERENCE = DATA / "sources" / "org_reference"
TRUST = "RAJ"  # Mid and South Essex NHS FT: ICB QH8 until March 2026, D7T5G (NHS Essex) from April 2026
OPEN, CLOSE, ICB = 10, 11, 3  # 0-based positions of open date, close date and high level health geography


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _ods_text(rows: list[list[str]]) -> str:
    """The ODS layout: every field quoted, CRLF, no header row."""
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def _etr_2025() -> list[list[str]]:
    """The 2026 file as it stood before April 2026: Essex under QH8, nothing opened or closed after 2025."""
    rows = []
    for r in _rows(ETR_2026.read_text(encoding="utf-8")):
        if r[OPEN] > "20251231":
            continue
        r = list(r)
        r[CLOSE] = "" if r[CLOSE] > "20251231" else r[CLOSE]
        r[ICB] = "QH8" if r[ICB] == "D7T5G" else r[ICB]
        rows.append(r)
    return rows


def _as_of(rows: list[list[str]]) -> str:
    """The newest open or close date of a snapshot, as the load message shows it (2026-06-30)."""
    d = max(v for r in rows for v in (r[OPEN], r[CLOSE]) if v)
    return f"{d[:4]}-{d[4:6]}-{d[6:]}"


def _load(env: Env, folder: str, text: str) -> ingest.FileOutcome:
    path = env.write("etr.csv", text, env.paths.landing / folder)  # both snapshots are named etr.csv
    return ingest.load_file(env.con, ETR, path, env.paths, known_orgs=None, run_id="test-run")


def _current(env: Env) -> dict[str, dict]:
    """latest.ods_etr by org code: what step 1 serves as each trust's current ODS record."""
    cur = env.con.execute("select * from latest.ods_etr")
    names = [d[0] for d in cur.description]
    return {r[names.index("org_code")]: dict(zip(names, r)) for r in cur.fetchall()}


@pytest.fixture
def env(tmp_path: Path):
    e = make_env(tmp_path)
    yield e
    e.con.close()


@pytest.mark.parametrize("newest_first", [True, False], ids=["2026-then-2025", "2025-then-2026"])
def test_the_newest_snapshot_is_current_whatever_the_order_of_arrival(env, newest_first):
    new_rows, old_rows = _rows(ETR_2026.read_text(encoding="utf-8")), _etr_2025()
    new_text, old_text = ETR_2026.read_text(encoding="utf-8"), _ods_text(old_rows)
    assert {r[0]: r[ICB] for r in new_rows}[TRUST] == "D7T5G"
    assert {r[0]: r[ICB] for r in old_rows}[TRUST] == "QH8"
    new_date, old_date = _as_of(new_rows), _as_of(old_rows)
    assert old_date < new_date

    if newest_first:
        first, second = _load(env, "2026", new_text), _load(env, "2025", old_text)
        assert second.message == (
            f"{len(old_rows):,} rows loaded, ODS snapshot of {old_date}: older than the snapshot already loaded "
            f"({new_date}); kept as history, current organisations unchanged")
        assert second.rows_replaced == env.file_load(second.load_id)["rows_replaced"] == 0
        assert first.message == f"{len(new_rows):,} rows loaded, ODS snapshot of {new_date}"
    else:
        first, second = _load(env, "2025", old_text), _load(env, "2026", new_text)
        assert second.message == (
            f"{len(new_rows):,} rows loaded, ODS snapshot of {new_date}: newer than the snapshot already loaded "
            f"({old_date}); {len(old_rows):,} organisations now take its values")
        assert second.rows_replaced == len(old_rows)
    assert (first.status, second.status) == ("loaded", "loaded")
    assert "revision" not in first.message + second.message

    # current: every organisation as the 2026 file has it; history: both snapshots stay in raw
    latest = _current(env)
    assert {c: r["high_level_health_geography"] for c, r in latest.items()} == {r[0]: r[ICB] or None
                                                                               for r in new_rows}
    assert latest[TRUST]["high_level_health_geography"] == "D7T5G"
    history = env.con.execute("select high_level_health_geography from raw.ods_etr where org_code = ? "
                              "order by _load_id", [TRUST]).fetchall()
    assert sorted(h[0] for h in history) == ["D7T5G", "QH8"]


def test_a_late_older_snapshot_adds_only_what_it_alone_lists(env):
    """An organisation only the older snapshot lists has no newer row, so it is current from the older one."""
    new_rows = _rows(ETR_2026.read_text(encoding="utf-8"))
    old_rows = _etr_2025() + [["R9Z", "A CLOSED NHS TRUST", "Y61", "QH8"] + [""] * 6 + ["20130401", "20200331"]
                              + [""] * 15]
    _load(env, "2026", ETR_2026.read_text(encoding="utf-8"))
    out = _load(env, "2025", _ods_text(old_rows))
    assert out.message.endswith("kept as history, current organisations unchanged; 1 organisation only it lists "
                                "added")
    latest = _current(env)
    assert set(latest) == {r[0] for r in new_rows} | {"R9Z"}
    assert latest[TRUST]["high_level_health_geography"] == "D7T5G"


def test_the_served_parent_icb_comes_from_the_newest_snapshot(env):
    """The register serves each trust's ICB of today; for a trust the tidy 2026 trust list does not hold, that is
    the ODS etr file's. With the 2025 snapshot ingested last, the trust must stay under D7T5G, not go back to QH8."""
    folder = env.paths.sources / "org_reference"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ORG_REFERENCE / "lookup_subicb_icb_region_2022.csv.gz", folder)  # the 42 ICBs of 2022 (QH8)
    with gzip.open(ORG_REFERENCE / "trusts_ods_etr_2026.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        tidy = list(csv.DictReader(fh))
    assert any(r["icb_code_2026"] == "D7T5G" for r in tidy if r["org_code"] != TRUST)  # names D7T5G without it
    with (folder / "trusts_ods_etr_2026.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(tidy[0]))
        w.writeheader()
        w.writerows(r for r in tidy if r["org_code"] != TRUST)
    for spec in (BY_NAME["subicb_icb_region"], BY_NAME["ods_trusts_2026"]):
        ingest.load_source(env.con, spec, env.paths, run_id="test-run", log=lambda _m: None)
    want = {r[0]: r[ICB] for r in _rows(ETR_2026.read_text(encoding="utf-8"))}[TRUST]

    _load(env, "2026", ETR_2026.read_text(encoding="utf-8"))
    _load(env, "2025", _ods_text(_etr_2025()))
    build_organisations(env.con)
    parent, source = env.con.execute("select parent_icb_code, source from s1_current_state.organisations "
                                     "where org_code = ?", [TRUST]).fetchone()
    assert (parent, source) == (want, "ods_etr") == ("D7T5G", "ods_etr")
    assert env.con.execute("select org_type, valid_from from s1_current_state.organisations "
                           "where org_code = 'D7T5G'").fetchone() == ("icb", date(2026, 4, 1))
