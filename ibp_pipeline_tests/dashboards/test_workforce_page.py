"""The Workforce page (dashboards/app_pages/workforce.py) over the bundled run's example plan, and its pure
functions on hand-made rows."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from ibp_pipeline.dashboards import workforce

from .conftest import page_text


def test_by_year_averages_fte_and_sums_cost():
    rows = pl.DataFrame({"staff_group_label": ["Nurses"] * 2, "financial_year": ["2026/27"] * 2,
                         **{c: [10.0, 20.0] for c in workforce.FTE_COLUMNS}, "bridge_cost_gbp": [5.0, 7.0],
                         "peer_count": [80, 80], "month": [dt.date(2026, 4, 1), dt.date(2026, 5, 1)]})
    out = workforce.by_year(rows)
    assert out["Available"].to_list() == [15.0] and out["Bank and agency cost (£)"].to_list() == [12.0]


def test_the_workforce_page_walks_the_six_steps_for_the_example_plan(app):
    at = app("workforce.py", org="RXL")
    text = page_text(at)
    for step in ("1. Scope", "2. Service change", "3 to 5. Required, available, and the plan to deliver",
                 "6. Implement and monitor"):
        assert step in text
    assert "This is an **example** plan" in text
    table = next(d.value for d in at.dataframe if "Staff group" in d.value.columns and "Year" in d.value.columns)
    assert set(table["Year"]) == {"2026/27", "2027/28", "2028/29"}
    assert "Nurses and health visitors" in set(table["Staff group"])
    nurses = table[(table["Staff group"] == "Nurses and health visitors") & (table["Year"] == "2026/27")]
    # the example plan's bank (4%) and agency (1%) shares of substantive staff
    assert float(nurses["Planned bank"].iloc[0]) == pytest.approx(
        0.04 * float(nurses["Planned substantive"].iloc[0]), rel=2e-3)
    assert any(c.proto.id.endswith("-workforce_group_chart") for c in at.get("plotly_chart"))
