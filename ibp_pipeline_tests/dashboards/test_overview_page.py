"""Overview page and board pack: real app, real served database."""
from __future__ import annotations

import io
from datetime import date

import polars as pl

from ibp_pipeline.dashboards import exports, overview
from ibp_pipeline.dashboards.serving import Serving

from .conftest import page_text


def _tiles(at) -> list[str]:
    return [m.value for m in at.markdown if 'class="ibp-tile"' in m.value]


def test_overview_for_england_and_a_trust(app, served_db):
    at = app()
    text = page_text(at)
    assert "Overview" in text and "Key standards" in text and "What changed since last month" in text
    england_tiles = _tiles(at)
    assert len(england_tiles) >= 5 and any("A&amp;E four-hour performance" in t for t in england_tiles)
    at.selectbox(key="ibp_org").select("RXL").run()
    assert not at.exception
    rxl_tiles = _tiles(at)
    assert rxl_tiles and rxl_tiles != england_tiles
    # the A&E tile shows the published figure of the latest month in the period
    db = Serving(served_db)
    latest = db.query("select value from s1_current_state.metric_values where org_code = 'RXL' and metric_id = "
                      "'ae_4hr_pct' order by period_start desc limit 1")["value"][0]
    assert any(f"{latest:.1f}%" in t for t in rxl_tiles)
    assert [m.label for m in at.metric][:5] == ["Overall", "Quality of care", "Our people", "Population health",
                                                "Efficiency (beds and staff)"]


def test_scorecard_says_the_scale_the_peers_and_what_is_not_scored(app, served_db):
    at = app(org="RXL")
    text = page_text(at)
    db = Serving(served_db)
    sel = at.session_state["ibp_selection"]
    card = overview.scorecard(db, "RXL", sel.period_to)
    overall = card.row(0, named=True)
    # the figures shown are the published ones, with the scale and the peer rank in words
    shown = {m.label: m.value for m in at.metric}
    assert shown["Overall"] == f"{overall['score']:.2f}"
    assert f"1 = best: {overall['peer_rank']} of {overall['peer_n']} in its peer group" in text
    assert "1 (best quarter of the general acute trusts nationally) to 4" in text
    assert overall["standing"].startswith("Peer quartile: ") and overall["standing"] in text
    assert "Segment" not in text and "Oversight Framework" not in text.replace(
        "not the NHS Oversight Framework", "")
    # no money measure per trust: said, and the aim is not called cost
    assert "No money measure per trust" in text and "Cost and efficiency" not in text
    # deprivation is context beside the trust, never a score
    measures = overview.aim_measures(db, "RXL", overall["period_start"])
    dep = measures.filter(pl.col("metric_name").str.contains("Deprivation"))
    assert dep.height == 1 and dep["score"][0] is None and "Context, not scored: Deprivation" in text
    table = next(pl.from_pandas(d.value) for d in at.dataframe if "Score (1 best, 4 worst)" in d.value.columns)
    assert table.height == measures.height
    assert "Staff engagement (staff survey)" in set(table["Measure"])
    assert not table["Measure"].str.contains("_").any()  # plain names, never ids
    for code_like in ("_pct", "aim_scores", "s2_triple_aim", "metric_id", "quality_of_care"):
        assert code_like not in text, code_like


def test_scorecard_frames_by_hand() -> None:
    frame = pl.DataFrame({"aim": ["efficiency", "population_health"], "metric_name": ["Bed occupancy", "Deprivation"],
                          "value": [93.5, 30.25], "unit": ["percent", "score"],
                          "value_period_start": [date(2025, 3, 1), date(2025, 1, 1)], "score": [2, None],
                          "n_orgs_compared": [118, None]})
    table = overview.measures_table(frame)
    assert table.rows() == [("Efficiency (beds and staff)", "Bed occupancy", "93.5%", "Mar 2025", 2,
                             "118 organisations"),
                            ("Population health", "Deprivation", "30.25", "Jan 2025", None, "context: not scored")]
    assert overview.rank_text(3, 9, "in its peer group") == "3 of 9 in its peer group"
    assert overview.rank_text(None, 9, "x") == "-"


def test_period_selector_moves_the_tiles_back_in_time(app):
    at = app(org="RXL")
    now = _tiles(at)
    at.select_slider(key="ibp_period").set_value((date(2022, 1, 1), date(2024, 6, 1))).run()
    assert not at.exception
    earlier = _tiles(at)
    assert earlier != now and any("Jun 2024" in t for t in earlier) and not any("Jul 2025" in t for t in earlier)


def test_tiles_table_download_and_board_pack(app):
    at = app(org="RXL")
    frames = at.session_state["ibp_downloads"]
    name = next(k for k in frames if k.startswith("key-standards-rxl"))
    shown = frames[name]
    back_csv = pl.read_csv(io.BytesIO(exports.csv_bytes(shown)))
    back_xlsx = pl.read_excel(io.BytesIO(exports.excel_bytes(shown, "key standards")))
    assert back_csv.height == back_xlsx.height == shown.height > 0
    assert back_xlsx["measure"].to_list() == shown["measure"].to_list()
    next(b for b in at.button if b.label == "Prepare board pack").click().run()
    assert not at.exception
    org, period, pack = at.session_state["ibp_board_pack"]
    assert org == "RXL" and "Blackpool Teaching Hospitals" in pack
    assert pack.count('class="plotly-graph-div"') >= 5 and "Gaps to the standards" in pack


def test_change_sentences_on_known_values():
    frame = pl.DataFrame({
        "metric_name": ["A&E", "Occupancy"], "unit": ["percent", "percent"], "value": [80.0, 93.0],
        "prev_value": [78.0, 93.0], "change": [2.0, 0.0], "higher_is_better": [True, False],
        "period_start": [date(2025, 7, 1)] * 2, "prev_period": [date(2025, 6, 1)] * 2,
        "point_type": ["special_cause_improvement", "common_cause"], "special_cause_type": ["Above UCL", None],
        "meets_target": [True, False]})
    assert overview.change_sentences(frame) == [
        "A&E: 80.0% in Jul 2025, up 2.0 points on Jun 2025 (better); special cause improvement (Above UCL); "
        "meets its target.",
        "Occupancy: 93.0% in Jul 2025, unchanged on Jun 2025; misses its target."]


def test_a_value_equal_to_its_ceiling_as_shown_meets_it():
    """An occupancy of 92.04%, shown as 92.0%, was marked 'misses' against a 92% ceiling."""
    frame = pl.DataFrame({"value": [92.04, 92.06, 95.0, 80.0], "target_value": [92.0, 92.0, 95.0, 90.0],
                          "direction": ["at_most", "at_most", "at_least", None], "unit": ["percent"] * 4,
                          "meets_target": [False, False, True, False]})
    assert overview.judged_as_shown(frame)["meets_target"].to_list() == [True, False, True, False]


def test_scored_measures_in_words():
    """The scorecard's tooltip read 'ae_4hr_pct=2' (and 'ae 4hr pct=2' in the board pack)."""
    names = {"ae_4hr_pct": "A&E four-hour performance", "rtt_18wk_pct": "RTT under 18 weeks"}
    assert overview.scored_measures("ae_4hr_pct=2; rtt_18wk_pct=3.5", names) == \
        "A&E four-hour performance (quartile 2), RTT under 18 weeks (quartile 3.5)"
    assert overview.scored_measures("efficiency=2.0; quality_of_care=3.0", names) == \
        "Efficiency (beds and staff) (quartile 2), Quality of care (quartile 3)"
    assert overview.scored_measures(None, names) == "none"
    assert overview.scored_measures("rtt_18wk_pct_pct_of_ae_4hr_pct=1", names) == \
        "RTT under 18 weeks as a percentage of A&E four-hour performance (quartile 1)"
