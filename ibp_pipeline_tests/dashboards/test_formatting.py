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


def test_plurals_agree_with_the_number():
    from ibp_pipeline.dashboards.formatting import plural

    assert plural(1, "month") == "1 month" and plural(2, "month") == "2 months" and plural(0, "bed") == "0 beds"
    assert plural(1543333, "patient") == "1,543,333 patients" and plural(1.5, "day") == "1.5 days"
    assert plural(1, "child", "children") == "1 child" and plural(3, "child", "children") == "3 children"


def test_quantities_in_words_with_thousands_and_no_trailing_zero():
    from ibp_pipeline.dashboards.formatting import fmt_quantity, unit_words

    assert fmt_quantity(259289.0, "patients per week") == "259,289 patients a week"
    assert fmt_quantity(1543333, "count") == "1,543,333 count"
    assert fmt_quantity(9000, "gbp per year") == "£9,000 a year"
    assert fmt_quantity(92.04, "percent") == "92.0%"
    assert unit_words("gbp per year") == "£ a year" and unit_words("gbp") == "£"
    assert unit_words("tests per week") == "tests a week"
    assert unit_words("virtual_ward_places") == "virtual ward places"


def test_money_for_headlines():
    from ibp_pipeline.dashboards.formatting import fmt_money_short

    assert fmt_money_short(1543333) == "£1.5m"
    assert fmt_money_short(1_000_000) == "£1m" and fmt_money_short(999_999) == "£1m"
    assert fmt_money_short(250_000) == "£250k" and fmt_money_short(900) == "£900"
    assert fmt_money_short(-2.4e9) == "-£2.4bn" and fmt_money_short(None) == "-"


def test_months_to_a_target_read_sensibly():
    from ibp_pipeline.dashboards.formatting import fmt_months

    assert fmt_months(1) == "about 1 month" and fmt_months(0.4) == "about 1 month"
    assert fmt_months(7.4) == "about 7 months" and fmt_months(36) == "about 3 years"
    assert fmt_months(438) == "more than 10 years" and fmt_months(None) == "-"


def test_one_rounding_rule_for_chances():
    from ibp_pipeline.dashboards.formatting import chance_percent, fmt_chance

    assert chance_percent(0.175) == 18 and chance_percent(0.1749) == 17 and chance_percent(0.125) == 13
    assert fmt_chance(0.175) == "18%" and fmt_chance(0.004) == "almost none" and fmt_chance(0.996) == "almost certain"
    assert fmt_chance(None) == "-"


def test_a_ceiling_is_met_by_a_value_equal_to_it_as_shown():
    from ibp_pipeline.dashboards.formatting import meets

    assert meets(92.0, 92.0, "at_most", "percent") is True
    assert meets(92.04, 92.0, "at_most", "percent") is True  # shows as 92.0%: equal to the ceiling
    assert meets(92.06, 92.0, "at_most", "percent") is False  # shows as 92.1%
    assert meets(95.0, 95.0, "at_least", "percent") is True and meets(94.9, 95, "at_least", "percent") is False
    assert meets(None, 92.0, "at_most") is None


def test_big_decimal_columns_get_thousands_separators():
    """A budget column read '1543333.0' in the grid; ui.table now formats such columns '1,543,333'."""
    import polars as pl

    from ibp_pipeline.dashboards.ui import thousands_columns

    frame = pl.DataFrame({"Budget (£)": [1543333.0, 12.0], "Rate (%)": [92.04, 80.0], "Year": [2025, 2026],
                          "Deficit (£)": [-25_000.0, None]})
    assert thousands_columns(frame) == ["Budget (£)", "Deficit (£)"]
    assert thousands_columns(frame.clear()) == []
