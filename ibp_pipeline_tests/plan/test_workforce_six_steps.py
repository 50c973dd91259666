"""Six Steps workforce planning on the constructed plan (constructed.py), answers worked out by hand."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from ibp_pipeline.plan.document import AssumptionRow
from ibp_pipeline.plan.workforce import six_steps

from .constructed import constructed

NURSES = "nurses_health_visitors"


def rows_for(rows, group):
    return [r for r in rows if r["staff_group"] == group]


def test_required_available_gap_and_bridge_by_hand():
    doc = constructed()
    rates = {"leaver_rate_pct_a_year": 12.0, "joiner_rate_pct_a_year": 0.0}
    doc.assumptions = [a for a in doc.assumptions if a.assumption_id not in rates] + [
        AssumptionRow(k, k, v, "%", "constructed") for k, v in rates.items()]
    doc.values[f"fte_{NURSES}_bank"][:] = 4.0
    doc.values[f"fte_{NURSES}_agency"][:] = 1.0
    ratios = {NURSES: np.array([1.0, 2.0, 3.0, 4.0, 5.0])}  # FTE per GBP 1m a year of the ratio basis
    actual = {NURSES: {dt.date(2026, 4, 1): 98.0}}
    rows = rows_for(six_steps(doc, ratios, actual, "RXL 2026/27-2028/29", 1), NURSES)
    assert len(rows) == 36
    first, last = rows[0], rows[-1]
    # step 2: activity grows 2% a year against a base of 1/1.02 of the first year: index 1.02 in 2026/27
    assert first["activity_index"] == pytest.approx(1.02)
    # step 3: weighted activity per FTE +2% a year exactly, so the requirement stays at the 100 in post
    assert first["required_fte"] == pytest.approx(100.0) and last["required_fte"] == pytest.approx(100.0)
    # peers' 25th-75th percentile ratios (2 and 4) x the plan's GBP 1m a year of A&E, emergency and tests
    basis = 12 * (10000 + 2500 + 5000) * 100 / 1e6
    assert first["required_fte_peer_low"] == pytest.approx(2.0 * basis)
    assert first["required_fte_peer_high"] == pytest.approx(4.0 * basis)
    # step 4: 12% leave a year, 1% a month, nobody joins: 100 x 0.99^k
    assert first["available_fte"] == pytest.approx(99.0)
    assert last["available_fte"] == pytest.approx(100 * 0.99 ** 36)
    # step 5: the gap, the recruitment the plan makes, the bank and agency that bridge, and their cost
    assert last["gap_fte"] == pytest.approx(100 - 100 * 0.99 ** 36)
    assert last["recruitment_fte"] == pytest.approx(100 - 100 * 0.99 ** 36)
    assert first["bridge_fte"] == pytest.approx(5.0)
    assert first["unbridged_fte"] == pytest.approx(-5.0)  # the plan holds 5 FTE more than the activity needs
    assert first["bridge_cost_gbp"] == pytest.approx((4.0 + 1.5 * 1.0) * 12_000 / 12)
    # step 6: staff in post as published, where months overlap
    assert first["actual_fte"] == 98.0 and rows[1]["actual_fte"] is None


def test_fewer_than_four_peers_give_no_range():
    rows = rows_for(six_steps(constructed(), {NURSES: np.array([1.0, 2.0, 3.0])}, {}, "p", 1), NURSES)
    assert rows[0]["required_fte_peer_low"] is None and rows[0]["peer_count"] == 3
