"""`ibp synth`: deterministic, read by the real loaders with exactly the injected bad rows quarantined, the right
number of organisations per scale, codes that cannot collide with real ODS codes, never written into data/.

Fast by design (one-ICB scale, two years; about 20 s): the full pipeline on a synthetic set is opt-in
(IBP_TEST_SYNTH_E2E=1, about 60 s more) because the end-to-end test on the bundled data already covers the pipeline.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from ibp_pipeline import cli
from ibp_pipeline.config import PROJECT_ROOT, Paths
from ibp_pipeline.step1_current_state.ingest import known_org_codes, load_source
from ibp_pipeline.step1_current_state.sources import BY_NAME, DATA_SOURCES, REFERENCE_SOURCES
from ibp_pipeline.synthetic import MANIFEST, SynthConfig, SynthError, check_out_dir, generate
from ibp_pipeline.synthetic import publications as pub
from ibp_pipeline.synthetic.model import build_latent, build_universe, month_abs

SEED = 7
BAD = 0.02  # more bad rows than the default, so that every kind and an A&E TOTAL set aside are exercised
RULE_OF_KIND = {"not_a_number": "not_a_number", "negative_count": "negative_count", "unknown_org": "unknown_org",
                "duplicate_row": "duplicate_row"}


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name not in ("README.txt", MANIFEST)}


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small synthetic set written through the command line, as an analyst would."""
    out = tmp_path_factory.mktemp("synth") / "icb"
    rc = cli.main(["synth", "--scale", "icb", "--years", "2", "--seed", str(SEED), "--bad-rows", str(BAD),
                   "--out", str(out)])
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def manifest(synth: Path) -> dict:
    return json.loads((synth / MANIFEST).read_text())


@pytest.fixture(scope="module")
def loaded(synth: Path, tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    """Every synthetic file through the real step-1 loaders (reference first, then data against it)."""
    run = tmp_path_factory.mktemp("run")
    paths = Paths(data=run, sources=synth / "sources", landing=run / "landing", reference=synth / "reference",
                  archive=run / "archive", warehouse=run / "warehouse.duckdb", serving=run / "serving.duckdb",
                  reports=run / "reports", dagster_home=run / "dagster_home").ensure()
    con = duckdb.connect(str(paths.warehouse))
    for spec in REFERENCE_SOURCES:
        load_source(con, spec, paths, run_id="test", log=lambda _m: None)
    known = known_org_codes(con)
    for spec in DATA_SOURCES:
        load_source(con, spec, paths, run_id="test", known_orgs=known, log=lambda _m: None)
    yield con
    con.close()


def test_cli_prints_the_run_command(synth: Path, capsys: pytest.CaptureFixture) -> None:
    rc = cli.main(["synth", "--scale", "icb", "--years", "1", "--seed", "3", "--bad-rows", "0",
                   "--out", str(synth.parent / "cli")])
    out = capsys.readouterr().out
    assert rc == 0
    assert f"IBP_DATA_DIR={synth.parent / 'cli' / 'run'} IBP_SOURCES_DIR={synth.parent / 'cli' / 'sources'} " \
           f"IBP_REFERENCE_DIR={synth.parent / 'cli' / 'reference'} ibp run" in out
    readme = (synth.parent / "cli" / "README.txt").read_text()
    assert readme.startswith("SYNTHETIC DATA") and "seed 3" in readme
    assert all("SYNTHETIC" in p.read_text() for p in (synth.parent / "cli" / "sources").glob("*/SOURCE.txt"))


def test_deterministic_for_a_seed(synth: Path, tmp_path: Path) -> None:
    again = generate(SynthConfig(scale="icb", years=2, seed=SEED, bad_rows=BAD), tmp_path / "again",
                     log=lambda _m: None)
    assert _digests(again.out) == _digests(synth)
    other = generate(SynthConfig(scale="icb", years=2, seed=SEED + 1, bad_rows=BAD), tmp_path / "other",
                     log=lambda _m: None)
    assert _digests(other.out) != _digests(synth)


def test_monthly_files_do_not_depend_on_the_window(synth: Path, tmp_path: Path) -> None:
    """One month later: the shared months' monthly files are byte-identical and the new month is one new file
    per monthly publication (what an incremental-refresh benchmark drops into landing)."""
    later = generate(SynthConfig(scale="icb", years=2, seed=SEED, bad_rows=BAD, end="2025-04"), tmp_path / "later",
                     log=lambda _m: None)
    a, b = _digests(synth), _digests(later.out)
    monthly = ("ae_monthly_provider_official", "rtt_incomplete_provider_specialty_monthly",
               "diagnostics_dm01_provider_monthly")
    shared = [k for k in a if k in b and any(m in k for m in monthly) and not k.endswith("SOURCE.txt")]
    assert len(shared) == 3 * 23
    assert all(a[k] == b[k] for k in shared)
    assert sorted(set(b) - set(a)) == [
        "sources/ae_monthly_provider_official/Monthly-AE-April-2025.csv",
        "sources/diagnostics_dm01_provider_monthly/Monthly-Diagnostics-Web-File-Provider-April-2025.csv.gz",
        "sources/rtt_incomplete_provider_specialty_monthly/Incomplete-Provider-Apr25.csv.gz"]


def test_real_loaders_quarantine_exactly_the_injected_bad_rows(loaded, manifest: dict) -> None:
    refused = loaded.execute("select file_name, message from meta.file_loads where status = 'refused'").fetchall()
    assert refused == []
    expected: dict[tuple[str, int], str] = {}
    for f in manifest["files"]:
        name = Path(f["path"]).name
        for bad in f["bad_rows"]:
            expected[(name, bad["line"])] = RULE_OF_KIND[bad["kind"]]
        if f["total_row_line"]:
            expected[(name, f["total_row_line"])] = "total_not_verifiable"
    got: dict[tuple[str, int], set[str]] = defaultdict(set)
    for file_name, row, rule, message in loaded.execute(
            "select file_name, row_number, rule, message from dq.quarantine").fetchall():
        got[(file_name, row)].add(rule)
        assert message.startswith(f"{file_name}: row {row}")  # a clear one-line message naming file and row
    assert set(got) == set(expected), "quarantine differs from the injected bad rows"
    assert all(expected[k] in got[k] for k in expected)
    assert len(expected) == manifest["expected_quarantined_rows"]
    kinds = {b["kind"] for f in manifest["files"] for b in f["bad_rows"]}
    assert kinds == set(RULE_OF_KIND)


def test_every_row_written_is_loaded_or_quarantined(loaded, manifest: dict) -> None:
    by_file = {Path(f["path"]).name: f for f in manifest["files"]}
    rows = loaded.execute("select file_name, rows_loaded, rows_quarantined from meta.file_loads").fetchall()
    assert {r[0] for r in rows} == set(by_file)
    for name, n_loaded, n_bad in rows:
        f = by_file[name]
        assert n_bad == f["expected_quarantined_rows"], name
        assert n_loaded + n_bad == f["rows"], name


def test_mergers_old_codes_stop_and_the_successor_continues(loaded, manifest: dict) -> None:
    assert manifest["mergers"]
    for m in manifest["mergers"]:
        succ = loaded.execute("select old_code, new_code, date::varchar from latest.ods_successors "
                              "where new_code = ?", [m["new"]]).fetchall()
        assert sorted(succ) == sorted((old, m["new"], m["date"]) for old in m["old"])
        periods = dict(loaded.execute(
            "select org_code, min(period_start)::varchar || ' ' || max(period_start)::varchar "
            "from latest.ae_monthly_official group by 1").fetchall())
        for old in m["old"]:
            if old != m["new"] and old in periods:
                assert periods[old].split()[1] < m["date"]
        assert periods[m["new"]].split()[1] == manifest["last_month"]


def test_files_are_internally_consistent(synth: Path) -> None:
    rtt = pl.read_csv(next((synth / "sources/rtt_incomplete_provider_specialty_monthly").glob("*Mar25*")),
                      infer_schema_length=0)
    rtt = rtt.filter(pl.col("provider_code").str.starts_with("ZS")).with_columns(
        pl.exclude("period_month", "region_code", "provider_code", "provider_name", "treatment_function_code",
                   "treatment_function").cast(pl.Float64, strict=False))
    bands = [c for c in rtt.columns if c.startswith("wk_")]
    ok = rtt.filter(pl.sum_horizontal(bands) == pl.col("total_incomplete"))
    assert ok.height >= rtt.height - 2  # bad rows aside, bands add up to the total
    total = rtt.filter(pl.col("treatment_function_code") == "C_999").select("provider_code", "total_incomplete")
    parts = rtt.filter(pl.col("treatment_function_code") != "C_999").group_by("provider_code").agg(
        pl.col("total_incomplete").sum().alias("parts"))
    joined = total.join(parts, on="provider_code")
    assert (joined["total_incomplete"] == joined["parts"]).sum() >= joined.height - 1


def test_seasonality_and_trends() -> None:
    u = build_universe("england", SEED, month_abs("2025-03"))
    lat = build_latent(u)
    months = lat.months
    acute = [i for i, o in enumerate(u.base) if "ae_t1" in o.services]
    def calendar_effect(series: np.ndarray, month: int) -> float:
        """Median gap between a calendar month and its centred 12-month average, 2016-2024 (COVID aside)."""
        smooth = np.convolve(series, np.r_[0.5, np.ones(11), 0.5] / 12, mode="same")
        picks = [month_abs(f"{y}-{month:02d}") - months[0] for y in range(2016, 2025)]
        return float(np.median(series[picks] - smooth[picks]))

    for name in ("t1_pct", "rtt18"):  # winter pressure on A&E and on elective waits
        series = lat.series[name][acute].mean(axis=0)
        assert calendar_effect(series, 1) < calendar_effect(series, 7) - 1, name
    rtt_list = lat.series["rtt_list"][acute].sum(axis=0)
    assert rtt_list[month_abs("2024-03") - months[0]] > 1.5 * rtt_list[month_abs("2016-03") - months[0]]
    size = np.array([u.base[i].scale for i in acute])
    assert size.max() / size.min() > 3  # trusts of very different sizes


@pytest.mark.parametrize("scale,regions,icbs,trusts", [("icb", 1, 1, (4, 7)), ("region", 1, 6, (25, 35)),
                                                        ("england", 7, 42, (200, 220))])
def test_scale_counts(scale: str, regions: int, icbs: int, trusts: tuple[int, int]) -> None:
    u = build_universe(scale, SEED, month_abs("2025-03"))
    assert (len(u.regions), len(u.icbs)) == (regions, icbs)
    assert trusts[0] <= len(u.current_trusts()) <= trusts[1]
    if scale == "england":
        assert sum(o.kind == "ambulance" for o in u.orgs) == 10
        assert len(u.mergers) == 4


def test_generated_manifest_counts(manifest: dict) -> None:
    c = manifest["counts"]
    assert (c["regions"], c["icbs"], c["months"]) == (1, 1, 24)
    assert 4 <= c["trusts_current"] <= 7 and c["trusts_all"] == c["trusts_current"] + 2
    assert manifest["synthetic"] is True and manifest["parameters"]["seed"] == SEED


def _real_reference_values() -> set[str]:
    values: set[str] = set()
    files = list((PROJECT_ROOT / "data/sources/org_reference").glob("*.csv*"))
    files.append(PROJECT_ROOT / "data/reference/organisations_supplement.csv")
    assert len(files) >= 8
    for f in files:
        frame = pl.read_csv(f, infer_schema_length=0)
        for col in frame.columns:
            values |= {v.strip().upper() for v in frame[col].drop_nulls().to_list()}
    return values


def test_codes_never_collide_with_the_real_org_reference() -> None:
    real = _real_reference_values()
    for scale in ("icb", "region", "england"):
        u = build_universe(scale, SEED, month_abs("2025-03"))
        codes = {o.code for o in u.orgs} | {r.code for r in u.regions} | {r.ons_code for r in u.regions}
        codes |= {i.code for i in u.icbs} | {i.ons_code for i in u.icbs}
        codes |= {c for i in u.icbs for pair in i.sub_icbs for c in pair}
        assert not codes & real
        assert all(o.name.startswith("SYNTHETIC ") for o in u.orgs)
        assert all(i.name.startswith("SYNTHETIC ") for i in u.icbs)
        assert all(r.display.startswith("SYNTHETIC ") for r in u.regions)
        for f in list(pub.reference_files(u)) + list(pub.supplement_file(u)):
            code_columns = [c.header for c in BY_NAME[f.source].columns if c.kind == "code"]
            assert code_columns
            for col in code_columns:
                assert not set(f.frame[col].drop_nulls().cast(pl.Utf8).to_list()) & real, (f.name, col)
    assert not any(v.startswith(("ZS", "ZP", "ZU", "QZ", "YZ")) for v in real)  # the synthetic prefixes are free


def test_refuses_the_project_data_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = PROJECT_ROOT / "data"
    for target in (data, data / "synthetic", data / "sources"):
        with pytest.raises(SynthError, match="project's data folder"):
            check_out_dir(target)
    rc = cli.main(["synth", "--scale", "icb", "--years", "1", "--out", str(data / "synthetic_test")])
    err = capsys.readouterr().err
    assert rc == 1 and len(err.strip().splitlines()) == 1 and "data folder" in err
    assert not (data / "synthetic_test").exists()
    (tmp_path / "other.txt").write_text("not ours")
    with pytest.raises(SynthError, match="not empty"):
        check_out_dir(tmp_path)


def test_bad_parameters_are_one_line_errors(tmp_path: Path) -> None:
    for config, field in ((SynthConfig(scale="planet"), "--scale"), (SynthConfig(years=0), "--years"),
                          (SynthConfig(bad_rows=0.5), "--bad-rows"), (SynthConfig(end="2025-13"), "--end")):
        with pytest.raises(SynthError, match=field):
            generate(config, tmp_path / "x", log=lambda _m: None)


@pytest.mark.skipif(not os.environ.get("IBP_TEST_SYNTH_E2E"), reason="opt-in: IBP_TEST_SYNTH_E2E=1 (about 60 s)")
def test_pipeline_runs_on_a_synthetic_set(synth: Path, manifest: dict, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole refresh job on the synthetic set: succeeds, every GX suite passes, quarantine = injected."""
    from ..conftest import run_refresh

    monkeypatch.setenv("IBP_SOURCES_DIR", str(synth / "sources"))
    monkeypatch.setenv("IBP_REFERENCE_DIR", str(synth / "reference"))
    monkeypatch.setenv("IBP_DRAWS", "500")
    run = run_refresh(tmp_path / "run")
    assert run.result.success
    suites = [e for e in run.result.get_asset_check_evaluations() if e.check_name == "great_expectations_suite"]
    assert suites and all(e.passed for e in suites)  # freshness warnings aside: the data end at --end (2025-03)
    con = duckdb.connect(str(run.paths.warehouse), read_only=True)
    try:
        quarantined = con.execute("select count(distinct (file_name, row_number)) from dq.quarantine").fetchone()[0]
        trusts = con.execute("select count(*) from s1_current_state.organisations where org_code like 'ZS%' "
                             "and close_date is null").fetchone()[0]
        england = con.execute("select count(*) from s1_current_state.metric_values where org_code = 'ENGLAND' "
                              "and metric_id = 'ae_4hr_pct'").fetchone()[0]
    finally:
        con.close()
    assert quarantined == manifest["expected_quarantined_rows"]
    assert trusts == manifest["counts"]["trusts_current"]
    assert england == manifest["counts"]["months"]
