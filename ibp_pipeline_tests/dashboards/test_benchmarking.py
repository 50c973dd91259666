"""Benchmarking page: peer group and national comparison, the funnel limits, the peer list and access."""
from __future__ import annotations

import io
import math
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
import yaml
from scipy.stats import binom
from polars.testing import assert_frame_equal

from ibp_pipeline import access
from ibp_pipeline.dashboards import benchmarking as bm, exports, theme
from ibp_pipeline.dashboards.serving import Serving

from .conftest import page_text
from ibp_pipeline_tests.conftest import icbs_of_today

MAR, APR, JUN = date(2024, 3, 1), date(2024, 4, 1), date(2024, 6, 1)


# ---- pure functions with known answers -------------------------------------------------------------------------

def test_funnel_limits_by_hand_small_n() -> None:
    """Binomial(10, 0.5) in 1024ths: F(1) = 11, F(2) = 56. The 2.5% quantile is r = 2 and Spiegelhalter's
    interpolation alpha = (F(r) - q) / (F(r) - F(r - 1)) = (56 - 25.6) / 45 gives the lower limit (2 - alpha) / 10;
    p = 0.5 is symmetric, so the upper limit is 1 minus it. Binomial(4, 0.5): F(0) = 1/16 > 2.5%, so the lower
    limit (0 - 0.6) / 4 is clipped to 0 and, by symmetry, the upper one to 1 (no count of 4 is unusual at 95%)."""
    lo, hi = bm.funnel_limits(0.5, 10, 0.95)
    assert float(lo) == pytest.approx((2 - 30.4 / 45) / 10, abs=1e-12)
    assert float(hi) == pytest.approx(1 - (2 - 30.4 / 45) / 10, abs=1e-12)
    lo, hi = bm.funnel_limits(0.5, 4, 0.95)
    assert (float(lo), float(hi)) == pytest.approx((0.0, 1.0), abs=1e-12)


@pytest.mark.parametrize("n,p", [(10, 0.5), (37, 0.2), (100, 0.775), (250, 0.93)])
@pytest.mark.parametrize("coverage", [0.95, 0.998])
def test_funnel_limits_agree_with_exact_binomial_tails(n: int, p: float, coverage: float) -> None:
    """Every possible count r of n is outside a limit exactly when its exact binomial tail (scipy) is below
    (1 - coverage) / 2: P(R <= r) for the lower limit, P(R >= r) for the upper one."""
    tail = (1 - coverage) / 2
    lo, hi = bm.funnel_limits(p, n, coverage)
    for r in range(n + 1):
        assert (r / n < lo) == (binom.cdf(r, n, p) < tail), (r, "lower")
        assert (r / n > hi) == (binom.sf(r - 1, n, p) < tail), (r, "upper")


def test_funnel_limits_match_normal_approximation_for_large_n_and_widen_with_coverage() -> None:
    p, n = 0.75, np.array([20000.0, 80000.0])
    for coverage, z in ((0.95, 1.959964), (0.998, 3.090232)):
        lo, hi = bm.funnel_limits(p, n, coverage)
        half = z * np.sqrt(p * (1 - p) / n)
        assert lo == pytest.approx(p - half, abs=3e-4)
        assert hi == pytest.approx(p + half, abs=3e-4)
    lo95, hi95 = bm.funnel_limits(p, np.array([50.0, 500.0, 5000.0]), 0.95)
    lo998, hi998 = bm.funnel_limits(p, np.array([50.0, 500.0, 5000.0]), 0.998)
    assert list(np.diff(hi95 - lo95) < 0) == [True, True]  # narrower with more cases
    assert all(hi998 > hi95) and all(lo998 < lo95)


def test_funnel_points_positions_and_proportion() -> None:
    values = pl.DataFrame({"org_code": ["A", "B", "C"], "org_name": ["a", "b", "c"],
                           "value": [80.0, 70.0, 90.0], "numerator": [800.0, 350.0, 90.0],
                           "denominator": [1000.0, 500.0, 100.0]})
    p0 = bm.national_proportion(values)
    assert p0 == pytest.approx(1240 / 1600)
    assert bm.can_funnel("percent", values)
    points = bm.funnel_points(values, p0, higher_is_better=True)
    # A: 80% of 1000 against 77.5%: z = 2.5 / 1.32 = 1.9, inside the 95% limits; B: 70% of 500: z = -4.0;
    # C: 90 of 100: the exact binomial tail P(R >= 90 | 100, 0.775) = 0.00098 is under 0.001, beyond 99.8%
    assert binom.sf(89, 100, p0) < 0.001 < binom.sf(88, 100, p0)
    assert points["funnel_position"].to_list() == [
        "Within the limits: consistent with the national rate",
        "Below: beyond the 99.8% limit (worse than the national rate)",
        "Above: beyond the 99.8% limit (better than the national rate)"]
    lower_better = bm.funnel_points(values, p0, higher_is_better=False)["funnel_position"][1]
    assert lower_better == "Below: beyond the 99.8% limit (better than the national rate)"
    assert bm.funnel_points(values, p0, None)["funnel_position"][1] == "Below: beyond the 99.8% limit"
    assert not bm.can_funnel("count", values)
    assert not bm.can_funnel("percent", values.with_columns(pl.lit(2000.0).alias("numerator")))
    assert not bm.can_funnel("percent", values.with_columns(pl.lit(None, pl.Float64).alias("denominator")))
    curve = bm.funnel_curve(p0, 100, 1000)
    assert curve["n"].min() == 80 and curve["n"].max() == 1100
    assert (curve["hi998"] >= curve["hi95"]).all() and (curve["lo95"] <= 100 * p0).all()


def test_ranked_direction_ties_and_ratio_names() -> None:
    values = pl.DataFrame({"org_code": ["A", "B", "C", "D"], "org_name": ["a", "b", "c", "d"],
                           "value": [5.0, 9.0, 5.0, None]})
    assert bm.ranked(values, True).select("org_code", "rank").rows() == [("B", 1), ("A", 2), ("C", 2)]
    assert bm.ranked(values, False).select("org_code", "rank").rows() == [("A", 1), ("C", 1), ("B", 3)]
    assert bm.ranked(values, None)["org_code"].to_list() == ["B", "A", "C"]  # largest first
    assert bm.ratio_parts("rtt_52wk_waiters_pct_of_rtt_waiting_list") == ("rtt_52wk_waiters", "rtt_waiting_list")
    assert bm.ratio_parts("ae_4hr_pct") is None
    assert bm.comparison_level("provider") == "provider"
    assert {bm.comparison_level(x) for x in ("icb", "region", "england")} == {"icb"}
    assert bm.default_metric(["x", "ae_4hr_pct"]) == "ae_4hr_pct" and bm.default_metric([]) is None
    names = {"ae_attendances": "A&E attendances", "ae_attendances_type1": "Type 1 attendances"}
    assert bm.plain_words("100 x a / ae_attendances; ae_attendances_type1 too", names) == \
        "100 x a / a&e attendances; type 1 attendances too"
    assert bm.plain_words(None, names) == ""


def test_peer_reason_and_members_table() -> None:
    row = {"org_code": "T1", "org_name": "Trust One", "peer_group_label": "Acute large: larger",
           "assignment": "clustered", "trust_type": "acute_large", "trust_type_label": "Acute large",
           "type_source": "staff survey 2024 group 'Acute and Acute & Community Trusts'",
           "z_ae_attendances": 1.2, "z_ga_beds": 0.9, "z_workforce_fte": 0.9, "z_deprivation": -0.5,
           "z_specialisation": 0.1, "ambulance_share": 0.0, "ae_attendances_monthly": 19659.75, "ga_beds": 770.0,
           "workforce_fte": 7000.0, "deprivation": 27.7, "specialisation_pct_rank": 0.65, "imputed": None}
    assert bm.peer_reason(row) == ("Acute large trust; size well above average (A&E attendances, beds and staff); "
                                   "deprivation of its patients below average; specialisation about average")
    assert bm.peer_reason({**row, "assignment": "fallback (closed)"}) == \
        "Not grouped: too little data, so it has no peers"
    assert bm.peer_reason({**row, "assignment": "fallback (type unknown)", "trust_type": "other"}).startswith(
        "Not grouped: its type is not published")
    assert bm.peer_reason({**row, "assignment": "nearest_group (not current)"}).startswith("Closed, no recent")
    table = bm.members_table(pl.DataFrame([row]))
    first = table.row(0, named=True)
    assert first["Specialisation (percentile)"] == pytest.approx(65.0)
    assert first["How placed"] == "Grouped with the most similar trusts of its type"
    assert (first["Type"], first["Where the type comes from"]) == ("Acute large", row["type_source"])
    assert bm.members_table(pl.DataFrame([row]).clear()).is_empty()


def test_figures_highlight_the_selected_organisation() -> None:
    frame = bm.ranked(pl.DataFrame({"org_code": ["A", "B"], "org_name": ["a", "b"], "value": [1.0, 2.0]}), True)
    fig = bm.ranked_bar_figure(frame, {"A"}, [("Median", 1.5, theme.NHS_BLACK), ("Missing", None, "red")],
                               unit="percent")
    assert list(fig.data[0].marker.color) == [bm.GREY, theme.NHS_BLUE]  # B is best, first; A highlighted
    assert [t.name for t in fig.data[1:]] == ["Median: 1.5%"]
    points = bm.funnel_points(pl.DataFrame({"org_code": ["A", "B"], "org_name": ["a", "b"], "value": [50.0, 40.0],
                                            "numerator": [50.0, 40.0], "denominator": [100.0, 100.0]}), 0.45, True)
    fig = bm.funnel_figure(points, bm.funnel_curve(0.45, 100, 100), 0.45, {"B"}, reference=("Region", 44.0))
    names = [t.name for t in fig.data]
    assert "Selected" in names and "Other organisations" in names and "Region: 44.0%" in names
    assert bm.ranked_bar_figure(frame.clear(), set(), []).layout.annotations[0].text == "No organisation to show"


# ---- data functions over a tiny served database -----------------------------------------------------------------

def _create(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    con.register("frame", frame)
    con.execute(f"create table {table} as select * from frame")
    con.unregister("frame")


@pytest.fixture
def tiny(tmp_path: Path) -> Serving:
    """Three NHS trusts (T1, T2 in peer group 1, T3 in group 2), an independent provider and two ICBs."""
    orgs = pl.DataFrame({"org_code": ["T1", "T2", "T3", "IP1", "I1", "I2"],
                         "org_name": ["TRUST ONE NHS TRUST", "TRUST TWO NHS TRUST", "TRUST THREE NHS TRUST",
                                      "PRIVATE CLINIC", "NHS ICB ONE", "NHS ICB TWO"],
                         "org_type": ["nhs_trust"] * 3 + ["independent_or_other_provider", "icb", "icb"],
                         "parent_icb_code": ["I1", "I1", "I2", "I1", None, None],
                         "region_code": ["R1", "R1", "R2", "R1", "R1", "R2"]}).with_columns(
        valid_to=pl.lit(None, dtype=pl.Date))  # every ICB here is an ICB of today
    rows = []
    for month in (MAR, APR):
        for org, level, num, den in (("T1", "provider", 800, 1000), ("T2", "provider", 350, 500),
                                     ("T3", "provider", 90, 100), ("IP1", "provider", 99, 100),
                                     ("I1", "icb", 1150, 1500), ("I2", "icb", 90, 100)):
            rows.append((org, level, month, "ae_4hr_pct", 100 * num / den, num, den))
    rows += [("T1", "provider", MAR, "rtt_52wk_waiters", 10.0, None, None),
             ("T1", "provider", MAR, "rtt_waiting_list", 1000.0, None, None),
             ("T2", "provider", MAR, "rtt_52wk_waiters", 5.0, None, None),
             ("T2", "provider", MAR, "rtt_waiting_list", 0.0, None, None)]
    values = pl.DataFrame(rows, schema=["org_code", "org_level", "period_start", "metric_id", "value", "numerator",
                                        "denominator"], orient="row").with_columns(
        pl.lit("month").alias("period_grain"), pl.col("numerator", "denominator").cast(pl.Float64))
    catalogue = pl.DataFrame({"metric_id": ["ae_4hr_pct", "rtt_52wk_waiters", "rtt_waiting_list"],
                              "name": ["A&E four-hour performance", "52-week waiters", "RTT waiting list"],
                              "definition": ["Seen within 4 hours", "Waiting over 52 weeks", "Waiting"],
                              "unit": ["percent", "count", "count"], "higher_is_better": [True, False, False],
                              "formula": ["percent", "count", "count"], "source": ["ae", "rtt", "rtt"]})
    bench_rows = [("ae_4hr_pct", m, "national", None, None) for m in (MAR, APR, JUN)] + [
        ("ae_4hr_pct", MAR, "national_icb", None, None), ("ae_4hr_pct", MAR, "peer", 1, None),
        ("ae_4hr_pct", MAR, "type", None, "acute"),
        ("rtt_52wk_waiters_pct_of_rtt_waiting_list", MAR, "national", None, None)]
    benchmarks = pl.DataFrame(bench_rows, schema=["metric_id", "period_start", "scope", "peer_group_id",
                                                  "comparison_type"], orient="row").with_columns(
        pl.col("peer_group_id").cast(pl.Int64), pl.lit(3).alias("n_orgs"), pl.lit(80.0).alias("median"),
        pl.lit(85.0).alias("top_quartile"), pl.lit(75.0).alias("bottom_quartile"),
        pl.lit(True).alias("higher_is_better"), pl.lit("month").alias("period_grain"), pl.lit("m").alias("method"))
    peers = pl.DataFrame({"org_code": ["T1", "T2", "T3"], "org_name": ["TRUST ONE NHS TRUST", "TRUST TWO NHS TRUST",
                                                                       "TRUST THREE NHS TRUST"],
                          "peer_group_id": [1, 1, 2], "peer_group_label": ["Acute large", "Acute large", "Community"],
                          "trust_type": ["acute_large", "acute_large", "community"],
                          "trust_type_label": ["Acute large", "Acute large", "Community"],
                          "comparison_type": ["acute", "acute", "community"],
                          "type_source": ["staff survey 2024 group"] * 3,
                          "n_members": [2, 2, 1], "assignment": ["clustered"] * 3}).with_columns(
        *(pl.lit(1.0).alias(c) for c in ("ae_attendances_monthly", "ga_beds", "workforce_fte", "deprivation",
                                         "specialisation_pct_rank", "ambulance_share", "z_ae_attendances",
                                         "z_ga_beds", "z_workforce_fte", "z_deprivation", "z_specialisation",
                                         "z_ambulance_share")),
        pl.lit(None, pl.String).alias("imputed"), pl.lit("kmeans").alias("method"),
        pl.lit("kmeans k=2").alias("method_detail"))
    scores = pl.DataFrame({"metric_id": ["rtt_52wk_waiters_pct_of_rtt_waiting_list"],
                           "metric_name": ["RTT: 52-week waiters as % of the waiting list"], "unit": ["percent"],
                           "formula": ["100 x rtt_52wk_waiters / rtt_waiting_list"]})
    path = tmp_path / "serving.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema s1_current_state; create schema s2_triple_aim")
    for table, frame in (("s1_current_state.organisations", orgs), ("s1_current_state.metric_values", values),
                         ("s1_current_state.metric_catalogue", catalogue), ("s2_triple_aim.benchmarks", benchmarks),
                         ("s2_triple_aim.peer_groups", peers), ("s2_triple_aim.scores", scores)):
        _create(con, table, frame)
    con.close()
    return Serving(path)


def test_values_are_the_benchmarked_population(tiny: Serving) -> None:
    trusts = bm.values_at(tiny, "ae_4hr_pct", "provider", MAR)
    assert trusts["org_code"].to_list() == ["T1", "T2", "T3"]  # no independent provider
    assert trusts["org_name"].to_list() == ["Trust One NHS Trust", "Trust Two NHS Trust", "Trust Three NHS Trust"]
    assert trusts.select("value", "numerator", "denominator", "peer_group_id").row(1) == (70.0, 350.0, 500.0, 1)
    assert trusts["comparison_type"].to_list() == ["acute", "acute", "community"]
    assert bm.values_at(tiny, "ae_4hr_pct", "icb", MAR)["org_code"].to_list() == ["I1", "I2"]
    ratio = bm.values_at(tiny, "rtt_52wk_waiters_pct_of_rtt_waiting_list", "provider", MAR)
    assert ratio.select("org_code", "value", "numerator", "denominator").rows() == [("T1", 1.0, 10.0, 1000.0)]
    assert bm.own_value(tiny, "T2", "ae_4hr_pct", APR) == pytest.approx(70.0)
    assert bm.own_value(tiny, "T2", "ae_4hr_pct", JUN) is None


def test_choices_months_benchmarks_and_peers(tiny: Serving) -> None:
    t1 = bm.metric_choices(tiny, "provider", "T1", JUN)
    assert dict(zip(t1["metric_id"], t1["name"])) == {
        "ae_4hr_pct": "A&E four-hour performance",
        "rtt_52wk_waiters_pct_of_rtt_waiting_list": "RTT: 52-week waiters as % of the waiting list"}
    assert bm.metric_choices(tiny, "provider", "T3", JUN)["metric_id"].to_list() == ["ae_4hr_pct"]
    assert bm.metric_choices(tiny, "provider", "IP1", JUN).is_empty()
    assert bm.metric_choices(tiny, "icb", "I1", JUN)["metric_id"].to_list() == ["ae_4hr_pct"]
    assert bm.metric_choices(tiny, "provider", "T1", date(2024, 2, 1)).is_empty()  # nothing benchmarked yet
    assert bm.benchmark_month(tiny, "ae_4hr_pct", "provider", date(2024, 5, 1)) == APR
    assert bm.benchmark_month(tiny, "ae_4hr_pct", "icb", date(2024, 12, 1)) == MAR
    assert bm.benchmark_month(tiny, "ae_4hr_pct", "provider", date(2024, 2, 1)) is None
    bench = bm.benchmarks_at(tiny, "ae_4hr_pct", MAR)
    assert sorted(bench["scope"].to_list()) == ["national", "national_icb", "peer", "type"]
    assert bm.benchmark_line(bench, "peer", "median", 1) == 80.0
    assert bm.benchmark_line(bench, "type", "median", comparison_type="acute") == 80.0
    assert bm.benchmark_line(bench, "type", "median", comparison_type="community") is None
    assert bm.benchmark_line(bench, "peer", "median", 2) is None
    assert bm.peer_group(tiny, "T2")["org_code"].to_list() == ["T1", "T2"]
    assert bm.peer_group(tiny, "IP1").is_empty()


# ---- the page over the published database ------------------------------------------------------------------------

def _table(at, column: str) -> pl.DataFrame:
    """The displayed table that has this column."""
    for df in at.dataframe:
        if column in df.value.columns:
            return pl.from_pandas(df.value)
    raise AssertionError(f"no table with {column}")


def _read_back(frame: pl.DataFrame, shown: pl.DataFrame) -> None:
    csv = pl.read_csv(io.BytesIO(exports.csv_bytes(frame)), infer_schema_length=None)
    xlsx = pl.read_excel(io.BytesIO(exports.excel_bytes(frame, "t")), infer_schema_length=None)
    for back in (csv, xlsx):
        assert_frame_equal(back, shown, check_dtypes=False)


def test_trust_against_peers_and_nationally(app, served_db: Path) -> None:
    at = app(page="benchmarking.py", org="RXL")
    text = page_text(at)
    assert "Benchmarking" in [t.value for t in at.title]
    assert at.selectbox(key="bench_metric").value == "ae_4hr_pct"
    for words in ("Against the peer group", "Against all general acute trusts nationally",
                  "Who is in the peer group, and why", "Trusts are only ever grouped with trusts of the same type",
                  "A funnel plot"):
        assert words in text, words
    assert len(at.get("plotly_chart")) == 2  # peer bars and national funnel
    db = Serving(served_db)
    sel = at.session_state["ibp_selection"]
    month = bm.benchmark_month(db, "ae_4hr_pct", "provider", sel.period_to)
    national = _table(at, "Funnel position")
    n_orgs = db.query("select n_orgs from s2_triple_aim.benchmarks where metric_id = 'ae_4hr_pct' "
                      "and scope = 'type' and comparison_type = 'acute' and period_start = ?", [month])["n_orgs"][0]
    assert national.height == n_orgs and set(national["Out of"]) == {n_orgs}
    rxl = national.filter(pl.col("Code") == "RXL").row(0, named=True)
    expected = db.query("select value, numerator, denominator from s1_current_state.metric_values where org_code = "
                        "'RXL' and metric_id = 'ae_4hr_pct' and period_start = ?", [month]).row(0, named=True)
    assert rxl["Value (percent)"] == pytest.approx(expected["value"])
    assert rxl["Denominator"] == pytest.approx(expected["denominator"])
    assert rxl["Lower 95% limit"] < rxl["Upper 95% limit"]
    members = _table(at, "Why in this group")
    group = db.query("select org_code from s2_triple_aim.peer_groups where peer_group_id = "
                     "(select peer_group_id from s2_triple_aim.peer_groups where org_code = 'RXL')")
    assert set(members["Code"]) == set(group["org_code"]) and "RXL" in set(members["Code"])
    downloads = at.session_state["ibp_downloads"]
    _read_back(next(v for k, v in downloads.items() if k.startswith("benchmark-a-e-four-hour-performance-general-"
                                                                    "acute-trusts-rxl")), national)
    _read_back(downloads[f"peer-group-members-rxl-{sel.period_to:%Y-%m}"], members)

    # a measure with no better direction and no percentage: ranked bars, largest first, other values
    at.selectbox(key="bench_metric").select("ae_attendances").run()
    assert not at.exception
    assert "largest first" in page_text(at) and "A funnel plot" not in page_text(at)
    counts = _table(at, "Value (count)")
    assert "Funnel position" not in counts.columns
    assert counts["Value (count)"].to_list() == sorted(counts["Value (count)"].to_list(), reverse=True)


def test_england_and_icb_compare_icbs(app, served_db: Path) -> None:
    at = app(page="benchmarking.py")
    assert "Peer groups are for NHS trusts" in page_text(at)
    assert "Against all ICBs nationally" in page_text(at)
    assert len(at.get("plotly_chart")) == 1
    icbs = _table(at, "Funnel position")
    assert icbs.height == len(icbs_of_today())
    assert "Against the peer group" not in page_text(at)
    at.selectbox(key="ibp_org").select("QE1").run()
    assert not at.exception
    assert "Rank among ICBs" in page_text(at)
    qe1 = _table(at, "Funnel position").filter(pl.col("Code") == "QE1")
    assert qe1.height == 1 and 1 <= qe1["Rank"][0] <= len(icbs_of_today())


def test_trust_user_sees_only_their_trust_icb_and_peers(app, served_db: Path, tmp_path: Path) -> None:
    users = tmp_path / "users.yaml"
    users.write_text(yaml.safe_dump({"users": [{"username": "rxl", "role": "trust", "org_code": "RXL",
                                                "password_hash": access.hash_password("secret-pw")}]}))
    at = app(users_file=users)
    at.text_input(key="login_username").input("rxl")
    at.text_input(key="login_password").input("secret-pw")
    next(b for b in at.button if b.label == "Log in").click().run()
    at.switch_page("app_pages/benchmarking.py").run()
    assert not at.exception
    sel = at.session_state["ibp_selection"]
    assert sel.org_code == "RXL" and sel.visible is not None
    national = _table(at, "Funnel position")
    assert set(national["Code"]) <= sel.visible and "RXL" in set(national["Code"])
    total = national["Out of"][0]
    assert national.height < total  # other trusts are left out, the rank still counts them all
    assert set(_table(at, "Why in this group")["Code"]) <= sel.visible
    assert "Your account sees" in page_text(at)
    assert not math.isnan(national.filter(pl.col("Code") == "RXL")["Rank"][0])


# ---- peer groups a leader would accept, on the real bundled data ---------------------------------------------------
CHILDRENS = ("RP4", "RBS", "RCU", "RQ3")  # Great Ormond Street, Alder Hey, Sheffield Children's, Birmingham W&C
NOT_ACUTE_PEERS = {"community", "mental_health", "ambulance", "children"}


def published_kinds() -> dict[str, str]:
    """Each trust's kind read here from the bundled source files with csv (not through the code under test): the
    NHS Staff Survey 2024 benchmarking group, else the ERIC 2019/20 trust type; an ERIC 'ACUTE - SPECIALIST' trust
    named for children is 'children', other specialists 'specialist', every other acute trust 'acute'."""
    import csv
    import gzip

    from ibp_pipeline.config import PROJECT_ROOT

    sources = PROJECT_ROOT / "data" / "sources"
    with gzip.open(sources / "staff_survey_nss_2024_org" / "nss2024_org_theme_scores.csv.gz", "rt",
                   encoding="utf-8", newline="") as fh:
        nss = {r["org_code"].strip().upper(): r["benchmarking_group"].lower() for r in csv.DictReader(fh)}
    with gzip.open(sources / "estates_eric_2019_20_site" / "eric_2019_20_site_data.csv.gz", "rt",
                   encoding="utf-8", errors="replace", newline="") as fh:
        eric = {r["Trust Code"].strip().upper(): (r["Trust Type"].strip().upper(), r["Trust Name"].upper())
                for r in csv.DictReader(fh)}
    kinds = {}
    for code in set(nss) | set(eric):
        group = nss.get(code, "")
        etype, name = eric.get(code, ("", ""))
        if etype == "ACUTE - SPECIALIST":
            kinds[code] = "children" if "CHILDREN" in name.replace("'", "") else "specialist"
        elif group.startswith("acute specialist"):
            kinds[code] = "specialist"
        elif group.startswith("acute"):
            kinds[code] = "acute"
        elif group.startswith(("community trusts", "mental health", "ambulance")):
            kinds[code] = {"c": "community", "m": "mental_health", "a": "ambulance"}[group[0]]
        elif etype.startswith("ACUTE"):
            kinds[code] = "acute"
        elif etype:
            kinds[code] = {"COMMUNITY": "community", "AMBULANCE": "ambulance"}.get(etype, "mental_health")
    return kinds


def _mixes_acute_with_others(codes: list[str], kinds: dict[str, str]) -> bool:
    found = {kinds.get(c) for c in codes}
    return "acute" in found and bool(found & NOT_ACUTE_PEERS)


def test_real_peer_groups_and_ranks_stay_within_trust_type(served_db: Path, record_property) -> None:
    kinds = published_kinds()
    assert {kinds[c] for c in CHILDRENS} == {"children"} and kinds["RXL"] == "acute"
    db = Serving(served_db)
    groups = db.query("select org_code, peer_group_id, peer_group_label, trust_type_label, assignment "
                      "from s2_triple_aim.peer_groups")
    grouped = groups.filter(pl.col("peer_group_id") != 0)
    members = grouped.group_by("peer_group_id", "peer_group_label").agg(pl.col("org_code")).sort("peer_group_id")
    # no acute trust has a community, mental health, ambulance or specialist children's trust as a peer
    mixed = [r["peer_group_label"] for r in members.iter_rows(named=True)
             if _mixes_acute_with_others(r["org_code"], kinds)]
    assert mixed == []
    assert sum(kinds.get(c) == "acute" for c in grouped["org_code"]) >= 100
    # group names say the type
    assert all(label.split(":")[0] in set(grouped["trust_type_label"]) for label in members["peer_group_label"])
    # the children's hospitals are one group of their own, never with a district general hospital such as RXL
    by = dict(zip(groups["org_code"], groups["peer_group_id"]))
    label = dict(zip(groups["org_code"], groups["peer_group_label"]))
    assert {by[c] for c in CHILDRENS} == {by["RP4"]} and label["RP4"] == "Specialist children's"
    assert by["RXL"] not in {by[c] for c in CHILDRENS} and label["RXL"].startswith("Acute")
    # national ranks (aim scores) and national benchmarks are within comparable types only
    ranks = db.query("select org_code, period_start, aim, comparison_type from s2_triple_aim.aim_scores "
                     "where org_level = 'provider' and national_rank is not null")
    by_ranking = ranks.group_by("period_start", "aim", "comparison_type").agg(pl.col("org_code"))
    assert by_ranking.height > 100
    assert not any(_mixes_acute_with_others(codes, kinds) for codes in by_ranking["org_code"])
    assert set(ranks["comparison_type"]) >= {"acute", "mental_health", "community", "ambulance"}
    month = db.query("select max(period_start) as m from s2_triple_aim.benchmarks where metric_id = 'ae_4hr_pct' "
                     "and scope = 'type'")["m"][0]
    acute_n = db.query("select n_orgs from s2_triple_aim.benchmarks where metric_id = 'ae_4hr_pct' and scope = "
                       "'type' and comparison_type = 'acute' and period_start = ?", [month])["n_orgs"][0]
    all_n = db.query("select n_orgs from s2_triple_aim.benchmarks where metric_id = 'ae_4hr_pct' and scope = "
                     "'national' and period_start = ?", [month])["n_orgs"][0]
    assert 100 <= acute_n < all_n
    sizes = grouped.group_by("peer_group_label").len().sort("len", descending=True)
    record_property("peer_groups", "; ".join(f"{r['peer_group_label']}: {r['len']}"
                                             for r in sizes.iter_rows(named=True)))


def test_benchmarking_page_ranks_rxl_among_general_acute_trusts_only(app) -> None:
    kinds = published_kinds()
    at = app(page="benchmarking.py", org="RXL")
    national = _table(at, "Funnel position")
    assert national.height >= 100
    assert {kinds.get(c) for c in national["Code"]} <= {"acute", None}
    members = _table(at, "Why in this group")
    assert not set(members["Code"]) & set(CHILDRENS)
    assert members["Why in this group"].str.contains("Acute teaching trust").all()
    assert members["Type"].unique().to_list() == ["Acute teaching"]
    text = page_text(at)
    for code_like in ("z_", "_pct", "peer_groups", "s2_triple_aim", "metric_id", "ae_attendances"):
        assert code_like not in text, code_like


def test_funnel_axis_ticks_in_full_with_thousands() -> None:
    """The funnel's log axis read '2 3 4 ... 100k'; it reads 1-2-5 steps (powers of ten over a wide range)."""
    from ibp_pipeline.dashboards.benchmarking import log_ticks
    assert log_ticks(150, 120_000) == ([100, 1000, 10000, 100000], ["100", "1,000", "10,000", "100,000"])
    assert log_ticks(2_000, 30_000) == ([2000, 5000, 10000, 20000], ["2,000", "5,000", "10,000", "20,000"])
    assert log_ticks(0, 10) == ([], [])
