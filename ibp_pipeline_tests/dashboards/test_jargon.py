"""jargon.leaks on known answers: the review's examples are caught, plain board-pack English is not."""
from __future__ import annotations

import pytest

from ibp_pipeline.dashboards.jargon import leaks

IDS = {"ae_4hr_pct", "ae_12hr_dta_waits_pct_of_ae_attendances", "virtual_ward_places", "ae_attendances"}
TABLES = {"s6_scenarios.results", "s1_current_state.metric_values"}


@pytest.mark.parametrize("text,rule", [
    ("ae 4hr pct=2", "metric id"),
    ("ae 12hr dta waits pct of ae attendances=3", "metric id"),
    ("virtual_ward_places x 3 units", "metric id"),
    ("ratio(num=ETS(A,N,A), den=naive)", "python repr"),
    ("Model: ETS(A,N,A)", "python repr"),
    ("cost, from `s6_scenarios.results.cost_gbp` summed", "table name"),
    ("stored in s1_current_state.metric_values", "table name"),
    ("the effect sizes (ibp_pipeline/documents/initiatives.yaml)", "file name"),
    ("read from /work/main/data/serving.duckdb", "file path"),
    ("the point_type column", "snake_case identifier"),
    ("1543333 a year", "number without thousands separators"),
    ("259,289.0 patients a week", "whole number shown with .0"),
    ("in about 1 months", "plural after 1"),
])
def test_the_reviews_leaks_are_caught(text, rule):
    assert rule in {leak.rule for leak in leaks(text, IDS, TABLES)}, leaks(text, IDS, TABLES)


@pytest.mark.parametrize("text", [
    "A&E four-hour performance: 74.3% in Jul 2025, up 0.4 points on Jun 2025.",
    "ibp_pipeline — Integrated Business Plan",
    "£1,543,333 a year; 259,289 patients a week; about 1 month; 2025/26 plan",
    "See https://www.england.nhs.uk/statistics/statistical-work-areas/rtt-waiting-times/ for the rules.",
    "Beds: 92.0% occupied against a 92% ceiling (meets it); 12 of 42 ICBs; NHS England (Y56)",
    "Download CSV",
    "no negative ae attendances type 1",  # words, not the id 'ae_attendances' (no machine-made part)
])
def test_plain_english_passes(text):
    assert leaks(text, IDS, TABLES) == []


def test_table_cells_skip_the_number_rules_only():
    assert leaks("1543333", numbers=False) == []
    assert leaks("virtual_ward_places", IDS, numbers=False)[0].rule == "metric id"


def test_table_cells_may_name_a_publication_file_but_never_a_path():
    assert leaks("Monthly-AE-March-2025.csv", file_names=False) == []
    assert leaks("ae_trust_monthly.csv.gz", file_names=False) == []
    assert leaks("Monthly-AE-March-2025.csv")[0].rule == "file name"
    assert leaks("/data/landing/Monthly-AE-March-2025.csv", file_names=False)[0].rule == "file path"


def test_in_words_turns_warehouse_text_into_a_readers():
    from ibp_pipeline.dashboards.jargon import in_words

    names = {"ae_4hr_pct": "A&E four-hour performance", "rtt_52wk_waiters": "RTT patients waiting over 52 weeks",
             "rtt_waiting_list": "RTT waiting list", "ae_monthly_official": "A&E monthly file"}
    cases = {
        "ratio(num=ETS(A,N,A); den=ETS(A,Ad,N))": "a ratio of two forecasts (the numerator by exponential smoothing "
                                                  "with seasonality, the denominator by exponential smoothing with "
                                                  "a damped trend)",
        "Numerator: ETS(A,N,N) (alpha=0.987, sigma=522), lowest AICc of [ETS(A,A,N)=940.0]":
            "Numerator: exponential smoothing (level only)",
        "Source: s1_current_state.metric_values.ae_4hr_pct (ae_monthly_official)":
            "Source: A&E four-hour performance (A&E monthly file)",
        "s2_triple_aim.targets: row for this month": "the targets: row for this month",
        "rtt_52wk_waiters_pct_of_rtt_waiting_list: derived": "RTT patients waiting over 52 weeks as a percentage of "
                                                             "RTT waiting list: derived",
        "e.g. discharge_trust_daily.csv.gz: row 120685": "row 120,685",
        "`virtual_ward_places x 3`": "virtual ward places x 3",
        "non_negative:rtt_52wk_waiters_per_100k": "non negative:RTT patients waiting over 52 weeks per 100k",
    }
    for text, expected in cases.items():
        got = in_words(text, names)
        assert got == expected, (text, got)
        assert leaks(got, names) == [], got
    assert in_words("ibp_pipeline — Integrated Business Plan") == "ibp_pipeline — Integrated Business Plan"
    assert in_words(None) == ""
