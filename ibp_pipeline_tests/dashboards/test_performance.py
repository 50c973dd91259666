"""Performance page: the SPC chart of any measure, its meaning, the special-cause months and the points table."""
from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ibp_pipeline.dashboards import exports, performance
from ibp_pipeline.dashboards.serving import Serving

from .conftest import page_text

LIMITS = "XmR: lpl/upl = mean -/+ 2.66 x mR-bar"


# ---- a tiny served database ---------------------------------------------------------------------------------

def _spc_row(org: str, metric: str, month: date, value: float, point: str = "common_cause",
             rule: str = "Common Cause") -> dict:
    return {"org_code": org, "metric_id": metric, "period_start": month, "value": value, "mean": 80.0,
            "lpl": 70.0, "upl": 90.0, "lower_2sigma": 73.3, "upper_2sigma": 86.7, "mean_moving_range": 3.76,
            "point_type": point, "special_cause_type": rule, "provisional": True, "baseline_points": 4,
            "improvement_direction": "increase", "source": "ae_trust_monthly", "limits_formula": LIMITS,
            "rebase_group": 0, "baseline_start": date(2024, 1, 1), "baseline_end": date(2024, 4, 1),
            "period_reason": "start of the series"}


@pytest.fixture
def tiny(tmp_path: Path) -> Serving:
    """Two organisations, two measures: AAA has A&E in Jan-Apr 2024 (one special cause) and RTT only in 2023."""
    spc = pl.DataFrame([
        _spc_row("AAA", "ae_4hr_pct", date(2024, 1, 1), 78.0),
        _spc_row("AAA", "ae_4hr_pct", date(2024, 2, 1), 92.5, "special_cause_improvement", "Above UCL"),
        _spc_row("AAA", "ae_4hr_pct", date(2024, 3, 1), 80.0),
        _spc_row("AAA", "ae_4hr_pct", date(2024, 4, 1), 81.0),
        _spc_row("AAA", "rtt_18wk_pct", date(2023, 6, 1), 60.0),
        _spc_row("BBB", "ae_4hr_pct", date(2024, 1, 1), 70.0),
    ])
    catalogue = pl.DataFrame({
        "metric_id": ["ae_4hr_pct", "rtt_18wk_pct"], "name": ["A&E four-hour performance", "RTT under 18 weeks"],
        "definition": ["Share seen within 4 hours", "Share waiting under 18 weeks"], "unit": ["percent", "percent"],
        "formula": ["percent", "percent"], "aggregation": ["sum", "sum"], "source": ["ae", "rtt"],
        "higher_is_better": [True, True], "triple_aim_domain": ["quality", "quality"]})
    summary = pl.DataFrame({
        "org_code": ["AAA"], "metric_id": ["ae_4hr_pct"], "n_points": [4], "first_period": [date(2024, 1, 1)],
        "last_period": [date(2024, 4, 1)], "n_missing_months": [0], "baseline_points": [4],
        "variation_type": ["common_cause"], "assurance_type": ["inconsistent"], "target_value": [78.0],
        "provisional": [True], "n_special_cause_improvement": [1], "n_special_cause_concern": [0],
        "n_special_cause_neutral": [0], "limits_formula": [LIMITS], "rules": ["beyond a limit"],
        "reference": ["NHSRplotthedots"], "improvement_direction": ["increase"], "baseline_start": [date(2024, 1, 1)],
        "baseline_end": [date(2024, 4, 1)], "baseline_reason": ["start of the series"], "rebases": [None]},
        schema_overrides={"rebases": pl.String})
    targets = pl.DataFrame({
        "org_code": ["AAA"] * 4, "metric_id": ["ae_4hr_pct"] * 4,
        "period_start": [date(2024, 1, 1), date(2024, 2, 1), date(2024, 2, 1), date(2024, 6, 1)],
        "target_value": [76.0, 77.0, 95.0, 78.0], "standard_name": ["traj", "traj", "constitutional", "traj"],
        "standard_id": ["t", "t", "c", "t"], "is_trajectory": [True, True, False, True],
        "direction": ["at_least"] * 4, "deadline": [date(2025, 3, 1)] * 4, "is_primary": [True, True, False, True]})
    path = tmp_path / "serving.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema s1_current_state; create schema s2_triple_aim")
    for table, frame in (("s2_triple_aim.spc", spc), ("s1_current_state.metric_catalogue", catalogue),
                         ("s2_triple_aim.spc_summary", summary), ("s2_triple_aim.targets", targets)):
        con.register("frame", frame)
        con.execute(f"create table {table} as select * from frame")
        con.unregister("frame")
    con.close()
    return Serving(path)


def test_metric_choices_only_measures_with_points_in_the_period(tiny: Serving) -> None:
    choices = performance.metric_choices(tiny, "AAA", date(2024, 1, 1), date(2024, 12, 1))
    assert choices.to_dicts() == [{"metric_id": "ae_4hr_pct", "name": "A&E four-hour performance",
                                   "unit": "percent", "n_points": 4}]
    wider = performance.metric_choices(tiny, "AAA", date(2023, 1, 1), date(2024, 2, 1))
    assert dict(zip(wider["metric_id"], wider["n_points"])) == {"ae_4hr_pct": 2, "rtt_18wk_pct": 1}
    assert performance.metric_choices(tiny, "ZZZ", date(2023, 1, 1), date(2024, 12, 1)).is_empty()


def test_series_targets_and_facts_follow_org_metric_and_period(tiny: Serving) -> None:
    spc = performance.spc_series(tiny, "AAA", "ae_4hr_pct", date(2024, 2, 1), date(2024, 3, 1))
    assert spc["period_start"].to_list() == [date(2024, 2, 1), date(2024, 3, 1)]
    assert spc["value"].to_list() == [92.5, 80.0]
    targets = performance.primary_targets(tiny, "AAA", "ae_4hr_pct", date(2024, 1, 1), date(2024, 4, 1))
    # the constitutional row is not primary, June is outside the period
    assert targets.select("period_start", "target_value").rows() == [(date(2024, 1, 1), 76.0),
                                                                     (date(2024, 2, 1), 77.0)]
    facts = performance.series_facts(tiny, "AAA", "ae_4hr_pct").row(0, named=True)
    assert (facts["assurance_type"], facts["baseline_points"], facts["target_value"]) == ("inconsistent", 4, 78.0)
    # a measure without a summary for this organisation still has its catalogue facts
    assert performance.series_facts(tiny, "BBB", "rtt_18wk_pct")["n_points"].to_list() == [None]


def test_special_cause_months_and_points_table_in_words(tiny: Serving) -> None:
    spc = performance.spc_series(tiny, "AAA", "ae_4hr_pct", date(2024, 1, 1), date(2024, 4, 1))
    special = performance.special_cause_months(spc)
    assert special.rows() == [(date(2024, 2, 1), 92.5, "Improving", "above the upper process limit")]
    table = performance.points_table(spc)
    assert table.columns == ["Month", "Value", "Mean", "Baseline", "Lower process limit", "Upper process limit",
                             "Variation", "Why"]
    assert table["Baseline"].to_list() == ["Jan 2024 to Apr 2024"] * 4
    assert table["Variation"].to_list() == ["Common cause", "Improving", "Common cause", "Common cause"]
    assert performance.special_cause_months(spc.clear()).is_empty()


def test_pure_helpers_known_answers() -> None:
    assert performance.month_runs([date(2024, 3, 1), date(2024, 1, 1), date(2024, 2, 1), date(2024, 6, 1),
                                   date(2024, 12, 1), date(2025, 1, 1)]) == \
        "Jan 2024 to Mar 2024, Jun 2024, Dec 2024 to Jan 2025"
    assert performance.month_runs([]) == ""
    assert performance.default_metric(["rtt_18wk_pct", "ae_4hr_pct"]) == "ae_4hr_pct"
    assert performance.default_metric(["rtt_18wk_pct", "dm01_6wk_pct"]) == "rtt_18wk_pct"
    assert performance.default_metric([]) is None
    assert performance.rule_text("7 Points Below CL") == "part of a run of 7 or more months below the mean"
    assert performance.rule_text("something new") == "something new"
    assert performance.provisional_sentence(5).startswith("Provisional: the limits rest on only 5 months")
    assert "not provisional" in performance.provisional_sentence(12)
    assert performance.formula_text("percent", "sum").startswith("a percentage: 100 x numerator / denominator;")


# ---- the page, over the published database ----------------------------------------------------------------------

def _shown(at) -> pl.DataFrame:
    return pl.from_pandas(at.dataframe[0].value)


def test_england_page_default_measure_and_selector(app, served_db: Path) -> None:
    at = app(page="performance.py")
    text = page_text(at)
    assert "Performance" in [t.value for t in at.title]
    assert at.selectbox(key="perf_metric").value == "ae_4hr_pct"
    assert len(at.get("plotly_chart")) == 1
    for words in ("What this measure is", "What the chart says", "Special-cause months in the period",
                  "How the limits were computed", "Assurance:"):
        assert words in text or words in [e.label for e in at.expander], words
    sel = at.session_state["ibp_selection"]
    expected = performance.spc_series(Serving(served_db), "ENGLAND", "ae_4hr_pct", sel.period_from, sel.period_to)
    shown = _shown(at)
    assert shown["Value"].to_list() == pytest.approx(expected["value"].to_list())
    assert shown["Upper process limit"].to_list() == pytest.approx(expected["upl"].to_list())
    # the reader picks another measure: the chart title, the facts and the points change
    labels = at.selectbox(key="perf_metric").options
    assert "RTT patients waiting under 18 weeks" in labels
    at.selectbox(key="perf_metric").select("rtt_18wk_pct").run()
    assert not at.exception
    rtt = _shown(at)
    assert rtt["Value"].to_list() != shown["Value"].to_list()
    assert "RTT patients waiting under 18 weeks" in page_text(at)
    assert at.get("plotly_chart")[0].proto.spec and "RTT patients waiting under 18 weeks" in \
        at.get("plotly_chart")[0].proto.spec


def test_trust_page_downloads_and_org_change(app, served_db: Path) -> None:
    at = app(page="performance.py", org="RXL")
    sel = at.session_state["ibp_selection"]
    shown = _shown(at)
    expected = performance.spc_series(Serving(served_db), "RXL", "ae_4hr_pct", sel.period_from, sel.period_to)
    assert shown["Value"].to_list() == pytest.approx(expected["value"].to_list())
    assert "Blackpool" in page_text(at)
    # the special-cause months listed are exactly the special-cause points of the table
    special = shown.filter(pl.col("Variation").is_in(["Improving", "Concerning", "Higher than usual",
                                                      "Lower than usual"]))
    for kind in special["Variation"].unique().to_list():
        months = special.filter(pl.col("Variation") == kind)["Month"].cast(pl.Date).to_list()
        assert f"{kind}** ({len(months)} months): {performance.month_runs(months)}" in \
            "\n".join(m.value for m in at.markdown)
    # downloads: what the buttons deliver is what is on screen
    frame = at.session_state["ibp_downloads"][f"spc-ae-4hr-pct-rxl-{sel.period_to:%Y-%m}"]
    csv = pl.read_csv(io.BytesIO(exports.csv_bytes(frame)), try_parse_dates=True)
    xlsx = pl.read_excel(io.BytesIO(exports.excel_bytes(frame, "spc")))
    shown_dates = shown.with_columns(pl.col("Month").cast(pl.Date))
    assert_frame_equal(csv, shown_dates, check_dtypes=False)
    assert_frame_equal(xlsx.with_columns(pl.col("Month").cast(pl.Date)), shown_dates, check_dtypes=False)
    # another organisation in the sidebar: other values on the same page
    at.selectbox(key="ibp_org").select("QE1").run()
    assert not at.exception
    assert _shown(at)["Value"].to_list() != shown["Value"].to_list()
    assert "QE1" in page_text(at)


def test_england_ae_last_36_months_limits_from_the_stated_baseline_agree_with_nhsr(app, served_db: Path) -> None:
    """England's A&E 4-hour % over the last 36 months: limits from a recent baseline that spans no break, equal to
    NHSRplotthedots (the literal port of its R code) run period by period on the same points with
    fix_after_n_points = 24, and the page states that baseline."""
    from ibp_pipeline_tests.step2.test_spc import _r_ptd

    con = duckdb.connect(str(served_db), read_only=True)
    rows = con.execute("""select period_start, value, coverage from s1_current_state.metric_values
                          where org_code = 'ENGLAND' and metric_id = 'ae_4hr_pct' and period_grain = 'month'
                          order by period_start""").fetchall()
    last = rows[-1][0]
    window = date(last.year - 3 + (last.month == 12), (last.month % 12) + 1, 1)   # the last 36 months
    recent = [r for r in rows if r[0] >= window]
    # periods: the window's start, then every change in the providers the total covers (a new source)
    cuts = [0] + [i for i in range(1, len(recent)) if recent[i][2] != recent[i - 1][2]]
    expected_kinds, expected_limits = [], []
    for a, b in zip(cuts, cuts[1:] + [len(recent)]):
        _, kinds, (_, lpl, upl) = _r_ptd([v for _, v, _ in recent[a:b]], "increase", fix=24)
        expected_kinds += kinds
        expected_limits += [(lpl, upl)] * (b - a)
    table = con.execute("""select period_start, point_type, lpl, upl, baseline_start from s2_triple_aim.spc
                           where org_code = 'ENGLAND' and metric_id = 'ae_4hr_pct' and period_start >= ?
                           order by period_start""", [window]).fetchall()
    summary = con.execute("""select variation_type, assurance_type, target_value, baseline_start, baseline_end,
                                    baseline_points from s2_triple_aim.spc_summary
                             where org_code = 'ENGLAND' and metric_id = 'ae_4hr_pct'""").fetchone()
    con.close()
    assert [t[0] for t in table] == [r[0] for r in recent] and len(recent) >= 30
    assert [t[1] for t in table] == expected_kinds
    assert [(t[2], t[3]) for t in table] == [pytest.approx(x) for x in expected_limits]
    assert min(t[4] for t in table) >= window                  # no limits from months before the window
    lpl, upl = expected_limits[-1]
    target = summary[2]
    expected_assurance = ("consistent_fail" if target > upl else "consistent_pass" if target < lpl
                          else "inconsistent")
    assert (summary[0], summary[1]) == (expected_kinds[-1], expected_assurance)
    assert summary[3] == recent[cuts[-1]][0] and summary[5] == min(24, len(recent) - cuts[-1]) >= 20
    # the page says where the limits come from, and never promises a target the limits sit below
    at = app(page="performance.py")
    assert not at.exception
    assert f"The limits come from {summary[3]:%B %Y} to {summary[4]:%B %Y}" in page_text(at)


def test_chart_breaks_the_limits_at_a_rebase_and_marks_it() -> None:
    from ibp_pipeline.dashboards import charts
    months = [date(2024, m, 1) for m in range(1, 7)]
    spc = pl.DataFrame({"period_start": months, "value": [1.0, 2, 1, 5, 6, 5], "mean": [1.3] * 3 + [5.3] * 3,
                        "upl": [3.0] * 3 + [7.0] * 3, "lpl": [0.0] * 3 + [4.0] * 3,
                        "point_type": ["common_cause"] * 6, "special_cause_type": ["Common Cause"] * 6,
                        "rebase_group": [0, 0, 0, 1, 1, 1], "period_reason": ["start of the series"] * 3
                        + ["rebased by the analyst: a new unit"] * 3})
    fig = charts.spc_figure(spc)
    mean = next(t for t in fig.data if t.name == "Mean")
    assert list(mean.y) == [1.3, 1.3, 1.3, None, 5.3, 5.3, 5.3]        # no slope from one baseline to the next
    notes = [a for a in fig.layout.annotations if a.text == "Limits recalculated"]
    assert len(notes) == 1 and "April 2024: rebased by the analyst: a new unit" in notes[0].hovertext
    assert charts.rebase_months(spc) == [(date(2024, 4, 1), "rebased by the analyst: a new unit")]
    assert performance.baseline_sentence(date(2024, 4, 1), date(2025, 12, 1), 21, "a merger: B joined") == (
        "The limits come from April 2024 to December 2025 (21 months). Why then: a merger: B joined.")
    assert "fewer than the 20 months" in performance.baseline_sentence(date(2024, 4, 1), date(2025, 6, 1), 15, "x")
