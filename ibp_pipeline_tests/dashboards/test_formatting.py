"""The one number formatter behind every page, sentence and board pack."""
from datetime import date, datetime

from ibp_pipeline.dashboards.formatting import fmt_cell, fmt_value


def test_values_read_the_same_everywhere():
    assert fmt_value(82.3149, "percent") == "82.3%"
    assert fmt_value(20292.0, "count") == "20,292"
    assert fmt_value(1.2345, "ratio") == "1.23"
    assert fmt_value(3.0, None) == "3"
    assert fmt_value(-1534.6, "count") == "-1,535"
    assert fmt_value(1_250_000.4, "gbp") == "£1,250,000"
    assert fmt_value(9_000.0, "gbp per year") == "£9,000 a year"
    assert fmt_value(None, "percent") == "-"


def test_table_cells_for_the_board_pack():
    assert fmt_cell(None) == "-"
    assert fmt_cell(True) == "yes" and fmt_cell(False) == "no"
    assert fmt_cell(27) == "27" and fmt_cell(74.25, "percent") == "74.2%"
    assert fmt_cell(date(2025, 5, 1)) == "May 2025"
    assert fmt_cell(datetime(2025, 3, 31, 14, 5)) == "Mar 2025"
    assert fmt_cell("common_cause") == "common cause"
