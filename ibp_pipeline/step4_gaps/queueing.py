"""Waiting-list queueing maths, ported from NHSRwaitinglist (nhs-r-community/NHSRwaitinglist, MIT licence).

Why: the IBP asks "what capacity would it take to meet the waiting-time standard?". NHSRwaitinglist answers it
with a handful of closed-form results from queueing theory (Little's law and the Kingman/Marchal approximation);
planners in the NHS already know its vocabulary (target queue size, target capacity, relief capacity, load,
pressure), so the same names and formulas are used here. Each function says which R file it follows:

- calc_target_mean_wait / calc_average_wait (R/calc_target_mean_wait.R, R/calc_average_wait.R):
  target mean wait = target_wait / factor. A mean of a quarter (factor 4) to a sixth (factor 6) of the target
  gives roughly a 1.8% to 0.2% chance of breaching it (for an exponential wait distribution).
- calc_target_queue_size (R/calc_target_queue_size.R): Little's law, queue = demand x target_wait / factor.
- calc_target_capacity (R/calc_target_capacity.R): Kingman/Marchal,
  capacity = demand + (cv_demand^2 + cv_capacity^2) / 2 x factor / target_wait. The coefficients of variation
  default to 1 (Poisson arrivals and exponential service), as in the R package.
- calc_relief_capacity (R/calc_relief_capacity.R): capacity = demand + (queue - target_queue) / time_to_target.
- calc_queue_load (R/calc_queue_load.R): load = demand / capacity (above 1 the list grows).
- calc_waiting_list_pressure (R/calc_waiting_list_pressure.R): pressure = 2 x mean_wait / target_wait (above 1
  the list is likely to miss its target).
- R/wl_stats.R: relief capacity is the relevant figure when the queue is more than twice its target size
  (`queue_too_big`), target capacity otherwise.

All functions take numbers or numpy arrays (vectorised, like the R originals before they were made scalar) and
raise TypeError on non-numeric input, as the R package's check_class() does. Units must match: demand per week
with waits in weeks.
"""
from __future__ import annotations

from collections.abc import Sequence
from numbers import Real

import numpy as np

ArrayLike = float | int | Sequence[float] | np.ndarray


def _num(name: str, x: ArrayLike) -> np.ndarray | float:
    """Validate a numeric argument (number or array of numbers); return it as float or float array."""
    if isinstance(x, bool) or x is None:
        raise TypeError(f"`{name}` must be of class <numeric>, got {type(x).__name__}")
    if isinstance(x, Real):
        return float(x)
    arr = np.asarray(x)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"`{name}` must be of class <numeric>, got array of {arr.dtype}")
    return arr.astype(float)


def calc_target_mean_wait(target_wait: ArrayLike, factor: ArrayLike = 4) -> np.ndarray | float:
    """Target mean wait = target_wait / factor (R/calc_target_mean_wait.R)."""
    return _num("target_wait", target_wait) / _num("factor", factor)


calc_average_wait = calc_target_mean_wait  # R/calc_average_wait.R: the same formula under its older name


def calc_target_queue_size(demand: ArrayLike, target_wait: ArrayLike, factor: ArrayLike = 4) -> np.ndarray | float:
    """Target queue size = demand x target_wait / factor (Little's law; R/calc_target_queue_size.R)."""
    return _num("demand", demand) * calc_target_mean_wait(target_wait, factor)


def _inflate_demand(demand: np.ndarray | float, cv_demand: float, num_referrals: float) -> np.ndarray | float:
    """R's optional allowance for demand being an estimate: demand / (1 - 2 x demand x cv / sqrt(n)) when that
    denominator stays positive (two standard errors of the mean). Off when num_referrals is 0 (the default)."""
    if num_referrals <= 0:
        return demand
    k = 2 * np.asarray(demand) * cv_demand / np.sqrt(num_referrals)
    out = np.where(k < 1, np.asarray(demand) / np.where(k < 1, 1 - k, 1), np.asarray(demand))
    return float(out) if np.ndim(out) == 0 else out


def calc_target_capacity(demand: ArrayLike, target_wait: ArrayLike, factor: ArrayLike = 4,
                         cv_demand: ArrayLike = 1, cv_capacity: ArrayLike = 1,
                         num_referrals: float = 0) -> np.ndarray | float:
    """Capacity to keep the mean wait at target_wait / factor: demand + (cvd^2 + cvc^2) / 2 x factor / target_wait
    (Kingman/Marchal; R/calc_target_capacity.R)."""
    d = _num("demand", demand)
    cvd = _num("cv_demand", cv_demand)
    cvc = _num("cv_capacity", cv_capacity)
    d = _inflate_demand(d, float(np.mean(cvd)), float(num_referrals))
    return d + ((cvd ** 2 + cvc ** 2) / 2) * (_num("factor", factor) / _num("target_wait", target_wait))


def kingman_term(target_wait: ArrayLike, factor: ArrayLike = 4, cv_demand: ArrayLike = 1,
                 cv_capacity: ArrayLike = 1) -> np.ndarray | float:
    """The variability allowance alone: (cvd^2 + cvc^2) / 2 x factor / target_wait (patients per time unit)."""
    return calc_target_capacity(0.0, target_wait, factor, cv_demand, cv_capacity)


def calc_relief_capacity(demand: ArrayLike, queue_size: ArrayLike, target_queue_size: ArrayLike,
                         time_to_target: ArrayLike = 26, num_referrals: float = 0,
                         cv_demand: float = 0) -> np.ndarray | float:
    """Capacity to bring the queue to its target size within time_to_target:
    demand + (queue_size - target_queue_size) / time_to_target (R/calc_relief_capacity.R)."""
    d = _inflate_demand(_num("demand", demand), cv_demand, num_referrals)
    return d + (_num("queue_size", queue_size) - _num("target_queue_size", target_queue_size)) / _num(
        "time_to_target", time_to_target)


def calc_queue_load(demand: ArrayLike, capacity: ArrayLike) -> np.ndarray | float:
    """Load = demand / capacity: arrivals per removal; above 1 the queue grows (R/calc_queue_load.R)."""
    return _num("demand", demand) / _num("capacity", capacity)


def calc_waiting_list_pressure(mean_wait: ArrayLike, target_wait: ArrayLike) -> np.ndarray | float:
    """Pressure = 2 x mean_wait / target_wait; above 1 the list will most likely miss its target
    (R/calc_waiting_list_pressure.R)."""
    return 2 * _num("mean_wait", mean_wait) / _num("target_wait", target_wait)


def queue_too_big(queue_size: ArrayLike, target_queue_size: ArrayLike) -> np.ndarray | bool:
    """R/wl_stats.R: a queue more than twice its target size needs relief capacity, not just target capacity."""
    out = _num("queue_size", queue_size) > 2 * _num("target_queue_size", target_queue_size)
    return bool(out) if np.ndim(out) == 0 else out


def mean_wait_from_bands(counts: Sequence[float] | np.ndarray, lower_bounds: Sequence[float] | np.ndarray,
                         open_band_midpoint_offset: float = 0.5) -> float:
    """Mean wait of the patients still waiting from a histogram of waits: each band counts at its midpoint
    (lower bound + 0.5 for one-week bands). The last, open-ended band (e.g. 104+ weeks) also counts at its lower
    bound + open_band_midpoint_offset, which understates it; RTT lists have few patients there. NaN counts are
    treated as 0. Returns NaN for an empty list. Why: NHSRwaitinglist's pressure uses the mean wait of those on the
    list (R/wl_stats.R: mean of end_date - referral date over waiting patients), and the RTT return publishes only
    weekly bands."""
    c = np.nan_to_num(np.asarray(counts, dtype=float))
    lb = np.asarray(lower_bounds, dtype=float)
    if c.shape != lb.shape:
        raise ValueError("counts and lower_bounds must have the same length")
    total = c.sum()
    if total <= 0:
        return float("nan")
    mids = lb + 0.5
    mids[-1] = lb[-1] + open_band_midpoint_offset
    return float((c * mids).sum() / total)
