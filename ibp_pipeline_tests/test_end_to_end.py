"""The pipeline on the bundled data, end to end: real assets, real DuckDB, real GX, real served copy."""
from __future__ import annotations

import csv
import gzip
import io
import zipfile
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ibp_pipeline.step1_current_state.ingest import files_for
from ibp_pipeline.step1_current_state.sources import SOURCES

from .conftest import SHARED_CHECKS, SHARED_NHS


def test_run_succeeds_and_every_check_passes(bundled_run):
    result = bundled_run.result
    assert result.success
    evaluations = [e for e in result.get_asset_check_evaluations() if e.check_name == "great_expectations_suite"]
    assert len(evaluations) == len(SOURCES)
    assert all(e.passed for e in evaluations), [e.description for e in evaluations if not e.passed]
    # freshness checks only warn (their verdict depends on today's date): none may block
    freshness = [e for e in result.get_asset_check_evaluations() if e.check_name == "freshness"]
    assert freshness and not any(e.blocking for e in freshness)
    keys = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"s1_current_state/metric_values", "serving/published", "dq/data_docs"} <= keys


def _data_rows(path: Path, header: bool = True) -> int | None:
    """Data rows of a CSV (plain, gzipped or the one CSV in a ZIP) read with the csv module; None for a workbook
    (its rows below the title rows are counted by the published-file tests)."""
    if path.suffix.lower() in (".xls", ".xlsx"):
        return None
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            raw = zf.read(next(n for n in zf.namelist() if n.endswith(".csv") and not n.startswith("__MACOSX")))
    else:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    return sum(1 for r in rows[1 if header else 0:] if r and any(c.strip() for c in r))


def test_each_source_row_counts_match_the_files(bundled_run):
    """Every data row of every bundled file is either loaded or quarantined: nothing silently dropped."""
    con = duckdb.connect(str(bundled_run.paths.warehouse), read_only=True)
    for spec in SOURCES:
        for path in files_for(spec, bundled_run.paths):
            read, loaded, quarantined = con.execute(
                "select rows_read, rows_loaded, rows_quarantined from meta.file_loads where source = ? "
                "and file_name = ?", [spec.name, path.name]).fetchone()
            assert _data_rows(path, spec.layout != "headerless") in (read, None), (spec.name, path.name)
            assert loaded + quarantined == read, (spec.name, path.name)
        n_latest = con.execute(f"select count(*) from latest.{spec.name}").fetchone()[0]
        n_loaded, n_replaced = con.execute("select sum(rows_loaded), sum(rows_replaced) from meta.file_loads "
                                           "where source = ?", [spec.name]).fetchone()
        # bundled files never overlap in keys, but for NHS England's revisions (July 2025 A&E and its revision)
        assert n_latest == n_loaded - n_replaced, spec.name


def test_real_quarantine_is_explained(bundled_run):
    """The bundled data has real bad rows (e.g. blank discharge rows); each has file, row, column and reason."""
    con = duckdb.connect(str(bundled_run.paths.warehouse), read_only=True)
    rows = con.execute("select file_name, row_number, column_name, rule, message from dq.quarantine").fetchall()
    assert rows, "expected the known bad rows of the bundled data"
    for file_name, row_number, column, rule, message in rows:
        assert file_name and row_number and column and rule
        assert "\n" not in message and file_name in message and f"row {row_number}" in message


def _official_ae(month_file: str) -> list[dict]:
    path = Path(__file__).parents[1] / "data/sources/ae_monthly_provider_official" / month_file
    return list(csv.DictReader(path.open(encoding="utf-8")))


def test_ae_metrics_follow_the_definitions_on_real_rows(bundled_run):
    con = duckdb.connect(str(bundled_run.paths.serving), read_only=True)
    served = {(o, m): v for o, m, v in con.execute(
        "select org_code, metric_id, value from s1_current_state.metric_values "
        "where period_start = date '2024-04-01' and metric_id in ('ae_attendances', 'ae_4hr_pct', 'ae_12hr_dta_waits')"
    ).fetchall()}
    rows = _official_ae("Monthly-AE-April-2024.csv")
    total = next(r for r in rows if r["Org Code"] == "TOTAL")
    for r in [total, next(r for r in rows if r["Org Code"] == "R0A")]:
        org = "ENGLAND" if r["Org Code"] == "TOTAL" else r["Org Code"]
        att = sum(float(v) for k, v in r.items() if k.startswith("A&E attendances"))
        over = sum(float(v) for k, v in r.items() if k.startswith("Attendances over 4hrs"))
        assert served[(org, "ae_attendances")] == pytest.approx(att)
        assert served[(org, "ae_4hr_pct")] == pytest.approx(100 * (1 - over / att))
        assert served[(org, "ae_12hr_dta_waits")] == pytest.approx(
            float(r["Patients who have waited 12+ hrs from DTA to admission"]))


def test_icb_and_region_are_sums_of_their_providers(bundled_run):
    """ICB and region rows equal the sum of provider numerators and denominators, not an average of rates."""
    con = duckdb.connect(str(bundled_run.paths.serving), read_only=True)
    for level, parent in (("icb", "parent_icb_code"), ("region", "region_code")):
        mismatches = con.execute(f"""
            with prov as (
                select o.{parent} as code, v.period_start, v.metric_id, v.source,
                       sum(v.numerator) as num, sum(v.denominator) as den
                from s1_current_state.metric_values v
                join s1_current_state.organisations o using (org_code)
                where v.org_level = 'provider' and v.metric_id in ('ae_4hr_pct', 'rtt_18wk_pct', 'cancer_62d_pct')
                group by all)
            select count(*), count(*) filter (where abs(a.value - 100 * p.num / p.den) > 1e-6)
            from s1_current_state.metric_values a join prov p  -- a month's totals come from one source
              on a.org_code = p.code and a.period_start = p.period_start and a.metric_id = p.metric_id
             and a.source = p.source
            where a.org_level = '{level}'""").fetchone()
        assert mismatches[0] > 100 and mismatches[1] == 0, (level, mismatches)
    qop = con.execute("select count(*) from s1_current_state.metric_values where org_code = 'QOP' "
                      "and metric_id = 'ae_attendances'").fetchone()[0]
    assert qop > 0  # Greater Manchester ICB is served under its ODS code


def test_served_copy_has_step1_tables_and_opens_read_only(bundled_run):
    con = duckdb.connect(str(bundled_run.paths.serving), read_only=True)
    tables = {f"{s}.{t}" for s, t in con.execute(
        "select table_schema, table_name from information_schema.tables").fetchall()}
    assert {"s1_current_state.organisations", "s1_current_state.metric_catalogue", "s1_current_state.metric_values",
            "s1_current_state.source_conflicts", "dq.check_results", "dq.quarantine", "meta.file_loads"} <= tables
    orgs = dict(con.execute("select org_type, count(*) from s1_current_state.organisations group by 1").fetchall())
    # the ICBs of today are those of the ODS etr file of 2026 (column 4); the 42 of 2022-2026 stay as history
    etr = csv.reader((Path(__file__).parents[1] / "data/sources/ods_published/etr.csv").open(encoding="utf-8"))
    today = {r[3] for r in etr if r[3]}
    current, history = con.execute("select count(*) filter (where valid_to is null), count(*) filter (where "
                                   "valid_to = date '2026-03-31') from s1_current_state.organisations "
                                   "where org_type = 'icb'").fetchone()
    assert current == len(today) and current + history == orgs["icb"] and history >= 1
    assert orgs["region"] == 7 and orgs["country"] == 1 and orgs["nhs_trust"] > 200


def test_data_docs_and_check_results(bundled_run):
    index = bundled_run.paths.reports / "data_docs" / "index.html"
    html = index.read_text()
    assert "ae_monthly_official" in html and "rtt_incomplete" in html
    con = duckdb.connect(str(bundled_run.paths.warehouse), read_only=True)
    per_source = con.execute("select count(distinct source) from dq.check_results where run_id = ?",
                             [bundled_run.result.run_id]).fetchone()[0]
    assert per_source == len(SOURCES)


@pytest.mark.skipif(not SHARED_NHS.is_dir(), reason="../shared/data/nhs is not present (a user's clone)")
def test_acceptance_metrics_check(bundled_run):
    """Served step-1 figures against figures computed straight from the published files."""
    out = subprocess.run([sys.executable, str(SHARED_CHECKS / "metrics.py"), str(bundled_run.paths.serving),
                          str(SHARED_NHS)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "metrics: OK" in out.stdout


def test_steps_2_to_4_are_built_and_served(bundled_run):
    """Standards, targets, peers, benchmarks, scores, SPC, resources, gaps and needs reach the served copy."""
    con = duckdb.connect(str(bundled_run.paths.serving), read_only=True)
    count = lambda t: con.execute(f"select count(*) from {t}").fetchone()[0]  # noqa: E731
    for table in ("s2_triple_aim.standards", "s2_triple_aim.targets", "s2_triple_aim.peer_groups",
                  "s2_triple_aim.benchmarks", "s2_triple_aim.scores", "s2_triple_aim.aim_scores",
                  "s2_triple_aim.spc", "s2_triple_aim.spc_summary", "s3_resources.resource_map",
                  "s3_resources.activity_costs", "s4_gaps.metric_gaps", "s4_gaps.needs"):
        assert count(table) > 0, table
    # England's A&E 4-hour SPC: limits around the mean, a verdict on the last point, assurance against the target.
    row = con.execute("""select mean, lpl, upl, variation_type, assurance_type, target_value
                         from s2_triple_aim.spc_summary where org_code = 'ENGLAND' and metric_id = 'ae_4hr_pct'""").fetchone()
    assert row[1] < row[0] < row[2] and row[3] and row[5] is not None and row[4] in (
        "consistent_pass", "consistent_fail", "inconsistent")
    # Every need says how it was worked out.
    assert con.execute("select count(*) from s4_gaps.needs where formula is null or inputs is null").fetchone()[0] == 0
    needs = {r[0] for r in con.execute("select distinct need_type from s4_gaps.needs").fetchall()}
    assert len(needs) >= 5, needs
    # The gap to a standard is signed so that positive means short of the target.
    short = con.execute("""select count(*) from s4_gaps.metric_gaps
                           where meets_target and gap_points > 0""").fetchone()[0]
    assert short == 0


def test_steps_5_and_6_are_built_and_served(bundled_run):
    """Forecasts with ordered intervals, backtests, effects, risk and every shipped scenario reach the served copy."""
    con = duckdb.connect(str(bundled_run.paths.serving), read_only=True)
    fc = con.execute("""select count(*), min(horizon), max(horizon),
                               count(*) filter (where not (lo95 <= lo80 and lo80 <= mean and mean <= hi80
                                                           and hi80 <= hi95))
                        from s5_impact.forecasts where org_code = 'ENGLAND' and metric_id = 'ae_attendances'""").fetchone()
    assert fc[0] == 24 and (fc[1], fc[2]) == (1, 24) and fc[3] == 0
    pct = con.execute("select min(lo95), max(hi95) from s5_impact.forecasts where metric_id = 'ae_4hr_pct'").fetchone()
    assert 0 <= pct[0] and pct[1] <= 100
    assert con.execute("select count(*) from s5_impact.forecast_accuracy where mase is not null").fetchone()[0] > 1000
    assert con.execute("select count(*) from s5_impact.effects").fetchone()[0] > 0
    bad = con.execute("select count(*) from s5_impact.risk where prob_meet_target < 0 or prob_meet_target > 1 "
                      "or not (p10 <= p50 and p50 <= p90)").fetchone()[0]
    assert bad == 0 and con.execute("select count(*) from s5_impact.risk_register").fetchone()[0] > 0
    scenarios = {r[0] for r in con.execute("select distinct scenario from s6_scenarios.results").fetchall()}
    assert {"baseline", "demand_surge", "workforce_shortfall", "funding_cut", "policy_change",
            "technology_shift"} <= scenarios
    for table in ("comparison", "drivers", "sensitivity"):
        assert con.execute(f"select count(*) from s6_scenarios.{table}").fetchone()[0] > 0, table
