"""The Monte Carlo engine of steps 5 and 6: where each organisation will be against each standard, as a distribution.

Why: a plan built on one number per cell hides how sure we are. Here every organisation x metric x month gets
thousands of draws: the baseline forecast's own uncertainty, shifted by uncertain drivers (demand, workforce,
productivity, beds, policy, funding, demography), by the learned occupancy -> 4-hour relation and by the effects of
switched-on initiatives. Everything is vectorised numpy over (cells x draws) blocks, float32, chunked by series so
10,000 draws x thousands of series x 24 months fit in memory; no per-draw Python loop. Blocks run side by side on
the machine's cores in threads (settings.compute_threads; numpy releases the GIL), with the same numbers.

This module is pure (numpy and dataclasses, no database): `inputs.py` assembles the inputs from DuckDB and
`settings.py` turns a scenario document into `Setting`s (step 5's baseline, step 6's scenarios). The maths, in the
order it is applied to one cell (series s, month t, draw n):

1. Baseline forecast draw. The forecast's mean is taken as the median; its 80% bounds (95% bounds where the 80% are
   missing) give a two-piece ("split") normal: x = mean + z * (z < 0 ? (mean - lo80) : (hi80 - mean)) / 1.2816, so a
   skewed interval (e.g. from a log model) keeps both its bounds exactly. z is N(0, 1) noise, AR(1) across months
   with NOISE_AUTOCORRELATION (a draw that runs high tends to stay high; marginals are exactly N(0, 1)). Each series
   has its own random stream seeded by (seed, org_code, metric_id), so the same series gets the same noise in every
   scenario run: common random numbers, so scenario differences are not sampling noise. Counts are clipped at 0,
   percentages to 0-100. By default the draws come in antithetic pairs (draw n + N/2 uses -z and -u of draw n, in
   every random input): each draw is still exactly N(0, 1), the pairs cut sampling error for free and halve the
   random-number cost, the largest single cost of the engine.
2. Drivers. Each driver d is a percent deviation from the baseline forecast, x_d; a scenario gives its 10th and 90th
   percentiles per month (low, high) and the draw is normal: x_d = (low + high)/2 + u_d * (high - low)/2.563 with one
   u_d ~ N(0, 1) per draw and driver, shared by every organisation and month (a draw is one "state of the world":
   demand that runs high runs high everywhere, all through the horizon). The metric's multiplier is
   M = prod_d (1 + x_d/100) ** e[metric, d], with the elasticities e in RESPONSES:
     level      x' = x * M                        (activity, waiting lists, long waiters, beds, FTE)
     shortfall  x' = 100 - (100 - x) * M          (a performance % where higher is better: the share NOT meeting
                                                   the standard scales with demand over capacity)
     share      x' = x * M                        (a % where lower is better: share waiting > 6 weeks, occupancy)
3. Occupancy -> 4-hour link (ae_4hr_pct only, where the organisation has a G&A occupancy forecast):
   x' += beta * (min(occ * M_occ, 100) - occ), occ the organisation's forecast occupancy that month, M_occ the
   occupancy multiplier of step 2, beta drawn per draw from N(coefficient, std_error) of the learned relation in
   s5_impact.effects, or ASSUMED_OCCUPANCY_BETA when none was learned.
4. Initiatives: each switched-on initiative has an effect drawn per draw from its 80% interval (normal, sd =
   (high - low)/2.563), times its weight for the cell (units / per-units x ramp-up share x applies-to-this-org):
   'add' effects add to the value (points or metric units), 'rel' effects scale it by (1 + effect/100), 'div'
   effects divide it by (1 + weight x effect) (beds added: occupancy x beds / (beds + added)). The effects of one
   initiative share one normal per draw (they move together, as the catalogue's learned rows assume).
5. Clip to the metric's bounds again; summarise per cell: p10, p50, p90 (linear interpolation between order
   statistics, as numpy.quantile's default; found by single-k partitions, faster than sorting), mean, and the
   probability of meeting each target: P(x >= target) for at_least, P(x <= target) for at_most (share of draws).

Elasticities (RESPONSES) are documented assumptions, the same for every organisation; they say "a 1% change in this
driver moves this metric by e%": demand-side drivers (demand, demography, policy) move activity one for one and
waiting lists one for one (steady state: a list in proportion to demand over capacity, as in the brief); capacity
drivers (workforce availability, productivity, and funding at FUNDING_TO_CAPACITY) move lists and shortfalls the other
way; beds move occupancy; 52-week waiters move twice as fast as the list (the long tail is the first to grow).
"""
from __future__ import annotations

import hashlib
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

Z80 = 1.2815515655446004  # standard normal 90th percentile: an 80% interval spans 2 x 1.2816 = 2.563 sd
Z95 = 1.959963984540054
NOISE_AUTOCORRELATION = 0.9  # month-to-month correlation of a series' forecast noise (paths, not marginals)
FUNDING_TO_CAPACITY = 0.5  # 1% less real-terms funding -> 0.5% less capacity within the horizon (assumption)
# points of 4-hour % per point of G&A occupancy (mean, sd) when s5_impact.effects has no learned relation: its 80%
# interval (-0.49 to -0.11) spans the bundled data's within-trust estimates (-0.47 with trust effects only, -0.14
# with trust and month effects)
ASSUMED_OCCUPANCY_BETA = (-0.3, 0.15)
DEFAULT_SEED = 20250401
DEFAULT_MAX_BLOCK_BYTES = 128 * 1024 * 1024  # one float32 cells x draws block; six such buffers live at once

# The drivers, in a fixed order (the columns of every elasticity vector), and their groups.
DRIVERS: tuple[str, ...] = ("workforce_availability", "demand", "productivity", "beds",
                            "policy", "funding", "demography")
DRIVER_GROUP = {"workforce_availability": "internal", "demand": "internal", "productivity": "internal",
                "beds": "internal", "policy": "external", "funding": "external", "demography": "external"}
DRIVER_MEANING = {
    "workforce_availability": "staff in post vs the baseline forecast, % (sickness, vacancies, strikes, recruitment)",
    "demand": "demand per head vs the baseline forecast, % (attendances, referrals, admissions)",
    "productivity": "output per staff member vs the baseline forecast, %",
    "beds": "G&A beds available vs the baseline forecast, %",
    "policy": "demand change from national or local policy vs the baseline forecast, % (e.g. referral diversion)",
    "funding": f"real-terms funding vs plan, %; {FUNDING_TO_CAPACITY:g} of it reaches capacity within the horizon",
    "demography": "population (size and age mix) vs the baseline forecast, %",
}
LEVEL, SHORTFALL, SHARE = 0, 1, 2
KIND_NAMES = {LEVEL: "level", SHORTFALL: "shortfall", SHARE: "share"}


@dataclass(frozen=True)
class Response:
    """How one metric responds to the drivers: its kind (see module doc) and elasticity per driver."""
    kind: int
    elasticity: dict[str, float]
    occupancy_link: bool = False

    def vector(self) -> np.ndarray:
        return np.array([self.elasticity.get(d, 0.0) for d in DRIVERS], dtype=np.float64)

    def text(self) -> str:
        parts = [f"{d} {e:+g}" for d, e in self.elasticity.items() if e != 0]
        link = "; + beta x change in G&A occupancy" if self.occupancy_link else ""
        return f"{KIND_NAMES[self.kind]}, elasticities: {', '.join(parts) or 'none'}{link}"


def _e(demand: float = 0.0, capacity: float = 0.0, beds: float = 0.0) -> dict[str, float]:
    """Elasticities from three mechanisms: demand-side (demand, demography, policy), capacity (workforce,
    productivity, funding x FUNDING_TO_CAPACITY) and beds."""
    return {"demand": demand, "demography": demand, "policy": demand, "workforce_availability": capacity,
            "productivity": capacity, "funding": capacity * FUNDING_TO_CAPACITY, "beds": beds}


RESPONSES: dict[str, Response] = {
    "ae_attendances": Response(LEVEL, _e(demand=1)),
    "ae_emergency_admissions": Response(LEVEL, _e(demand=1)),
    "rtt_waiting_list": Response(LEVEL, _e(demand=1, capacity=-1)),
    "dm01_waiting_list": Response(LEVEL, _e(demand=1, capacity=-1)),
    "rtt_52wk_waiters": Response(LEVEL, _e(demand=2, capacity=-2)),
    "rtt_52wk_all_rtt_parts": Response(LEVEL, _e(demand=2, capacity=-2)),
    "ae_12hr_dta_waits": Response(LEVEL, _e(demand=2, capacity=-1, beds=-2)),
    "rtt_52wk_waiters_pct_of_rtt_waiting_list": Response(SHARE, _e(demand=1, capacity=-1)),
    "rtt_18wk_pct": Response(SHORTFALL, _e(demand=1, capacity=-1)),
    "ae_4hr_pct": Response(SHORTFALL, _e(demand=1, capacity=-1), occupancy_link=True),
    "cancer_fds_pct": Response(SHORTFALL, _e(demand=1, capacity=-1)),
    "cancer_31d_pct": Response(SHORTFALL, _e(demand=1, capacity=-1)),
    "cancer_62d_pct": Response(SHORTFALL, _e(demand=1, capacity=-1)),
    "dm01_6wk_pct": Response(SHARE, _e(demand=1, capacity=-1)),
    "ga_bed_occupancy_pct": Response(SHARE, _e(demand=1, capacity=-0.5, beds=-1)),
    "ga_beds_available": Response(LEVEL, _e(beds=1)),
    "workforce_fte": Response(LEVEL, {"workforce_availability": 1.0, "funding": FUNDING_TO_CAPACITY}),
}
OCCUPANCY_METRIC = "ga_bed_occupancy_pct"
NO_RESPONSE = Response(LEVEL, {})


def response_for(metric_id: str) -> Response:
    """The metric's response; metrics not in RESPONSES pass through as their baseline forecast."""
    return RESPONSES.get(metric_id, NO_RESPONSE)


# ---- small pure helpers ---------------------------------------------------------------------------------------
def stable_key(*parts: object) -> int:
    """A 64-bit integer from text parts, the same in every process (Python's hash() is salted per process)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def stream(seed: int, *parts: object) -> np.random.Generator:
    """An independent numpy Generator (SFC64) for one named stream (a series, a driver, an initiative) under a
    seed: the same name and seed give the same numbers in any process, whatever else is in the run."""
    ss = np.random.SeedSequence([int(seed) & (2**63 - 1), stable_key(*parts)])
    return np.random.Generator(np.random.SFC64(ss))


def normals(rng: np.random.Generator, shape: tuple[int, ...], antithetic: bool = True,
            dtype: type = np.float64, out: np.ndarray | None = None) -> np.ndarray:
    """N(0, 1) numbers along the last axis; antithetic: the second half mirrors the first (-z), a standard variance
    reduction (every draw is still exactly N(0, 1); pairs are perfectly negatively correlated)."""
    out = np.empty(shape, dtype=dtype) if out is None else out
    n = shape[-1]
    if not antithetic or n < 2:
        rng.standard_normal(dtype=dtype, out=out)
        return out
    half = (n + 1) // 2
    first = out[..., :half]
    if first.flags.c_contiguous:
        rng.standard_normal(dtype=dtype, out=first)
    else:
        first[...] = rng.standard_normal(first.shape, dtype=dtype)
    np.negative(out[..., : n - half], out=out[..., half:])
    return out


def normal_from_interval(low: np.ndarray | float, high: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """(mean, sd) of the normal whose 10th and 90th percentiles are low and high: sd = (high - low) / 2.563."""
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    return (low + high) / 2.0, (high - low) / (2.0 * Z80)


def split_normal_scales(mean: np.ndarray, lo80: np.ndarray | None, hi80: np.ndarray | None,
                        lo95: np.ndarray | None = None, hi95: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper scales of the two-piece normal with median `mean` whose 10th/90th percentiles are lo80/hi80
    (or 2.5th/97.5th are lo95/hi95 where the 80% bounds are missing). A bound on the wrong side of the mean falls
    back to half the interval's width; no bounds at all gives 0 (the forecast is taken as certain)."""
    mean = np.asarray(mean, dtype=np.float64)
    nan = np.full(mean.shape, np.nan)
    lo80 = nan if lo80 is None else np.asarray(lo80, dtype=np.float64)
    hi80 = nan if hi80 is None else np.asarray(hi80, dtype=np.float64)
    lo95 = nan if lo95 is None else np.asarray(lo95, dtype=np.float64)
    hi95 = nan if hi95 is None else np.asarray(hi95, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        s_lo = np.where(np.isfinite(lo80), (mean - lo80) / Z80, (mean - lo95) / Z95)
        s_hi = np.where(np.isfinite(hi80), (hi80 - mean) / Z80, (hi95 - mean) / Z95)
        half = np.where(np.isfinite(lo80) & np.isfinite(hi80), (hi80 - lo80) / (2 * Z80),
                        (hi95 - lo95) / (2 * Z95))
    half = np.where(np.isfinite(half) & (half > 0), half, 0.0)
    s_lo = np.where(np.isfinite(s_lo) & (s_lo >= 0), s_lo, half)
    s_hi = np.where(np.isfinite(s_hi) & (s_hi >= 0), s_hi, half)
    return s_lo, s_hi


def ramp_share(months_since_start: np.ndarray, ramp_up_months: float) -> np.ndarray:
    """Share of an initiative's full effect: 0 before its start month, rising in equal steps to 1 over
    ramp_up_months (month 0 gives 1/ramp), 1 from then on; 1 from the start month when ramp_up_months <= 0."""
    m = np.asarray(months_since_start, dtype=np.float64)
    if ramp_up_months <= 0:
        return (m >= 0).astype(np.float64)
    return np.where(m >= 0, np.minimum(1.0, (m + 1.0) / ramp_up_months), 0.0)


def ar1_noise(rng: np.random.Generator, months: int, draws: int, phi: float = NOISE_AUTOCORRELATION,
              out: np.ndarray | None = None, antithetic: bool = True) -> np.ndarray:
    """(months, draws) float32 N(0, 1) noise with correlation phi between consecutive months (AR(1) scaled to unit
    variance: z_h = phi z_(h-1) + sqrt(1 - phi^2) e_h)."""
    z = normals(rng, (months, draws), antithetic, np.float32, out)
    c = np.float32(math.sqrt(max(0.0, 1.0 - phi * phi)))
    p = np.float32(phi)
    for h in range(1, months):
        z[h] *= c
        z[h] += p * z[h - 1]
    return z


def order_statistics(v: np.ndarray, ks: Sequence[int]) -> dict[int, np.ndarray]:
    """The k-th smallest value of every row for each k in ks (0-based), by recursive single-k partitions (numpy's
    one-k partition is several times faster than a sort or a multi-k partition); reorders v in place."""
    out: dict[int, np.ndarray] = {}

    def select(lo: int, hi: int, wanted: list[int]) -> None:
        if not wanted:
            return
        k = wanted[len(wanted) // 2]
        if k == lo:  # the smallest of the range: a min, no reordering needed
            out[k] = v[:, lo:hi].min(axis=1)
            select(lo, hi, [w for w in wanted if w != k])
            return
        v[:, lo:hi].partition(k - lo, axis=1)
        out[k] = v[:, k].copy()
        select(lo, k, [w for w in wanted if w < k])
        select(k + 1, hi, [w for w in wanted if w > k])

    select(0, v.shape[1], sorted(set(ks)))
    return out


def row_quantiles(v: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """(len(qs), rows) quantiles of each row, linear interpolation as numpy.quantile's default; reorders v."""
    n = v.shape[1]
    pos = [q * (n - 1) for q in qs]
    ks = []
    for p in pos:
        lo = int(math.floor(p))
        ks += [lo] + ([lo + 1] if p > lo and lo + 1 < n else [])
    stats = order_statistics(v, ks)
    out = np.empty((len(qs), v.shape[0]), dtype=np.float64)
    for i, p in enumerate(pos):
        lo = int(math.floor(p))
        a = stats[lo].astype(np.float64)
        out[i] = a if (p == lo or lo + 1 >= n) else a + (stats[lo + 1].astype(np.float64) - a) * (p - lo)
    return out


# ---- inputs and settings --------------------------------------------------------------------------------------
@dataclass
class SeriesInputs:
    """Everything the engine needs per series (org x metric) and horizon month. S series, H months at most.

    cal: (S, H) index into the run's calendar (months from calendar[0]); -1 where the series has no forecast.
    median/scale_lo/scale_hi: (S, H) the split-normal baseline (NaN median = no forecast that month).
    lower/upper: (S,) bounds; kind: (S,) LEVEL/SHORTFALL/SHARE; response_row: (S,) row of `elasticities`.
    elasticities: (R, len(DRIVERS)); link_base: (S, H) forecast occupancy for 4-hour series (NaN = no link).
    keys: (org_code, metric_id) per series, for the per-series random streams."""
    keys: list[tuple[str, str]]
    cal: np.ndarray
    median: np.ndarray
    scale_lo: np.ndarray
    scale_hi: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    kind: np.ndarray
    response_row: np.ndarray
    elasticities: np.ndarray
    link_base: np.ndarray
    n_calendar: int
    occupancy_row: int = -1  # row of `elasticities` used for the occupancy multiplier of the 4-hour link

    @property
    def shape(self) -> tuple[int, int]:
        return self.median.shape  # type: ignore[return-value]

    @property
    def valid(self) -> np.ndarray:
        return np.isfinite(self.median) & (self.cal >= 0)


@dataclass
class InitiativeSetting:
    """One switched-on initiative: its effect interval (or a fixed effect), how it acts and where.

    weight: (S, n_calendar) multiplier of the effect per series and calendar month (units / per-units x ramp x
    applies-here); zero where it does not act. kind 'add' (points or metric units), 'rel' (percent of value) or
    'div' (value / (1 + weight x effect)). Settings with the same key share their draws (one initiative)."""
    key: str
    effect_low: float
    effect_high: float
    kind: str
    weight: np.ndarray
    fixed: float | None = None  # a fixed effect (sensitivity at the 10th or 90th percentile) instead of a draw


@dataclass
class Setting:
    """One configuration of the uncertain inputs: driver intervals per calendar month, the occupancy relation,
    initiatives, and the targets to score against; `mask` says which cells to summarise, `quantiles` which
    quantiles (p10/p50/p90 by default; (0.5,) is enough for a waterfall or a tornado and is about twice as fast)."""
    name: str
    driver_low: np.ndarray  # (len(DRIVERS), n_calendar) 10th percentile, % deviation from the baseline forecast
    driver_high: np.ndarray  # (len(DRIVERS), n_calendar) 90th percentile
    beta_mean: float = ASSUMED_OCCUPANCY_BETA[0]
    beta_sd: float = ASSUMED_OCCUPANCY_BETA[1]
    initiatives: list[InitiativeSetting] = field(default_factory=list)
    targets: np.ndarray | None = None  # (S, H, m) target values, NaN where none
    at_least: np.ndarray | None = None  # (S, H, m) bool: True at_least, False at_most
    mask: np.ndarray | None = None  # (S, H) bool; None = every valid cell
    driver_fixed: np.ndarray | None = None  # (len(DRIVERS),) bool: the driver sits at its low (= high), no draw
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    want_mean: bool = True

    @staticmethod
    def zero(name: str, n_calendar: int) -> "Setting":
        z = np.zeros((len(DRIVERS), n_calendar))
        return Setting(name, z, z.copy())


@dataclass
class Summary:
    """Per-cell results of one setting: (S, H) arrays, NaN outside the setting's mask (and for quantiles or the
    mean the setting did not ask for); prob is (S, H, m), one slice per target slot."""
    p10: np.ndarray
    p50: np.ndarray
    p90: np.ndarray
    mean: np.ndarray
    prob: np.ndarray


# ---- the vectorised core ---------------------------------------------------------------------------------------
def driver_draws(low: np.ndarray, high: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(D, n_calendar, draws) driver values in %: normal from the 10th/90th percentiles, one u per draw and driver."""
    mid, sd = normal_from_interval(low, high)
    x = mid[:, :, None] + sd[:, :, None] * u[:, None, :]
    return np.maximum(x, -95.0)  # a driver cannot remove more than 95% of anything


def multiplier_table(elasticities: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(R, n_calendar, draws) float32 multipliers prod_d (1 + x_d/100) ** e[r, d]."""
    log1p = np.log1p(x / 100.0)  # (D, C, N)
    return np.exp(np.einsum("rd,dcn->rcn", elasticities, log1p)).astype(np.float32)


def _col(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)[:, None]


def simulate_block(z: np.ndarray, median: np.ndarray, scale_lo: np.ndarray, scale_hi: np.ndarray,
                   lower: np.ndarray, upper: np.ndarray, pivot: np.ndarray, mult: np.ndarray,
                   link_rows: np.ndarray | None = None, link_base: np.ndarray | None = None,
                   link_mult: np.ndarray | None = None, beta: np.ndarray | None = None,
                   effects: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = (),
                   out: np.ndarray | None = None, scratch: np.ndarray | None = None) -> np.ndarray:
    """Draws for a block of cells: (n, draws) float32 (steps 1-5 of the module doc), written into `out`.

    z (n, draws) noise; median/scale_lo/scale_hi/lower/upper/pivot (n,); mult (n, draws) driver multipliers (left
    unchanged); scratch: an optional (n, draws) float32 buffer; link_rows: indices into the block with link_base
    (len,) occupancy and link_mult (len, draws); beta (draws,); effects: (kind, rows, weight (len(rows),), effect
    draws (draws,)) per initiative."""
    v = np.empty(z.shape, dtype=np.float32) if out is None else out
    # Work in coordinates shifted by the pivot (w = x - pivot) so step 2 is one multiplication; whole-array passes
    # only where a pass is needed by many rows (fancy indexing of rows costs several times a pass).
    pv = np.asarray(pivot, dtype=np.float32)
    shifted = bool(np.any(pv != 0))
    lo = _col(np.asarray(lower, dtype=np.float64) - pv)
    hi = _col(np.asarray(upper, dtype=np.float64) - pv)
    # 1. split normal: median + z * scale_hi + min(z, 0) * (scale_lo - scale_hi)
    np.multiply(z, _col(scale_hi), out=v)
    diff = np.asarray(scale_lo, dtype=np.float32) - np.asarray(scale_hi, dtype=np.float32)
    skewed = np.flatnonzero(diff != 0)
    if len(skewed) > 0.25 * len(diff):
        neg = np.minimum(z, np.float32(0.0), out=scratch)
        neg *= diff[:, None]
        v += neg
    elif len(skewed):
        v[skewed] += np.minimum(z[skewed], np.float32(0.0)) * diff[skewed][:, None]
    v += _col(np.asarray(median, dtype=np.float64) - pv)
    np.maximum(v, lo, out=v)  # (np.clip with array bounds takes a much slower path than these two passes)
    np.minimum(v, hi, out=v)
    # 2. drivers: x' = pivot + (x - pivot) * M
    v *= mult
    # 3. occupancy -> 4-hour link
    if link_rows is not None and len(link_rows):
        base = _col(link_base)  # type: ignore[arg-type]
        occ = np.minimum(base * link_mult, np.float32(100.0))
        occ -= base
        occ *= np.asarray(beta, dtype=np.float32)[None, :]
        v[link_rows] += occ
    # 4. initiatives ('rel' scales the value itself, not its distance from the pivot)
    for kind, rows, weight, eff in effects:
        term = _col(weight) * np.asarray(eff, dtype=np.float32)[None, :]
        if kind == "rel":
            term /= np.float32(100.0)
            term += np.float32(1.0)
            p = pv[rows][:, None]
            v[rows] = (v[rows] + p) * term - p
        elif kind == "div":
            term += np.float32(1.0)
            np.maximum(term, np.float32(1e-6), out=term)
            p = pv[rows][:, None]
            v[rows] = (v[rows] + p) / term - p
        else:
            v[rows] += term
    # 5. back from the pivot, bounds again
    if shifted:
        v += pv[:, None]
    np.maximum(v, _col(lower), out=v)
    np.minimum(v, _col(upper), out=v)
    return v


def summarise_block(v: np.ndarray, targets: np.ndarray | None, at_least: np.ndarray | None,
                    qs: Sequence[float] = (0.1, 0.5, 0.9), want_mean: bool = True,
                    scratch: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(quantiles (len(qs), n), mean (n,), prob (n, m)) of a block of draws; reorders v in place.

    prob is the share of draws meeting each target: x >= t for at_least, x <= t for at_most (as -x >= -t); NaN
    where t is NaN. scratch: an optional (n, draws) bool buffer."""
    n, draws = v.shape
    mean = v.mean(axis=1, dtype=np.float64) if want_mean else np.full(n, np.nan)
    m = 0 if targets is None else targets.shape[1]
    prob = np.full((n, m), np.nan)
    hit = np.empty(v.shape, dtype=bool) if scratch is None else scratch[:n]
    for j in range(m):
        t = targets[:, j]  # type: ignore[index]
        ok = np.isfinite(t)
        if not ok.any():
            continue
        al = np.asarray(at_least[:, j], dtype=bool)  # type: ignore[index]
        tt = np.where(ok, t, 0.0).astype(np.float32)[:, None]
        ge = np.flatnonzero(ok & al)
        le = np.flatnonzero(ok & ~al)
        if len(ge) == n:
            np.greater_equal(v, tt, out=hit)
            prob[:, j] = np.count_nonzero(hit, axis=1) / draws
        elif len(le) == n:
            np.less_equal(v, tt, out=hit)
            prob[:, j] = np.count_nonzero(hit, axis=1) / draws
        else:
            if len(ge):
                prob[ge, j] = np.count_nonzero(v[ge] >= tt[ge], axis=1) / draws
            if len(le):
                prob[le, j] = np.count_nonzero(v[le] <= tt[le], axis=1) / draws
    quant = row_quantiles(v, qs) if qs else np.empty((0, n))
    return quant, mean, prob


def series_noise(keys: Sequence[tuple[str, str]], months: int, draws: int, seed: int,
                 phi: float = NOISE_AUTOCORRELATION, antithetic: bool = True,
                 out: np.ndarray | None = None) -> np.ndarray:
    """(len(keys), months, draws) float32 AR(1) noise, each series from its own stream (seed, org, metric)."""
    out = np.empty((len(keys), months, draws), dtype=np.float32) if out is None else out
    for i, (org, metric) in enumerate(keys):
        ar1_noise(stream(seed, "series", org, metric), months, draws, phi, out=out[i], antithetic=antithetic)
    return out


def driver_normals(seed: int, draws: int, antithetic: bool = True) -> np.ndarray:
    """(len(DRIVERS), draws) one N(0, 1) per driver and draw, each driver from its own named stream."""
    return np.stack([normals(stream(seed, "driver", d), (draws,), antithetic) for d in DRIVERS])


def named_normals(seed: int, kind: str, name: str, draws: int, antithetic: bool = True) -> np.ndarray:
    """(draws,) N(0, 1) for one named uncertain effect (an initiative, a relation): the same in every setting."""
    return normals(stream(seed, kind, name), (draws,), antithetic)


@dataclass
class _Prepared:
    """Per-setting draws that do not depend on the series chunk."""
    mult: np.ndarray  # (R * C, N) float32, row r * C + c
    beta: np.ndarray  # (N,)
    effects: np.ndarray  # (k, N) float32
    kinds: list[str]
    weights: list[np.ndarray]  # (S, C) each


def _prepare(inputs: SeriesInputs, s: Setting, u_drivers: np.ndarray, u_beta: np.ndarray, seed: int,
             draws: int, antithetic: bool) -> _Prepared:
    low, high = s.driver_low, s.driver_high
    x = driver_draws(low, high, u_drivers)
    if s.driver_fixed is not None and s.driver_fixed.any():
        x[s.driver_fixed] = np.maximum(low[s.driver_fixed], -95.0)[:, :, None]
    mult = multiplier_table(inputs.elasticities, x)
    beta = s.beta_mean + s.beta_sd * u_beta
    effects = np.zeros((len(s.initiatives), draws), dtype=np.float32)
    for i, ini in enumerate(s.initiatives):
        if ini.fixed is not None:
            effects[i] = ini.fixed
        else:
            mid, sd = normal_from_interval(ini.effect_low, ini.effect_high)
            effects[i] = mid + sd * named_normals(seed, "initiative", ini.key, draws, antithetic)
    return _Prepared(mult.reshape(-1, draws), beta, effects, [i.kind for i in s.initiatives],
                     [i.weight for i in s.initiatives])


def run_settings(inputs: SeriesInputs, settings: Sequence[Setting], draws: int = 10_000,
                 seed: int = DEFAULT_SEED, antithetic: bool = True,
                 max_block_bytes: int = DEFAULT_MAX_BLOCK_BYTES, threads: int = 1) -> list[Summary]:
    """Run every setting on the same draws (common random numbers) and summarise each cell of its mask.

    Series are processed in blocks; each block's noise is drawn once and shared by all settings, driver and effect
    draws are shared across blocks, so a setting's result does not depend on the block size or on which other
    settings or series are in the run. Work buffers are allocated once per thread and reused (fresh memory costs a
    page fault per 4 KB, as much as the arithmetic).

    threads > 1 runs blocks side by side in threads of this process: the work is numpy's partition and ufuncs, which
    release the GIL, so two cores do nearly twice the work; blocks write disjoint rows of the summaries, and the
    numbers are the same as one thread's, bit for bit. The memory budget (max_block_bytes) is shared between the
    threads, so more threads do not need more memory."""
    S, H = inputs.shape
    u_drivers = driver_normals(seed, draws, antithetic)
    u_beta = named_normals(seed, "relation", "occupancy_to_4hr", draws, antithetic)
    prepared = [_prepare(inputs, s, u_drivers, u_beta, seed, draws, antithetic) for s in settings]
    out = []
    for s in settings:
        m = 0 if s.targets is None else s.targets.shape[2]
        out.append(Summary(*(np.full((S, H), np.nan) for _ in range(4)), prob=np.full((S, H, m), np.nan)))
    valid = inputs.valid
    pivot = np.where(inputs.kind == SHORTFALL, inputs.upper, 0.0)
    threads = max(1, min(int(threads), S))
    chunk = max(1, int(max_block_bytes // threads // (4 * draws * max(H, 1))))
    blocks = [np.arange(start, min(S, start + chunk)) for start in range(0, S, chunk)]
    if threads == 1 or len(blocks) == 1:
        buffers = _Buffers(min(S, chunk), H, draws)
        for idx in blocks:
            _run_block(inputs, valid, pivot, settings, prepared, out, idx, draws, seed, antithetic, buffers)
        return out
    local = threading.local()

    def work(idx: np.ndarray) -> None:
        if not hasattr(local, "buffers"):
            local.buffers = _Buffers(min(S, chunk), H, draws)
        _run_block(inputs, valid, pivot, settings, prepared, out, idx, draws, seed, antithetic, local.buffers)

    with ThreadPoolExecutor(max_workers=min(threads, len(blocks)), thread_name_prefix="montecarlo") as pool:
        list(pool.map(work, blocks))  # list(): re-raises the first error of any block
    return out


class _Buffers:
    """One thread's work buffers for blocks of at most `series` series."""

    def __init__(self, series: int, H: int, draws: int) -> None:
        cells = series * H
        self.z = np.empty((series, H, draws), dtype=np.float32)
        self.v = np.empty((cells, draws), dtype=np.float32)
        self.m = np.empty((cells, draws), dtype=np.float32)
        self.zs = np.empty((cells, draws), dtype=np.float32)
        self.sc = np.empty((cells, draws), dtype=np.float32)
        self.hit = np.empty((cells, draws), dtype=bool)


def _run_block(inputs: SeriesInputs, valid: np.ndarray, pivot_s: np.ndarray, settings: Sequence[Setting],
               prepared: list[_Prepared], out: list[Summary], idx: np.ndarray, draws: int, seed: int,
               antithetic: bool, buf: _Buffers) -> None:
    """Every setting on the series idx: draw their noise once, simulate and summarise into `out`'s rows idx.
    valid (S, H) and pivot_s (S,) are the whole run's, computed once by run_settings."""
    H = inputs.shape[1]
    C = inputs.n_calendar
    z3 = series_noise([inputs.keys[i] for i in idx], H, draws, seed, antithetic=antithetic, out=buf.z[: len(idx)])
    z = z3.reshape(len(idx) * H, draws)
    ss = np.repeat(idx, H)
    hh = np.tile(np.arange(H), len(idx))
    for s, prep, res in zip(settings, prepared, out):
        keep = valid[ss, hh] if s.mask is None else valid[ss, hh] & s.mask[ss, hh]
        rows = np.flatnonzero(keep)
        n = len(rows)
        if not n:
            continue
        si, hi = ss[rows], hh[rows]
        cal = inputs.cal[si, hi]
        # mode="clip": numpy buffers take(out=...) in the default mode="raise" (several times slower)
        zb = z if n == len(ss) else np.take(z, rows, axis=0, out=buf.zs[:n], mode="clip")
        mult = np.take(prep.mult, inputs.response_row[si] * C + cal, axis=0, out=buf.m[:n], mode="clip")
        link_rows = np.flatnonzero(np.isfinite(inputs.link_base[si, hi]))
        link_base = link_mult = None
        if len(link_rows) and inputs.occupancy_row >= 0:
            link_base = inputs.link_base[si[link_rows], hi[link_rows]]
            link_mult = prep.mult[inputs.occupancy_row * C + cal[link_rows]]
        else:
            link_rows = None
        effects = []
        for kind, w, eff in zip(prep.kinds, prep.weights, prep.effects):
            wc = w[si, cal]
            nz = np.flatnonzero(wc)
            if len(nz):
                effects.append((kind, nz, wc[nz], eff))
        v = simulate_block(zb, inputs.median[si, hi], inputs.scale_lo[si, hi], inputs.scale_hi[si, hi],
                           inputs.lower[si], inputs.upper[si], pivot_s[si], mult, link_rows, link_base,
                           link_mult, prep.beta, effects, out=buf.v[:n], scratch=buf.sc[:n])
        tg = al = None
        if s.targets is not None and s.targets.shape[2]:
            tg, al = s.targets[si, hi], s.at_least[si, hi]  # type: ignore[index]
        q, mean, prob = summarise_block(v, tg, al, s.quantiles, s.want_mean, buf.hit)
        for qv, arr in zip(s.quantiles, q):
            target = {0.1: res.p10, 0.5: res.p50, 0.9: res.p90}.get(qv)
            if target is not None:
                target[si, hi] = arr
        res.mean[si, hi] = mean
        if prob.shape[1]:
            res.prob[si, hi] = prob


# ---- the fan-out: one run cut into independent chunks of series -----------------------------------------------
def subset_inputs(inputs: SeriesInputs, rows: np.ndarray) -> SeriesInputs:
    """The series `rows` of inputs (every per-series array cut; elasticities and the calendar kept)."""
    return replace(inputs, keys=[inputs.keys[i] for i in rows], cal=inputs.cal[rows], median=inputs.median[rows],
                   scale_lo=inputs.scale_lo[rows], scale_hi=inputs.scale_hi[rows], lower=inputs.lower[rows],
                   upper=inputs.upper[rows], kind=inputs.kind[rows], response_row=inputs.response_row[rows],
                   link_base=inputs.link_base[rows])


def subset_setting(setting: Setting, rows: np.ndarray) -> Setting:
    """A setting's per-series parts (targets, mask, initiative weights) cut to the series `rows`."""
    cut = lambda a: None if a is None else a[rows]  # noqa: E731
    return replace(setting, targets=cut(setting.targets), at_least=cut(setting.at_least), mask=cut(setting.mask),
                   initiatives=[replace(i, weight=i.weight[rows]) for i in setting.initiatives])


@dataclass
class SimulationChunk:
    """One independent piece of a Monte Carlo run: the series `rows` of the whole, every setting cut to them.

    Why it can run anywhere: each series draws its noise from its own stream (seed, org, metric) and the shared
    draws (drivers, relation, initiatives) come from named streams of the seed, so a chunk's numbers are the
    whole run's numbers for those rows, bit for bit, whichever process or machine computes them."""
    rows: np.ndarray
    inputs: SeriesInputs
    settings: list[Setting]
    draws: int
    seed: int

    def run(self, threads: int = 1) -> list[Summary]:
        return run_settings(self.inputs, self.settings, draws=self.draws, seed=self.seed, threads=threads)


def split_simulation(inputs: SeriesInputs, settings: Sequence[Setting], draws: int, seed: int,
                     chunks: int) -> list[SimulationChunk]:
    """The run cut into at most `chunks` pieces by organisation (lib.chunks.chunk_of; empty pieces dropped,
    always at least one)."""
    from ibp_pipeline.lib.chunks import chunk_of

    which = chunk_of([org for org, _ in inputs.keys], chunks)
    parts = []
    for c in range(chunks):
        rows = np.flatnonzero(which == c)
        if len(rows):
            parts.append(SimulationChunk(rows, subset_inputs(inputs, rows),
                                         [subset_setting(s, rows) for s in settings], draws, seed))
    return parts or [SimulationChunk(np.arange(inputs.shape[0]), inputs, list(settings), draws, seed)]


def merge_summaries(shape: tuple[int, int], parts: Sequence[tuple[np.ndarray, list[Summary]]]) -> list[Summary]:
    """The chunks' summaries put back into whole-run arrays, one Summary per setting (rows no chunk had: NaN).
    Every chunk holds every setting, so the settings themselves are not needed here (nor sent to this step)."""
    S, H = shape
    out = [Summary(*(np.full((S, H), np.nan) for _ in range(4)), prob=np.full((S, H, s.prob.shape[2]), np.nan))
           for s in parts[0][1]] if parts else []
    for rows, summaries in parts:
        for whole, part in zip(out, summaries, strict=True):
            for name in ("p10", "p50", "p90", "mean", "prob"):
                getattr(whole, name)[rows] = getattr(part, name)
    return out


def run_chunked(inputs: SeriesInputs, settings: Sequence[Setting], draws: int = 10_000, seed: int = DEFAULT_SEED,
                chunks: int = 1, threads: int = 1) -> list[Summary]:
    """run_settings through split_simulation and merge_summaries in one process: what the fan-out computes."""
    parts = split_simulation(inputs, settings, draws, seed, chunks)
    return merge_summaries(inputs.shape, [(p.rows, p.run(threads)) for p in parts])
