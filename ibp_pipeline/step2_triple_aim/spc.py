"""Step-2 statistical process control (SPC): Making Data Count XmR charts for every organisation x monthly metric.

Why: a leader asks "is it getting better or worse, or is it just noise?". An XmR chart answers that with the rules
NHS England's Making Data Count programme uses, so the verdicts here match the charts NHS teams already draw.

Reference: NHSRplotthedots (github.com/nhs-r-community/NHSRplotthedots, MIT), read from its source (R/ptd_spc.R,
R/ptd_spc_standard.R, R/ptd_calculate_point_type.R, R/ptd_calculate_assurance_type.R,
R/ptd_add_short_group_warnings.R, R/ptd_spc_options.R; version 0.2.x with `ptd_special_cause_type`). With the
default settings every point's limits and type equal that package's output; the tests pin its own expected values.

Method, one series (one rebase group at a time; without rebasing the whole series is one group)
1. Baseline: the first `baseline_points` values of the group (NHS-R `fix_after_n_points`), or all of them.
2. Centre line: mean of the baseline. Moving ranges: |x_t - x_(t-1)| within the baseline.
   Screening (NHS-R `screen_outliers = TRUE`, the default): moving ranges not strictly below 3.267 x their mean
   are dropped and the mean moving range (mR-bar) is taken again over the rest.
3. Process limits: mean +/- 2.66 x mR-bar (lpl, upl); "2-sigma" lines at mean +/- 2 x (2.66 / 3) x mR-bar.
   If mR-bar cannot be computed (one point, or a constant baseline whose every moving range is 0 and so
   screened out) the limits are missing (NaN), as in NHS-R, and no point is beyond them.
4. Rules, each judged within its group, on every point (baseline and after):
   - beyond limits: value > upl or value < lpl (strictly);
   - shift: a run of `shift_length` (7) or more consecutive points on the same side of the mean; a point exactly
     ON the mean is on neither side and breaks the run;
   - trend: `trend_length` (7) or more consecutive points each strictly above (or below) the one before; a tie
     (equal consecutive values) breaks the trend; trends may cross the mean;
   - two in three: of three consecutive points, all on the same side of the mean, at least two lie between the
     2-sigma line and the process limit on that side (points beyond the limits do not count as "close"); only
     the close points are flagged, and windows never run past either end of the series.
5. Special cause type, first rule that applies: beyond limits > trend > two in three > shift; its direction is the
   side of the mean, or for a trend the direction of the trend (for a point where a trend ends and the next
   trend starts NHS-R takes the later one). Point type: common_cause when no rule applies; else with
   improvement_direction 'increase' (+1) / 'decrease' (-1): special_cause_improvement when the direction agrees,
   special_cause_concern when it does not; 'neutral': special_cause_neutral_high / special_cause_neutral_low.
6. Series verdicts: variation_type = the last point's type. assurance_type from the last group's limits and the
   target: target > upl -> consistent_fail if higher is better, else consistent_pass; target < lpl ->
   consistent_pass if higher is better, else consistent_fail; otherwise inconsistent (hit and miss, including
   a target exactly on a limit and missing limits). None without a target or for a neutral metric.
7. Provisional (NHS-R `short_group_warning`): the group has fewer than `min_points` (12) points. This module also
   marks limits from a baseline shorter than min_points provisional (NHS-R refuses a fix_after_n_points below 12).

`build_spc` applies this to every organisation x monthly metric of `s1_current_state.metric_values`, by org_code
as published (a merged trust's series stops at the merger; current_org_code is carried for joining). Like NHS-R
it charts the months present in order: a missing month is not a point, and `spc_summary.n_missing_months` says
how many months a series skips (A&E and cancer series have gaps in the bundled data).
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from ..lib.duckdb_tables import table_columns
from .spc_baselines import Period, Policy, check_rebases, load_policy, load_rebases, rebase_path, series_periods

log = logging.getLogger(__name__)

SCHEMA = "s2_triple_aim"
SPC_TABLE = f"{SCHEMA}.spc"
SUMMARY_TABLE = f"{SCHEMA}.spc_summary"
S1 = "s1_current_state"

LIMIT = 2.66                       # process limits: mean +/- 2.66 x mR-bar (3 sigma, since sigma = mR-bar / 1.128)
TWO_SIGMA = 2 * (LIMIT / 3)         # computed exactly as NHS-R does (`limitclose <- 2 * (limit / 3)`)
MR_SCREEN = 3.267                   # moving ranges >= 3.267 x mR-bar are screened out (D4 for n = 2)

DIRECTIONS = {"increase": 1, "decrease": -1, "neutral": 0}
POINT_TYPES = ("special_cause_improvement", "special_cause_concern", "special_cause_neutral_high",
               "special_cause_neutral_low", "common_cause")
ASSURANCE_TYPES = ("consistent_pass", "consistent_fail", "inconsistent")

LIMITS_FORMULA = ("XmR (Making Data Count, as NHSRplotthedots): the centre line is the mean of the baseline "
                  "months; the average moving range (mR-bar) is the mean difference between consecutive baseline "
                  "months, after leaving out differences of 3.267 times that mean or more; the process limits "
                  "are the mean minus and plus 2.66 x mR-bar; the 2-sigma lines the mean minus and plus "
                  "(2 x 2.66 / 3) x mR-bar")
RULES_TEXT = ("special cause when a point is beyond a process limit, part of {shift} or more consecutive points on "
              "one side of the mean (a point on the mean breaks the run), part of {trend} or more consecutive "
              "points each rising (or falling) (a tie breaks the trend), or one of 2 close points (beyond a "
              "2-sigma line, inside the limits) among 3 consecutive points on the same side of the mean; "
              "precedence beyond limits > trend > two in three > shift")


@dataclass(frozen=True)
class SpcSettings:
    """Rule settings. Defaults are NHSRplotthedots' (and Making Data Count's); some teams use runs of 6."""
    shift_length: int = 7
    trend_length: int = 7
    screen_outliers: bool = True
    baseline_points: int | None = None  # limits from the first n points of each group only (NHS-R fix_after_n_points)
    min_points: int = 12

    def __post_init__(self) -> None:
        if self.shift_length < 2:
            raise ValueError(f"shift_length must be at least 2, got {self.shift_length}")
        if self.trend_length < 3:
            raise ValueError(f"trend_length must be at least 3, got {self.trend_length}")
        if self.baseline_points is not None and self.baseline_points < 2:
            raise ValueError(f"baseline_points must be at least 2 (one moving range), got {self.baseline_points}")
        if self.min_points < 1:
            raise ValueError(f"min_points must be at least 1, got {self.min_points}")


@dataclass(frozen=True)
class SpcResult:
    """One series' chart: per-point arrays (same length as the values) and series-level verdicts."""
    values: np.ndarray
    mean: np.ndarray
    lpl: np.ndarray
    upl: np.ndarray
    lower_2sigma: np.ndarray
    upper_2sigma: np.ndarray
    mean_moving_range: np.ndarray       # mR-bar after screening, per point (constant within a group)
    rebase_group: np.ndarray            # 0, 1, ... (a new group starts at each rebase point)
    baseline_points: np.ndarray         # points the point's limits were computed from
    relative_to_mean: np.ndarray        # -1 below, 0 on, +1 above the mean
    beyond_limits: np.ndarray           # bool: beyond lpl/upl
    close_to_limits: np.ndarray         # bool: between a 2-sigma line and its process limit
    shift: np.ndarray                   # bool: part of a run of shift_length on one side of the mean
    trend: np.ndarray                   # bool: part of a trend of trend_length
    two_in_three: np.ndarray            # bool: a close point of a two-in-three
    special_cause_type: np.ndarray      # NHS-R's words: 'Above UCL', '7 Point Trend (Increasing)', ... 'Common Cause'
    point_type: np.ndarray              # one of POINT_TYPES
    provisional: np.ndarray             # bool: the point's group (or its baseline) has < min_points points
    improvement_direction: str
    target: float | None
    variation_type: str                 # the last point's type
    assurance_type: str | None          # consistent_pass / consistent_fail / inconsistent; None without target
    settings: SpcSettings = field(default_factory=SpcSettings)

    @property
    def n_points(self) -> int:
        return len(self.values)

    @property
    def is_provisional(self) -> bool:
        """Series-level flag: the last group's limits rest on fewer than min_points points."""
        return bool(self.provisional[-1])


# ---- the maths: small pure functions on numpy arrays -----------------------------------------------------------

def r_mean(x: np.ndarray) -> float:
    """Mean as R computes it (sum / n, then one correction pass), with exact sums, so that a value equal to the
    mean in exact arithmetic is found ON the mean, as NHS-R finds it. NaN for an empty input."""
    n = len(x)
    if n == 0:
        return math.nan
    m = math.fsum(x) / n
    return m + math.fsum(x - m) / n


def mean_moving_range(baseline: np.ndarray, screen_outliers: bool = True) -> float:
    """mR-bar of a baseline: mean |successive difference|; with screening, moving ranges not strictly below
    3.267 x that mean are dropped and the mean is taken again. NaN when nothing is left (one point, or every
    moving range 0 and screened out)."""
    mr = np.abs(np.diff(baseline))
    amr = r_mean(mr)
    if screen_outliers and len(mr):
        mr = mr[mr < MR_SCREEN * amr]
        amr = r_mean(mr)
    return amr


def runs_at_least(keys: np.ndarray, length: int) -> np.ndarray:
    """True where a point belongs to a maximal run of equal, non-zero keys at least `length` long.

    This is NHS-R's `ptd_part_of_seven_trend(ptd_seven_point_one_side_mean(...))` (a point ends a run when it and
    the previous length-1 points share a non-zero side; every point of such a run is marked), for any length."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=bool)
    new_run = np.empty(n, dtype=bool)
    new_run[0] = True
    new_run[1:] = keys[1:] != keys[:-1]
    starts = np.flatnonzero(new_run)
    lengths = np.diff(np.append(starts, n))
    return (keys != 0) & (np.repeat(lengths, lengths) >= length)


def shift_points(relative_to_mean: np.ndarray, length: int = 7) -> np.ndarray:
    """Shift rule: part of `length` or more consecutive points on the same side of the mean (0 = on it breaks)."""
    return runs_at_least(relative_to_mean, length)


def trend_points(values: np.ndarray, length: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Trend rule: part of `length` or more points each strictly above (or below) the previous one.

    Returns (part_of_trend, direction) where direction is NHS-R's `sdy`: for a point inside a trend whose next
    point is also in a trend, the sign of the step to the next point (a point where one trend ends and another
    begins takes the later trend); otherwise the sign of the step from the previous point. NHS-R calls a trend
    point with direction 0 'Decreasing' (possible only where a trend ends at a tie that starts the next trend);
    `special_cause_labels` keeps that."""
    n = len(values)
    if n < 2:
        return np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int8)
    steps = np.sign(np.diff(values)).astype(np.int8)          # step j joins point j and point j+1
    in_run = runs_at_least(steps, length - 1)                  # length-1 same-sign steps = length points
    part = np.zeros(n, dtype=bool)
    part[:-1] |= in_run
    part[1:] |= in_run
    right = np.append(steps, steps[-1])
    left = np.insert(steps, 0, 0)
    next_part = np.append(part[1:], False)
    direction = np.where(part & next_part, right, left).astype(np.int8)
    return part, direction


def two_in_three_points(close_to_limits: np.ndarray, relative_to_mean: np.ndarray) -> np.ndarray:
    """Two-in-three rule (NHS-R `ptd_two_in_three` + `ptd_part_of_two_in_three`): a close point is flagged when
    some window of 3 consecutive points containing it has all 3 points on the same side of the mean and at least
    2 close points. Windows do not run past the ends of the series."""
    n = len(close_to_limits)
    flagged = np.zeros(n, dtype=bool)
    if n < 3:
        return flagged
    close = close_to_limits.astype(np.int8)
    rtm = relative_to_mean.astype(np.int8)
    n_close = close[:-2] + close[1:-1] + close[2:]
    side = rtm[:-2] + rtm[1:-1] + rtm[2:]
    ok = (n_close >= 2) & (np.abs(side) == 3)                   # window k covers points k, k+1, k+2
    flagged[:-2] |= ok
    flagged[1:-1] |= ok
    flagged[2:] |= ok
    return flagged & close_to_limits


def special_cause_labels(beyond: np.ndarray, trend: np.ndarray, trend_direction: np.ndarray,
                         two_in_three: np.ndarray, shift: np.ndarray, relative_to_mean: np.ndarray,
                         shift_length: int = 7, trend_length: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """NHS-R's `ptd_special_cause_type`: the first rule that applies (beyond limits > trend > two in three >
    shift) in its words, and the direction it signals (+1 high / increasing, -1 low / decreasing, 0 none).

    As in NHS-R: a point beyond the limits is 'Above UCL' only when it is above the mean, else 'Below LCL'; a
    trend point is 'Increasing' only when its direction is +1, else 'Decreasing'; the other rules say 'Above'
    when the point is above the mean, else 'Below'."""
    above = relative_to_mean > 0
    up_for_rule = np.where(beyond, relative_to_mean == 1, np.where(trend, trend_direction == 1, above))
    rule = np.where(beyond, 1, np.where(trend, 2, np.where(two_in_three, 3, np.where(shift, 4, 0))))
    code = np.where(rule == 0, 0, rule * 2 - up_for_rule.astype(np.int64))  # 1..8; odd = up, even = down
    words = np.array(["Common Cause", "Above UCL", "Below LCL",
                      f"{trend_length} Point Trend (Increasing)", f"{trend_length} Point Trend (Decreasing)",
                      "2 in 3 Above CL", "2 in 3 Below CL",
                      f"{shift_length} Points Above CL", f"{shift_length} Points Below CL"], dtype=object)
    direction = np.where(code == 0, 0, np.where(code % 2 == 1, 1, -1)).astype(np.int8)
    return words[code], direction


_POINT_TYPE_BY_SIGN = {  # index: oriented direction + 1 (0 = against, 1 = none, 2 = with the improvement direction)
    1: np.array(["special_cause_concern", "common_cause", "special_cause_improvement"], dtype=object),
    -1: np.array(["special_cause_concern", "common_cause", "special_cause_improvement"], dtype=object),
    0: np.array(["special_cause_neutral_low", "common_cause", "special_cause_neutral_high"], dtype=object),
}


def point_types(direction: np.ndarray, improvement_direction: str) -> np.ndarray:
    """NHS-R's `ptd_point_type`: orient each special cause by the metric's improvement direction ('neutral':
    high / low by the signal's direction)."""
    sign = DIRECTIONS[improvement_direction]
    oriented = direction.astype(np.int64) * (sign if sign != 0 else 1)
    return _POINT_TYPE_BY_SIGN[sign][oriented + 1]


def assurance_type(lpl: float, upl: float, target: float | None, improvement_direction: str) -> str | None:
    """NHS-R's `ptd_calculate_assurance_type` on the last group's limits: can the process be relied on to meet the
    target? Strict comparisons; a target on a limit, or missing limits, is 'inconsistent'."""
    if target is None or (isinstance(target, float) and math.isnan(target)) or improvement_direction == "neutral":
        return None
    increasing = improvement_direction == "increase"
    if target > upl:
        return "consistent_fail" if increasing else "consistent_pass"
    if target < lpl:
        return "consistent_pass" if increasing else "consistent_fail"
    return "inconsistent"


def _group_bounds(n: int, rebase_at: Sequence[int]) -> list[tuple[int, int]]:
    cuts = sorted({int(i) for i in rebase_at if 0 < int(i) < n})
    edges = [0, *cuts, n]
    return list(zip(edges[:-1], edges[1:]))


def spc_series(values: Sequence[float], improvement_direction: str, target: float | None = None,
               settings: SpcSettings = SpcSettings(), rebase_at: Sequence[int] = ()) -> SpcResult:
    """XmR chart of one series in time order (no gaps assumed, as NHS-R assumes).

    rebase_at: 0-based positions where new limits start (NHS-R `rebase`); each group gets its own limits and
    rules, and the baseline (settings.baseline_points) counts from the group's first point."""
    if improvement_direction not in DIRECTIONS:
        raise ValueError(f"improvement_direction must be one of {sorted(DIRECTIONS)}, got {improvement_direction!r}")
    y = np.asarray(values, dtype=np.float64)
    n = len(y)
    if n == 0:
        raise ValueError("spc_series needs at least one value")
    if not np.all(np.isfinite(y)):
        raise ValueError("spc_series values must be finite numbers (drop missing months before calling)")
    if target is not None and not math.isfinite(float(target)):
        target = None

    mean = np.empty(n)
    amr = np.empty(n)
    group = np.empty(n, dtype=np.int64)
    base_n = np.empty(n, dtype=np.int64)
    provisional = np.empty(n, dtype=bool)
    shift = np.zeros(n, dtype=bool)
    trend = np.zeros(n, dtype=bool)
    trend_dir = np.zeros(n, dtype=np.int8)
    for g, (lo, hi) in enumerate(_group_bounds(n, rebase_at)):
        seg = y[lo:hi]
        k = hi - lo if settings.baseline_points is None else min(settings.baseline_points, hi - lo)
        base = seg[:k]
        m = r_mean(base)
        mean[lo:hi] = m
        amr[lo:hi] = mean_moving_range(base, settings.screen_outliers)
        group[lo:hi] = g
        base_n[lo:hi] = k
        provisional[lo:hi] = (hi - lo) < settings.min_points or k < settings.min_points
        rtm_seg = np.sign(seg - m).astype(np.int8)
        shift[lo:hi] = shift_points(rtm_seg, settings.shift_length)
        trend[lo:hi], trend_dir[lo:hi] = trend_points(seg, settings.trend_length)

    lpl = mean - LIMIT * amr
    upl = mean + LIMIT * amr
    lower_2sigma = mean - TWO_SIGMA * amr
    upper_2sigma = mean + TWO_SIGMA * amr
    relative_to_mean = np.sign(y - mean).astype(np.int8)
    beyond = (y > upl) | (y < lpl)                              # NaN limits compare False, as NA in NHS-R
    close = ~beyond & ((y < lower_2sigma) | (y > upper_2sigma))
    two3 = np.zeros(n, dtype=bool)
    for lo, hi in _group_bounds(n, rebase_at):
        two3[lo:hi] = two_in_three_points(close[lo:hi], relative_to_mean[lo:hi])

    labels, direction = special_cause_labels(beyond, trend, trend_dir, two3, shift, relative_to_mean,
                                             settings.shift_length, settings.trend_length)
    types = point_types(direction, improvement_direction)
    return SpcResult(
        values=y, mean=mean, lpl=lpl, upl=upl, lower_2sigma=lower_2sigma, upper_2sigma=upper_2sigma,
        mean_moving_range=amr, rebase_group=group, baseline_points=base_n, relative_to_mean=relative_to_mean,
        beyond_limits=beyond, close_to_limits=close, shift=shift, trend=trend, two_in_three=two3,
        special_cause_type=labels, point_type=types, provisional=provisional,
        improvement_direction=improvement_direction, target=None if target is None else float(target),
        variation_type=str(types[-1]),
        assurance_type=assurance_type(float(lpl[-1]), float(upl[-1]), target, improvement_direction),
        settings=settings)


# ---- the build: every organisation x monthly metric ------------------------------------------------------------

def _series_sql(coverage: bool = True) -> str:
    return f"""
        select v.org_code, v.org_level, v.current_org_code, v.metric_id, v.period_start, v.value, v.source,
               {'v.coverage' if coverage else 'null::varchar as coverage'},
               case c.higher_is_better when true then 'increase' when false then 'decrease' else 'neutral' end
                   as improvement_direction
        from {S1}.metric_values v
        left join {S1}.metric_catalogue c using (metric_id)
        where v.period_grain = 'month' and v.value is not null and isfinite(v.value)
        order by v.org_code, v.metric_id, v.period_start"""


def _target_lookup(targets: pl.DataFrame | None) -> dict[tuple[str, str], float | None]:
    if targets is None:
        return {}
    missing = {"org_code", "metric_id", "target_value"} - set(targets.columns)
    if missing:
        raise ValueError(f"targets is missing column(s) {sorted(missing)}; expected org_code, metric_id, target_value")
    dupes = targets.group_by("org_code", "metric_id").len().filter(pl.col("len") > 1)
    if dupes.height:
        first = dupes.row(0, named=True)
        raise ValueError(f"targets must hold one target_value per series; {dupes.height} series have several, "
                         f"e.g. org_code={first['org_code']!r}, metric_id={first['metric_id']!r}")
    return {(o, m): (None if t is None or not math.isfinite(t) else float(t))
            for o, m, t in targets.select("org_code", "metric_id",
                                          pl.col("target_value").cast(pl.Float64)).iter_rows()}


@dataclass(frozen=True)
class Baselines:
    """What splits each series into periods (spc_baselines.series_periods): the policy document, mergers into
    each organisation (org_code -> [(first month after, who joined)]) and the analyst's rebases
    ((org_code, metric_id) -> [(month, reason)])."""
    policy: Policy
    mergers: dict[str, list[tuple[date, str]]] = field(default_factory=dict)
    rebases: dict[tuple[str, str], list[tuple[date, str]]] = field(default_factory=dict)

    @property
    def settings(self) -> SpcSettings:
        return SpcSettings(baseline_points=self.policy.baseline_months)


def spc_frames(series: pl.DataFrame, targets: pl.DataFrame | None = None,
               settings: SpcSettings = SpcSettings(),
               baselines: Baselines | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per-point and per-series frames for long input (org_code, org_level, current_org_code, metric_id,
    period_start, value, source, improvement_direction; coverage optional), sorted by org_code, metric_id,
    period_start. Series with fewer than 2 points are left out (no moving range).

    baselines: split each series into periods (rebase groups) with the reason each starts; without it a series
    is one period (NHS-R with no rebase)."""
    target_of = _target_lookup(targets)
    coverage = series["coverage"].to_list() if "coverage" in series.columns else None
    org = series["org_code"].to_numpy()
    metric = series["metric_id"].to_numpy()
    values = series["value"].to_numpy().astype(np.float64)
    directions = series["improvement_direction"].to_numpy()
    period = series["period_start"]
    periods = period.to_list()
    org_levels = series["org_level"].to_list()
    current_orgs = series["current_org_code"].to_list()
    month_index = (period.dt.year().cast(pl.Int64) * 12 + period.dt.month().cast(pl.Int64)).to_numpy()

    n = series.height
    new_series = np.ones(n, dtype=bool)
    if n:
        new_series[1:] = (org[1:] != org[:-1]) | (metric[1:] != metric[:-1])
        repeated = ~new_series[1:] & (month_index[1:] == month_index[:-1])
        if repeated.any():
            i = int(np.flatnonzero(repeated)[0]) + 1
            raise ValueError(f"duplicate month in a series: org_code={org[i]!r}, metric_id={metric[i]!r}, "
                             f"period_start={periods[i]}")
    starts = np.flatnonzero(new_series)
    ends = np.append(starts[1:], n)

    keep = np.zeros(n, dtype=bool)
    point_cols = {name: np.empty(n, dtype=dtype) for name, dtype in (
        ("mean", np.float64), ("lpl", np.float64), ("upl", np.float64), ("lower_2sigma", np.float64),
        ("upper_2sigma", np.float64), ("mean_moving_range", np.float64), ("relative_to_mean", np.int8),
        ("beyond_limits", bool), ("close_to_limits", bool), ("shift", bool), ("trend", bool),
        ("two_in_three", bool), ("special_cause_type", object), ("point_type", object),
        ("provisional", bool), ("baseline_points", np.int64), ("rebase_group", np.int64),
        ("period_reason", object), ("baseline_start", object), ("baseline_end", object))}
    summaries: list[dict] = []
    for lo, hi in zip(starts.tolist(), ends.tolist()):
        if hi - lo < 2:
            continue
        key = (org[lo], metric[lo])
        target = target_of.get(key)
        months = periods[lo:hi]
        if baselines is None:
            found = [Period(0, "the whole series")]
        else:
            found = series_periods(months, baselines.policy, measure=key[1],
                                   coverage=None if coverage is None else coverage[lo:hi],
                                   mergers=baselines.mergers.get(key[0], ()),
                                   rebases=baselines.rebases.get(key, ()))
        r = spc_series(values[lo:hi], directions[lo], target, settings, rebase_at=[p.start for p in found[1:]])
        keep[lo:hi] = True
        for name, arr in point_cols.items():
            if hasattr(r, name):
                arr[lo:hi] = getattr(r, name)
        reasons = [p.reason for p in found]
        group_lo = [p.start for p in found]
        groups = r.rebase_group
        point_cols["period_reason"][lo:hi] = [reasons[g] for g in groups]
        point_cols["baseline_start"][lo:hi] = [months[group_lo[g]] for g in groups]
        point_cols["baseline_end"][lo:hi] = [months[group_lo[g] + b - 1] for g, b in zip(groups, r.baseline_points)]
        types = r.point_type
        summaries.append({
            "org_code": key[0], "org_level": org_levels[lo], "current_org_code": current_orgs[hi - 1],
            "metric_id": key[1], "improvement_direction": r.improvement_direction, "n_points": hi - lo,
            "first_period": periods[lo], "last_period": periods[hi - 1],
            "n_missing_months": int(month_index[hi - 1] - month_index[lo] + 1 - (hi - lo)),
            "last_value": float(values[hi - 1]), "mean": float(r.mean[-1]),
            "lpl": _finite(r.lpl[-1]), "upl": _finite(r.upl[-1]),
            "lower_2sigma": _finite(r.lower_2sigma[-1]), "upper_2sigma": _finite(r.upper_2sigma[-1]),
            "mean_moving_range": _finite(r.mean_moving_range[-1]), "baseline_points": int(r.baseline_points[-1]),
            "baseline_start": point_cols["baseline_start"][hi - 1], "baseline_end": point_cols["baseline_end"][hi - 1],
            "baseline_reason": reasons[-1], "n_periods": len(found),
            "rebases": "; ".join(f"{months[p.start]:%B %Y}: {p.reason}" for p in found[1:]) or None,
            "variation_type": r.variation_type, "last_special_cause_type": str(r.special_cause_type[-1]),
            "target_value": target, "assurance_type": r.assurance_type, "provisional": r.is_provisional,
            "n_special_cause_improvement": int(np.sum(types == "special_cause_improvement")),
            "n_special_cause_concern": int(np.sum(types == "special_cause_concern")),
            "n_special_cause_neutral": int(np.sum((types == "special_cause_neutral_high")
                                                  | (types == "special_cause_neutral_low"))),
        })

    idx = np.flatnonzero(keep)
    points = series[idx].select("org_code", "org_level", "current_org_code", "metric_id", "period_start", "value",
                                "source", "improvement_direction")
    extra = []
    for name, arr in point_cols.items():
        col = arr[idx]
        if col.dtype == np.float64:
            extra.append(pl.Series(name, col).fill_nan(None))
        elif name in ("baseline_start", "baseline_end"):
            extra.append(pl.Series(name, col.tolist(), dtype=pl.Date))
        elif col.dtype == object:
            extra.append(pl.Series(name, col.tolist(), dtype=pl.String))
        else:
            extra.append(pl.Series(name, col))
    points = points.with_columns(extra).with_columns(pl.col("relative_to_mean").cast(pl.Int8))
    points = points.select(
        "org_code", "org_level", "current_org_code", "metric_id", "period_start", "value", "mean", "lpl", "upl",
        "lower_2sigma", "upper_2sigma", "mean_moving_range", "point_type", "special_cause_type", "relative_to_mean",
        "beyond_limits", "shift", "trend", "two_in_three", "close_to_limits", "improvement_direction",
        "provisional", "baseline_points", "rebase_group", "baseline_start", "baseline_end", "period_reason",
        "source")
    summary = pl.DataFrame(summaries, schema={
        "org_code": pl.String, "org_level": pl.String, "current_org_code": pl.String, "metric_id": pl.String,
        "improvement_direction": pl.String, "n_points": pl.Int64, "first_period": pl.Date, "last_period": pl.Date,
        "n_missing_months": pl.Int64,
        "last_value": pl.Float64, "mean": pl.Float64, "lpl": pl.Float64, "upl": pl.Float64,
        "lower_2sigma": pl.Float64, "upper_2sigma": pl.Float64, "mean_moving_range": pl.Float64,
        "baseline_points": pl.Int64, "baseline_start": pl.Date, "baseline_end": pl.Date,
        "baseline_reason": pl.String, "n_periods": pl.Int64, "rebases": pl.String, "variation_type": pl.String,
        "last_special_cause_type": pl.String,
        "target_value": pl.Float64, "assurance_type": pl.String, "provisional": pl.Boolean,
        "n_special_cause_improvement": pl.Int64, "n_special_cause_concern": pl.Int64,
        "n_special_cause_neutral": pl.Int64})
    return points, summary


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def load_baselines(con: duckdb.DuckDBPyConnection, policy_path: Path | None = None,
                   rebase_file: Path | None = None) -> Baselines:
    """The baseline policy (documents/spc_baselines.yaml), the mergers into each organisation (from
    s1_current_state.organisations: a trust closed into a successor joins it the month after it closed) and the
    analyst's rebase dates (data/config/spc_rebase.yaml), checked against the organisations and measures held."""
    policy = load_policy(policy_path) if policy_path else load_policy()
    mergers: dict[str, list[tuple[date, str]]] = {}
    for successor, month, name in con.sql(f"""
            select successor_code, date_trunc('month', close_date + interval 1 day)::date, org_name
            from {S1}.organisations
            where successor_code is not null and close_date is not null and successor_code <> org_code
            order by 1, 2""").fetchall():
        mergers.setdefault(successor, []).append((month, name))
    path = rebase_file or rebase_path()
    rebases = load_rebases(path)
    if rebases:
        orgs = {r[0] for r in con.sql(f"select distinct org_code from {S1}.metric_values").fetchall()}
        measures = {r[0] for r in con.sql(f"select metric_id from {S1}.metric_catalogue").fetchall()}
        check_rebases(rebases, path, orgs, measures)
    by_series: dict[tuple[str, str], list[tuple[date, str]]] = {}
    for r in rebases:
        by_series.setdefault((r.org_code, r.measure), []).append((r.month, r.reason))
    return Baselines(policy, mergers, by_series)


def build_spc(con: duckdb.DuckDBPyConnection, targets: pl.DataFrame | None = None,
              settings: SpcSettings | None = None, baselines: Baselines | None = None) -> int:
    """Write s2_triple_aim.spc (one row per organisation x monthly metric x month) and s2_triple_aim.spc_summary
    (one row per series) and return the number of spc rows.

    targets: optional frame (org_code, metric_id, target_value), one row per series, in the metric's units;
    series without a target get assurance_type NULL. Series run by org_code as published (a merged trust's
    series stops at the merger; its successor's starts on its own). baselines: the periods each series' limits
    come from (load_baselines); without it each series is one period. settings default to the baselines' (limits
    from each period's first baseline_months points) or NHS-R's."""
    started = time.perf_counter()
    settings = settings or (baselines.settings if baselines else SpcSettings())
    series = con.sql(_series_sql("coverage" in table_columns(con, S1, "metric_values"))).pl()
    points, summary = spc_frames(series, targets, settings, baselines)
    rules = RULES_TEXT.format(shift=settings.shift_length, trend=settings.trend_length)
    settings_text = (f"shift_length={settings.shift_length}, trend_length={settings.trend_length}, "
                     f"screen_outliers={settings.screen_outliers}, baseline_points={settings.baseline_points}, "
                     f"min_points={settings.min_points}")
    con.sql(f"create schema if not exists {SCHEMA}")
    con.register("_spc_points", points.to_arrow())
    con.register("_spc_summary", summary.to_arrow())
    try:
        con.sql(f"create or replace table {SPC_TABLE} as select *, {_sql_str(LIMITS_FORMULA)} as limits_formula "
                f"from _spc_points order by org_code, metric_id, period_start")
        con.sql(f"""create or replace table {SUMMARY_TABLE} as
                    select *, {_sql_str(LIMITS_FORMULA)} as limits_formula, {_sql_str(rules)} as rules,
                           {_sql_str(settings_text)} as settings,
                           'NHSRplotthedots (nhs-r-community, MIT) defaults' as reference
                    from _spc_summary order by org_code, metric_id""")
    finally:
        con.unregister("_spc_points")
        con.unregister("_spc_summary")
    log.info("spc: %s points in %s series (%s provisional, %s with a target) in %.1f s", points.height,
             summary.height, summary["provisional"].sum(), summary["target_value"].is_not_null().sum(),
             time.perf_counter() - started)
    return points.height


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"
