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
            currency_desc varchar, activity double, unit_cost double, cost double, _source_file varchar);
        create table latest.staff_survey_2024 (org_code varchar, benchmarking_group varchar, sheet varchar,
            measure varchar, score double, weighting varchar, base_responses double);
        create table latest.estates_eric_site (org_code varchar, org_name varchar, trust_type varchar);""")
    return con


def add_types(con: duckdb.DuckDBPyConnection, nss: dict[str, str], eric: dict[str, tuple[str, str]]) -> None:
    """Staff survey groups {org: benchmarking_group} and ERIC rows {org: (name, trust type)}."""
    con.executemany("insert into latest.staff_survey_2024 values (?, ?, 'THEMES', 'Morale - Morale', 6.0, "
                    "'Occupation Group', 100)", list(nss.items()))
    con.executemany("insert into latest.estates_eric_site values (?, ?, ?)", [(o, *v) for o, v in eric.items()])


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
    """Six large acute trusts (staff survey acute, ERIC ACUTE - LARGE), a children's hospital of the same size
    (ERIC ACUTE - SPECIALIST, staff survey acute), six community and four ambulance trusts (no published type:
    typed by their ambulance staff share); X1 a closed large acute trust merged into P1 (no published type of its
    own: typed from X1); F1 without workforce, H1 closed in 2012 with no type, N1 without activity."""
    add_icbs(con, ICBS)
    trusts = ACUTE + COMMUNITY + AMBULANCE + ["K1", "P1", "F1", "H1", "X1", "N1"]
    closed = {"H1": D(2012, 3, 31), "X1": D(2020, 3, 31)}
    orgs = [(t, "nhs_trust", "Q02" if t in AMBULANCE else "Q01", closed.get(t), "P1" if t == "X1" else None, None)
            for t in trusts]
    values, finder = [], []
    for i, t in enumerate(ACUTE + ["K1", "P1"]):
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
    add_types(con, {**{t: "Acute and Acute & Community Trusts" for t in ACUTE + ["K1"]},
                    **{t: "Community Trusts" for t in COMMUNITY}},
              {**{t: (f"{t} HOSPITALS", "ACUTE - LARGE") for t in ACUTE + ["X1"]},
               "K1": ("K1 CHILDRENS NHS FOUNDATION TRUST", "ACUTE - SPECIALIST")})


@pytest.fixture
def peer_db(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = make_warehouse(tmp_path / "w.duckdb")
    _peer_fixture(con)
    return con


def _groups(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql(f"select * from {peers.TABLE} order by org_code").pl()


def test_trusts_are_typed_before_grouping_and_never_grouped_across_types(peer_db: duckdb.DuckDBPyConnection) -> None:
    n = peers.build_peer_groups(peer_db)
    g = _groups(peer_db)
    assert n == g.height == 21  # every trust with activity; N1 (no activity) is out of scope
    assert "N1" not in g["org_code"].to_list()
    row = {r["org_code"]: r for r in g.iter_rows(named=True)}
    assert {row[t]["trust_type"] for t in ACUTE} == {"acute_large"}
    assert row["A1"]["type_source"].startswith("staff survey 2024 group 'Acute and Acute & Community Trusts'")
    assert "ERIC 2019/20 band 'ACUTE - LARGE'" in row["A1"]["type_source"]
    assert {row[t]["trust_type"] for t in COMMUNITY} == {"community"}
    assert {row[t]["trust_type"] for t in AMBULANCE} == {"ambulance"}
    assert "ambulance staff share 80%" in row["M1"]["type_source"]
    # the children's hospital: the staff survey says acute, ERIC says specialist, its name says children's
    assert row["K1"]["trust_type"] == "acute_specialist_children" and row["K1"]["comparison_type"] == \
        "acute_specialist_children"
    # P1 has no published type of its own: it takes its predecessor X1's
    assert row["P1"]["trust_type"] == "acute_large" and "predecessor trusts (X1)" in row["P1"]["type_source"]
    assert row["H1"]["trust_type"] == "other" and row["H1"]["peer_group_id"] == peers.FALLBACK_GROUP_ID
    by = {t: row[t]["peer_group_id"] for t in row}
    # the children's hospital is the size of the acute trusts but is not their peer
    assert by["K1"] not in {by[t] for t in ACUTE} and row["K1"]["peer_group_label"] == "Specialist children's"
    for kind in (ACUTE + ["P1", "X1"], COMMUNITY, AMBULANCE):
        assert len({by[t] for t in kind}) == 1, kind
    assert len({by["A1"], by["C1"], by["M1"], by["K1"]}) == 4
    assert by["A1"] == 1  # types in a fixed order: acute bands first
    labels = {t: row[t]["peer_group_label"] for t in ("A1", "C1", "M1")}
    assert labels == {"A1": "Acute large", "C1": "Community", "M1": "Ambulance"}  # too few to split
    assert row["X1"]["assignment"].startswith("type group (not current")
    assert row["A1"]["n_members"] == 8  # A1..A6, P1 and X1
    # standardised features are z-scores over the current trusts with enough data
    z = g.filter(pl.col("assignment").str.starts_with("type group") & ~pl.col("assignment").str.contains("not"))
    assert abs(z["z_workforce_fte"].mean()) < 1e-9 and abs(z["z_workforce_fte"].std(ddof=0) - 1) < 1e-9


def test_clustering_is_deterministic_given_the_seed(tmp_path: Path) -> None:
    frames = []
    for i, reverse in enumerate((False, True)):
        con = make_warehouse(tmp_path / f"w{i}.duckdb")
        _peer_fixture(con, reverse=reverse)
        peers.build_peer_groups(con, seed=7)
        frames.append(_groups(con))
    assert frames[0].equals(frames[1])


def test_fallback_group_and_imputation(peer_db: duckdb.DuckDBPyConnection) -> None:
    peers.build_peer_groups(peer_db)
    g = {r["org_code"]: r for r in _groups(peer_db).iter_rows(named=True)}
    for code in ("F1", "H1"):  # no published type, not ambulance: no peers
        assert g[code]["peer_group_id"] == peers.FALLBACK_GROUP_ID
        assert g[code]["peer_group_label"] == peers.FALLBACK_LABEL and "type unknown" in g[code]["assignment"]
    assert g["F1"]["n_members"] == 2
    assert g["X1"]["ga_beds"] is None and "G&A beds: unknown" in g["X1"]["imputed"]
    # A6: deprivation = 0.75 x 30 + 0.25 x 10 from its catchment; specialisation imputed at the median rank
    assert g["A6"]["deprivation"] == pytest.approx(25.0)
    assert g["A6"]["specialisation_pct_rank"] == 0.5
    assert "catchment-weighted ICB IMD 2025" in g["A6"]["imputed"]
    # ambulance trusts are not in the peer finder: host ICB IMD (they are hosted by Q02)
    assert g["M4"]["deprivation"] == 10.0 and "host ICB IMD 2025" in g["M4"]["imputed"]
    # community trusts report no A&E and no beds: zero, and said so
    assert g["C1"]["ae_attendances_monthly"] == 0.0 and "A&E attendances: none reported" in g["C1"]["imputed"]


def test_split_type_splits_a_large_type_only_into_groups_big_enough() -> None:
    import numpy as np
    rng = np.random.default_rng(0)
    two = np.vstack([rng.normal(0, 0.1, (12, 5)), rng.normal(3, 0.1, (12, 5))])
    labels, sil = peers.split_type(two, seed=1)
    assert sil is not None and sil > 0.8 and sorted(np.bincount(labels).tolist()) == [12, 12]
    assert labels[:12].tolist() == [labels[0]] * 12 and labels[0] != labels[12]
    few = two[:19]  # fewer than MIN_TO_CLUSTER trusts: one group, the published type
    labels, sil = peers.split_type(few, seed=1)
    assert sil is None and set(labels.tolist()) == {0}
    lopsided = np.vstack([rng.normal(0, 0.1, (21, 5)), rng.normal(5, 0.1, (3, 5))])  # a split would leave 3
    labels, sil = peers.split_type(lopsided, seed=1, within_k=(2,))
    assert sil is None and set(labels.tolist()) == {0}


def test_group_words_name_the_feature_that_separates_the_groups() -> None:
    import numpy as np
    by_size = np.array([[-1.0, -1, -1, 0.1, 0], [1.0, 1, 1, 0.0, 0]])  # deprivation 0.1 apart: not named
    assert peers.group_words(by_size) == ["smaller", "larger"]
    by_deprivation = np.array([[0.0, 0, 0, 2.0, 0], [0.1, 0.1, 0.1, -1.0, 0], [0.0, 0, 0, 0.5, 0]])
    assert peers.group_words(by_deprivation) == ["most deprived areas", "least deprived areas", "mid deprivation"]
    both = np.array([[2.0, 2, 2, 1.0, 0.3], [0.0, 0, 0, -1.0, 0.0], [-1.0, -1, -1, 0.0, -0.2]])
    assert peers.group_words(both) == ["large, most deprived areas", "mid-sized, least deprived areas",
                                       "small, mid deprivation"]
    close = np.array([[0.1, 0.1, 0.1, 0.0, 0.3], [0.0, 0, 0, 0.0, 0.0]])  # nothing 0.5 apart: the widest only
    assert peers.group_words(close) == ["more specialised", "less specialised"]


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


PEERS = pl.DataFrame({"org_code": ["T1", "T2", "T3", "T4", "T5"], "peer_group_id": [1, 1, 1, 2, 0],
                      "comparison_type": ["acute", "acute", "acute", "community", "community"]})


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
    # within type: the acute trusts T1..T3 (60, 70, 80) and the community trusts T4, T5 (90, 100) apart
    types = b.filter((pl.col("scope") == "type") & (pl.col("metric_id") == "ae_4hr_pct")).sort("comparison_type")
    assert types["comparison_type"].to_list() == ["acute", "community"]
    assert types["n_orgs"].to_list() == [3, 2] and types["median"].to_list() == [70.0, 95.0]
    assert types["peer_group_id"].null_count() == 2
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
    assert g.filter(pl.col("peer_group_id") > 0)["peer_group_id"].n_unique() == k
    sizes = g.group_by("peer_group_id", "peer_group_label").agg(pl.len()).sort("peer_group_id")
    assert sizes["len"].min() >= 3
    ambulance = g.filter(pl.col("org_name").str.contains("(?i)ambulance") & (pl.col("peer_group_id") > 0))
    assert ambulance.height >= 10 and set(ambulance["trust_type"]) == {"ambulance"}
    assert ambulance["peer_group_id"].n_unique() == 1  # the ambulance trusts form one group
    report = f"k={k}, groups: " + "; ".join(
        f"{r['peer_group_id']} {r['peer_group_label']}: {r['len']}" for r in sizes.iter_rows(named=True))
    record_property("peer_groups", report)
    print(report, f"(peer_groups {t1 - t0:.1f}s, benchmarks {t2 - t1:.1f}s, {n_bench} rows)")
    b = con.sql(f"select * from {bm.TABLE}").pl()
    assert n_bench == b.height > 1_000
    assert set(b["scope"]) == {"national", "peer", "type", "national_icb"}
    assert b.filter(pl.col("scope") == "national_icb")["n_orgs"].max() == len(icbs_of_today())
    hib = b.filter(pl.col("higher_is_better") & (pl.col("n_orgs") > 3))
    assert (hib["top_quartile"] >= hib["median"]).all() and (hib["median"] >= hib["bottom_quartile"]).all()
    lib = b.filter(~pl.col("higher_is_better") & (pl.col("n_orgs") > 3))
    assert (lib["top_quartile"] <= lib["median"]).all()
    assert b.filter(pl.col("higher_is_better").is_null())["top_quartile"].null_count() == \
        b.filter(pl.col("higher_is_better").is_null()).height
