"""Queueing maths against the issue's worked example and NHSRwaitinglist's own documented examples and tests.

Pinned values come from nhs-r-community/NHSRwaitinglist (MIT), files cited per test: the R package's
testthat expectations use expect_equal (tolerance about 1.5e-8 relative), so pytest.approx(rel=1e-7) matches.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from ibp_pipeline.step4_gaps import queueing as q


def approx(x):
    return pytest.approx(x, rel=1e-7)


# ---- the issue's worked example --------------------------------------------------------------------------------
def test_worked_example_from_the_issue():
    """Demand 30 a week, target 52 weeks, factor 4 -> target queue 390; a queue of 1,200 relieved over 26 weeks
    needs 30 + (1200 - 390) / 26 = 61.15 a week."""
    target = q.calc_target_queue_size(30, 52, 4)
    assert target == 390
    relief = q.calc_relief_capacity(30, 1200, target, 26)
    assert relief == approx(30 + (1200 - 390) / 26)
    assert round(relief, 2) == 61.15
    assert q.queue_too_big(1200, target)  # 1200 > 2 x 390: relief capacity is the figure that matters


# ---- tests/testthat/test-calc_target_queue_size.R (and R/calc_target_queue_size.R's example) ----------------------
def test_target_queue_size_pinned():
    assert q.calc_target_queue_size(30, 52) == 390
    assert q.calc_target_queue_size(30, 50) == 375
    assert q.calc_target_queue_size(30, 50, 6) == approx(250)
    np.testing.assert_allclose(q.calc_target_queue_size([30, 30, 30], [52, 50, 50], [4, 4, 6]), [390, 375, 250])


# ---- tests/testthat/test-calc_target_mean_wait.R and test-average_wait.R --------------------------------------------
def test_target_mean_wait_pinned():
    assert q.calc_target_mean_wait(52, 4) == 13
    assert q.calc_average_wait(52, 4) == 52 / 4
    np.testing.assert_allclose(q.calc_target_mean_wait([35, 30, 52], [4, 4, 6]), [8.75, 7.5, 8.6666667], rtol=1e-7)
    # R/calc_target_mean_wait.R example text: "with a factor of 6 it would be 8.67 weeks"
    assert round(q.calc_target_mean_wait(52, 6), 2) == 8.67


# ---- tests/testthat/test-calc_target_capacity.R ---------------------------------------------------------------------
def test_target_capacity_pinned():
    assert q.calc_target_capacity(30, 52, 3, 1.1, 1.2) == approx(30 + ((1.1 ** 2 + 1.2 ** 2) / 2) * (3 / 52))
    assert q.calc_target_capacity(30, 52, 3, 1.1, 1.2) == pytest.approx(30.076442, abs=1e-6)
    # Defaults: factor 4, cv 1 and 1 -> demand + 4 / target_wait (R/calc_target_capacity.R's example: 4, 52)
    assert q.calc_target_capacity(4, 52) == approx(4 + 4 / 52)
    assert q.kingman_term(18) == approx(4 / 18)


def test_target_capacity_vectorised_like_the_older_tests():
    """The commented-out vector test of test-calc_target_capacity.R (Kingman form), values recomputed."""
    got = q.calc_target_capacity([30, 42, 35], [52, 65, 50], [3, 2, 1], [1.1, 1.2, 1.3], [1.4, 1.5, 1.6])
    np.testing.assert_allclose(got, [30.0914423, 42.0567692, 35.0425], rtol=1e-7)


def test_target_capacity_num_referrals_inflation():
    """R/calc_target_capacity.R (later version): demand / (1 - 2 x demand x cv / sqrt(n)) when that is < 1."""
    d, cv, n = 30.0, 1.0, 1_000_000
    k = 2 * d * cv / math.sqrt(n)
    assert q.calc_target_capacity(d, 52, 4, cv, 1, num_referrals=n) == approx(d / (1 - k) + 4 / 52)
    assert q.calc_target_capacity(d, 52, 4, cv, 1, num_referrals=100) == approx(d + 4 / 52)  # k >= 1: unchanged


# ---- tests/testthat/test-calc_relief_capacity.R and test-relief_capacity.R ------------------------------------------
def test_relief_capacity_pinned():
    assert q.calc_relief_capacity(30, 1200, 390, 26) == approx(30 + (1200 - 390) / 26)
    assert q.calc_relief_capacity(30, 1200, 390, 26) == pytest.approx(61.153846, abs=1e-6)
    np.testing.assert_allclose(q.calc_relief_capacity([30, 33, 35], [1200, 800, 250], [390, 200, 100],
                                                      [26, 30, 15]), [61.153846, 53, 45], rtol=1e-7)


# ---- tests/testthat/test-calc_queue_load.R --------------------------------------------------------------------------
def test_queue_load_pinned():
    assert q.calc_queue_load(30, 27) == approx(30 / 27)
    assert q.calc_queue_load(30, 27) == pytest.approx(1.11111111, abs=1e-8)
    np.testing.assert_allclose(q.calc_queue_load([35, 30, 52], [27, 25, 42]), [1.2962963, 1.2, 1.23809524],
                               rtol=1e-7)


# ---- tests/testthat/test-calc_waiting_list_pressure.R ---------------------------------------------------------------
def test_waiting_list_pressure_pinned():
    assert q.calc_waiting_list_pressure(63, 52) == approx(2 * 63 / 52)
    assert q.calc_waiting_list_pressure(63, 52) == pytest.approx(2.42307692, abs=1e-8)
    np.testing.assert_allclose(q.calc_waiting_list_pressure([63, 42, 55], [52, 24, 50]), [2.42307692, 3.5, 2.2],
                               rtol=1e-7)


# ---- input checks, as the R package's check_class() ------------------------------------------------------------------
@pytest.mark.parametrize("call", [
    lambda: q.calc_target_queue_size("x", 2, 3),
    lambda: q.calc_target_capacity(1, "x", 3, 4, 5),
    lambda: q.calc_relief_capacity(1, 2, "x", 4),
    lambda: q.calc_queue_load("x", 1),
    lambda: q.calc_waiting_list_pressure(1, None),
    lambda: q.calc_target_mean_wait(True, 4),
])
def test_non_numeric_input_is_an_error(call):
    with pytest.raises(TypeError, match="must be of class <numeric>"):
        call()


def test_output_length_matches_input_length():
    rng = np.random.default_rng(1)
    d = rng.normal(50, 20, 17)
    assert q.calc_target_queue_size(d, d * 1.5).shape == d.shape
    assert q.calc_target_capacity(d, d * 1.5).shape == d.shape


# ---- mean wait from the RTT weekly bands -----------------------------------------------------------------------------
def test_mean_wait_from_bands_uses_midpoints():
    # 30 patients in 0-1 weeks (0.5) and 1,170 in 10-11 weeks (10.5): (15 + 12,285) / 1,200 = 10.25
    counts = [30, 0, 1170]
    lower = [0, 1, 10]
    assert q.mean_wait_from_bands(counts, lower) == pytest.approx(10.25)


def test_mean_wait_open_band_and_missing_counts():
    assert q.mean_wait_from_bands([np.nan, 10], [0, 104]) == pytest.approx(104.5)
    assert q.mean_wait_from_bands([10, 10], [0, 104], open_band_midpoint_offset=2.0) == pytest.approx((0.5 + 106) / 2)
    assert math.isnan(q.mean_wait_from_bands([0, 0], [0, 1]))
    with pytest.raises(ValueError):
        q.mean_wait_from_bands([1, 2], [0])
