"""Peer groups and benchmarks: clustering separates obviously different constructed trusts, is deterministic, puts
trusts short of data in the fallback group; benchmark percentiles follow each metric's direction; and both
build on a copy of the real step-1 warehouse."""
from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from ibp_pipeline.step1_current_state.catalogue import build_metric_catalogue
from ibp_pipeline.step2_triple_aim import benchmarks as bm
from ibp_pipeline.step2_triple_aim import peers
from ibp_pipeline_tests.conftest import icbs_of_today

D = dt.date
MONTH = D(2025, 5, 1)


# ---- a minimal step-1 warehouse (shared with test_scoring.py) --------------------------------------------------
def make_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    """Empty step-1 tables with the columns step 2 reads, plus the real metric catalogue."""
    con = duckdb.connect(str(path))
    con.sql("create schema s1_current_state; create schema latest")
    build_metric_catalogue(con)
    con.sql("""
        create table s1_current_state.organisations (org_code varchar, org_name varchar, org_type varchar,
            parent_icb_code varchar, close_date date, successor_code varchar, ons_code varchar,
            parent_icb_code_2022 varchar, valid_to date);
        create table s1_current_state.metric_values (org_code varchar, org_level varchar, period_start date,
            period_grain varchar, metric_id varchar, value double, numerator double, denominator double);
        create table latest.trust_peer_finder (org_code varchar, deprivation double,
            degree_of_specialisation double, fte_staff double);
        create table latest.trust_icb_catchment (nhs_trust22_code varchar, icb22_code varchar,
            proportion_trust_came_from_icb double);
        create table latest.imd_icb (icb24_code varchar, icb24_name varchar, imd_average_score double);
        create table latest.health_index_icb (icb22_code varchar, icb22_name varchar, year double,
            overall_score double);
        create table latest.population_icb_2020 (icb22_code varchar, icb_code varchar, total_population double);
        create table latest.national_cost_collection (department_code varchar, currency_code varchar,
            currency_desc varchar, activity double, unit_cost double, cost double, _source_file varchar);""")
    return con


def add_orgs(con: duckdb.DuckDBPyConnection, rows: list[tuple]) -> None:
    """(org_code, org_type, parent_icb_code, close_date, successor_code, ons_code); the name is the code."""
    con.executemany("insert into s1_current_state.organisations (org_code, org_name, org_type, parent_icb_code, "
                    "close_date, successor_code, ons_code) values (?, ?, ?, ?, ?, ?, ?)",
                    [(r[0], r[0], *r[1:]) for r in rows])


def add_values(con: duckdb.DuckDBPyConnection, rows: list[tuple]) -> None:
    """(org_code, org_level, period_start, metric_id, value[, numerator, denominator]); monthly grain."""
    full = [(r[0], r[1], r[2], "month", r[3], r[4], *(r[5:] if len(r) > 5 else (None, None))) for r in rows]
    con.executemany("insert into s1_current_state.metric_values values (?, ?, ?, ?, ?, ?, ?, ?)", full)


def add_icbs(con: duckdb.DuckDBPyConnection, icbs: dict[str, tuple[str, float]]) -> None:
    """{q_code: (E54 code, IMD 2025 score)} as organisations and IMD rows."""
    add_orgs(con, [(q, "icb", None, None, None, e54) for q, (e54, _) in icbs.items()])
    con.executemany("insert into latest.imd_icb values (?, ?, ?)", [(e54, q, imd) for q, (e54, imd) in icbs.items()])


# ---- constructed trusts -----------------------------------------------------------------------------------------
ICBS = {"Q01": ("E54000001", 30.0), "Q02": ("E54000002", 10.0)}
ACUTE = [f"A{i}" for i in range(1, 7)]
COMMUNITY = [f"C{i}" for i in range(1, 7)]
AMBULANCE = [f"M{i}" for i in range(1, 5)]


def _peer_fixture(con: duckdb.DuckDBPyConnection, reverse: bool = False) -> None:
    add_icbs(con, ICBS)
    trusts = ACUTE + COMMUNITY + AMBULANCE + ["F1", "H1", "X1", "N1"]
    orgs = [(t, "nhs_trust", "Q02" if t in AMBULANCE else "Q01", None, None, None) for t in trusts]
    orgs = [(o[0], o[1], o[2], D(2012, 3, 31) if o[0] == "H1" else D(2020, 3, 31) if o[0] == "X1" else None,
             None, None) for o in orgs]
    values, finder = [], []
    for i, t in enumerate(ACUTE):
        values += [(t, "provider", MONTH, "ae_attendances", 20_000 + 700 * i),
                   (t, "provider", MONTH, "ga_beds_available", 1_000 + 40 * i),
                   (t, "provider", MONTH, "workforce_fte", 9_000 + 300 * i),
                   (t, "provider", MONTH, "workforce_fte_ambulance_staff", 0.0)]
        if t != "A6":  # A6 is missing from the peer finder: deprivation from its catchment, specialisation 0.5
            finder.append((t, 30.0 + i, 50_000.0 + 1_000 * i, 9_000.0))
    for i, t in enumerate(COMMUNITY):
        values += [(t, "provider", MONTH, "workforce_fte", 1_500 + 60 * i),
                   (t, "provider", MONTH, "workforce_fte_ambulance_staff", 0.0)]
        finder.append((t, 15.0 + i, -2_000.0 - 100 * i, 1_500.0))
    for i, t in enumerate(AMBULANCE):
        values += [(t, "provider", MONTH, "workforce_fte", 5_000 + 100 * i),
                   (t, "provider", MONTH, "workforce_fte_ambulance_staff", 4_000 + 80 * i)]
    # F1: open, has activity but no workforce FTE anywhere -> fallback. H1: closed in 2012, only 2011 workforce ->
    # service type unknown -> fallback. X1: closed 2020, acute-like 2019 data -> nearest group. N1: no activity.
    values += [("F1", "provider", MONTH, "rtt_18wk_pct", 70.0),
               ("H1", "provider", D(2011, 1, 1), "workforce_fte", 2_000.0),
               ("X1", "provider", D(2019, 6, 1), "ae_attendances", 21_000.0),
               ("X1", "provider", D(2019, 6, 1), "workforce_fte", 9_500.0)]
    finder.append(("X1", 31.0, 52_000.0, 9_500.0))
    if reverse:
        orgs, values, finder = orgs[::-1], values[::-1], finder[::-1]
    add_orgs(con, orgs)
    add_values(con, values)
    con.executemany("insert into latest.trust_peer_finder values (?, ?, ?, ?)", finder)
    con.executemany("insert into latest.trust_icb_catchment values (?, ?, ?)",
                    [("A6", "E54000001", 0.75), ("A6", "E54000002", 0.25)])


@pytest.fixture
def peer_db(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = make_warehouse(tmp_path / "w.duckdb")
    _peer_fixture(con)
    return con


def _groups(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql(f"select * from {peers.TABLE} order by org_code").pl()


def test_clustering_separates_constructed_trusts(peer_db: duckdb.DuckDBPyConnection) -> None:
    n = peers.build_peer_groups(peer_db, k_range=(2, 3, 4, 5))
    g = _groups(peer_db)
    assert n == g.height == 19  # every trust with activity; N1 (no activity) is out of scope
    assert "N1" not in g["org_code"].to_list()
    by = dict(zip(g["org_code"], g["peer_group_id"]))
    assert g["k"][0] == 3 and g["method"][0] == "kmeans" and g["silhouette"][0] > 0.5
    for kind in (ACUTE, COMMUNITY, AMBULANCE):
        assert len({by[t] for t in kind}) == 1, kind
    assert len({by[ACUTE[0]], by[COMMUNITY[0]], by[AMBULANCE[0]]}) == 3
    assert by[ACUTE[0]] == 1  # groups are numbered largest first
    labels = dict(zip(g["org_code"], g["peer_group_label"]))
    assert "acute" in labels["A1"] and "ambulance" in labels["M1"] and "community" in labels["C1"]
    assert labels["A1"].startswith("Large") and labels["C1"].startswith("Small")
    sizes = dict(zip(g["org_code"], g["n_members"]))
    assert sizes["A1"] == 7 and sizes["C1"] == 6 and sizes["M1"] == 4  # A1..A6 and X1
    # standardised features are z-scores over the 16 clustered trusts
    z = g.filter(pl.col("assignment") == "clustered")["z_workforce_fte"]
    assert abs(z.mean()) < 1e-9 and abs(z.std(ddof=0) - 1) < 1e-9


def test_clustering_is_deterministic_given_the_seed(tmp_path: Path) -> None:
    frames = []
    for i, reverse in enumerate((False, True)):
        con = make_warehouse(tmp_path / f"w{i}.duckdb")
        _peer_fixture(con, reverse=reverse)
        peers.build_peer_groups(con, n_groups=3, seed=7)
        frames.append(_groups(con))
    assert frames[0].equals(frames[1])


def test_fallback_group_nearest_group_and_imputation(peer_db: duckdb.DuckDBPyConnection) -> None:
    peers.build_peer_groups(peer_db, n_groups=3)
    g = {r["org_code"]: r for r in _groups(peer_db).iter_rows(named=True)}
    for code, reason in (("F1", "no workforce FTE"), ("H1", "service type unknown")):
        assert g[code]["peer_group_id"] == peers.FALLBACK_GROUP_ID
        assert g[code]["peer_group_label"] == peers.FALLBACK_LABEL
        assert reason in g[code]["assignment"]
    assert g["F1"]["n_members"] == 2
    # the closed acute trust joins the acute group by its known features; its beds are unknown, not zero
    assert g["X1"]["peer_group_id"] == g["A1"]["peer_group_id"] and g["X1"]["assignment"].startswith("nearest_group")
    assert g["X1"]["ga_beds"] is None and "G&A beds: unknown" in g["X1"]["imputed"]
    # A6: deprivation = 0.75 x 30 + 0.25 x 10 from its catchment; specialisation imputed at the median rank
    assert g["A6"]["deprivation"] == pytest.approx(25.0)
    assert g["A6"]["specialisation_pct_rank"] == 0.5
    assert "catchment-weighted ICB IMD 2025" in g["A6"]["imputed"]
    # ambulance trusts are not in the peer finder: host ICB IMD (they are hosted by Q02)
    assert g["M4"]["deprivation"] == 10.0 and "host ICB IMD 2025" in g["M4"]["imputed"]
    # community trusts report no A&E and no beds: zero, and said so
    assert g["C1"]["ae_attendances_monthly"] == 0.0 and "A&E attendances: none reported" in g["C1"]["imputed"]


def test_choose_clustering_prefers_smaller_k_on_ties_and_reports() -> None:
    import numpy as np
    z = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 10.0], [10.1, 10.0]])
    method, k, sil, labels, report = peers.choose_clustering(z, None, 42, (2, 3))
    assert (method, k) == ("kmeans", 2) and labels[0] == labels[1] != labels[2] == labels[3]
    assert "kmeans k=2" in report and "agglomerative_ward k=3" in report


# ---- benchmarks ---------------------------------------------------------------------------------------------------
def _bench_values() -> pl.DataFrame:
    rows = []
    for i, org in enumerate(["T1", "T2", "T3", "T4", "T5"]):
        rows += [(org, "provider", "ae_4hr_pct", 60.0 + 10 * i, True),       # 60..100, higher is better
                 (org, "provider", "dm01_6wk_pct", 1.0 + i, False),          # 1..5, lower is better
                 (org, "provider", "ae_attendances", 1_000.0 * (i + 1), None)]  # no direction
    for i, icb in enumerate(["Q1", "Q2", "Q3", "Q4"]):
        rows.append((icb, "icb", "ae_4hr_pct", 70.0 + i, True))
    return pl.DataFrame(rows, schema=["org_code", "org_level", "metric_id", "value", "higher_is_better"],
                        orient="row").with_columns(period_start=pl.lit(MONTH), period_grain=pl.lit("month"))


PEERS = pl.DataFrame({"org_code": ["T1", "T2", "T3", "T4", "T5"], "peer_group_id": [1, 1, 1, 2, 0]})


def test_benchmark_percentiles_follow_direction() -> None:
    b = bm.benchmarks_frame(_bench_values(), PEERS)
    assert b.columns[:8] == list(bm.CONTRACT_COLUMNS)

    def row(metric: str, scope: str, group: int | None = None) -> dict:
        f = b.filter((pl.col("metric_id") == metric) & (pl.col("scope") == scope))
        f = f.filter(pl.col("peer_group_id").is_null() if group is None else pl.col("peer_group_id") == group)
        assert f.height == 1
        return f.row(0, named=True)

    r = row("ae_4hr_pct", "national")
    assert (r["n_orgs"], r["median"], r["top_quartile"], r["bottom_quartile"]) == (5, 80.0, 90.0, 70.0)
    r = row("dm01_6wk_pct", "national")
    assert (r["median"], r["top_quartile"], r["bottom_quartile"]) == (3.0, 2.0, 4.0)
    r = row("ae_attendances", "national")
    assert r["median"] == 3_000.0 and r["top_quartile"] is None and r["bottom_quartile"] is None
    r = row("ae_4hr_pct", "peer", 1)  # T1..T3: 60, 70, 80
    assert (r["n_orgs"], r["median"], r["top_quartile"], r["bottom_quartile"]) == (3, 70.0, 75.0, 65.0)
    r = row("dm01_6wk_pct", "peer", 2)  # T4 alone
    assert (r["n_orgs"], r["median"], r["top_quartile"]) == (1, 4.0, 4.0)
    assert b.filter(pl.col("peer_group_id") == 0).height == 0  # no benchmark for the fallback group
    r = row("ae_4hr_pct", "national_icb")  # 70, 71, 72, 73: linear interpolation
    assert (r["n_orgs"], r["median"], r["top_quartile"], r["bottom_quartile"]) == (4, 71.5, 72.25, 70.75)


def test_build_benchmarks_reads_trusts_icbs_and_ratio_series(tmp_path: Path) -> None:
    con = make_warehouse(tmp_path / "b.duckdb")
    add_orgs(con, [(t, "nhs_trust", "Q1", None, None, None) for t in ("T1", "T2", "T3", "T4", "T5")]
             + [("IS1", "independent_or_other_provider", None, None, None, None)])
    rows = []
    for i, t in enumerate(("T1", "T2", "T3", "T4", "T5")):
        rows += [(t, "provider", MONTH, "rtt_18wk_pct", 50.0 + 5 * i),
                 (t, "provider", MONTH, "rtt_waiting_list", 10_000.0),
                 (t, "provider", MONTH, "rtt_52wk_waiters", 100.0 * (i + 1))]
    rows += [("IS1", "provider", MONTH, "rtt_18wk_pct", 99.0),  # independent sector: left out
             ("Q1", "icb", MONTH, "rtt_18wk_pct", 58.0)]
    add_values(con, rows)
    con.sql(f"create schema s2_triple_aim; create table {peers.TABLE} as select * from PEERS")
    n = bm.build_benchmarks(con)
    b = con.sql(f"select * from {bm.TABLE}").pl()
    assert n == b.height
    nat = b.filter((pl.col("scope") == "national") & (pl.col("metric_id") == "rtt_18wk_pct")).row(0, named=True)
    assert (nat["n_orgs"], nat["median"], nat["top_quartile"]) == (5, 60.0, 65.0)
    ratio = b.filter((pl.col("scope") == "national")
                     & (pl.col("metric_id") == "rtt_52wk_waiters_pct_of_rtt_waiting_list")).row(0, named=True)
    assert (ratio["median"], ratio["top_quartile"], ratio["bottom_quartile"]) == (3.0, 2.0, 4.0)  # 1%..5%
    icb = b.filter(pl.col("scope") == "national_icb")
    assert icb.filter(pl.col("metric_id") == "rtt_18wk_pct")["n_orgs"].to_list() == [1]


# ---- real data ------------------------------------------------------------------------------------------------------
def test_real_warehouse_peer_groups_and_benchmarks(real_warehouse, tmp_path: Path, record_property) -> None:
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(real_warehouse, path)
    con = duckdb.connect(str(path))
    t0 = time.perf_counter()
    n_peers = peers.build_peer_groups(con)
    t1 = time.perf_counter()
    n_bench = bm.build_benchmarks(con)
    t2 = time.perf_counter()
    g = _groups(con)
    n_trusts_active = con.sql("""select count(*) from s1_current_state.organisations where org_type = 'nhs_trust'
        and org_code in (select org_code from s1_current_state.metric_values where org_level = 'provider')""").fetchone()[0]
    assert n_peers == g.height == n_trusts_active  # never silently dropped
    assert g["org_code"].n_unique() == g.height
    k = g["k"][0]
    assert 4 <= k <= 8 and g.filter(pl.col("peer_group_id") > 0)["peer_group_id"].n_unique() == k
    sizes = g.group_by("peer_group_id", "peer_group_label").agg(pl.len()).sort("peer_group_id")
    assert sizes["len"].min() >= 3
    ambulance = g.filter(pl.col("org_name").str.contains("(?i)ambulance") & (pl.col("assignment") == "clustered"))
    assert ambulance["peer_group_id"].n_unique() == 1  # the ambulance trusts form one group
    report = f"k={k}, silhouette={g['silhouette'][0]}, groups: " + "; ".join(
        f"{r['peer_group_id']} {r['peer_group_label']}: {r['len']}" for r in sizes.iter_rows(named=True))
    record_property("peer_groups", report)
    print(report, f"(peer_groups {t1 - t0:.1f}s, benchmarks {t2 - t1:.1f}s, {n_bench} rows)")
    b = con.sql(f"select * from {bm.TABLE}").pl()
    assert n_bench == b.height > 1_000
    assert set(b["scope"]) == {"national", "peer", "national_icb"}
    assert b.filter(pl.col("scope") == "national_icb")["n_orgs"].max() == len(icbs_of_today())
    hib = b.filter(pl.col("higher_is_better") & (pl.col("n_orgs") > 3))
    assert (hib["top_quartile"] >= hib["median"]).all() and (hib["median"] >= hib["bottom_quartile"]).all()
    lib = b.filter(~pl.col("higher_is_better") & (pl.col("n_orgs") > 3))
    assert (lib["top_quartile"] <= lib["median"]).all()
    assert b.filter(pl.col("higher_is_better").is_null())["top_quartile"].null_count() == \
        b.filter(pl.col("higher_is_better").is_null()).height
