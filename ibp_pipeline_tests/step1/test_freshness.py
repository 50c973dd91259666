"""Freshness of sources: the rule (known answers) and the warning checks a real run reports in Dagster."""
from __future__ import annotations

from datetime import date

import dagster as dg
import pytest

from ibp_pipeline.step1_current_state import freshness, sources


@pytest.mark.parametrize("source, latest, today, expected", [
    ("ae_monthly_official", date(2025, 7, 1), date(2025, 9, 14), ("Up to date", 45, 45)),  # July ended 45 days ago
    ("ae_monthly_official", date(2025, 7, 1), date(2025, 9, 15), ("Stale", 46, 45)),       # one day over
    ("ae_monthly_official", date(2024, 12, 1), date(2025, 2, 1), ("Up to date", 32, 45)),  # across a year end
    ("beds_kh03", date(2025, 1, 1), date(2025, 8, 13), ("Up to date", 135, 135)),
    ("beds_kh03", date(2025, 1, 1), date(2025, 8, 14), ("Stale", 136, 135)),               # quarter Jan-Mar
    ("ae_attendances_2016_2019", date(2019, 3, 1), date(2025, 9, 1), ("Historical", None, None)),
    ("national_cost_collection", None, date(2025, 9, 1), ("No period", None, None)),
    ("ods_trusts_2025", None, date(2025, 9, 1), ("No period", None, None)),
    ("rtt_incomplete", None, date(2025, 9, 1), ("No period", None, None)),                 # nothing loaded yet
])
def test_freshness_known_answers(source, latest, today, expected):
    assert freshness.freshness(source, latest, today) == expected


def test_period_end():
    assert freshness.period_end(date(2024, 2, 1), "month") == date(2024, 2, 29)
    assert freshness.period_end(date(2024, 10, 1), "quarter") == date(2024, 12, 31)
    assert freshness.period_end(date(2024, 4, 1), "year") == date(2025, 3, 31)  # a financial year


def test_freshness_checks_warn_without_failing_the_run(bundled_run):
    result = bundled_run.result
    assert result.success
    found = [e for e in result.get_asset_check_evaluations() if e.check_name == "freshness"]
    assert len(found) >= 15
    assert all(e.severity == dg.AssetCheckSeverity.WARN for e in found)
    ae = next(e for e in found if e.asset_key == dg.AssetKey(["raw", "ae_monthly_official"]))
    # the latest bundled A&E month, read from the bundled files themselves (the newest 'MSitAE-<MONTH>-<YEAR>')
    import csv as _csv
    from ibp_pipeline.config import PROJECT_ROOT
    months = ["JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY", "AUGUST", "SEPTEMBER", "OCTOBER",
              "NOVEMBER", "DECEMBER"]
    periods = set()
    for f in (PROJECT_ROOT / "data" / "sources" / "ae_monthly_provider_official").glob("*.csv"):
        for row in _csv.DictReader(f.open(encoding="utf-8-sig", newline="")):
            parts = row["Period"].strip().upper().split("-")
            if len(parts) == 3 and parts[1] in months:
                periods.add(date(int(parts[2]), months.index(parts[1]) + 1, 1))
    newest = max(periods)
    assert f"latest month {newest:%B %Y}." in ae.description and "\n" not in ae.description
    assert "A&E file" in ae.description and "ae_monthly_official" not in ae.description
    assert not any(e.asset_key == dg.AssetKey(["raw", "ae_attendances_2016_2019"]) for e in found)  # historical


# ---- the publication calendar ----------------------------------------------------------------------------------
# Dates worked out by hand from a calendar: 1 January 2026 is a Thursday, so its Thursdays are 1, 8, 15...;
# 1 December 2026 is a Tuesday (Thursdays 3, 10...); 1 December 2025 a Monday (4, 11...); 1 November 2026 a Sunday
# (5, 12...); 1 February 2025 a Saturday (6, 13...).

AE, RTT, KH03 = (freshness.PUBLICATION_RULES[n] for n in ("ae_monthly_official", "rtt_incomplete", "beds_kh03"))


def test_nth_thursday():
    assert freshness.nth_weekday(2026, 1, 2) == date(2026, 1, 8)    # the 1st is itself a Thursday
    assert freshness.nth_weekday(2026, 1, 1) == date(2026, 1, 1)
    assert freshness.nth_weekday(2026, 12, 2) == date(2026, 12, 10)
    assert freshness.nth_weekday(2025, 2, 2) == date(2025, 2, 13)


@pytest.mark.parametrize("rule, period, due", [
    (AE, date(2025, 12, 1), date(2026, 1, 8)),     # December's A&E: second Thursday of January
    (AE, date(2026, 11, 1), date(2026, 12, 10)),   # not 11 December: that is a Friday in 2026
    (AE, date(2025, 11, 1), date(2025, 12, 11)),   # the "11 December" is the 2025 date
    (RTT, date(2026, 10, 1), date(2026, 12, 10)),  # about six weeks: second Thursday of the second month after
    (RTT, date(2026, 9, 1), date(2026, 11, 12)),
    (KH03, date(2026, 7, 1), date(2026, 11, 25)),  # July to September: 30 September + 56 days
    (KH03, date(2026, 10, 1), date(2027, 2, 25)),  # across a year end: 31 December + 56 days
])
def test_due_date_known_answers(rule, period, due):
    assert freshness.due_date(rule, period) == due


@pytest.mark.parametrize("source", ["rtt_incomplete", "rtt_full_extract", "dm01_diagnostics", "dm01_web_file",
                                    "cancer_waiting_times", "cancer_combined_workbook", "cancer_cwt_crs_extract"])
def test_six_week_sources_share_the_second_month_rule(source):
    assert freshness.due_date(freshness.PUBLICATION_RULES[source], date(2026, 9, 1)) == date(2026, 11, 12)


def test_behind_or_up_to_date_around_the_due_day():
    before = freshness.publication_status("ae_monthly_official", date(2026, 10, 1), date(2026, 12, 7))
    assert before == freshness.Publication("Up to date", date(2026, 11, 1), date(2026, 12, 10), 0,
                                           "Up to date: the November 2026 A&E file is due on 10 December 2026.")
    on_the_day = freshness.publication_status("ae_monthly_official", date(2026, 10, 1), date(2026, 12, 10))
    assert on_the_day.status == "Up to date" and on_the_day.sentence.endswith("is due today.")
    after = freshness.publication_status("ae_monthly_official", date(2026, 10, 1), date(2026, 12, 11))
    assert (after.status, after.overdue, after.sentence) == \
        ("Stale", 1, "Behind: the November 2026 A&E file was due on 10 December 2026.")
    loaded = freshness.publication_status("ae_monthly_official", date(2026, 11, 1), date(2026, 12, 11))
    assert (loaded.status, loaded.due_date) == ("Up to date", date(2027, 1, 14))  # December's, second Thursday


def test_behind_by_many_files_says_the_first_one_missed():
    # latest December 2024; January 2025 to October 2026 were due by 7 December 2026 (November's is due on the 10th)
    p = freshness.publication_status("ae_monthly_official", date(2024, 12, 1), date(2026, 12, 7))
    assert (p.status, p.due_period, p.due_date, p.overdue) == ("Stale", date(2025, 1, 1), date(2025, 2, 13), 22)
    assert p.sentence == "Behind: the January 2025 A&E file was due on 13 February 2025 (22 files are now overdue)."


def test_quarterly_beds_in_plain_english():
    p = freshness.publication_status("beds_kh03", date(2026, 4, 1), date(2026, 12, 7))  # April to June loaded
    assert (p.status, p.due_period, p.due_date) == ("Stale", date(2026, 7, 1), date(2026, 11, 25))
    assert p.sentence == ("Behind: the July to September 2026 KH03 bed availability file was expected by "
                          "25 November 2026.")
    assert freshness.period_label(date(2024, 4, 1), "year") == "April 2024 to March 2025"


@pytest.mark.parametrize("source", ["rtt_full_extract", "dm01_web_file", "kh03_web_file", "cancer_combined_workbook",
                                    "cancer_cwt_crs_extract"])
def test_scheduled_sources_missing_from_the_registry_still_work(source, monkeypatch):
    monkeypatch.delitem(sources.BY_NAME, source, raising=False)  # they are being added to sources.py separately
    p = freshness.publication_status(source, date(2026, 7, 1), date(2026, 12, 7))
    assert p.status in {"Up to date", "Stale"} and p.due_date is not None
    assert freshness.source_grain(source) == freshness.PUBLICATION_RULES[source].grain
    assert source not in p.sentence


def test_closed_reference_and_empty_sources():
    assert freshness.publication_status("ae_attendances_2016_2019", date(2019, 3, 1), date(2026, 12, 7)).status \
        == "Historical"
    assert freshness.publication_status("ods_trusts_2025", None, date(2026, 12, 7)).status == "No period"
    assert freshness.publication_status("rtt_incomplete", None, date(2026, 12, 7)).status == "No period"


@pytest.mark.parametrize("today", [date(2025, 2, 14), date(2025, 2, 15), date(2025, 5, 16), date(2026, 12, 7)])
def test_sources_without_a_schedule_keep_the_allowance_verdict(today):
    for spec in sources.SOURCES:
        if spec.name in freshness.PUBLICATION_RULES:
            continue
        status = freshness.freshness(spec.name, date(2024, 12, 1), today)[0]
        assert freshness.publication_status(spec.name, date(2024, 12, 1), today).status == status, spec.name
    # an unknown source: a month, 45 days (December 2024 ended 31 December; 45 days on is 14 February 2025)
    assert freshness.publication_status("not_a_source", date(2024, 12, 1), date(2025, 2, 14)).status == "Up to date"
    assert freshness.publication_status("not_a_source", date(2024, 12, 1), date(2025, 2, 15)).sentence == \
        "Behind: the January 2025 file was expected by 14 February 2025."
