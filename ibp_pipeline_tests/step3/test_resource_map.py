"""Step 3 resource map and activity costs on a small hand-made panel whose answers are worked out by hand, plus
one run on a copy of the real built warehouse (the end-to-end run's warehouse, real_warehouse in conftest).

The panel (month 2025-03): region Y60 with ICBs QAA and QBB; trusts T1, T2, T3 and a mental-health trust T5 (no
G&A beds) in QAA, T4 in QBB; T0 is an old code merged into T1. Peer groups: A = {T1, T2}, B = {T3, T4}.

  trust  FTE   nurses  G&A beds  occupied  fte/bed  nurses/bed   catchment
  T1     1000  300     100       95        10       3            100% QAA
  T2     2000  500     250       200       8        2            80% QAA, 20% QBB
  T3     600   150     50        48        12       3            100% QAA
  T4     1500  400     100       98        15       4            100% QBB
  T5     800   200     -         -         -        -            -
Populations (mid-2020): QAA 350,000, QBB 300,000. The panel builder is reused by the step 4 tests.
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from ibp_pipeline.step3_resources.costs import AE, NEL, build_activity_costs, financial_year, unit_cost
from ibp_pipeline.step3_resources.resource_map import add_benchmarks, build_resource_map
from ibp_pipeline_tests.conftest import icbs_of_today

M = dt.date(2025, 3, 1)
FEB, JAN = dt.date(2025, 2, 1), dt.date(2025, 1, 1)
BANDS = [f"wk_gt_{i}_to_{i + 1}" for i in range(104)] + ["wk_104_plus"]


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> None:
    frame = pl.DataFrame(rows, infer_schema_length=None)
    con.register("_rows", frame.to_arrow())
    con.sql(f"insert into {table} by name select * from _rows")
    con.unregister("_rows")


def _mv(org: str, level: str, metric: str, value: float, num: float | None = None, den: float | None = None,
        period: dt.date = M) -> dict:
    return {"org_code": org, "org_level": level, "period_start": period, "period_grain": "month",
            "metric_id": metric, "value": float(value), "numerator": float(value if num is None else num),
            "denominator": None if den is None else float(den), "source": "hand_made", "source_file": "panel.csv"}


def build_panel(path: Path, peer_groups: bool = True, targets: bool = True,
                primary_column: str = "is_primary") -> duckdb.DuckDBPyConnection:
    """A small warehouse with the step-1 tables and the raw tables steps 3 and 4 read."""
    con = duckdb.connect(str(path))
    for s in ("s1_current_state", "latest", "s2_triple_aim"):
        con.sql(f"create schema {s}")
    con.sql("""create table s1_current_state.organisations (org_code varchar, org_name varchar, org_type varchar,
               parent_icb_code varchar, region_code varchar, successor_code varchar, ons_code varchar,
               parent_icb_code_2022 varchar, valid_to date)""")
    orgs = [("ENGLAND", "England", "country", None, None, None, None),
            ("Y60", "Midlands", "region", None, "Y60", None, None),
            ("QAA", "ICB A", "icb", None, "Y60", None, "E54000001"),
            ("QBB", "ICB B", "icb", None, "Y60", None, "E54000002"),
            ("T0", "Old trust", "nhs_trust", "QAA", "Y60", "T1", None)]
    orgs += [(t, f"Trust {t}", "nhs_trust", icb, "Y60", None, None)
             for t, icb in (("T1", "QAA"), ("T2", "QAA"), ("T3", "QAA"), ("T4", "QBB"), ("T5", "QAA"))]
    con.executemany("insert into s1_current_state.organisations (org_code, org_name, org_type, parent_icb_code, "
                    "region_code, successor_code, ons_code) values (?, ?, ?, ?, ?, ?, ?)", orgs)
    con.sql("create table s1_current_state.metric_catalogue (metric_id varchar, name varchar, unit varchar)")
    con.executemany("insert into s1_current_state.metric_catalogue values (?, ?, ?)", [
        ("workforce_fte", "Workforce FTE", "fte"), ("workforce_fte_nurses_health_visitors", "Nurses FTE", "fte"),
        ("ga_beds_available", "G&A beds available", "beds"), ("ga_bed_occupancy_pct", "G&A occupancy", "percent"),
        ("ae_attendances", "A&E attendances", "count"), ("ae_4hr_pct", "A&E 4 hours", "percent"),
        ("ae_emergency_admissions", "Emergency admissions", "count"),
        ("discharge_nctr_avg", "No criteria to reside", "patients")])
    con.sql("""create table s1_current_state.metric_values (org_code varchar, org_level varchar, period_start date,
               period_grain varchar, metric_id varchar, value double, numerator double, denominator double,
               source varchar, source_file varchar)""")
    panel = {"T1": (1000, 300, 100, 95), "T2": (2000, 500, 250, 200), "T3": (600, 150, 50, 48),
             "T4": (1500, 400, 100, 98)}
    rows = []
    for t, (fte, nurses, beds, occ) in panel.items():
        rows += [_mv(t, "provider", "workforce_fte", fte), _mv(t, "provider", "workforce_fte_nurses_health_visitors",
                                                               nurses),
                 _mv(t, "provider", "ga_beds_available", beds),
                 _mv(t, "provider", "ga_bed_occupancy_pct", 100 * occ / beds, occ, beds)]
    rows += [_mv("T5", "provider", "workforce_fte", 800), _mv("T5", "provider", "workforce_fte_nurses_health_visitors",
                                                               200)]
    rows += [_mv("T1", "provider", "ae_attendances", 5000), _mv("T1", "provider", "ae_4hr_pct", 70, 3500, 5000),
             _mv("T2", "provider", "ae_attendances", 8000), _mv("T2", "provider", "ae_4hr_pct", 85, 6800, 8000),
             _mv("T1", "provider", "ae_emergency_admissions", 1000), _mv("T1", "provider", "discharge_nctr_avg", 19)]
    # step 1's ICB rows (sums over parent ICB, T5 included)
    rows += [_mv("QAA", "icb", "workforce_fte", 4400), _mv("QAA", "icb", "ga_beds_available", 400),
             _mv("QAA", "icb", "ga_bed_occupancy_pct", 100 * 343 / 400, 343, 400),
             _mv("QBB", "icb", "ga_bed_occupancy_pct", 98, 98, 100),
             _mv("QAA", "icb", "ae_attendances", 13000), _mv("QAA", "icb", "ae_4hr_pct", 100 * 10300 / 13000, 10300,
                                                              13000)]
    _insert(con, "s1_current_state.metric_values", rows)

    con.sql("""create table latest.beds_ga_critical_care (org_code varchar, period_start date,
               adult_critical_care_beds_available double, adult_critical_care_beds_occupied double,
               paediatric_intensive_cared_beds_available double, neonatal_intensive_care_bed_available double)""")
    con.executemany("insert into latest.beds_ga_critical_care values (?, ?, ?, ?, ?, ?)",
                    [("T1", M, 10, 8, None, 4), ("T2", M, 20, 15, 2, None), ("T4", M, 5, 5, None, None)])
    con.sql("""create table latest.estates_eric_site (org_code varchar, site_code varchar,
               gross_internal_floor_area_m2 double, backlog_high_risk_gbp double, backlog_significant_risk_gbp double,
               backlog_moderate_risk_gbp double, backlog_low_risk_gbp double)""")
    con.executemany("insert into latest.estates_eric_site values (?, ?, ?, ?, ?, ?, ?)",
                    [("T0", "S1", 1000, 100, None, 0, 0), ("T1", "S2", 2000, 50, 10, 0, 5),
                     ("T4", "S3", 500, 0, 0, 0, 0)])
    con.sql("""create table latest.trust_icb_catchment (nhs_trust22_code varchar, icb22_code varchar,
               proportion_trust_came_from_icb double)""")
    con.executemany("insert into latest.trust_icb_catchment values (?, ?, ?)", [
        ("T1", "E54000001", 1.0), ("T2", "E54000001", 0.8), ("T2", "E54000002", 0.2), ("T3", "E54000001", 1.0),
        ("T4", "E54000002", 1.0)])
    con.sql("create table latest.population_icb_2020 (icb22_code varchar, icb_code varchar, total_population double)")
    con.executemany("insert into latest.population_icb_2020 values (?, ?, ?)",
                    [("E54000001", "QAA", 350_000), ("E54000002", "QBB", 300_000)])

    # National cost collection: emergency care averages 200, NEL 2,000, MRI 200, CT 100; nothing prices gastroscopy.
    con.sql("""create table latest.national_cost_collection (department_code varchar, currency_code varchar,
               currency_desc varchar, activity double, unit_cost double, cost double)""")
    con.executemany("insert into latest.national_cost_collection values (?, ?, ?, ?, ?, ?)", [
        ("Emergency Care", "VB01Z", "EM cat 5", 100, 300, 30_000), ("Emergency Care", "VB11Z", "EM none", 100, 100,
                                                                    10_000),
        ("Emergency Care", "VB99Z", "EM dead on arrival", None, None, 50),
        ("Non-Elective Inpatient - Short Stay", "AA01A", "x", 10, 1000, 10_000),
        ("Non-Elective Inpatient - Long Stay", "AA01A", "x", 10, 3000, 30_000),
        ("Diagnostic Imaging", "RD01A", "MRI one area", 100, 200, 20_000),
        ("Directly Accessed Diagnostic Services", "RD20A", "CT one area", 100, 100, 10_000),
        ("Elective Inpatients", "RD01A", "MRI in a spell (not a pooled department)", 100, 9999, 999_900)])
    con.sql("""create table latest.dm01_diagnostics (provider_code varchar, period_start date, diagnostic_test varchar,
               total_waiting double, waiting_6plus_wks double, activity_planned double, activity_unscheduled double,
               activity_waiting_list double)""")
    con.executemany("insert into latest.dm01_diagnostics values (?, ?, ?, ?, ?, ?, ?, ?)", [
        ("T1", M, "Total", 1000, 100, 600, 400, 1600),
        ("T1", M, "Magnetic Resonance Imaging", 500, 60, 200, 100, 700),
        ("T1", M, "Computed Tomography", 500, 40, 400, 300, 900),
        ("T1", M, "Gastroscopy", 10, 0, 0, 0, 5),
        ("T4", M, "Total", 200, 1, 100, 0, 100)])

    # RTT: T1 joins 30 a week; its list falls 1,300 -> 1,250 -> 1,200 (30 in 0-1 weeks, the rest in 10-11 weeks).
    band_cols = ", ".join(f"{b} double" for b in BANDS)
    con.sql(f"""create table latest.rtt_incomplete (provider_code varchar, treatment_function_code varchar,
                period_start date, {band_cols}, total_incomplete double)""")
    rtt = []
    for period, total in ((JAN, 1300), (FEB, 1250), (M, 1200)):
        r = {b: 0.0 for b in BANDS}
        r.update({"provider_code": "T1", "treatment_function_code": "C_999", "period_start": period,
                  "wk_gt_0_to_1": 30.0, "wk_gt_10_to_11": total - 30.0, "total_incomplete": float(total)})
        rtt.append(r)
    _insert(con, "latest.rtt_incomplete", rtt)
    con.sql("""create table latest.rtt_icb_flows (icb_code varchar, period_start date, "new" double,
               completed double, incomplete double)""")
    con.executemany("insert into latest.rtt_icb_flows values (?, ?, ?, ?, ?)",
                    [("QAA", FEB, 1300, 1200, 5000), ("QAA", M, 1300, 1100, 5100)])

    if peer_groups:
        con.sql("create table s2_triple_aim.peer_groups (org_code varchar, peer_group_id integer, "
                "peer_group_label varchar)")
        con.executemany("insert into s2_triple_aim.peer_groups values (?, ?, ?)",
                        [("T1", 1, "A"), ("T2", 1, "A"), ("T3", 2, "B"), ("T4", 2, "B")])
    if targets:
        con.sql(f"""create table s2_triple_aim.targets (org_code varchar, metric_id varchar, period_start date,
                   target_value double, standard_id varchar, "{primary_column}" boolean)""")
        con.executemany("insert into s2_triple_aim.targets values (?, ?, ?, ?, ?, ?)", [
            ("T1", "ae_4hr_pct", M, 80.0, "ae_4hr_trajectory", True),
            ("T1", "ae_4hr_pct", M, 95.0, "ae_4hr_constitutional", False),
            ("T1", "ae_4hr_pct", dt.date(2026, 3, 1), 90.0, "later", True)])
    return con


@pytest.fixture
def panel(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = build_panel(tmp_path / "panel.duckdb")
    yield con
    con.close()


def _get(con, org: str, measure: str, cols: str = "*") -> dict:
    df = con.sql(f"select {cols} from s3_resources.resource_map where org_code = '{org}' "
                 f"and measure_id = '{measure}'").pl()
    assert df.height == 1, (org, measure, df)
    return df.row(0, named=True)


# ---- resource map -------------------------------------------------------------------------------------------------
def test_provider_ratios_with_peer_and_national_medians(panel):
    build_resource_map(panel)
    r = _get(panel, "T1", "fte_per_ga_bed")
    assert r["value"] == pytest.approx(10.0)
    assert (r["numerator"], r["denominator"]) == (1000.0, 100.0)
    assert r["formula"] == "workforce_fte / ga_beds_available"
    assert r["peer_group_id"] == "1" and r["peer_group_label"] == "A"
    assert r["peer_median"] == pytest.approx(9.0) and r["peer_count"] == 2  # median(10, 8)
    assert r["national_median"] == pytest.approx(11.0) and r["national_count"] == 4  # median(10, 8, 12, 15)
    assert _get(panel, "T4", "fte_per_ga_bed")["peer_median"] == pytest.approx(13.5)  # median(12, 15)
    assert _get(panel, "T2", "nurses_per_ga_bed")["value"] == pytest.approx(2.0)
    assert _get(panel, "T1", "ae_attendances_per_fte")["value"] == pytest.approx(5.0)
    assert _get(panel, "T1", "nctr_per_100_occupied_ga_beds")["value"] == pytest.approx(100 * 19 / 95)
    # T5 has no G&A beds: no staff-per-bed row
    assert panel.sql("select count(*) from s3_resources.resource_map where org_code = 'T5' "
                     "and measure_id = 'fte_per_ga_bed'").fetchone()[0] == 0


def test_icb_ratio_sums_only_providers_reporting_both(panel):
    build_resource_map(panel)
    r = _get(panel, "QAA", "fte_per_ga_bed")
    # (1000 + 2000 + 600) / (100 + 250 + 50): T5's 800 FTE (no beds) left out, unlike step 1's ICB FTE of 4,400
    assert r["value"] == pytest.approx(9.0)
    assert (r["numerator"], r["denominator"]) == (3600.0, 400.0)
    assert "3 providers reporting both" in r["formula"]
    assert r["peer_median"] is None and r["peer_group_id"] is None
    assert r["national_median"] == pytest.approx((9.0 + 15.0) / 2)  # QAA 9, QBB 15
    assert _get(panel, "ENGLAND", "fte_per_ga_bed")["national_median"] is None
    assert _get(panel, "QAA", "workforce_fte")["value"] == 4400  # step 1's figure is kept as published


def test_beds_per_100k_by_catchment(panel):
    build_resource_map(panel)
    qaa = _get(panel, "QAA", "ga_beds_per_100k_population")
    assert qaa["numerator"] == pytest.approx(100 + 0.8 * 250 + 50)  # 350 catchment beds
    assert qaa["value"] == pytest.approx(100.0)  # 350 / 350,000 x 100,000
    assert _get(panel, "QBB", "ga_beds_per_100k_population")["value"] == pytest.approx(150 / 300_000 * 1e5)
    assert _get(panel, "Y60", "ga_beds_per_100k_population")["value"] == pytest.approx(500 / 650_000 * 1e5)
    assert "mid-2020" in qaa["note"]
    cc = _get(panel, "QAA", "adult_critical_care_beds_per_100k_population")
    assert cc["numerator"] == pytest.approx(10 + 0.8 * 20)


def test_beds_occupied_critical_care_and_estates(panel):
    build_resource_map(panel)
    assert _get(panel, "T2", "ga_beds_occupied")["value"] == 200
    assert _get(panel, "QAA", "adult_critical_care_beds_available")["value"] == 30  # T1 10 + T2 20
    occ = _get(panel, "T1", "adult_critical_care_occupancy_pct")
    assert occ["value"] == pytest.approx(80.0) and occ["denominator"] == 10
    high = _get(panel, "T1", "estates_backlog_high_risk_gbp")
    assert high["value"] == 150  # T0's site (merged into T1) + T1's own
    assert high["period_grain"] == "snapshot" and "T0, T1" in high["note"]
    assert _get(panel, "T1", "estates_site_count")["value"] == 2
    assert _get(panel, "T1", "estates_backlog_total_gbp")["value"] == 165
    assert _get(panel, "QAA", "estates_floor_area_m2")["value"] == 3000
    assert _get(panel, "ENGLAND", "estates_site_count")["value"] == 3


def test_without_peer_groups_peer_columns_are_null(tmp_path):
    con = build_panel(tmp_path / "nopeers.duckdb", peer_groups=False)
    n = build_resource_map(con)
    assert n > 0
    assert con.sql("select count(peer_median), count(peer_group_id) from s3_resources.resource_map").fetchone() \
        == (0, 0)
    assert _get(con, "T1", "fte_per_ga_bed")["national_median"] == pytest.approx(11.0)
    con.close()


def test_add_benchmarks_ignores_nulls_and_other_levels():
    rows = pl.DataFrame({"org_code": ["A", "B", "C", "I"], "org_level": ["provider"] * 3 + ["icb"],
                         "period_start": [M] * 4, "measure_id": ["m"] * 4, "value": [1.0, 3.0, None, 7.0]})
    peers = pl.DataFrame({"org_code": ["A", "B", "C", "I"], "peer_group_id": [1, 1, 1, 1],
                          "peer_group_label": ["g"] * 4})
    out = add_benchmarks(rows, peers).sort("org_code")
    assert out["peer_median"].to_list() == [2.0, 2.0, 2.0, None]  # the ICB is never in a peer group
    assert out["national_median"].to_list() == [2.0, 2.0, 2.0, 7.0]
    assert out["national_count"].to_list() == [2, 2, 2, 1]


# ---- activity costs ------------------------------------------------------------------------------------------------
def test_unit_cost_is_activity_weighted():
    ncc = pl.DataFrame({"department_code": ["Emergency Care", "Emergency Care", "Emergency Care", "Other"],
                        "currency_code": ["VB01Z", "VB11Z", "VB99Z", "VB01Z"],
                        "currency_desc": ["a", "b", "c", "d"], "activity": [100.0, 300.0, None, 5.0],
                        "cost": [30_000.0, 30_000.0, 50.0, 1e9]})
    got = unit_cost(ncc, AE)
    assert got["unit_cost_gbp"] == pytest.approx(60_000 / 400)
    assert got["ncc_activity"] == 400 and got["currency_codes"] == "VB01Z, VB11Z"
    assert unit_cost(ncc, NEL)["unit_cost_gbp"] is None


def test_activity_costs_on_the_panel(panel):
    n = build_activity_costs(panel, since="2025-01-01")
    assert n > 0
    df = panel.sql("select * from s3_resources.activity_costs").pl()
    assert df["is_estimate"].all()

    def one(org, kind, detail):
        r = df.filter((pl.col("org_code") == org) & (pl.col("activity_type") == kind)
                      & (pl.col("activity_detail") == detail))
        assert r.height == 1, (org, kind, detail)
        return r.row(0, named=True)

    ae = one("T1", "ae_attendances", "all")
    assert ae["unit_cost_gbp"] == pytest.approx(200.0)  # (30,000 + 10,000) / 200; VB99Z has no activity
    assert ae["estimated_cost_gbp"] == pytest.approx(5000 * 200.0)
    assert ae["financial_year"] == "2024/25"
    assert one("QAA", "ae_attendances", "all")["estimated_cost_gbp"] == pytest.approx(13000 * 200.0)
    assert one("T1", "emergency_admissions", "all")["estimated_cost_gbp"] == pytest.approx(1000 * 2000.0)
    mri = one("T1", "diagnostic_tests", "Magnetic Resonance Imaging")
    assert mri["activity"] == 1000 and mri["unit_cost_gbp"] == pytest.approx(200.0)  # spell price not pooled
    gastro = one("T1", "diagnostic_tests", "Gastroscopy")
    assert gastro["unit_cost_gbp"] is None and gastro["estimated_cost_gbp"] is None
    total = one("T1", "diagnostic_tests", "All DM01 tests")
    assert total["activity"] == 2600  # MRI 1,000 + CT 1,600; the uncosted gastroscopy is left out
    assert total["estimated_cost_gbp"] == pytest.approx(1000 * 200 + 1600 * 100)
    assert one("ENGLAND", "diagnostic_tests", "All DM01 tests")["estimated_cost_gbp"] == pytest.approx(360_000)


def test_financial_year_labels():
    df = pl.DataFrame({"d": [dt.date(2024, 4, 1), dt.date(2025, 3, 1), dt.date(2099, 12, 1)]})
    assert df.select(financial_year(pl.col("d")))["d"].to_list() == ["2024/25", "2024/25", "2099/00"]


# ---- the real built warehouse ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, real_warehouse) -> duckdb.DuckDBPyConnection:
    dest = tmp_path_factory.mktemp("s3real") / "warehouse.duckdb"
    shutil.copy(real_warehouse, dest)
    con = duckdb.connect(str(dest))
    yield con
    con.close()


def test_real_warehouse_resource_map_and_costs(real):
    n = build_resource_map(real)
    assert n > 100_000
    levels = dict(real.sql("select org_level, count(distinct org_code) from s3_resources.resource_map "
                           "group by 1").fetchall())
    assert levels["icb"] >= len(icbs_of_today())
    assert levels["region"] == 7 and levels["england"] == 1 and levels["provider"] > 100
    bad = real.sql("""select count(*) from s3_resources.resource_map
                      where measure_group = 'ratio' and (value is null or not isfinite(value) or value < 0
                            or formula is null or numerator is null or denominator is null)""").fetchone()[0]
    assert bad == 0
    eng = real.sql("""select value from s3_resources.resource_map where org_code = 'ENGLAND'
                      and measure_id = 'ga_beds_per_100k_population' order by period_start desc limit 1""").fetchone()
    assert 120 < eng[0] < 250  # about 100,000 G&A beds for 56.5 million people
    assert real.sql("""select count(*) from s3_resources.resource_map where org_level = 'provider'
                       and measure_group = 'ratio' and national_median is null""").fetchone()[0] == 0

    m = build_activity_costs(real)
    assert m > 10_000
    fy = dict(real.sql("""select activity_type, sum(estimated_cost_gbp) from s3_resources.activity_costs
                          where org_level = 'england' and financial_year = '2024/25'
                            and activity_detail in ('all', 'All DM01 tests') group by 1""").fetchall())
    assert 4e9 < fy["ae_attendances"] < 12e9  # ~27 million attendances at ~GBP 280
    assert 1e9 < fy["diagnostic_tests"] < 10e9
    assert real.sql("select bool_and(is_estimate) from s3_resources.activity_costs").fetchone()[0]
    json.dumps(real.sql("select * from s3_resources.activity_costs limit 1").pl().row(0, named=True), default=str)
