"""Triple Aim scores: quartile scores by direction and ties, distance-from-standard scoring, aim and overall means,
aims on too few measures, ranks within comparison type and peer group,
the peer quartile, carrying values forward, catchment weighting, the A&E unit cost;
on constructed panels whose answers are known, and on a copy of the real step-1 warehouse."""
from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from ibp_pipeline.step2_triple_aim import peers, scoring
from ibp_pipeline.step2_triple_aim.scoring import (
    CONTEXT, DISTANCE, QUARTILE, aim_scores_frame, peer_quartile, quartile_cuts, quartile_score, score_metrics)
from ibp_pipeline_tests.step2.test_peers_benchmarks import add_orgs, add_values, make_warehouse
from ibp_pipeline_tests.conftest import icbs_of_today

D = dt.date
MAR = D(2025, 3, 1)


# ---- pure maths -------------------------------------------------------------------------------------------------
def test_quartile_score_direction_and_ties_on_cut_points() -> None:
    cuts = quartile_cuts([10, 20, 30, 40, 50])
    assert cuts == (20.0, 30.0, 40.0)
    high = [quartile_score(v, *cuts, higher_is_better=True) for v in (50, 40, 35, 30, 25, 20, 10)]
    assert high == [1, 1, 2, 2, 3, 3, 4]  # a value on a cut point gets the better score
    low = [quartile_score(v, *cuts, higher_is_better=False) for v in (10, 20, 25, 30, 40, 45, 50)]
    assert low == [1, 1, 2, 2, 3, 4, 4]


def test_peer_quartile_is_the_quarter_of_the_group_the_rank_falls_in() -> None:
    got = [peer_quartile(r, n) for r, n in ((1, 4), (2, 4), (3, 4), (4, 4), (1, 10), (3, 10), (5, 10), (8, 10),
                                            (10, 10))]
    assert got == [1, 2, 3, 4, 1, 2, 2, 4, 4]  # ceil(4 x rank / n)
    assert peer_quartile(1, 3) is None and peer_quartile(None, 5) is None  # no quarters in a group of 3


def _panel() -> pl.DataFrame:
    rows = []
    for i in range(8):  # values 1..8: p25 2.75, median 4.5, p75 6.25
        org = f"T{i + 1}"
        rows += [(org, "provider", "m_high", float(i + 1), True, QUARTILE),
                 (org, "provider", "m_low", float(i + 1), False, QUARTILE),
                 (org, "provider", "m_context", 1e6, None, CONTEXT)]
    rows += [(f"T{i + 1}", "provider", "m_few", float(i), True, QUARTILE) for i in range(3)]
    rows += [(f"Q{i + 1}", "icb", "m_high", 100.0 + i, True, QUARTILE) for i in range(4)]
    return pl.DataFrame(rows, schema=["org_code", "org_level", "metric_id", "scored_value",
                                      "scored_higher_is_better", "method"], orient="row"
                        ).with_columns(period_start=pl.lit(MAR))


def test_score_metrics_by_national_quartile_and_level() -> None:
    s = score_metrics(_panel()).sort("org_level", "metric_id", "org_code")

    def scores(metric: str, level: str = "provider") -> list:
        return s.filter((pl.col("metric_id") == metric) & (pl.col("org_level") == level))["score"].to_list()

    assert scores("m_high") == [4, 4, 3, 3, 2, 2, 1, 1]
    assert scores("m_low") == [1, 1, 2, 2, 3, 3, 4, 4]
    row = s.filter((pl.col("metric_id") == "m_high") & (pl.col("org_code") == "T1")).row(0, named=True)
    assert (row["cut_p25"], row["cut_median"], row["cut_p75"], row["n_orgs_compared"]) == (2.75, 4.5, 6.25, 8)
    # ICBs are compared with ICBs only: 100..103 -> 4, 3, 2, 1
    assert scores("m_high", "icb") == [4, 3, 2, 1]
    assert s.filter(pl.col("org_level") == "icb")["n_orgs_compared"].unique().to_list() == [4]
    # context rows carry no score; fewer than 4 organisations -> no score, and the method says why
    assert scores("m_context") == [None] * 8
    few = s.filter(pl.col("metric_id") == "m_few")
    assert few["score"].null_count() == 3 and few["method"].str.contains("fewer than 4").all()


def _metric_scores() -> pl.DataFrame:
    rows = [  # org, level, peer group, comparison type, aim, metric, score
        ("T1", "provider", 1, "acute", "quality_of_care", "q1", 1),
        ("T1", "provider", 1, "acute", "quality_of_care", "q2", 2),
        ("T1", "provider", 1, "acute", "population_health", "p1", 1),  # one measure: the aim is not scored
        ("T1", "provider", 1, "acute", "efficiency", "e1", 2), ("T1", "provider", 1, "acute", "efficiency", "e2", 2),
        ("T1", "provider", 1, "acute", "efficiency", "ctx", None),
        ("T2", "provider", 1, "acute", "quality_of_care", "q1", 3),
        ("T2", "provider", 1, "acute", "quality_of_care", "q2", 3),
        ("T2", "provider", 1, "acute", "efficiency", "e1", 2), ("T2", "provider", 1, "acute", "efficiency", "e2", 1),
        ("T4", "provider", 1, "acute", "quality_of_care", "q1", 3),
        ("T4", "provider", 1, "acute", "quality_of_care", "q2", 3),
        ("T4", "provider", 1, "acute", "efficiency", "e1", 3), ("T4", "provider", 1, "acute", "efficiency", "e2", 3),
        ("T7", "provider", 1, "acute", "quality_of_care", "q1", 4),
        ("T7", "provider", 1, "acute", "quality_of_care", "q2", 4),
        ("T7", "provider", 1, "acute", "efficiency", "e1", 4), ("T7", "provider", 1, "acute", "efficiency", "e2", 3),
        ("T3", "provider", 2, "acute", "quality_of_care", "q1", 4),
        ("T3", "provider", 2, "acute", "quality_of_care", "q2", 4),
        ("T3", "provider", 2, "acute", "efficiency", "e1", 4), ("T3", "provider", 2, "acute", "efficiency", "e2", 4),
        ("T5", "provider", 0, "community", "quality_of_care", "q1", 1),
        ("T5", "provider", 0, "community", "quality_of_care", "q2", 1),
        ("T5", "provider", 0, "community", "efficiency", "e1", 1),
        ("T5", "provider", 0, "community", "efficiency", "e2", 1),
        ("T6", "provider", 0, "community", "quality_of_care", "q1", 2),
        ("T6", "provider", 0, "community", "quality_of_care", "q2", 2),  # one aim only: not ranked overall
        ("Q1", "icb", None, None, "quality_of_care", "q1", 2), ("Q1", "icb", None, None, "quality_of_care", "q2", 3),
        ("Q1", "icb", None, None, "efficiency", "e1", 3), ("Q1", "icb", None, None, "efficiency", "e2", 3),
    ]
    return pl.DataFrame(rows, schema={"org_code": pl.String, "org_level": pl.String, "peer_group_id": pl.Int64,
                                      "comparison_type": pl.String, "aim": pl.String, "metric_id": pl.String,
                                      "score": pl.Int64}, orient="row").with_columns(period_start=pl.lit(MAR))


def test_aim_scores_thin_aims_ranks_within_type_and_peer_quartile() -> None:
    a = aim_scores_frame(_metric_scores())
    get = {(r["org_code"], r["aim"]): r for r in a.iter_rows(named=True)}
    q = get[("T1", "quality_of_care")]
    assert (q["score"], q["n_metrics_scored"], q["metrics_scored"]) == (1.5, 2, "q1: 1; q2: 2")
    # an aim on one measure is not scored, says so, and does not count in the overall
    p = get[("T1", "population_health")]
    assert p["score"] is None and p["not_scored"] == "not scored: only 1 measure" and p["national_rank"] is None
    t1 = get[("T1", "overall")]
    assert t1["score"] == pytest.approx((1.5 + 2.0) / 2) and (t1["n_metrics_scored"], t1["n_aims_scored"]) == (4, 2)
    # overall ranks within the comparison type: acute T1 1.75, T2 2.25, T4 3.0, T7 3.75, T3 4.0; the community
    # trust T5 (1.0) is not ranked with them, and T6 (one aim) is not ranked at all
    ranks = {o: (get[(o, "overall")]["national_rank"], get[(o, "overall")]["national_n"])
             for o in ("T1", "T2", "T3", "T4", "T7", "T5")}
    assert ranks == {"T1": (1, 5), "T2": (2, 5), "T4": (3, 5), "T7": (4, 5), "T3": (5, 5), "T5": (1, 1)}
    t6 = get[("T6", "overall")]
    assert t6["score"] is None and t6["national_rank"] is None and t6["not_scored"].startswith("not ranked")
    # peer group 1 (T1, T2, T4, T7): ranks 1..4 and one peer per quarter; group 2 (T3 alone) has no quarters
    peer = {o: (get[(o, "overall")]["peer_rank"], get[(o, "overall")]["peer_quartile"])
            for o in ("T1", "T2", "T4", "T7", "T3")}
    assert peer == {"T1": (1, 1), "T2": (2, 2), "T4": (3, 3), "T7": (4, 4), "T3": (1, None)}
    assert t1["standing"] == "Peer quartile: top quarter" and get[("T7", "overall")]["standing"] == \
        "Peer quartile: bottom quarter"
    assert get[("T5", "overall")]["peer_rank"] is None  # the fallback group has no peers
    # ICBs are ranked among ICBs and have no peer rank; aim rows carry no quartile
    q1 = get[("Q1", "overall")]
    assert q1["score"] == pytest.approx((2.5 + 3.0) / 2) and (q1["national_rank"], q1["national_n"]) == (1, 1)
    assert q1["peer_rank"] is None and q1["peer_quartile"] is None
    aim_rows = a.filter(pl.col("aim") != "overall")
    assert aim_rows["peer_quartile"].null_count() == aim_rows.height


# ---- build_scores on a constructed warehouse --------------------------------------------------------------------
def _scoring_db(path: Path) -> duckdb.DuckDBPyConnection:
    con = make_warehouse(path)
    icbs = {"Q01": "E54000001", "Q02": "E54000002", "Q03": "E54000003", "Q04": "E54000004"}
    add_orgs(con, [(q, "icb", None, None, None, e) for q, e in icbs.items()])
    # Q02's IMD row carries a newer E54 code: matched on the ICB's name
    con.executemany("insert into latest.imd_icb values (?, ?, ?)",
                    [("E54000001", "Q01", 30.0), ("E54000099", "Q02", 10.0), ("E54000003", "Q03", 20.0),
                     ("E54000004", "Q04", 25.0)])
    con.executemany("insert into latest.health_index_icb values (?, ?, ?, ?)",
                    [("E54000001", "Q01", 2019, 100.0), ("E54000001", "Q01", 2021, 104.0),
                     ("E54000002", "Q02", 2021, 96.0), ("E54000003", "Q03", 2021, 98.0),
                     ("E54000004", "Q04", 2021, 102.0)])
    con.executemany("insert into latest.population_icb_2020 values (?, ?, ?)",
                    [("E54000001", "Q01", 1_000_000), ("E54000002", "Q02", 500_000)])
    con.executemany("insert into latest.national_cost_collection values (?, ?, ?, ?, ?, ?, ?)",
                    [("Emergency Care", "VB01Z", "EM 1", 100, 300.0, 30_000.0, "ncc.csv"),
                     ("Emergency Care", "VB02Z", "EM 2", 300, 100.0, 30_000.0, "ncc.csv"),
                     ("Ambulance", "03", "See & Convey", 10, 9_999.9, 99_999.0, "ncc.csv")])
    parents = {"T1": "Q01", "T2": "Q01", "T3": "Q02", "T4": "Q03", "T5": "Q04"}
    add_orgs(con, [(t, "nhs_trust", p, None, None, None) for t, p in parents.items()])
    con.executemany("insert into latest.trust_icb_catchment values (?, ?, ?)",
                    [("T1", "E54000001", 0.75), ("T1", "E54000002", 0.25)])
    trusts = list(parents)
    rows = []
    for t, ae4, att, fte, occ in zip(trusts, (60, 70, 80, 90, 100), (2_000, 2_000, 500, 3_000, 4_000),
                                     (3_000, 1_000, 800, 1_500, 2_000), (92, 95, 85, 99, None)):
        rows += [(t, "provider", MAR, "ae_4hr_pct", float(ae4)), (t, "provider", MAR, "ae_attendances", float(att)),
                 (t, "provider", MAR, "workforce_fte", float(fte))]
        if occ is not None:
            rows.append((t, "provider", MAR, "ga_bed_occupancy_pct", float(occ)))
    rows += [("T1", "provider", D(2024, 3, 1), "cancer_62d_pct", 50.0)]  # carried to March 2025, not to April
    rows += [(t, "provider", MAR, "cancer_62d_pct", v) for t, v in zip(trusts[1:], (60.0, 70.0, 80.0, 90.0))]
    rows += [("T2", "provider", D(2025, 4, 1), "ae_4hr_pct", 70.0),
             ("T1", "provider", D(2020, 6, 1), "ae_4hr_pct", 50.0)]
    for q, ae4, vw in zip(icbs, (70.0, 72.0, 74.0, 76.0), (20.0, 10.0, 30.0, 40.0)):
        rows += [(q, "icb", MAR, "ae_4hr_pct", ae4), (q, "icb", MAR, "vw_capacity_per_100k", vw)]
    add_values(con, rows)
    # the staff survey: engagement and morale 6.0, 6.5, 7.0, 7.5 for T1..T4 (T5 took no part)
    con.executemany("insert into latest.staff_survey_2024 values (?, 'Acute', 'THEMES', ?, ?, ?, 500)",
                    [(t, m, v + (9.0 if w == "Unweighted" else 0.0), w)
                     for t, v in zip(trusts[:4], (6.0, 6.5, 7.0, 7.5))
                     for m in ("Staff Engagement - Staff engagement", "Morale - Morale")
                     for w in ("Occupation Group", "Unweighted")])
    con.sql(f"""create schema s2_triple_aim;
        create table {peers.TABLE} as select * from (values ('T1', 1, 'g1', 'acute'), ('T2', 1, 'g1', 'acute'),
            ('T3', 1, 'g1', 'acute'), ('T4', 2, 'g2', 'acute'), ('T5', 0, 'fallback', 'acute'))
            t(org_code, peer_group_id, peer_group_label, comparison_type)""")
    return con


def test_build_scores_on_constructed_warehouse(tmp_path: Path) -> None:
    con = _scoring_db(tmp_path / "s.duckdb")
    n = scoring.build_scores(con)
    s = con.sql(f"select * from {scoring.SCORES}").pl()
    assert n == s.height

    def one(org: str, metric: str, month: dt.date = MAR) -> dict | None:
        f = s.filter((pl.col("org_code") == org) & (pl.col("metric_id") == metric) & (pl.col("period_start") == month))
        assert f.height <= 1
        return f.row(0, named=True) if f.height else None

    assert [one(t, "ae_4hr_pct")["score"] for t in ("T1", "T2", "T3", "T4", "T5")] == [4, 3, 2, 1, 1]
    assert [one(q, "ae_4hr_pct")["score"] for q in ("Q01", "Q02", "Q03", "Q04")] == [4, 3, 2, 1]
    r = one("T1", "ae_4hr_pct")
    assert (r["cut_p25"], r["cut_median"], r["cut_p75"]) == (70.0, 80.0, 90.0)
    assert r["aim"] == "quality_of_care" and r["method"] == QUARTILE and r["peer_group_id"] == 1
    # carrying forward: T1's January cancer value is used in March (2 months back) but not in April (3 months)
    c = one("T1", "cancer_62d_pct")
    assert c["value"] == 50.0 and c["value_period_start"] == D(2024, 3, 1) and c["score"] == 4
    assert one("T1", "cancer_62d_pct", D(2025, 4, 1)) is None
    # G&A occupancy: distance from 92% (0, 3, 7, 7), lower is better
    occ = [one(t, "ga_bed_occupancy_pct") for t in ("T1", "T2", "T3", "T4")]
    assert [o["scored_value"] for o in occ] == [0.0, 3.0, 7.0, 7.0] and [o["score"] for o in occ] == [1, 2, 3, 3]
    assert occ[0]["method"] == DISTANCE
    # FTE per 1,000 attendances: T3 (< 1,000 attendances) left out; the ICB sums its hosted trusts
    fte = {t: one(t, "workforce_fte_per_1000_ae_attendances") for t in ("T1", "T2", "T3", "T4", "T5")}
    assert fte["T3"] is None and fte["T1"]["value"] == 1_500.0 and fte["T2"]["value"] == 500.0
    assert fte["T1"]["score"] == 4 and fte["T2"]["score"] == 1 and fte["T1"]["is_estimate"]
    assert one("Q01", "workforce_fte_per_1000_ae_attendances")["value"] == pytest.approx(1_000.0)
    assert one("Q02", "workforce_fte_per_1000_ae_attendances") is None
    # A&E unit cost: Emergency Care only, activity-weighted: 60,000 / 400 = 150 per attendance
    cost = one("T1", "ae_estimated_cost_gbp")
    assert cost["value"] == 300_000.0 and cost["score"] is None and cost["method"] == CONTEXT and cost["is_estimate"]
    assert "GBP 150.00" in cost["formula"]
    head = one("Q01", "ae_estimated_cost_per_head_gbp")  # 2,000 x 0.75 attributed x 150 / 1,000,000
    assert head["value"] == pytest.approx(0.225) and head["score"] is None and "fewer than 4" in head["method"]
    # population health: catchment-weighted for T1, host ICB for T2; Health Index as of the period's year
    assert one("T1", "vw_capacity_per_100k")["value"] == pytest.approx(0.75 * 20 + 0.25 * 10)
    assert one("T2", "vw_capacity_per_100k")["value"] == 20.0
    assert one("T1", "health_index_overall")["value"] == pytest.approx(0.75 * 104 + 0.25 * 96)
    assert one("T1", "health_index_overall", D(2020, 6, 1))["value"] == pytest.approx(0.75 * 100 + 0.25 * 96)
    imd = one("T1", "imd_2025_average_score")  # deprivation is context: shown, never scored
    assert imd["value"] == pytest.approx(0.75 * 30 + 0.25 * 10) and imd["score"] is None and imd["method"] == CONTEXT
    # the staff survey (occupation-group weighted, not the unweighted rows): higher is better, our people aim
    eng = [one(t, "nss_engagement") for t in ("T1", "T2", "T3", "T4")]
    assert [e["value"] for e in eng] == [6.0, 6.5, 7.0, 7.5] and [e["score"] for e in eng] == [4, 3, 2, 1]
    assert eng[0]["aim"] == "our_people" and eng[0]["value_period_start"] == D(2024, 10, 1)
    assert one("T1", "nss_engagement", D(2023, 12, 1)) is None and one("T5", "nss_engagement") is None
    assert one("T1", "imd_2025_average_score")["is_estimate"] and not one("Q01", "imd_2025_average_score")["is_estimate"]
    assert one("Q02", "imd_2025_average_score")["value"] == 10.0  # matched on the ICB's name
    assert one("T3", "imd_2025_average_score")["value"] == 10.0  # host ICB Q02
    # aim scores: every organisation-month has one overall row; ranks are within the level
    a = con.sql(f"select * from {scoring.AIM_SCORES}").pl()
    overall = a.filter(pl.col("aim") == "overall")
    assert overall.select("org_code", "period_start").is_unique().all()
    march = overall.filter(pl.col("period_start") == MAR)
    assert march.filter(pl.col("org_level") == "provider")["national_n"].unique().to_list() == [5]
    # the ICBs have one quality measure (A&E) and two population health ones (Health Index, virtual wards): the
    # quality aim is not scored, so one aim is left and the overall is not ranked
    icb = a.filter((pl.col("org_level") == "icb") & (pl.col("period_start") == MAR))
    icb_quality = icb.filter(pl.col("aim") == "quality_of_care")
    assert icb_quality["not_scored"].unique().to_list() == ["not scored: only 1 measure"]
    assert icb.filter(pl.col("aim") == "population_health")["national_n"].unique().to_list() == [4]
    assert march.filter(pl.col("org_level") == "icb")["national_n"].unique().to_list() == [None]
    t1 = march.filter(pl.col("org_code") == "T1").row(0, named=True)
    assert t1["peer_n"] == 3 and t1["peer_group_label"] == "g1"
    assert march.filter(pl.col("org_code") == "T5")["peer_rank"].to_list() == [None]
    people = a.filter((pl.col("aim") == "our_people") & (pl.col("period_start") == MAR)).sort("org_code")
    assert people["score"].to_list() == [4.0, 3.0, 2.0, 1.0] and people["n_metrics_scored"].to_list() == [2] * 4


# ---- real data ------------------------------------------------------------------------------------------------------
def test_real_warehouse_scores(real_warehouse, tmp_path: Path, record_property) -> None:
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(real_warehouse, path)
    con = duckdb.connect(str(path))
    peers.build_peer_groups(con)
    t0 = time.perf_counter()
    n = scoring.build_scores(con)
    elapsed = time.perf_counter() - t0
    s = con.sql(f"select * from {scoring.SCORES}").pl()
    a = con.sql(f"select * from {scoring.AIM_SCORES}").pl()
    assert n == s.height > 50_000
    assert set(s["aim"]) == set(scoring.AIMS) and set(s["org_level"]) == {"provider", "icb"}
    assert s["score"].drop_nulls().is_between(1, 4).all()
    assert s.select("org_code", "period_start", "metric_id").is_unique().all()
    scored = s.filter(pl.col("score").is_not_null())
    assert scored["cut_p25"].null_count() == 0 and (scored["cut_p25"] <= scored["cut_p75"]).all()
    estimates = s.filter(pl.col("is_estimate"))
    assert estimates.filter(pl.col("aim") != "population_health")["metric_id"].unique().sort().to_list() == [
        "ae_estimated_cost_gbp", "ae_estimated_cost_per_head_gbp", "workforce_fte_per_1000_ae_attendances"]
    assert set(estimates.filter(pl.col("aim") == "population_health")["org_level"]) == {"provider"}
    overall = a.filter(pl.col("aim") == "overall")
    assert overall.select("org_code", "period_start").is_unique().all()
    assert overall["peer_quartile"].drop_nulls().is_between(1, 4).all()
    # ranks are within comparison type: no trust is ranked among more trusts than its type has
    types = con.sql(f"select comparison_type, count(*) as n from {peers.TABLE} group by 1").pl()
    n_type = dict(zip(types["comparison_type"], types["n"]))
    provider = overall.filter((pl.col("org_level") == "provider") & pl.col("national_n").is_not_null())
    assert all(r["national_n"] <= n_type[r["comparison_type"]] for r in provider.iter_rows(named=True))
    latest = overall.filter(pl.col("period_start") == D(2025, 3, 1))
    icb = latest.filter(pl.col("org_level") == "icb")
    assert icb.height == len(icbs_of_today()) and icb["national_n"].max() == len(icbs_of_today())
    trusts = latest.filter(pl.col("org_level") == "provider")
    assert 120 <= trusts.height <= 250 and trusts["peer_rank"].drop_nulls().len() > 100
    seg = trusts.group_by("peer_quartile").len().sort("peer_quartile")
    report = (f"{n} score rows, {a.height} aim rows in {elapsed:.1f}s; March 2025 trust peer quartiles: "
              + ", ".join(f"{r['peer_quartile']}: {r['len']}" for r in seg.iter_rows(named=True)))
    record_property("scores", report)
    print(report)
