"""A gap in a series is shown as a gap (the line breaks, nothing is interpolated, the chart says so), and a month
NHS England has published but that is not loaded says so instead of passing for a forecast."""
from __future__ import annotations

from datetime import date

import polars as pl

from ibp_pipeline.dashboards.charts import fan_figure, spc_figure, with_gaps


def _series(months: list[date], values: list[float]) -> pl.DataFrame:
    return pl.DataFrame({"period_start": months, "value": values})


def test_missing_months_become_empty_rows():
    rtt = _series([date(2025, 2, 1), date(2025, 3, 1), date(2026, 4, 1)], [58.0, 59.0, 64.9])
    filled = with_gaps(rtt)
    assert filled.height == 15  # February 2025 to April 2026
    assert filled["value"].null_count() == 12  # April 2025 .. March 2026: no figure, not a guess
    assert filled.filter(pl.col("period_start") == date(2026, 4, 1))["value"].item() == 64.9


def test_a_quarterly_series_is_filled_by_quarter():
    kh03 = _series([date(2024, 7, 1), date(2025, 4, 1)], [90.0, 91.5])
    assert with_gaps(kh03, 3)["period_start"].to_list() == [date(2024, 7, 1), date(2024, 10, 1), date(2025, 1, 1),
                                                            date(2025, 4, 1)]


def test_the_charts_break_the_line_and_say_why():
    history = _series([date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1), date(2026, 4, 1)], [1, 2, 3, 4])
    fig = fan_figure(history, pl.DataFrame(schema={"period_start": pl.Date, "mean": pl.Float64, "lo80": pl.Float64,
                                                    "hi80": pl.Float64, "lo95": pl.Float64, "hi95": pl.Float64}))
    actual = next(t for t in fig.data if t.name == "Actual")
    assert len(actual.x) == 16 and sum(v is None or v != v for v in actual.y) == 12  # None or NaN: both break the line
    assert not actual.connectgaps
    assert any("12 months with no figure" in a.text for a in fig.layout.annotations)
    spc = history.with_columns(mean=pl.lit(2.5), lpl=pl.lit(0.0), upl=pl.lit(5.0), point_type=pl.lit("common_cause"),
                               special_cause_type=pl.lit(""))
    fig = spc_figure(spc, unit="percent")
    value = next(t for t in fig.data if t.name == "Value")
    assert sum(v is None or v != v for v in value.y) == 12


def test_forecast_months_already_published_say_not_loaded():
    """A&E is published on the second Thursday of the following month (December 2025's on 8 January 2026,
    January 2026's on 12 February 2026, counted on a calendar): on 7 December 2026 a forecast from December 2025
    is 'not loaded' for January to October 2026 and a forecast from November 2026 on."""
    from ibp_pipeline.dashboards.forecasts import forecast_table, with_publication_status

    months = [date(2026, m, 1) for m in range(1, 13)]
    rows = pl.DataFrame({"period_start": months})
    out = with_publication_status(rows, "ae_4hr_pct", date(2026, 12, 7))["status"].to_list()
    assert out[0] == "Not loaded: the January 2026 A&E file was published on 12 February 2026"
    assert all(s.startswith("Not loaded") for s in out[:10])
    assert out[10:] == ["Forecast", "Forecast"]  # November 2026's file is due on 10 December 2026
    rate = with_publication_status(rows, "rtt_52wk_waiters_pct_of_rtt_waiting_list", date(2026, 12, 7))
    assert rate["status"][0].startswith("Not loaded: the January 2026 referral to treatment (RTT) file")
    assert with_publication_status(rows, "vw_capacity", date(2026, 12, 7))["status"].unique().to_list() != []
    full = pl.DataFrame({"period_start": months[:1], "horizon": [1], "mean": [70.0], "lo80": [65.0],
                         "hi80": [75.0], "lo95": [60.0], "hi95": [80.0], "model": ["ets"],
                         "forecast_origin": [date(2025, 12, 1)]})
    table = forecast_table(with_publication_status(full, "ae_4hr_pct", date(2026, 12, 7)))
    assert table["Status"][0].startswith("Not loaded")
