"""Milestones judged: a month's value, or a financial year's average (A&E 85% 'as the average across 2028/29')."""
import datetime as dt

import polars as pl
import pytest

from ibp_pipeline.step4_gaps.milestones import judge_milestone, milestone_outcomes_frame

D = dt.date
TODAY = D(2026, 12, 7)
YEAR_2028 = [D(2028, m, 1) for m in range(4, 13)] + [D(2029, m, 1) for m in (1, 2, 3)]


def test_a_month_milestone_met_missed_not_loaded_and_not_due():
    series = {D(2026, 2, 1): 76.0, D(2026, 3, 1): 78.4}
    assert judge_milestone(series, D(2026, 3, 1), 78, "at_least", False, TODAY)["status"] == "met"
    missed = judge_milestone(series, D(2026, 3, 1), 79, "at_least", False, TODAY)
    assert (missed["status"], missed["judged_value"], missed["judged_on"]) == ("missed", 78.4, "the March 2026 value")
    # at_most: 21% waiting over 6 weeks against at most 20%
    assert judge_milestone({D(2027, 3, 1): 21.0}, D(2027, 3, 1), 20, "at_most", False, D(2027, 6, 1))["met"] is False
    gone = judge_milestone({D(2025, 12, 1): 73.8}, D(2026, 3, 1), 78, "at_least", False, TODAY)
    assert (gone["status"], gone["latest_period"], gone["latest_value"]) == ("not loaded", D(2025, 12, 1), 73.8)
    ahead = judge_milestone({D(2025, 12, 1): 73.8}, D(2027, 3, 1), 82, "at_least", False, TODAY)
    assert ahead["status"] == "not yet due" and ahead["met"] is None


def test_a_year_average_milestone_is_judged_on_the_mean_not_march():
    assert len(YEAR_2028) == 12 and len(set(YEAR_2028)) == 12
    values = [88.0, 87.0, 86.0, 85.5, 85.0, 84.0, 83.0, 82.0, 84.0, 86.0, 87.0, 83.0]  # March 83 < 85
    series = dict(zip(YEAR_2028, values))
    judged = judge_milestone(series, D(2029, 3, 1), 85, "at_least", True, D(2029, 6, 1))
    assert judged["judged_value"] == pytest.approx(sum(values) / 12)
    assert judged["status"] == "met" and judged["months_with_data"] == 12
    assert judged["judged_on"] == "the average of April 2028 to March 2029"
    assert judge_milestone(series, D(2029, 3, 1), 85, "at_least", False, D(2029, 6, 1))["status"] == "missed"
    del series[D(2028, 9, 1)]
    gap = judge_milestone(series, D(2029, 3, 1), 85, "at_least", True, D(2029, 6, 1))
    assert (gap["status"], gap["months_with_data"], gap["judged_value"]) == ("year incomplete", 11, None)


def test_the_frame_has_one_row_per_milestone_with_the_organisations_own_target():
    targets = pl.DataFrame({
        "org_code": ["T1"] * 3 + ["ENGLAND"] * 2, "org_level": ["provider"] * 3 + ["england"] * 2,
        "metric_id": ["ae_4hr_pct"] * 5, "standard_id": ["ae_4hr_mtpf"] * 5, "standard_name": ["s"] * 5,
        "kind": ["planning_target"] * 5, "direction": ["at_least"] * 5,
        "period_start": [D(2026, 4, 1), D(2027, 3, 1), D(2027, 4, 1), D(2027, 3, 1), D(2029, 3, 1)],
        "milestone_deadline": [D(2027, 3, 1), D(2027, 3, 1), None, D(2029, 3, 1), D(2029, 3, 1)],
        "milestone_target_value": [83.5, 83.5, None, 85.0, 85.0],
        "averaged_over_financial_year": [False, False, None, True, True]})
    values = pl.DataFrame({"org_code": ["T1", "ENGLAND"], "metric_id": ["ae_4hr_pct"] * 2,
                           "period_start": [D(2027, 3, 1), D(2027, 3, 1)], "value": [84.0, 80.0]})
    out = milestone_outcomes_frame(values, targets, D(2027, 5, 1), {"T1": "Trust one"})
    rows = {r["org_code"]: r for r in out.iter_rows(named=True)}
    assert out.height == 2
    assert rows["T1"]["milestone_target_value"] == 83.5 and rows["T1"]["status"] == "met"
    assert rows["T1"]["org_name"] == "Trust one"
    assert rows["ENGLAND"]["status"] == "not yet due" and rows["ENGLAND"]["averaged_over_financial_year"]


def test_the_gaps_page_reads_milestones_in_words():
    from ibp_pipeline.dashboards.gaps import milestone_display

    rows = pl.DataFrame({"standard_name": ["A&E"], "milestone_deadline": [D(2029, 3, 1)],
                         "milestone_target_value": [85.0], "direction": ["at_least"],
                         "averaged_over_financial_year": [True],
                         "judged_on": ["the average of April 2028 to March 2029"], "judged_value": [None],
                         "status": ["not yet due"], "latest_period": [D(2025, 12, 1)], "latest_value": [73.8]})
    out = milestone_display(rows).row(0, named=True)
    assert out == {"Milestone": "March 2029", "Standard": "A&E", "Target": 85.0,
                   "Judged on": "Average of April 2028 to March 2029", "Value": None, "Result": "Not yet due",
                   "Latest figure": 73.8, "Latest month loaded": "December 2025"}
