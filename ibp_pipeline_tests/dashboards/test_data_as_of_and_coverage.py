"""Every page and the board pack say the latest month loaded of the measures they show, by publication family, and
which families are behind their publication calendar; where the providers an England, region or ICB total covers
change (its source changed), the series charts mark the month with a dotted line and a note, and say it on hover."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from ibp_pipeline.step1_current_state import freshness
from ibp_pipeline.step1_current_state.sources import BY_NAME
from ibp_pipeline.dashboards import board_pack, charts, data_quality, overview
from ibp_pipeline.dashboards.serving import Serving

from .conftest import make_serving, page_text

LATEST = {"metric_id": pl.String, "name": pl.String, "latest": pl.Date, "source": pl.String}
RTT_NEW = BY_NAME["rtt_full_extract"]
RTT_OLD = BY_NAME["rtt_incomplete"]


def _latest(rows: list[tuple[str, str, date, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=LATEST, orient="row")


# ---- the "latest month loaded" line -----------------------------------------------------------------------------

def test_latest_month_line_groups_by_family_and_says_which_are_behind() -> None:
    today = date(2026, 1, 20)
    latest = _latest([
        ("rtt_waiting_list", "RTT waiting list", date(2025, 11, 1), "rtt_full_extract"),
        ("ae_4hr_pct", "A&E four-hour performance", date(2025, 12, 1), "ae_monthly_official"),
        ("ae_attendances", "A&E attendances", date(2025, 12, 1), "ae_monthly_official"),
        ("rtt_52wk_all_rtt_parts", "RTT 52+ week waits", date(2025, 2, 1), "rtt_long_waits"),
        ("kh03_ga_beds_available", "Beds open overnight", date(2025, 4, 1), "kh03_web_file"),
    ])
    line, behind = data_quality.data_as_of(latest, today)
    # one item per family, in the families' order, however the rows come; a measure ending earlier is named
    assert line == ("Latest month loaded: A&E December 2025 · RTT waiting times November 2025 (RTT 52+ week waits: "
                    "February 2025) · Beds (KH03) April to June 2025")
    # behind: the Data quality page's own sentence, for the family's latest source only
    expected = {name: freshness.publication_status(source, month, today)
                for name, source, month in (("A&E", "ae_monthly_official", date(2025, 12, 1)),
                                            ("RTT waiting times", "rtt_full_extract", date(2025, 11, 1)),
                                            ("Beds (KH03)", "kh03_web_file", date(2025, 4, 1)))}
    stale = [name for name, pub in expected.items() if pub.status == "Stale"]
    assert stale == ["Beds (KH03)"]  # KH03 July to September 2025 was expected by 25 November 2025
    assert behind == [f"Beds (KH03) b{expected['Beds (KH03)'].sentence[1:]}"]
    assert "was expected by 25 November 2025" in behind[0]
    # a later day: A&E's January 2026 file was due on 12 February 2026
    assert any(s.startswith("A&E behind: the January 2026 A&E file was due on 12 February 2026")
               for s in data_quality.data_as_of(latest, date(2026, 3, 1))[1])
    assert data_quality.data_as_of(latest.clear(), today) == ("", [])


def test_a_source_outside_the_families_is_named_by_its_title() -> None:
    line, _ = data_quality.data_as_of(_latest([("x", "X", date(2024, 3, 1), "staff_survey_2024"),
                                              ("y", "Y", date(2024, 3, 1), "not_a_source")]), date(2024, 4, 1))
    assert f"{BY_NAME['staff_survey_2024'].title} March 2024" in line
    assert "not_a_source March 2024" in line


def test_latest_months_takes_the_latest_period_and_its_first_source(tmp_path: Path) -> None:
    rows = [("AAA", date(2025, 3, 1), "rtt_waiting_list", "rtt_incomplete", 2),
            ("BBB", date(2026, 4, 1), "rtt_waiting_list", "rtt_incomplete", 2),
            ("ENGLAND", date(2026, 4, 1), "rtt_waiting_list", "rtt_full_extract, rtt_incomplete", 1),
            ("AAA", date(2026, 4, 1), "rtt_52wk_waiters", "rtt_full_extract", 1),
            ("AAA", date(2025, 12, 1), "ae_4hr_pct", "ae_monthly_official", 1)]
    values = pl.DataFrame(rows, schema={"org_code": pl.String, "period_start": pl.Date, "metric_id": pl.String,
                                        "source": pl.String, "precedence": pl.Int32}, orient="row")
    catalogue = pl.DataFrame({"metric_id": ["rtt_waiting_list"], "name": ["RTT waiting list"]})
    db = make_serving(tmp_path / "s.duckdb", {"s1_current_state.metric_values": values,
                                              "s1_current_state.metric_catalogue": catalogue})
    got = data_quality.latest_months(db, ("rtt_52wk_waiters_pct_of_rtt_waiting_list",))
    assert got.rows() == [("rtt_52wk_waiters", "rtt_52wk_waiters", date(2026, 4, 1), "rtt_full_extract"),
                          ("rtt_waiting_list", "RTT waiting list", date(2026, 4, 1), "rtt_full_extract")]
    assert data_quality.latest_months(db)["metric_id"].to_list() == ["ae_4hr_pct", "rtt_52wk_waiters",
                                                                     "rtt_waiting_list"]
    assert data_quality.latest_months(db, ()).is_empty()


# ---- coverage marks on the charts -------------------------------------------------------------------------------

def _series(coverage_old: str | None, coverage_new: str | None) -> pl.DataFrame:
    """RTT-like: April 2024 to March 2025 from one source, a gap, then April and May 2026 from another."""
    months = [date(2024, m, 1) for m in range(4, 13)] + [date(2025, m, 1) for m in (1, 2, 3)] \
        + [date(2026, 4, 1), date(2026, 5, 1)]
    return pl.DataFrame({"period_start": months, "value": [float(i) for i in range(len(months))],
                         "coverage": [coverage_old] * 12 + [coverage_new] * 2},
                        schema_overrides={"coverage": pl.String})


def _dotted(fig) -> list:
    return [s for s in fig.layout.shapes if s.line.dash == "dot"]


def test_coverage_change_is_found_and_phrased_from_the_values() -> None:
    old = f"{RTT_OLD.title}: NHS trusts only"
    new = f"{RTT_NEW.title}: {RTT_NEW.coverage}"
    frame = _series(old, new)
    assert charts.coverage_changes(frame) == [(date(2026, 4, 1), new, old)]
    assert charts.coverage_notes(frame) == [f"From April 2026: {RTT_NEW.coverage}; before: NHS trusts only"]
    # restated ICB months, and two sources that say the same words: the sources then tell them apart
    assert charts.coverage_phrase(old + " Restated: the ICB of today (April 2026 boundaries) summed ...") == \
        "NHS trusts only (restated on today's ICBs)"
    same = charts.coverage_notes(_series(f"{RTT_OLD.title}: the organisations in the file",
                                         f"{RTT_NEW.title}: the organisations in the file"))
    assert same == [f"From April 2026: {RTT_NEW.title}: the organisations in the file; before: {RTT_OLD.title}: "
                    "the organisations in the file"]
    # no change, no coverage (a trust's own figures), or a change only in a month without a value: nothing
    assert charts.coverage_changes(_series(old, old)) == []
    assert charts.coverage_changes(_series(None, None)) == []
    assert charts.coverage_changes(frame.drop("coverage")) == []
    assert charts.coverage_changes(frame.with_columns(
        value=pl.when(pl.col("coverage") == new).then(None).otherwise(pl.col("value")))) == []


def test_spc_and_fan_charts_mark_the_change_and_hover_says_the_coverage() -> None:
    old, new = f"{RTT_OLD.title}: NHS trusts only", f"{RTT_NEW.title}: {RTT_NEW.coverage}"
    frame = _series(old, new)
    spc = frame.with_columns(mean=pl.lit(5.0), lpl=pl.lit(0.0), upl=pl.lit(10.0), point_type=pl.lit("common_cause"),
                             special_cause_type=pl.lit("Common Cause"))
    empty_forecast = pl.DataFrame(schema={"period_start": pl.Date, "mean": pl.Float64, "lo80": pl.Float64,
                                          "hi80": pl.Float64, "lo95": pl.Float64, "hi95": pl.Float64})
    for fig, points in ((charts.spc_figure(spc, unit="count"), "Common cause"),
                        (charts.fan_figure(frame, empty_forecast), "Actual")):
        lines = _dotted(fig)
        assert [str(s.x0)[:10] for s in lines] == ["2026-04-01"]
        assert (lines[0].yref, lines[0].y0, lines[0].y1) == ("paper", 0, 1)
        notes = [a for a in fig.layout.annotations if a.text.startswith("From April 2026:")]
        assert len(notes) == 1 and "before: NHS trusts only" in notes[0].hovertext.replace("<br>", " ")
        trace = next(t for t in fig.data if t.name == points)
        hover = [str(c[-1] if isinstance(c, (list, tuple)) else c) for c in trace.customdata]
        covered = [h.replace("<br>", " ") for h in hover if h]
        assert any(f"Covers: {RTT_NEW.title}" in h for h in covered)
        assert any("NHS trusts only" in h for h in covered)
    # a trust's series (no coverage) draws no mark
    assert _dotted(charts.spc_figure(spc.drop("coverage"), unit="count")) == []


# ---- over the published data ------------------------------------------------------------------------------------

def _england_rtt(served_db: Path) -> tuple[date, date]:
    """Independently of the dashboards: England RTT waiting list's latest month loaded (any organisation) and the
    first month whose coverage differs from the month before."""
    con = duckdb.connect(str(served_db), read_only=True)
    try:
        latest = con.execute("select max(period_start) from s1_current_state.metric_values "
                             "where metric_id = 'rtt_waiting_list'").fetchone()[0]
        change = con.execute("""
            select min(period_start) from (
                select period_start, coverage, lag(coverage) over (order by period_start) as before
                from s1_current_state.metric_values where org_code = 'ENGLAND' and metric_id = 'rtt_waiting_list')
            where before is not null and coverage <> before""").fetchone()[0]
    finally:
        con.close()
    assert latest is not None and change is not None, "England RTT has no coverage change in the served data"
    return latest, change


def test_performance_page_says_the_latest_month_and_marks_england_rtt_coverage(app, served_db: Path) -> None:
    latest, change = _england_rtt(served_db)
    at = app(page="performance.py", query={"from": f"{change.year - 2}-01", "to": f"{latest:%Y-%m}"})
    at.selectbox(key="perf_metric").select("rtt_waiting_list").run()
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption]
    assert any(c.startswith(f"Latest month loaded: RTT waiting times {latest:%B %Y}") for c in captions), captions
    assert any(f"From {change:%B %Y}:" in c and "Dotted grey line" in c for c in captions), captions
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    dotted = [s for s in spec["layout"].get("shapes", []) if s.get("line", {}).get("dash") == "dot"]
    assert [s["x0"][:10] for s in dotted] == [f"{change:%Y-%m-%d}"]
    assert any(a["text"].startswith(f"From {change:%B %Y}:") for a in spec["layout"]["annotations"])


@pytest.mark.parametrize("page", ["overview.py", "benchmarking.py", "resources.py", "gaps.py", "forecasts.py",
                                  "scenarios.py", "data_quality.py"])
def test_every_page_says_the_latest_month_loaded(app, page: str) -> None:
    at = app(page=page)
    assert "Latest month loaded: " in page_text(at)


def test_board_pack_says_the_latest_month_and_marks_coverage(served_db: Path) -> None:
    db = Serving(served_db)
    latest, change = _england_rtt(served_db)
    html = board_pack.build(db, "ENGLAND", date(change.year - 2, 1, 1), latest, today=date(2026, 12, 7))
    standards = overview.key_standards(db, "ENGLAND", latest)["metric_id"].to_list()
    assert "ae_4hr_pct" in standards
    ae = db.query("select max(period_start) as m from s1_current_state.metric_values "
                  "where metric_id = 'ae_4hr_pct'")["m"][0]
    assert f"Latest month loaded: A&amp;E {ae:%B %Y}" in html
    if freshness.publication_status("ae_monthly_official", ae, date(2026, 12, 7)).status == "Stale":
        assert "A&amp;E behind: the " in html
    if "rtt_18wk_pct" in standards:
        assert f"From {change:%B %Y}:" in html
