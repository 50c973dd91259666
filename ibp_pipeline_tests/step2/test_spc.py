"""Tests for step-2 SPC (Making Data Count XmR, as NHSRplotthedots computes it).

Three kinds of test:
1. Hand-made series whose answer is worked out in the comments (every rule, both sides, directions, settings).
2. Pinned cases ported from NHSRplotthedots' own testthat tests and snapshots (nhs-r-community/NHSRplotthedots,
   MIT), with the file each comes from. The ae_* series were decoded from the serialised tibbles that
   tests/testthat/_snaps/integration_tests.md stores for tests/testthat/test-integration_tests.R (NHSRdatasets
   ae_attendances summed by month).
3. A line-by-line Python port of NHSRplotthedots' rule functions (R/ptd_calculate_point_type.R,
   R/ptd_spc_standard.R) used as an oracle on random series full of ties and points on the mean; and the build
   on hand-made DuckDB tables and on a copy of the real warehouse (skipped when absent).
"""
from __future__ import annotations

import math
import shutil
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from ibp_pipeline.step2_triple_aim.spc import (
    POINT_TYPES, SpcSettings, assurance_type, build_spc, mean_moving_range, shift_points, spc_series,
    special_cause_labels, trend_points, two_in_three_points)


# Baselines used below: mean 11, every moving range 2, so mR-bar = 2 and
#   lpl = 11 - 2.66 x 2 = 5.68, upl = 16.32; 2-sigma lines 11 -/+ (2 x 2.66 / 3) x 2 = 7.4533.., 14.5466..
ENDS_LOW = [12.0, 10.0] * 6    # last baseline point is below the mean, so a run above starts fresh
ENDS_HIGH = [10.0, 12.0] * 6   # last baseline point is above the mean
FIXED = SpcSettings(baseline_points=12)

C, I, X = "common_cause", "special_cause_improvement", "special_cause_concern"
HI, LO = "special_cause_neutral_high", "special_cause_neutral_low"


def types(values, direction="increase", settings=FIXED, **kw) -> list[str]:
    return list(spc_series(values, direction, settings=settings, **kw).point_type)


# ---- 1. hand-made series ---------------------------------------------------------------------------------------

def test_baseline_limits_by_hand():
    r = spc_series(ENDS_LOW, "increase")
    assert r.mean[0] == 11.0
    assert r.mean_moving_range[0] == 2.0
    assert r.lpl[0] == pytest.approx(5.68) and r.upl[0] == pytest.approx(16.32)
    assert r.lower_2sigma[0] == pytest.approx(11 - 2 * 2.66 / 3 * 2)
    assert r.upper_2sigma[0] == pytest.approx(11 + 2 * 2.66 / 3 * 2)
    assert set(r.point_type) == {C} and r.variation_type == C


def test_point_beyond_limits_both_sides_and_direction():
    # 20 > upl 16.32 (high), 2 < lpl 5.68 (low); no runs, trends or close points otherwise
    y = ENDS_HIGH + [20.0, 10.0, 2.0, 12.0]
    r = spc_series(y, "increase", settings=FIXED)
    assert list(np.flatnonzero(r.beyond_limits)) == [12, 14]
    assert r.special_cause_type[12] == "Above UCL" and r.special_cause_type[14] == "Below LCL"
    assert types(y, "increase")[12:] == [I, C, X, C]
    assert types(y, "decrease")[12:] == [X, C, I, C]
    assert types(y, "neutral")[12:] == [HI, C, LO, C]
    assert types(y)[:12] == [C] * 12


def test_run_of_seven_above_and_below():
    above = ENDS_LOW + [12.0, 13.0, 12.0, 13.0, 12.0, 13.0, 12.0]
    r = spc_series(above, "increase", settings=FIXED)
    assert list(r.shift) == [False] * 12 + [True] * 7
    assert set(r.special_cause_type[12:]) == {"7 Points Above CL"}
    assert types(above)[12:] == [I] * 7 and types(above, "decrease")[12:] == [X] * 7
    below = ENDS_HIGH + [10.0, 9.0, 10.0, 9.0, 10.0, 9.0, 10.0]
    assert types(below)[12:] == [X] * 7
    assert types(below, "neutral")[12:] == [LO] * 7
    assert spc_series(below, "increase", settings=FIXED).special_cause_type[-1] == "7 Points Below CL"


def test_run_of_six_is_common_cause_with_seven_but_special_with_six():
    y = ENDS_LOW + [12.0, 13.0, 12.0, 13.0, 12.0, 13.0]
    seven = spc_series(y, "increase", settings=FIXED)
    six = spc_series(y, "increase", settings=SpcSettings(baseline_points=12, shift_length=6))
    assert seven.variation_type == C and not seven.shift.any()
    assert six.variation_type == I and list(six.shift) == [False] * 12 + [True] * 6
    assert six.special_cause_type[-1] == "6 Points Above CL"


def test_point_on_the_mean_breaks_a_run():
    on_mean = ENDS_LOW + [12.0, 13.0, 12.0, 11.0, 13.0, 12.0, 13.0, 12.0]   # 11.0 is exactly the mean
    r = spc_series(on_mean, "increase", settings=FIXED)
    assert r.relative_to_mean[15] == 0
    assert not r.shift.any() and set(r.point_type) == {C}
    just_above = ENDS_LOW + [12.0, 13.0, 12.0, 11.5, 13.0, 12.0, 13.0, 12.0]   # 8 above: a shift
    assert types(just_above)[12:] == [I] * 8


def test_trend_of_seven_rising_crosses_the_mean():
    # 12 -> 10.5 falls, then six rises: 7 rising points, crossing the mean at 11 (NHS-R issue #171: a trend is
    # judged by its direction, not by its side of the mean)
    y = ENDS_HIGH + [10.5, 10.8, 11.1, 11.4, 11.7, 12.0, 12.3]
    r = spc_series(y, "increase", settings=FIXED)
    assert list(r.trend) == [False] * 12 + [True] * 7
    assert set(r.special_cause_type[12:]) == {"7 Point Trend (Increasing)"}
    assert types(y)[12:] == [I] * 7
    assert types(y, "decrease")[12:] == [X] * 7
    assert types(y, "neutral")[12:] == [HI] * 7


def test_trend_of_seven_falling():
    y = ENDS_LOW + [11.5, 11.2, 10.9, 10.6, 10.3, 10.0, 9.7]   # 10 -> 11.5 rises, then six falls
    r = spc_series(y, "increase", settings=FIXED)
    assert list(r.trend) == [False] * 12 + [True] * 7
    assert set(r.special_cause_type[12:]) == {"7 Point Trend (Decreasing)"}
    assert types(y)[12:] == [X] * 7 and types(y, "decrease")[12:] == [I] * 7


def test_a_tie_breaks_a_trend():
    y = ENDS_HIGH + [10.5, 10.8, 11.1, 11.1, 11.4, 11.7, 12.0, 12.3]   # 3 rising, tie, 5 rising
    r = spc_series(y, "increase", settings=FIXED)
    assert not r.trend.any() and set(r.point_type) == {C}


def test_trend_length_six_changes_the_verdict():
    y = ENDS_HIGH + [10.5, 10.8, 11.1, 11.4, 11.7, 12.0]   # 6 rising points
    assert spc_series(y, "increase", settings=FIXED).variation_type == C
    six = spc_series(y, "increase", settings=SpcSettings(baseline_points=12, trend_length=6))
    assert six.variation_type == I and six.special_cause_type[-1] == "6 Point Trend (Increasing)"


def test_peak_shared_by_two_trends_takes_the_later_one():
    # wide limits (mean 5, mR-bar 10); 1..7 rises (points 12-18) and 7..1 falls (points 18-24); 5 is on the mean
    y = [0.0, 10.0] * 6 + [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
    r = spc_series(y, "increase", settings=FIXED)
    assert not r.beyond_limits.any() and not r.shift.any()
    assert list(r.trend) == [False] * 12 + [True] * 13
    assert types(y)[12:] == [I] * 6 + [X] * 7          # the peak (point 18) belongs to the falling trend


def test_trend_ending_in_a_tie_that_starts_the_next_trend_keeps_nhsr_decreasing_label():
    # NHS-R quirk kept on purpose: the last point of a rising trend, followed by an equal value that starts a
    # falling trend, takes the step to the next point (0) and NHS-R labels a non-increasing step 'Decreasing'.
    y = [0.0, 10.0] * 6 + [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
    r = spc_series(y, "increase", settings=FIXED)
    assert list(r.trend[12:]) == [True] * 14
    assert r.special_cause_type[18] == "7 Point Trend (Decreasing)"
    assert types(y)[12:] == [I] * 6 + [X] * 8


def test_two_of_three_close_to_the_limits_on_the_same_side():
    # 15 is between upper 2-sigma 14.55 and upl 16.32; 12 is above the mean but not close
    y = ENDS_LOW + [15.0, 12.0, 15.0, 10.0]
    r = spc_series(y, "increase", settings=FIXED)
    assert list(r.close_to_limits[12:]) == [True, False, True, False]
    assert list(r.two_in_three[12:]) == [True, False, True, False]
    assert r.special_cause_type[12] == "2 in 3 Above CL"
    assert types(y)[12:] == [I, C, I, C] and types(y, "decrease")[12:] == [X, C, X, C]
    low = ENDS_HIGH + [7.0, 10.0, 7.0, 12.0]   # 7 is between lpl 5.68 and lower 2-sigma 7.45
    assert types(low)[12:] == [X, C, X, C]
    assert spc_series(low, "increase", settings=FIXED).special_cause_type[12] == "2 in 3 Below CL"


def test_two_of_three_on_split_sides_is_common_cause():
    for tail in ([15.0, 12.0, 7.0, 12.0], [15.0, 7.0, 15.0, 10.0], [7.0, 15.0, 10.0, 12.0]):
        r = spc_series(ENDS_LOW + tail, "increase", settings=FIXED)
        assert r.close_to_limits.sum() >= 2
        assert not r.two_in_three.any() and set(r.point_type) == {C}, tail


def test_points_beyond_the_limits_are_not_close_points():
    # 17 is beyond upl: it is flagged for that, and does not make a two-in-three with one close point
    r = spc_series(ENDS_LOW + [15.0, 17.0, 12.0, 10.0], "increase", settings=FIXED)
    assert list(r.special_cause_type[12:]) == ["Common Cause", "Above UCL", "Common Cause", "Common Cause"]
    r = spc_series(ENDS_LOW + [15.0, 17.0, 15.0, 10.0], "increase", settings=FIXED)
    assert list(r.special_cause_type[12:]) == ["2 in 3 Above CL", "Above UCL", "2 in 3 Above CL", "Common Cause"]


def test_moving_range_screening_changes_the_limits_and_a_verdict():
    # 12-point baseline: mean 28/12; moving ranges ten 1s and 23 (mean 3); 23 >= 3.267 x 3 is screened out,
    # leaving mR-bar 1: upl 2.333 + 2.66 = 4.993. Unscreened upl = 2.333 + 2.66 x 3 = 10.313. The 13th value 6
    # is beyond the screened limit only.
    y = [0.0, 1.0] * 5 + [0.0, 23.0, 6.0]
    screened = spc_series(y, "increase", settings=SpcSettings(baseline_points=12))
    unscreened = spc_series(y, "increase", settings=SpcSettings(baseline_points=12, screen_outliers=False))
    assert screened.mean[0] == pytest.approx(28 / 12)
    assert screened.mean_moving_range[0] == 1.0 and unscreened.mean_moving_range[0] == 3.0
    assert screened.upl[0] == pytest.approx(28 / 12 + 2.66) and unscreened.upl[0] == pytest.approx(28 / 12 + 7.98)
    assert screened.beyond_limits[-1] and not unscreened.beyond_limits[-1]
    assert mean_moving_range(np.array([0.0, 1.0] * 5 + [0.0, 23.0])) == 1.0


def test_limits_recalculable_from_a_baseline_period():
    y = ENDS_LOW + [14.0, 13.0] * 4   # the process moves up after the baseline
    fixed = spc_series(y, "increase", settings=FIXED)
    assert fixed.mean[-1] == 11.0 and list(fixed.baseline_points) == [12] * 20
    baseline_only = spc_series(y[:12], "increase")
    assert fixed.lpl[-1] == baseline_only.lpl[-1] and fixed.upl[-1] == baseline_only.upl[-1]
    assert types(y)[12:] == [I] * 8   # 8 points above the baseline mean
    whole = spc_series(y, "increase")
    assert whole.mean[-1] == 12.0 and list(whole.baseline_points) == [20] * 20
    longer = spc_series(y[:10], "increase", settings=SpcSettings(baseline_points=24))
    assert list(longer.baseline_points) == [10] * 10   # a baseline longer than the series uses all of it


def test_rebase_gives_each_period_its_own_limits_and_rules():
    y = ENDS_LOW + [20.0, 22.0] * 6
    r = spc_series(y, "increase", settings=SpcSettings(), rebase_at=[12])
    assert list(r.rebase_group) == [0] * 12 + [1] * 12
    assert r.mean[0] == 11.0 and r.mean[-1] == 21.0
    assert set(r.point_type) == {C}   # no run across the rebase point


def test_provisional_below_twelve_points():
    assert spc_series(ENDS_LOW[:11], "increase").is_provisional
    assert not spc_series(ENDS_LOW, "increase").is_provisional
    # limits from a baseline shorter than min_points are provisional too (NHS-R refuses fix_after_n_points < 12)
    assert spc_series(ENDS_LOW * 2, "increase", settings=SpcSettings(baseline_points=6)).is_provisional
    assert not spc_series(ENDS_LOW[:11], "increase", settings=SpcSettings(min_points=10)).is_provisional


def test_assurance_pass_fail_inconsistent_and_none():
    # limits 5.68 .. 16.32
    def at(target, direction="increase"):
        return spc_series(ENDS_LOW, direction, target=target).assurance_type
    assert at(3.0) == "consistent_pass" and at(20.0) == "consistent_fail" and at(11.0) == "inconsistent"
    assert at(3.0, "decrease") == "consistent_fail" and at(20.0, "decrease") == "consistent_pass"
    assert at(None) is None and at(3.0, "neutral") is None and at(math.nan) is None
    upl = float(spc_series(ENDS_LOW, "increase").upl[-1])
    assert at(upl) == "inconsistent"   # strict comparisons: a target on a limit is hit and miss


def test_constant_series_has_no_limits_and_is_common_cause():
    # every moving range is 0, so all are screened out (0 < 3.267 x 0 is false) and mR-bar is NaN, as in NHS-R
    r = spc_series([5.0] * 14, "increase", target=4.0)
    assert np.isnan(r.lpl).all() and np.isnan(r.upl).all()
    assert set(r.point_type) == {C} and not r.beyond_limits.any()
    assert r.assurance_type == "inconsistent"   # NHS-R: NA comparisons fall through to 'inconsistent'
    unscreened = spc_series([5.0] * 12 + [6.0], "increase", settings=SpcSettings(baseline_points=12,
                                                                                  screen_outliers=False))
    assert unscreened.lpl[0] == 5.0 and unscreened.upl[0] == 5.0 and unscreened.beyond_limits[-1]


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match="improvement_direction"):
        spc_series([1.0, 2.0], "up")
    with pytest.raises(ValueError, match="at least one value"):
        spc_series([], "increase")
    with pytest.raises(ValueError, match="finite"):
        spc_series([1.0, math.nan, 2.0], "increase")
    with pytest.raises(ValueError, match="shift_length"):
        SpcSettings(shift_length=1)
    with pytest.raises(ValueError, match="baseline_points"):
        SpcSettings(baseline_points=1)


# ---- 2. pinned cases from NHSRplotthedots' own tests -----------------------------------------------------------

# set.seed(123); rnorm(20) in R (tests/testthat/test-ptd_spc_standard.R and test-ptd_spc.R build their data so)
RNORM_123 = [-0.560475646552213, -0.23017748948328, 1.55870831414912, 0.070508391424576, 0.129287735160946,
             1.71506498688328, 0.460916205989202, -1.26506123460653, -0.686852851893526, -0.445661970099958,
             1.22408179743946, 0.359813827057364, 0.400771450594052, 0.11068271594512, -0.555841134754075,
             1.78691313680308, 0.497850478229239, -1.96661715662964, 0.701355901563686, -0.472791407727934]


def test_nhsr_spc_standard_snapshot_limits():
    # tests/testthat/_snaps/ptd_spc_standard.md (test-ptd_spc_standard.R "it returns expected values"):
    # r1: mean_col 0.1416238, lpl -3.01138, upl 3.294627
    r1 = spc_series(RNORM_123, "increase")
    assert r1.mean[0] == pytest.approx(0.1416238, abs=5e-8)
    assert r1.lpl[0] == pytest.approx(-3.01138, abs=5e-6) and r1.upl[0] == pytest.approx(3.294627, abs=5e-7)
    assert list(r1.relative_to_mean[:15]) == [-1, -1, 1, -1, -1, 1, 1, -1, -1, -1, 1, 1, 1, -1, -1]
    assert not r1.beyond_limits.any() and not r1.close_to_limits[:8].any()
    # r2: y[15] <- 10 with screen_outliers = TRUE: mean 0.6694159, lpl -2.383666, upl 3.722497
    y = list(RNORM_123)
    y[14] = 10.0
    r2 = spc_series(y, "increase")
    assert r2.mean[0] == pytest.approx(0.6694159, abs=5e-8)
    assert r2.lpl[0] == pytest.approx(-2.383666, abs=5e-7) and r2.upl[0] == pytest.approx(3.722497, abs=5e-7)
    assert list(r2.relative_to_mean[:14]) == [-1, -1, 1, -1, -1, 1, -1, -1, -1, -1, 1, -1, -1, -1]
    # r3: screen_outliers = FALSE: lpl -4.596625, upl 5.935457 (wider than r2)
    r3 = spc_series(y, "increase", settings=SpcSettings(screen_outliers=False))
    assert r3.lpl[0] == pytest.approx(-4.596625, abs=5e-7) and r3.upl[0] == pytest.approx(5.935457, abs=5e-7)
    # "setting fix_after_n_points changes the calculations"
    s1 = spc_series(RNORM_123, "increase", settings=SpcSettings(baseline_points=12))
    assert s1.lpl[0] != r1.lpl[0] and s1.upl[0] != r1.upl[0]


def test_nhsr_summary_snapshot_by_facet():
    # tests/testthat/_snaps/ptd_spc.md (test-ptd_spc.R "it outputs expected content"): facets of 10 points
    # f=0: mean 0.0746, lpl -2.60, upl 2.75; f=1: 0.209, -3.28, 3.70; n=10, all common cause
    for part, (m, lo, hi) in ((RNORM_123[:10], (0.0746, -2.60, 2.75)), (RNORM_123[10:], (0.209, -3.28, 3.70))):
        r = spc_series(part, "increase")
        assert round(r.mean[0], 4 if m < 0.1 else 3) == m
        assert round(r.lpl[0], 2) == lo and round(r.upl[0], 2) == hi
        assert set(r.point_type) == {C} and r.is_provisional   # short_group_warning: 10 < 12
    whole = spc_series(RNORM_123, "increase", target=0.5)
    assert set(whole.point_type) == {C} and whole.variation_type == C and not whole.is_provisional
    assert whole.assurance_type == "inconsistent"


def test_nhsr_two_in_three_opposite_sides_is_common_cause():
    # tests/testthat/test-ptd_spc_standard.R "it only reports special cause for 2 of 3 points close to limits
    # when they are on the same side of the mean" (NHS-R issue #143)
    data = [1.0, -1.0] * 8
    data[14], data[15] = 5.5, -5.5
    assert types(data, settings=SpcSettings())[-2:] == [C, C]


def test_nhsr_seven_point_one_side_mean_cases():
    # tests/testthat/test-ptd_calculate_point_type.R, ptd_seven_point_one_side_mean + ptd_part_of_seven_trend
    assert list(shift_points(np.array([], dtype=np.int8))) == []
    assert not shift_points(np.ones(6, dtype=np.int8)).any()
    assert not shift_points(np.array([1] * 6 + [-1], dtype=np.int8)).any()
    assert list(shift_points(np.array([1] * 8 + [-1], dtype=np.int8))) == [True] * 8 + [False]
    assert list(shift_points(np.array([-1] * 8 + [1], dtype=np.int8))) == [True] * 8 + [False]
    # ptd_part_of_seven_trend(c(rep(0, 7), 1, 0)) == c(0, rep(1, 7), 0): the run ending at point 8 marks 2..8
    assert list(shift_points(np.array([-1] + [1] * 7 + [-1], dtype=np.int8))) == [False] + [True] * 7 + [False]


def test_nhsr_seven_point_trend_cases():
    # tests/testthat/test-ptd_calculate_point_type.R, ptd_seven_point_trend (+ part_of marks the 7 points)
    def part(y):
        return list(trend_points(np.array(y, dtype=float))[0])
    assert part([]) == []
    assert part([1, 2, 3, 4, 5, 6]) == [False] * 6
    assert part([1, 2, 3, 3, 4, 5, 6]) == [False] * 7                  # c(1:3, 3:6): the tie breaks it
    assert part([1, 2, 3, 4, 5, 6, 7]) == [True] * 7                   # 1:7
    assert part([2, 1, 2, 3, 4, 5, 6, 7, 3]) == [False] + [True] * 7 + [False]   # c(2, 1:7, 3)
    assert part([7, 6, 5, 4, 3, 2, 1]) == [True] * 7                   # 7:1
    assert part([2, 7, 6, 5, 4, 3, 2, 1, 3]) == [False] + [True] * 7 + [False]   # c(2, 7:1, 3)
    assert list(trend_points(np.arange(1.0, 8.0))[1]) == [1] * 7
    assert list(trend_points(np.arange(7.0, 0.0, -1.0))[1]) == [-1] * 7


def test_nhsr_two_in_three_cases():
    # tests/testthat/test-ptd_calculate_point_type.R, ptd_two_in_three + ptd_part_of_two_in_three
    def part(close, rtm):
        return [int(v) for v in two_in_three_points(np.array(close, dtype=bool), np.array(rtm, dtype=np.int8))]
    assert part([], []) == []
    for v in ([1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1, 0, 1, 0, 0], [0, 0, 1, 1, 0, 0, 0]):
        assert part(v, [1] * len(v)) == v
    assert part([1, 0, 0, 1], [1] * 4) == [0, 0, 0, 0]
    assert part([1, 0, 0, 1, 1], [1] * 5) == [0, 0, 0, 1, 1]
    # "... when points are on opposite sides of the mean"
    assert part([1, 0, 1], [1, -1, 1]) == [0] * 3
    assert part([0, 1, 1], [1, -1, 1]) == [0] * 3
    assert part([1, 1, 0], [1, -1, 1]) == [0] * 3
    assert part([0, 0, 1, 0, 1, 0, 0], [1, -1, 1, -1, 1, -1, 1]) == [0] * 7
    assert part([0, 0, 1, 1, 0, 0, 0], [-1, 1, -1, 1, -1, 1, -1]) == [0] * 7


def test_nhsr_special_cause_type_precedence():
    # tests/testthat/test-ptd_calculate_point_type.R "ptd_special_cause_type works as expected" (the mocked rule
    # results fed straight in): y = 1:8, trend on points 1-2, shift on 3-4, two-in-three on 5, beyond on 6-7
    rtm = np.array([1, 1, 1, 1, -1, -1, -1, -1], dtype=np.int8)
    beyond = np.array([0, 0, 0, 0, 0, 1, 1, 0], dtype=bool)
    trend = np.array([1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    shift = np.array([0, 0, 1, 1, 0, 0, 0, 0], dtype=bool)
    two3 = np.array([0, 0, 0, 0, 1, 0, 0, 0], dtype=bool)
    direction = np.array([1, 1, 1, 1, 1, 1, 1, 1], dtype=np.int8)   # sdy for y = 1:8
    labels, _ = special_cause_labels(beyond, trend, direction, two3, shift, rtm)
    assert list(labels) == ["7 Point Trend (Increasing)", "7 Point Trend (Increasing)", "7 Points Above CL",
                            "7 Points Above CL", "2 in 3 Below CL", "Below LCL", "Below LCL", "Common Cause"]


def test_nhsr_assurance_cases():
    # tests/testthat/test-ptd_calculate_assurance_type.R: lpl (1, 5, 1), upl (3, 7, 5), target 4
    rows = [(1, 3), (5, 7), (1, 5)]
    assert [assurance_type(lo, hi, 4, "increase") for lo, hi in rows] == [
        "consistent_fail", "consistent_pass", "inconsistent"]
    assert [assurance_type(lo, hi, 4, "decrease") for lo, hi in rows] == [
        "consistent_pass", "consistent_fail", "inconsistent"]
    assert [assurance_type(lo, hi, 4, "neutral") for lo, hi in rows] == [None] * 3
    assert assurance_type(1, 3, None, "increase") is None
    # "... when rebase": the last row's (last group's) limits decide
    y = [0.0, 2.0] * 6 + [10.0, 12.0] * 6   # group 0 limits 1 -/+ 5.32, group 1 limits 11 -/+ 5.32
    r = spc_series(y, "decrease", target=20.0, rebase_at=[12])
    assert r.assurance_type == "consistent_pass"
    # target 4 is inside group 0's limits (-4.32 .. 6.32) but below group 1's (5.68 .. 16.32): group 1 decides
    assert spc_series(y[:12], "decrease", target=4.0).assurance_type == "inconsistent"
    assert spc_series(y, "decrease", target=4.0, rebase_at=[12]).assurance_type == "consistent_fail"


def test_nhsr_short_group_warnings():
    # tests/testthat/test-ptd_add_short_group_warnings.R: 11 points warn, 12 do not; a rebase group of 5 warns
    assert spc_series(RNORM_123[:11], "increase").provisional.all()
    assert not spc_series(RNORM_123[:12], "increase").provisional.any()
    y = (RNORM_123 * 2)[:40]
    r = spc_series(y, "increase", rebase_at=[35])
    assert list(r.provisional) == [False] * 35 + [True] * 5
    # tests/testthat/test-ptd_spc_standard.R "it sets the rebase_group field": rebase at point 11 of 20
    assert list(spc_series(RNORM_123, "increase", rebase_at=[10]).rebase_group) == [0] * 10 + [1] * 10


# tests/testthat/_snaps/integration_tests.md, "ae_all attendances spc returns expected values":
# ptd_spc(ae_all(), attendances, period) -> 36 months Apr 2016 - Mar 2019, all common cause
AE_ALL_ATTENDANCES = [1867781, 2070340, 1958802, 2079034, 1932901, 1952464, 2001816, 1907871, 1944567, 1895272,
                      1735619, 2015834, 1949762, 2066789, 1994056, 2073944, 1924663, 1925961, 2044137, 1976971,
                      2003954, 2000086, 1820012, 2049785, 1984369, 2164458, 2093942, 2179896, 1997854, 2005695,
                      2079492, 2037847, 2047518, 2113413, 1954947, 2167550]


def test_nhsr_integration_ae_all_attendances():
    r = spc_series([float(v) for v in AE_ALL_ATTENDANCES], "increase")
    assert r.mean[0] == pytest.approx(2000538.9444444445, rel=1e-14)
    assert r.lpl[0] == pytest.approx(1731844.3644444444, rel=1e-14)
    assert r.upl[0] == pytest.approx(2269233.5244444446, rel=1e-14)
    assert "".join(str(int(c)) for c in r.close_to_limits) == "000000000010000000000010000100000000"
    assert set(r.point_type) == {C} and not r.is_provisional


def test_nhsr_integration_ae_all_attendances_rebase():
    # same file, "ae_all attendances spc with rebase returns expected values": rebase = 2017-04-01 (point 13)
    r = spc_series([float(v) for v in AE_ALL_ATTENDANCES], "increase", rebase_at=[12])
    assert r.mean[0] == pytest.approx(1946858.4166666667, rel=1e-14)
    assert r.lpl[0] == pytest.approx(1639947.374848485, rel=1e-14)
    assert r.upl[0] == pytest.approx(2253769.4584848485, rel=1e-14)
    assert r.mean[-1] == pytest.approx(2027379.2083333333, rel=1e-14)
    assert r.lpl[-1] == pytest.approx(1772921.0639855072, rel=1e-14)
    assert r.upl[-1] == pytest.approx(2281837.3526811595, rel=1e-14)
    assert set(r.point_type) == {C}


# same file, "ae_all performance spc returns expected values": ptd_spc(ae_all(), performance, period,
# fix_after_n_points = 12), performance = 1 - breaches / attendances
AE_ALL_PERFORMANCE = [
    0.9003512724457525, 0.9027555860390081, 0.9055994429248081, 0.9028524786030435, 0.909763097023593,
    0.9064786853944554, 0.8905308979446662, 0.8837903610883545, 0.8617594559611471, 0.851413411900772,
    0.8753090395991286, 0.9000949482943537, 0.9051525263083392, 0.8970035160821932, 0.9072518525056468,
    0.9034785895858326, 0.9029928875860346, 0.8966609396555797, 0.8994186788850258, 0.8876655246839736,
    0.8498503458662225, 0.8529918213516818, 0.8504476893558943, 0.8462121637147311, 0.8857248828216929,
    0.9039011151983545, 0.9076297242234981, 0.8931949047110505, 0.8972702710007838, 0.8894368286304747,
    0.8900933497219513, 0.8760446687116353, 0.8644632183941728, 0.843525141560121, 0.8422525009629417,
    0.8660427671795345]
# C = common cause, I = improvement, X = concern, point by point, as in the snapshot
AE_ALL_PERFORMANCE_TYPES = "CCCCCCCCCXCIIIIIIIICXXXXCCCCCXXXXXXX"


def test_nhsr_integration_ae_all_performance_fixed_after_12():
    r = spc_series(AE_ALL_PERFORMANCE, "increase", settings=SpcSettings(baseline_points=12))
    assert r.mean[0] == pytest.approx(0.8908915564349236, rel=1e-14)
    assert r.lpl[0] == pytest.approx(0.8614049789074258, rel=1e-14)
    assert r.upl[0] == pytest.approx(0.9203781339624213, rel=1e-14)
    code = {C: "C", I: "I", X: "X"}
    assert "".join(code[t] for t in r.point_type) == AE_ALL_PERFORMANCE_TYPES
    assert list(np.flatnonzero(r.beyond_limits)) == [9, 20, 21, 22, 23, 33, 34]
    assert list(np.flatnonzero(r.close_to_limits)) == [8, 32, 35]
    assert r.variation_type == X


# ---- 3. a literal port of NHSRplotthedots' R functions, as an oracle ------------------------------------------

def _r_seven_point_one_side_mean(v, n=7):
    vp = [0] * (n - 1) + list(v)
    return [int(all(vp[i] == vp[i - k] for k in range(1, n)) and vp[i] != 0) for i in range(n - 1, len(vp))]


def _r_part_of_seven_trend(v, n=7):
    vp = list(v) + [0] * (n - 1)
    return [int(any(abs(vp[i + k]) == 1 for k in range(n))) for i in range(len(v))]


def _r_seven_point_trend(y, n=7):
    if len(y) < n:
        return [0] * len(y)
    out = [0] * (n - 1)
    for i in range(n - 1, len(y)):
        d = [np.sign(y[i - k] - y[i - k - 1]) for k in range(n - 1)]
        out.append(1 if all(x == 1 for x in d) else -1 if all(x == -1 for x in d) else 0)
    return out


def _r_two_in_three(v, rtm):
    vp, rp = [0, 0, *v, 0, 0], [0, 0, *rtm, 0, 0]
    return [int(any(sum(vp[i + a:i + a + 3]) >= 2 and abs(sum(rp[i + a:i + a + 3])) == 3 for a in range(3)))
            for i in range(len(v))]


def _r_ptd(y, direction, fix=None, screen=True, shift_n=7, trend_n=7):
    """ptd_spc_standard + ptd_calculate_point_type (no rebase), transcribed from the R."""
    y = list(y)
    fix_y = y[:fix] if fix else y
    mean = float(np.mean(fix_y))
    mr = [abs(b - a) for a, b in zip(fix_y, fix_y[1:])]
    amr = float(np.mean(mr)) if mr else math.nan
    if screen:
        mr = [m for m in mr if m < 3.267 * amr]
        amr = float(np.mean(mr)) if mr else math.nan
    lpl, upl = mean - 2.66 * amr, mean + 2.66 * amr
    nlpl, nupl = mean - 2 * (2.66 / 3) * amr, mean + 2 * (2.66 / 3) * amr
    outside = [int(v > upl or v < lpl) for v in y]
    rtm = [int(np.sign(v - mean)) for v in y]
    close = [int(not o and (v < nlpl or v > nupl)) for v, o in zip(y, outside)]
    part_trend = _r_part_of_seven_trend(_r_seven_point_trend(y, trend_n), trend_n)
    part_two = [int(t == 1 and abs(c) == 1) for t, c in zip(_r_two_in_three(close, rtm), close)]
    part_shift = _r_part_of_seven_trend(_r_seven_point_one_side_mean(rtm, shift_n), shift_n)
    sd = [int(np.sign(b - a)) for a, b in zip(y, y[1:])]
    nxt = part_trend[1:] + [0]
    sdy = [(sd + sd[-1:])[i] if (nxt[i] and part_trend[i]) else ([0] + sd)[i] for i in range(len(y))]
    labels = []
    for i in range(len(y)):
        ab = "Above" if rtm[i] > 0 else "Below"
        if outside[i]:
            labels.append("Above UCL" if rtm[i] == 1 else "Below LCL")
        elif part_trend[i]:
            labels.append(f"{trend_n} Point Trend ({'In' if sdy[i] == 1 else 'De'}creasing)")
        elif part_two[i]:
            labels.append(f"2 in 3 {ab} CL")
        elif part_shift[i]:
            labels.append(f"{shift_n} Points {ab} CL")
        else:
            labels.append("Common Cause")
    sign = {"increase": 1, "neutral": 0, "decrease": -1}[direction]
    kinds = []
    for lab in labels:
        v = 1 if ("Above" in lab or "Increasing" in lab) else -1 if ("Below" in lab or "Decreasing" in lab) else 0
        if sign == 0:
            kinds.append(HI if v > 0 else LO if v < 0 else C)
        else:
            kinds.append(I if v * sign > 0 else X if v * sign < 0 else C)
    return labels, kinds, (mean, lpl, upl)


def test_vectorised_rules_match_a_literal_port_of_nhsr_on_random_series():
    rng = np.random.default_rng(20240401)
    checked = 0
    for case in range(400):
        n = int(rng.integers(2, 40))
        kind = case % 4
        if kind == 0:
            y = rng.integers(0, 4, n).astype(float)            # many ties and points on the mean
        elif kind == 1:
            y = np.cumsum(rng.choice([-1.0, 0.0, 1.0], n))     # walks: trends, ties, shifts
        elif kind == 2:
            y = rng.normal(0, 1, n) + np.where(np.arange(n) > n // 2, 1.5, 0.0)
        else:
            y = np.round(rng.normal(0, 1, n), 1)
        direction = ("increase", "decrease", "neutral")[case % 3]
        shift_n, trend_n = (7, 7) if case % 5 else (6, 6)
        fix = int(rng.integers(2, n + 1)) if (case % 7 == 0 and n > 2) else None
        screen = case % 11 != 0
        labels, kinds, (mean, lpl, upl) = _r_ptd(list(y), direction, fix, screen, shift_n, trend_n)
        r = spc_series(y, direction, settings=SpcSettings(shift_length=shift_n, trend_length=trend_n,
                                                          screen_outliers=screen, baseline_points=fix))
        assert list(r.special_cause_type) == labels, (case, list(y))
        assert list(r.point_type) == kinds, (case, list(y))
        if not math.isnan(lpl):
            assert r.lpl[0] == pytest.approx(lpl, rel=1e-12, abs=1e-12)
            assert r.upl[0] == pytest.approx(upl, rel=1e-12, abs=1e-12)
        checked += 1
    assert checked == 400


# ---- 4. the build --------------------------------------------------------------------------------------------

def _month(i: int) -> date:
    return date(2023 + (i // 12), i % 12 + 1, 1)


def _hand_made_db(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.sql("create schema s1_current_state")
    con.sql("""create table s1_current_state.metric_catalogue as select * from (values
                 ('up_pct', true), ('down_count', false), ('neutral_beds', null)) t(metric_id, higher_is_better)""")
    rows = []
    def add(org, level, metric, values, grain="month", months=None):
        for k, v in enumerate(values):
            m = months[k] if months else k
            rows.append((org, level, org, _month(m), grain, metric, v, "test_source"))
    up = ENDS_HIGH + [20.0, 10.0, 2.0, 12.0]                     # beyond above (point 12) and below (point 14)
    add("RAA", "provider", "up_pct", up)
    add("RAA", "provider", "down_count", ENDS_LOW + [12.0, 13.0, 12.0, 13.0, 12.0, 13.0, 12.0])  # 7 above
    add("QXX", "icb", "neutral_beds", [12.0, 10.0] * 5)           # 10 points: provisional
    add("RBB", "provider", "up_pct", [50.0])                     # one point: left out
    add("RBB", "provider", "down_count", [5.0, 6.0, 7.0, 6.0], months=[0, 1, 5, 6])   # 3 months missing
    add("RAA", "provider", "up_pct", [1.0, 2.0, 3.0], grain="quarter", months=[40, 43, 46])  # not monthly
    frame = pl.DataFrame(rows, schema=["org_code", "org_level", "current_org_code", "period_start", "period_grain",
                                       "metric_id", "value", "source"], orient="row")
    con.register("_rows", frame.to_arrow())
    con.sql("create table s1_current_state.metric_values as select * from _rows")
    con.unregister("_rows")
    return con


def test_build_spc_on_hand_made_tables(tmp_path):
    con = _hand_made_db(tmp_path / "w.duckdb")
    targets = pl.DataFrame({"org_code": ["RAA", "RAA"], "metric_id": ["up_pct", "down_count"],
                            "target_value": [3.0, 20.0]})
    n = build_spc(con, targets, SpcSettings(baseline_points=12))
    assert n == 16 + 19 + 10 + 4
    assert con.sql("select count(*) from s2_triple_aim.spc").fetchone()[0] == n
    summary = {r["org_code"] + "/" + r["metric_id"]: r
               for r in con.sql("select * from s2_triple_aim.spc_summary").pl().iter_rows(named=True)}
    assert set(summary) == {"RAA/up_pct", "RAA/down_count", "QXX/neutral_beds", "RBB/down_count"}
    up, down, neutral = summary["RAA/up_pct"], summary["RAA/down_count"], summary["QXX/neutral_beds"]
    assert up["improvement_direction"] == "increase" and down["improvement_direction"] == "decrease"
    assert neutral["improvement_direction"] == "neutral"
    assert up["assurance_type"] == "consistent_pass" and up["target_value"] == 3.0   # 3 < lpl 5.68
    assert down["assurance_type"] == "consistent_pass"                               # 20 > upl, lower is better
    assert neutral["assurance_type"] is None and neutral["provisional"] and neutral["n_points"] == 10
    assert up["variation_type"] == C and down["variation_type"] == X
    assert up["lpl"] == pytest.approx(5.68) and up["upl"] == pytest.approx(16.32) and up["baseline_points"] == 12
    assert up["n_special_cause_improvement"] == 1 and up["n_special_cause_concern"] == 1
    assert summary["RBB/down_count"]["n_missing_months"] == 3
    assert up["first_period"] == date(2023, 1, 1) and up["last_period"] == date(2024, 4, 1)
    assert "2.66" in up["limits_formula"] and "3.267" in up["limits_formula"]
    pts = con.sql("""select period_start, value, point_type, special_cause_type, beyond_limits, lpl, upl
                     from s2_triple_aim.spc where org_code = 'RAA' and metric_id = 'up_pct'
                     order by period_start""").fetchall()
    assert [p[2] for p in pts][12:] == [I, C, X, C]
    assert pts[12][3] == "Above UCL" and pts[12][4] is True and pts[12][5] == pytest.approx(5.68)
    cols = [c[0] for c in con.sql("describe s2_triple_aim.spc").fetchall()]
    for col in ("org_code", "metric_id", "period_start", "value", "mean", "lpl", "upl", "point_type",
                "beyond_limits", "shift", "trend", "two_in_three", "provisional", "baseline_points"):
        assert col in cols
    con.close()


def test_build_spc_rejects_bad_targets(tmp_path):
    con = _hand_made_db(tmp_path / "w.duckdb")
    with pytest.raises(ValueError, match="one target_value per series"):
        build_spc(con, pl.DataFrame({"org_code": ["RAA", "RAA"], "metric_id": ["up_pct", "up_pct"],
                                     "target_value": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="target_value"):
        build_spc(con, pl.DataFrame({"org_code": ["RAA"], "metric_id": ["up_pct"]}))
    con.close()


def test_build_spc_on_the_real_warehouse(real_warehouse, tmp_path):
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(real_warehouse, db)
    con = duckdb.connect(str(db))
    targets = con.sql("""select distinct org_code, metric_id, 78.0 as target_value
                         from s1_current_state.metric_values
                         where metric_id = 'ae_4hr_pct' and period_grain = 'month'""").pl()
    n = build_spc(con, targets)
    expected_rows, expected_series = con.sql("""
        select sum(n), count(*) from (
            select count(*) n from s1_current_state.metric_values
            where period_grain = 'month' and value is not null group by org_code, metric_id having count(*) >= 2)
        """).fetchone()
    assert n == expected_rows and n > 100_000
    assert con.sql("select count(*) from s2_triple_aim.spc_summary").fetchone()[0] == expected_series
    kinds = {k for (k,) in con.sql("select distinct point_type from s2_triple_aim.spc").fetchall()}
    assert kinds <= set(POINT_TYPES) and {C, I, X} <= kinds
    # variation_type is the last point's type; limits bracket the mean; provisional = fewer than 12 points
    assert con.sql("""
        select count(*) from s2_triple_aim.spc_summary s
        join s2_triple_aim.spc p on p.org_code = s.org_code and p.metric_id = s.metric_id
                                and p.period_start = s.last_period
        where p.point_type <> s.variation_type""").fetchone()[0] == 0
    assert con.sql("""select count(*) from s2_triple_aim.spc
                      where lpl is not null and not (lpl <= mean and mean <= upl)""").fetchone()[0] == 0
    assert con.sql("""select count(*) from s2_triple_aim.spc_summary
                      where provisional <> (n_points < 12)""").fetchone()[0] == 0
    with_target = con.sql("""select count(*), count(assurance_type) filter (where metric_id <> 'ae_4hr_pct')
                             from s2_triple_aim.spc_summary where assurance_type is not null""").fetchone()
    assert with_target[0] > 100 and with_target[1] == 0
    # England's A&E 4-hour series, recomputed point by point, equals the table
    values = [v for (v,) in con.sql("""select value from s1_current_state.metric_values
                                       where org_code = 'ENGLAND' and metric_id = 'ae_4hr_pct'
                                         and period_grain = 'month' order by period_start""").fetchall()]
    table = con.sql("""select point_type, lpl from s2_triple_aim.spc
                       where org_code = 'ENGLAND' and metric_id = 'ae_4hr_pct' order by period_start""").fetchall()
    r = spc_series(values, "increase", target=78.0)
    assert len(values) >= 24 and [t for t, _ in table] == list(r.point_type)
    assert table[0][1] == pytest.approx(r.lpl[0])
    con.close()
