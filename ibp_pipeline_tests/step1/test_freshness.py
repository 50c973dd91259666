"""Freshness of sources: the rule (known answers) and the warning checks a real run reports in Dagster."""
from __future__ import annotations

from datetime import date

import dagster as dg
import pytest

from ibp_pipeline.step1_current_state import freshness


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
    assert "ae_monthly_official: latest period Dec 2024 ended" in ae.description and "\n" not in ae.description
    assert not any(e.asset_key == dg.AssetKey(["raw", "ae_attendances_2016_2019"]) for e in found)  # historical
