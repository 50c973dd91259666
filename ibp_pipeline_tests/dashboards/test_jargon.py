"""jargon.leaks on known answers: the review's examples are caught, plain board-pack English is not."""
from __future__ import annotations

import pytest

from ibp_pipeline.dashboards.jargon import leaks

IDS = {"ae_4hr_pct", "ae_12hr_dta_waits_pct_of_ae_attendances", "virtual_ward_places"}
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
])
def test_plain_english_passes(text):
    assert leaks(text, IDS, TABLES) == []


def test_table_cells_skip_the_number_rules_only():
    assert leaks("1543333", numbers=False) == []
    assert leaks("virtual_ward_places", IDS, numbers=False)[0].rule == "metric id"
