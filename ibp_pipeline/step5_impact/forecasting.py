"""Forecasting many monthly series at once: ETS forms chosen by AICc, with simple fallbacks.

Why this module exists: statsmodels' `ETSModel` costs about 95 ms for one fit of one form (../shared/STACK.md;
340-1600 ms per series for all five forms on this loaded machine), and choosing among forms for ~12,600 series,
plus six backtest origins each, would take hours. The models here ARE statsmodels' additive-error ETS models
(the same state-space recursions, the same Gaussian likelihood, the same AICc with the same parameter count, the
same analytic forecast variance; tests check each against `statsmodels.tsa.exponential_smoothing.ets.ETSModel`
to 1e-6), but they are fitted for all series together with numpy:

- the smoothing parameters (alpha, beta, gamma, phi) are searched on a coarse grid inside statsmodels' usual
  bounds (0 < alpha < 1, 0 < beta < alpha, 0 < gamma < 1 - alpha, 0.8 <= phi <= 0.98), then refined per series
  by three rounds of a compass search (a step down and up in each parameter, halving the step each round);
- for each grid point the initial states (level, trend, 11 free seasonal states, the 12th fixed at 0 as
  statsmodels does) are estimated EXACTLY: a linear ETS model's one-step errors are affine in the initial state,
  so the likelihood maximised over the initial state is a least-squares problem whose design matrix depends only
  on the smoothing parameters and the time index, never on the data. One design per grid point serves every
  series (series are left-aligned, so a series of length n uses the first n rows).
- backtest origins are warm-started from the previous (earlier) origin's fit (`warm=`), skipping the grid;
  large batches run on two threads.
On real series the fitted log-likelihood matches or beats statsmodels' own L-BFGS fit (which sometimes stops in a
local optimum); `statsmodels_reference` refits a series with statsmodels itself for checking. SARIMAX is not
among the candidates: the ETS family covers these level/trend/seasonal series and SARIMAX has no such shortcut.

Forms, each tried where the series is long enough and chosen by lowest AICc: ETS(A,N,N), ETS(A,A,N),
ETS(A,Ad,N) from 12 points; ETS(A,N,A) from 24; ETS(A,Ad,A) from 36 (12 seasonal states plus level, trend and
smoothing parameters need two or three years).
Fallbacks (the model is named on every row):
- 6-11 points: 'naive' (random walk) or ETS(A,N,N) (simple exponential smoothing), whichever has the lower AICc
  (the random walk is ETS(A,N,N) with alpha = 1, so the two are comparable); under 6 points: 'naive'. Naive
  intervals: sd = root mean square monthly change x sqrt(h).
- intermittent series (average inter-demand interval over the latest 12 months > 1.32, i.e. more than about a
  quarter of those months zero):
  'croston_sba' (Syntetos-Boylan-approximation Croston, alpha 0.1; its sd is the root mean square of its own
  one-step errors, flat over the horizon: an approximation, Croston has no model-based interval).
- a constant series (e.g. always 0 FTE): 'constant', zero-width interval.

Every forecast is a normal distribution per month (mean, sd); intervals are mean +- z * sd. Ratios (percentages)
combine a numerator and a denominator forecast (`ratio_forecast`: exact quantiles of the ratio of correlated
normals, seeded simulation where the denominator could reach zero).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ibp_pipeline import settings

SEASON = 12
Z80 = 1.2815515655446004
Z95 = 1.959963984540054
ETS_MIN_POINTS = 12
SES_MIN_POINTS = 6
SEASONAL_MIN_POINTS = 24
INTERMITTENT_ADI = 1.32  # Syntetos-Boylan cut-off on the average inter-demand interval
INTERMITTENT_WINDOW = 12  # months the cut-off is applied to
CROSTON_ALPHA = 0.1


# --------------------------------------------------------------------------------------------------- forms
@dataclass(frozen=True)
class EtsForm:
    """One additive-error ETS form, labelled as statsmodels/Hyndman write it, e.g. ETS(A,Ad,N)."""

    trend: bool
    damped: bool
    seasonal: bool

    @property
    def label(self) -> str:
        t = "Ad" if self.damped else ("A" if self.trend else "N")
        return f"ETS(A,{t},{'A' if self.seasonal else 'N'})"

    @property
    def short(self) -> str:
        return self.label[4:-1].replace(",", "")

    @property
    def n_free_states(self) -> int:
        """Initial states estimated (the last seasonal state is fixed at 0, as in statsmodels)."""
        return 1 + int(self.trend) + (SEASON - 1) * int(self.seasonal)

    @property
    def df_model(self) -> int:
        """Parameter count used by statsmodels' AICc: smoothing params + initial states (12 seasonal) + sigma."""
        smoothing = 1 + int(self.trend) + int(self.seasonal) + int(self.damped)
        return smoothing + 1 + int(self.trend) + SEASON * int(self.seasonal) + 1

    @property
    def min_points(self) -> int:
        """Seasonal forms need two years (ETS(A,N,A): 16 parameters) or three with a damped trend (19)."""
        if self.seasonal:
            return SEASONAL_MIN_POINTS + (SEASON if self.trend else 0)
        return ETS_MIN_POINTS

    def statsmodels_kwargs(self) -> dict:
        kw: dict = {"error": "add", "trend": "add" if self.trend else None, "damped_trend": self.damped}
        if self.seasonal:
            kw |= {"seasonal": "add", "seasonal_periods": SEASON}
        return kw


ANN = EtsForm(False, False, False)
AAN = EtsForm(True, False, False)
AAdN = EtsForm(True, True, False)
ANA = EtsForm(False, False, True)
AAdA = EtsForm(True, True, True)
DEFAULT_FORMS: tuple[EtsForm, ...] = (ANN, AAN, AAdN, ANA, AAdA)
FORMS_BY_LABEL = {f.label: f for f in (ANN, AAN, AAdN, ANA, AAdA, EtsForm(True, False, True))}

# statsmodels' usual bounds are open at 1e-4 from 0 and 1
_ALPHA = np.array([1e-4, 0.04, 0.1, 0.17, 0.25, 0.35, 0.47, 0.6, 0.75, 0.9, 0.9999])
_BETA_STAR = np.array([1e-4, 0.05, 0.15, 0.35, 0.7])  # beta = alpha * beta_star
_PHI = np.array([0.8, 0.9, 0.98])
_GAMMA_STAR = np.array([1e-4, 0.1, 0.3, 0.6])  # gamma = (1 - alpha) * gamma_star
_S_ALPHA = np.array([1e-4, 0.05, 0.15, 0.3, 0.5, 0.7, 0.9, 0.9999])
_S_BETA_STAR = np.array([1e-4, 0.1, 0.4, 0.8])
_S_PHI = np.array([0.8, 0.98])
# refinement may move anywhere inside statsmodels' usual bounds (alpha, beta*, gamma*, phi)
_BOUNDS = ((1e-4, 0.9999), (1e-4, 0.9999), (1e-4, 0.9999), (0.8, 0.98))
_S_GAMMA_STAR = np.array([1e-4, 0.15, 0.45])


def _grid(form: EtsForm) -> np.ndarray:
    """Coarse grid of unit-free parameters (alpha, beta_star, gamma_star, phi), shape (G, 4)."""
    seasonal = form.seasonal
    a = _S_ALPHA if seasonal else _ALPHA
    b = (_S_BETA_STAR if seasonal else _BETA_STAR) if form.trend else np.array([0.0])
    g = _S_GAMMA_STAR if seasonal else np.array([0.0])
    p = (_S_PHI if seasonal else _PHI) if form.damped else np.array([1.0])
    mesh = np.meshgrid(a, b, g, p, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def _to_params(unit: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(alpha, beta_star, gamma_star, phi) -> statsmodels' (alpha, beta, gamma, phi)."""
    alpha = unit[..., 0]
    return alpha, alpha * unit[..., 1], (1.0 - alpha) * unit[..., 2], unit[..., 3]


# --------------------------------------------------------------------------------------------------- filter
def _filter(y: np.ndarray | None, n_steps: int, alpha: np.ndarray, beta: np.ndarray, gamma: np.ndarray,
            phi: np.ndarray, form: EtsForm, level: np.ndarray, trend: np.ndarray, ring: np.ndarray,
            lengths: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run the ETS error-correction recursion over time for a whole batch at once.

    y: (n_steps, *batch-broadcastable) observations or None (all zero); level/trend: batch arrays; ring: (12,
    *batch) seasonal states, slot t % 12 holding s[t-12]. With `lengths`, states freeze after each series' end so
    the returned states are those at its last observation. Returns errors (n_steps, *batch) and final states.
    """
    level, trend, ring = level.copy(), trend.copy(), ring.copy()
    errors = np.empty((n_steps, *level.shape))
    for t in range(n_steps):
        slot = t % SEASON
        pred_level = level + phi * trend if form.trend else level
        pred = pred_level + ring[slot] if form.seasonal else pred_level
        e = (-pred) if y is None else (y[t] - pred)
        errors[t] = e
        new_level = pred_level + alpha * e
        if lengths is None:
            level = new_level
            if form.trend:
                trend = phi * trend + beta * e
            if form.seasonal:
                ring[slot] = ring[slot] + gamma * e
        else:
            live = t < lengths
            level = np.where(live, new_level, level)
            if form.trend:
                trend = np.where(live, phi * trend + beta * e, trend)
            if form.seasonal:
                ring[slot] = np.where(live, ring[slot] + gamma * e, ring[slot])
    return errors, level, trend, ring


def _initial_arrays(x0: np.ndarray, form: EtsForm) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Free initial states (..., K) -> level, trend, ring (12, ...); ring slot 0 (s[-12]) is fixed at 0."""
    batch = x0.shape[:-1]
    level = x0[..., 0]
    trend = x0[..., 1] if form.trend else np.zeros(batch)
    ring = np.zeros((SEASON, *batch))
    if form.seasonal:
        off = 1 + int(form.trend)
        ring[1:] = np.moveaxis(x0[..., off:off + SEASON - 1], -1, 0)
    return level, trend, ring


def _design(unit: np.ndarray, form: EtsForm, n_steps: int) -> np.ndarray:
    """One-step predictions from each unit initial state with zero data: the least-squares design, (G, N, K).

    One-step errors are e(x0) = e(0) - X @ x0, so the best x0 for given smoothing parameters is least squares.
    """
    alpha, beta, gamma, phi = _to_params(unit)
    k = form.n_free_states
    eye = np.broadcast_to(np.eye(k), (unit.shape[0], k, k))
    level, trend, ring = _initial_arrays(eye, form)
    errs, *_ = _filter(None, n_steps, alpha[:, None], beta[:, None], gamma[:, None], phi[:, None], form,
                       level, trend, ring)
    return -np.moveaxis(errs, 0, 1)  # predictions = -errors with zero data


# --------------------------------------------------------------------------------------------------- ETS fit
@dataclass
class EtsFit:
    """Best fit of one form for each series in a batch (NaN rows where the form was not eligible)."""

    form: EtsForm
    unit: np.ndarray  # (S, 4) alpha, beta_star, gamma_star, phi
    x0: np.ndarray  # (S, K) initial states on the data scale
    sse: np.ndarray  # (S,)
    nobs: np.ndarray  # (S,)

    @property
    def llf(self) -> np.ndarray:
        n = self.nobs
        return -0.5 * n * (np.log(2 * np.pi * self.sse / n) + 1.0)

    @property
    def aicc(self) -> np.ndarray:
        k = self.form.df_model
        n = self.nobs.astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = -2.0 * self.llf + 2.0 * k * n / (n - k - 1.0)
        return np.where(n - k - 1.0 > 0, out, np.inf)


def _profile_sse(ys: np.ndarray, lengths: np.ndarray, unit: np.ndarray, form: EtsForm,
                 chunk_cells: int = 4_000_000) -> tuple[np.ndarray, np.ndarray]:
    """SSE minimised over the initial states for every series x grid point; also the minimising states.

    ys (S, N) left-aligned (zero padded), unit (G, 4) shared or (S, G, 4) per series. Returns sse (S, G), x0
    (S, G, K).
    """
    s_count, n_steps = ys.shape
    per_series = unit.ndim == 3
    g_count = unit.shape[-2]
    k = form.n_free_states
    sse = np.empty((s_count, g_count))
    x0 = np.empty((s_count, g_count, k))
    mask = (np.arange(n_steps)[:, None] < lengths[None, :])  # (N, S)
    if not per_series:
        design = _design(unit, form, n_steps)  # (G, N, K)
        outer = np.einsum("gnk,gnl->gnkl", design, design)
        cum = np.concatenate([np.zeros((g_count, 1, k, k)), np.cumsum(outer, axis=1)], axis=1)
        pinv_cache: dict[int, np.ndarray] = {}
    alpha, beta, gamma, phi = _to_params(unit)
    step = max(1, chunk_cells // max(1, g_count * n_steps * (k if per_series else 1)))
    for lo in range(0, s_count, step):
        sl = slice(lo, min(s_count, lo + step))
        y_c = ys[sl].T[:, :, None]  # (N, Sc, 1)
        m_c = mask[:, sl][:, :, None]
        zero = np.zeros((y_c.shape[1], g_count))
        a, b, g, p = (alpha[sl], beta[sl], gamma[sl], phi[sl]) if per_series else (alpha, beta, gamma, phi)
        e, *_ = _filter(y_c, n_steps, a, b, g, p, form, zero, zero, np.zeros((SEASON, *zero.shape)))
        e = np.where(m_c, e, 0.0)  # (N, Sc, G)
        sse_y = np.einsum("nsg,nsg->sg", e, e)
        if per_series:
            # per-series designs: run the zero-data recursion from each unit state for every series x point
            eye = np.broadcast_to(np.eye(k), (*zero.shape, k, k))
            lv, tr, rg = _initial_arrays(eye, form)
            d_err, *_ = _filter(None, n_steps, a[..., None], b[..., None], g[..., None], p[..., None], form,
                                lv, tr, rg)
            design_c = -np.where(m_c[..., None], d_err, 0.0)  # (N, Sc, G, K)
            xtx = np.einsum("nsgk,nsgl->sgkl", design_c, design_c)
            xty = np.einsum("nsgk,nsg->sgk", design_c, e)
            inv = np.linalg.pinv(xtx, rcond=1e-10, hermitian=True)
            sol = np.einsum("sgkl,sgl->sgk", inv, xty)
        else:
            xty = np.matmul(e.transpose(2, 1, 0), design).transpose(1, 0, 2)  # (Sc, G, K)
            sol = np.empty((y_c.shape[1], g_count, k))
            lens = lengths[sl]
            for n in np.unique(lens):
                if n not in pinv_cache:
                    pinv_cache[n] = np.linalg.pinv(cum[:, n], rcond=1e-10, hermitian=True)
                rows = np.flatnonzero(lens == n)
                sol[rows] = np.einsum("gkl,sgl->sgk", pinv_cache[n], xty[rows])
        quad = np.einsum("sgk,sgk->sg", sol, xty)
        sse[sl] = sse_y - quad
        x0[sl] = sol
    return sse, x0


def _local_grid(best: np.ndarray, form: EtsForm, coarse: np.ndarray, frac: float) -> np.ndarray:
    """Compass points around each series' best point: the point itself and, for each free parameter, a step
    down and up of `frac` times the gap to the neighbouring coarse level (within statsmodels' bounds):
    (S, 1 + 2 x free, 4)."""
    points = [best]
    for j, free in enumerate((True, form.trend, form.seasonal, form.damped)):
        if not free:
            continue
        levels = np.unique(np.concatenate([coarse[:, j], _BOUNDS[j]]))
        cur = best[:, j]
        left = levels[np.maximum(np.searchsorted(levels, cur, "left") - 1, 0)]
        right = levels[np.minimum(np.searchsorted(levels, cur, "right"), len(levels) - 1)]
        lo_b, hi_b = _BOUNDS[j]
        for target in (np.clip(cur - frac * np.maximum(cur - left, 0.0), lo_b, hi_b),
                       np.clip(cur + frac * np.maximum(right - cur, 0.0), lo_b, hi_b)):
            p = best.copy()
            p[:, j] = target
            points.append(p)
    return np.stack(points, axis=1)


def _sse_given_states(ys: np.ndarray, lengths: np.ndarray, unit: np.ndarray, x0: np.ndarray, form: EtsForm
                      ) -> np.ndarray:
    """SSE for per-series grids (S, G, 4) with each series' initial states held fixed (S, K): (S, G)."""
    n_steps = ys.shape[1]
    alpha, beta, gamma, phi = _to_params(unit)
    shape = alpha.shape
    level, trend, ring = _initial_arrays(x0, form)
    level = np.broadcast_to(level[:, None], shape).copy()
    trend = np.broadcast_to(trend[:, None], shape).copy()
    ring = np.broadcast_to(ring[:, :, None], (SEASON, *shape)).copy()
    e, *_ = _filter(ys.T[:, :, None], n_steps, alpha, beta, gamma, phi, form, level, trend, ring)
    mask = (np.arange(n_steps)[:, None] < lengths[None, :])[:, :, None]
    return np.where(mask, e * e, 0.0).sum(0)


def fit_ets(y: np.ndarray, lengths: np.ndarray, form: EtsForm, refine_rounds: int = 3,
            workers: int | None = None, warm: tuple[np.ndarray, np.ndarray] | None = None) -> EtsFit:
    """Fit one ETS form to every series (rows of y, left-aligned, first `lengths[i]` values used).

    warm: optional (unit (S, 4), x0 (S, K)) starting points, NaN rows where none (e.g. the previous backtest
    origin's fit: it used less data, so nothing leaks from the future); warm rows skip the coarse grid.
    Big batches are split over `workers` threads (numpy releases the GIL in its array loops, so two halves run
    on two cores); every step is per series, so results do not depend on the split.
    """
    lengths = np.asarray(lengths, dtype=int)
    y = np.asarray(y, dtype=float)
    s_count = len(lengths)
    k = form.n_free_states
    out = EtsFit(form, np.full((s_count, 4), np.nan), np.full((s_count, k), np.nan), np.full(s_count, np.nan),
                 lengths.astype(float))
    has_warm = np.zeros(s_count, dtype=bool)
    if warm is not None:
        has_warm = np.isfinite(warm[0]).all(1) & np.isfinite(warm[1]).all(1)
    workers = workers or settings.compute_threads()
    for use_warm in (False, True):
        rows = np.flatnonzero(has_warm == use_warm)
        if not len(rows):
            continue
        parts = np.array_split(rows, workers if len(rows) >= 400 else 1)

        def run(r: np.ndarray) -> EtsFit:
            w = (warm[0][r], warm[1][r]) if use_warm else None
            return _fit_ets_serial(y[r], lengths[r], form, refine_rounds, w)

        if len(parts) > 1:
            with ThreadPoolExecutor(max_workers=len(parts)) as pool:
                fits = list(pool.map(run, parts))
        else:
            fits = [run(parts[0])]
        for r, f in zip(parts, fits):
            out.unit[r], out.x0[r], out.sse[r] = f.unit, f.x0, f.sse
    return out


def _fit_ets_serial(y: np.ndarray, lengths: np.ndarray, form: EtsForm, refine_rounds: int = 3,
                    warm: tuple[np.ndarray, np.ndarray] | None = None) -> EtsFit:
    """Grid, then local refinement, for one block of series.

    Why a grid: it is shared by all series, so one least-squares design per grid point serves thousands of
    series (initial states exact for every grid point). Refinement then alternates, per series: a 3-point local
    grid in each smoothing parameter with the initial states held, then the exact initial states for the new
    parameters; each round halves the step. No step can lower the likelihood.
    """
    n_steps = int(lengths.max()) if len(lengths) else 0
    y = y[:, :n_steps]
    valid = np.arange(n_steps)[None, :] < lengths[:, None]
    scale = np.where(valid, np.abs(y), 0.0).sum(1) / np.maximum(lengths, 1)
    scale = np.where(scale > 0, scale, 1.0)
    ys = np.where(valid, y / scale[:, None], 0.0)
    coarse = _grid(form)
    rows = np.arange(len(lengths))
    if warm is None:
        sse, x0 = _profile_sse(ys, lengths, coarse, form)
        best = np.argmin(np.where(np.isfinite(sse), sse, np.inf), axis=1)
        unit, best_x0, best_sse = coarse[best], x0[rows, best], sse[rows, best]
    else:
        unit = warm[0].copy()
        sse, x0 = _profile_sse(ys, lengths, unit[:, None, :], form)
        best_x0, best_sse = x0[:, 0], sse[:, 0]
    for r in range(refine_rounds if len(coarse) > 1 else 0):
        local = _local_grid(unit, form, coarse, 0.5 ** (r + 1))
        sse_l = _sse_given_states(ys, lengths, local, best_x0, form)
        b2 = np.argmin(np.where(np.isfinite(sse_l), sse_l, np.inf), axis=1)
        better = sse_l[rows, b2] < best_sse
        unit = np.where(better[:, None], local[rows, b2], unit)
        if better.any():
            sse_n, x0_n = _profile_sse(ys[better], lengths[better], unit[better][:, None, :], form)
            best_x0[better] = x0_n[:, 0]
            best_sse[better] = np.minimum(sse_n[:, 0], sse_l[rows, b2][better])
    # exact SSE of the chosen point by a clean forward pass (avoids cancellation in ||e||^2 - quad)
    alpha, beta, gamma, phi = _to_params(unit)
    lv, tr, rg = _initial_arrays(best_x0, form)
    e, *_ = _filter(ys.T, n_steps, alpha, beta, gamma, phi, form, lv, tr, rg, lengths=lengths)
    e = np.where(valid.T, e, 0.0)
    sse_exact = np.maximum((e ** 2).sum(0), 1e-12 * lengths)
    return EtsFit(form, unit, best_x0 * scale[:, None], sse_exact * scale ** 2, lengths.astype(float))


def ets_states_and_residuals(y: np.ndarray, lengths: np.ndarray, fit: EtsFit
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Residuals (S, N; NaN past each end) and the states at each series' last observation."""
    n_steps = y.shape[1]
    alpha, beta, gamma, phi = _to_params(fit.unit)
    lv, tr, rg = _initial_arrays(fit.x0, fit.form)
    valid = np.arange(n_steps)[None, :] < lengths[:, None]
    yy = np.where(valid, y, 0.0)
    e, level, trend, ring = _filter(yy.T, n_steps, alpha, beta, gamma, phi, fit.form, lv, tr, rg,
                                    lengths=lengths)
    return np.where(valid, e.T, np.nan), level, trend, ring


def ets_forecast(fit: EtsFit, level: np.ndarray, trend: np.ndarray, ring: np.ndarray, lengths: np.ndarray,
                 horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Point forecasts and forecast sd for h = 1..horizon (statsmodels' analytic variance for class-1 ETS)."""
    alpha, beta, gamma, phi = _to_params(fit.unit)
    h = np.arange(1, horizon + 1)
    form = fit.form
    if form.trend:
        phis = phi[:, None] ** h[None, :]
        damp_sum = np.cumsum(phis, axis=1)  # phi + ... + phi^h
        mean = level[:, None] + damp_sum * trend[:, None]
    else:
        damp_sum = np.zeros((len(alpha), horizon))
        mean = np.repeat(level[:, None], horizon, axis=1)
    if form.seasonal:
        slots = (lengths[:, None] + h[None, :] - 1) % SEASON
        mean = mean + np.take_along_axis(ring.T, slots, axis=1)
    # c_j = alpha + beta * (phi + ... + phi^j) + gamma * [j % 12 == 0], var_h = sigma2 * (1 + sum_{j<h} c_j^2)
    c = alpha[:, None] + (beta[:, None] * damp_sum if form.trend else np.zeros((len(alpha), horizon)))
    if form.seasonal:
        c = c + gamma[:, None] * (h[None, :] % SEASON == 0)
    rel = 1.0 + np.concatenate([np.zeros((len(alpha), 1)), np.cumsum(c ** 2, axis=1)[:, :-1]], axis=1)
    sigma2 = fit.sse / fit.nobs
    return mean, np.sqrt(sigma2[:, None] * rel)


# --------------------------------------------------------------------------------------------------- fallbacks
def _nanmean(a: np.ndarray) -> np.ndarray:
    """Row means over finite entries; 0 for rows with none (no warnings)."""
    ok = np.isfinite(a)
    n = ok.sum(1)
    return np.where(n > 0, np.where(ok, a, 0.0).sum(1) / np.maximum(n, 1), 0.0)


def naive_forecast(y: np.ndarray, lengths: np.ndarray, horizon: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random walk: last value; sigma = root mean square monthly change; sd_h = sigma * sqrt(h)."""
    rows = np.arange(len(lengths))
    last = y[rows, lengths - 1]
    n_steps = y.shape[1]
    valid = np.arange(1, n_steps)[None, :] < lengths[:, None]
    diffs = np.where(valid, np.diff(y, axis=1), np.nan)
    sigma = np.sqrt(_nanmean(diffs ** 2)) if n_steps > 1 else np.zeros(len(lengths))
    h = np.arange(1, horizon + 1)
    resid = np.concatenate([np.full((len(lengths), 1), np.nan), diffs], axis=1)
    return np.repeat(last[:, None], horizon, axis=1), sigma[:, None] * np.sqrt(h)[None, :], resid


def croston_sba_forecast(y: np.ndarray, lengths: np.ndarray, horizon: int, alpha: float = CROSTON_ALPHA
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Croston with the Syntetos-Boylan correction, vectorised over series.

    Demand sizes and inter-demand intervals are smoothed separately, starting from their averages over the
    series (so the first demand's position does not bias the interval); the rate forecast is
    (1 - alpha/2) * size / interval, flat over the horizon. Croston has no model-based interval: the sd is the
    root mean square of its own one-step errors (constant over h), an approximation stated on every row.
    """
    s_count, n_steps = y.shape
    valid = np.arange(n_steps)[None, :] < lengths[:, None]
    demand_all = valid & (y > 0)
    count = demand_all.sum(1)
    mean_size = np.where(demand_all, y, 0.0).sum(1) / np.maximum(count, 1)
    mean_interval = lengths / np.maximum(count, 1)
    size = np.full(s_count, np.nan)
    interval = np.full(s_count, np.nan)
    since = np.ones(s_count)
    resid = np.full((s_count, n_steps), np.nan)
    for t in range(n_steps):
        live = t < lengths
        yt = y[:, t]
        f_prev = (1 - alpha / 2) * size / interval
        resid[:, t] = np.where(live & np.isfinite(f_prev), yt - f_prev, np.nan)
        demand = live & (yt > 0)
        first = demand & np.isnan(size)
        later = demand & ~first
        size = np.where(first, mean_size, np.where(later, size + alpha * (yt - size), size))
        interval = np.where(first, mean_interval,
                            np.where(later, interval + alpha * (since - interval), interval))
        since = np.where(demand, 1.0, np.where(live, since + 1.0, since))
    rate = np.where(np.isnan(size), 0.0, (1 - alpha / 2) * size / interval)
    sd = np.sqrt(_nanmean(resid ** 2))
    return np.repeat(rate[:, None], horizon, 1), np.repeat(sd[:, None], horizon, 1), resid


def naive_aicc_values(y: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """AICc of the random walk as the ETS(A,N,N) model with alpha = 1 and the initial level estimated (so the
    first error is 0): sigma^2 = sum of squared monthly changes / n, 2 parameters (level, sigma). Comparable with
    ETS(A,N,N)'s AICc on the same data (nested model, same likelihood)."""
    n = lengths.astype(float)
    valid = np.arange(1, y.shape[1])[None, :] < lengths[:, None]
    sse = np.where(valid, np.diff(y, axis=1) ** 2, 0.0).sum(1)
    llf = -0.5 * n * (np.log(2 * np.pi * np.maximum(sse, 1e-12 * n) / n) + 1.0)
    k = 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n - k - 1 > 0, -2.0 * llf + 2.0 * k * n / (n - k - 1.0), np.inf)


# --------------------------------------------------------------------------------------------------- batch
@dataclass
class BatchForecast:
    """Normal forecast distributions for a batch of series; `model` names what made each row."""

    model: np.ndarray  # (S,) str
    mean: np.ndarray  # (S, H)
    sd: np.ndarray  # (S, H)
    resid: np.ndarray  # (S, N) one-step in-sample errors (NaN where none)
    aicc: np.ndarray  # (S,) NaN for fallbacks
    candidates: np.ndarray  # (S,) str: forms compared by AICc, with their AICc
    params: list[dict] = field(default_factory=list)
    fits: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def interval(self, level: int, lower: float | None = 0.0, upper: float | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        z = {80: Z80, 95: Z95}[level]
        lo, hi = self.mean - z * self.sd, self.mean + z * self.sd
        if lower is not None or upper is not None:
            lo, hi = np.clip(lo, lower, upper), np.clip(hi, lower, upper)
        return lo, hi


def classify(y: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """'constant', 'croston_sba', 'naive' or 'ets' per series, by the rules in the module docstring."""
    valid = np.arange(y.shape[1])[None, :] < lengths[:, None]
    vals = np.where(valid, y, np.nan)
    spread = np.nanmax(vals, 1) - np.nanmin(vals, 1)
    # intermittency is judged on the latest year: a series that was zero before COVID and busy since is not
    recent = valid & (np.arange(y.shape[1])[None, :] >= lengths[:, None] - INTERMITTENT_WINDOW)
    nonzero = (np.where(recent, y, 0.0) != 0).sum(1)
    adi = recent.sum(1) / np.maximum(nonzero, 1)
    kind = np.where(lengths < ETS_MIN_POINTS, "naive", "ets").astype(object)
    kind = np.where((adi > INTERMITTENT_ADI) & (nonzero > 0), "croston_sba", kind)
    kind = np.where(spread <= 1e-12 * np.maximum(1.0, np.nanmax(np.abs(vals), 1)), "constant", kind)
    return kind


def forecast_batch(y: np.ndarray, lengths: np.ndarray, horizon: int,
                   forms: tuple[EtsForm, ...] = DEFAULT_FORMS, refine_rounds: int = 3,
                   warm: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> BatchForecast:
    """Forecast every series: ETS form chosen by AICc where eligible, else the fallback its shape calls for.

    warm: per form label, (unit (S, 4), x0 (S, K)) starting points aligned with the rows of y (NaN = none);
    the result's `fits` holds every form's fitted (unit, x0) in the same layout, for the next warm start.
    """
    y = np.asarray(y, dtype=float)
    lengths = np.asarray(lengths, dtype=int)
    s_count, n_steps = y.shape
    kind = classify(y, lengths)
    model = np.empty(s_count, dtype=object)
    mean = np.zeros((s_count, horizon))
    sd = np.zeros((s_count, horizon))
    resid = np.full((s_count, n_steps), np.nan)
    aicc = np.full(s_count, np.nan)
    candidates = np.full(s_count, "", dtype=object)
    params: list[dict] = [{} for _ in range(s_count)]
    all_fits: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    rows = np.flatnonzero(kind == "constant")
    if len(rows):
        model[rows] = "constant"
        mean[rows] = y[rows, lengths[rows] - 1][:, None]
        resid[rows] = np.where(np.arange(n_steps)[None, :] < lengths[rows, None], 0.0, np.nan)
    for name, fn in (("naive", naive_forecast), ("croston_sba", croston_sba_forecast)):
        rows = np.flatnonzero(kind == name)
        if len(rows):
            m, s, r = fn(y[rows], lengths[rows], horizon)
            model[rows], mean[rows], sd[rows], resid[rows] = name, m, s, r
    # short series with enough points for SES: naive (= SES with alpha 1) or SES itself, by AICc
    rows = np.flatnonzero((kind == "naive") & (lengths >= SES_MIN_POINTS))
    if len(rows):
        yy, ll = y[rows], lengths[rows]
        fit = fit_ets(yy, ll, ANN, refine_rounds=refine_rounds)
        naive_aicc = naive_aicc_values(yy, ll)
        ses_aicc = fit.aicc
        ses = ses_aicc < naive_aicc
        for j, o in enumerate(rows):
            candidates[o] = f"naive={naive_aicc[j]:.1f}; {ANN.label}={ses_aicc[j]:.1f}"
        aicc[rows] = np.minimum(ses_aicc, naive_aicc)
        if ses.any():
            sel = np.flatnonzero(ses)
            f = EtsFit(ANN, fit.unit[sel], fit.x0[sel], fit.sse[sel], fit.nobs[sel])
            r, lv, tr, rg = ets_states_and_residuals(yy[sel], ll[sel], f)
            m, s = ets_forecast(f, lv, tr, rg, ll[sel], horizon)
            out = rows[sel]
            model[out], mean[out], sd[out], resid[out, :r.shape[1]] = ANN.label, m, s, r
            for j, o in enumerate(out):
                params[o] = {"alpha": float(f.unit[j, 0]), "sigma": float(np.sqrt(f.sse[j] / f.nobs[j]))}

    rows = np.flatnonzero(kind == "ets")
    if len(rows):
        yy, ll = y[rows], lengths[rows]
        best_aicc = np.full(len(rows), np.inf)
        best_form = np.full(len(rows), -1)
        fits: dict[int, tuple[np.ndarray, EtsFit]] = {}
        cand_text = [[] for _ in rows]
        for fi, form in enumerate(forms):
            sub = np.flatnonzero(ll >= form.min_points)
            if not len(sub):
                continue
            w = None
            if warm is not None and form.label in warm:
                w = (warm[form.label][0][rows[sub]], warm[form.label][1][rows[sub]])
            fit = fit_ets(yy[sub], ll[sub], form, refine_rounds=refine_rounds, warm=w)
            fits[fi] = (sub, fit)
            u_all = np.full((s_count, 4), np.nan)
            x_all = np.full((s_count, form.n_free_states), np.nan)
            u_all[rows[sub]], x_all[rows[sub]] = fit.unit, fit.x0
            all_fits[form.label] = (u_all, x_all)
            a = fit.aicc
            for j, i in enumerate(sub):
                cand_text[i].append(f"{form.label}={a[j]:.1f}")
            better = a < best_aicc[sub]
            best_aicc[sub[better]] = a[better]
            best_form[sub[better]] = fi
        for fi, (sub, fit) in fits.items():
            chosen = best_form[sub] == fi
            if not chosen.any():
                continue
            sel = sub[chosen]
            f = EtsFit(fit.form, fit.unit[chosen], fit.x0[chosen], fit.sse[chosen], fit.nobs[chosen])
            r, lv, tr, rg = ets_states_and_residuals(yy[sel], ll[sel], f)
            m, s = ets_forecast(f, lv, tr, rg, ll[sel], horizon)
            out = rows[sel]
            model[out], mean[out], sd[out], resid[out, :r.shape[1]] = fit.form.label, m, s, r
            aicc[out] = f.aicc
            alpha, beta, gamma, phi = _to_params(f.unit)
            for j, o in enumerate(out):
                params[o] = {"alpha": float(alpha[j]), "beta": float(beta[j]), "gamma": float(gamma[j]),
                             "phi": float(phi[j]), "sigma": float(np.sqrt(f.sse[j] / f.nobs[j]))}
        for j, o in enumerate(rows):
            candidates[o] = "; ".join(cand_text[j])
    return BatchForecast(model, mean, sd, resid, aicc, candidates, params, all_fits)


# --------------------------------------------------------------------------------------------------- ratios
def residual_correlation(resid_a: np.ndarray, resid_b: np.ndarray) -> np.ndarray:
    """Pearson correlation of two residual matrices row by row over months both have; 0 where undefined."""
    both = np.isfinite(resid_a) & np.isfinite(resid_b)
    n = both.sum(1)
    a = np.where(both, resid_a, 0.0)
    b = np.where(both, resid_b, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma, mb = a.sum(1) / n, b.sum(1) / n
        da = np.where(both, a - ma[:, None], 0.0)
        db = np.where(both, b - mb[:, None], 0.0)
        r = (da * db).sum(1) / np.sqrt((da ** 2).sum(1) * (db ** 2).sum(1))
    return np.where(np.isfinite(r) & (n >= 3), np.clip(r, -0.999, 0.999), 0.0)


@dataclass
class RatioForecast:
    mean: np.ndarray  # (S, H) scale * num_mean / den_mean, clipped to [0, scale]
    sd: np.ndarray  # (S, H) sd of the simulated ratio
    lo80: np.ndarray
    hi80: np.ndarray
    lo95: np.ndarray
    hi95: np.ndarray
    rho: np.ndarray  # (S,) numerator-denominator residual correlation used
    simulated: np.ndarray  # (S, H) bool: interval simulated (denominator not safely positive) not exact


def standard_normal_draws(horizon: int, n_draws: int, seed: int) -> np.ndarray:
    """Common random numbers (2, H, draws), so results do not depend on batch order or chunking."""
    return np.random.default_rng(seed).standard_normal((2, horizon, n_draws))


def ratio_quantile_bounds(mn: np.ndarray, sn: np.ndarray, md: np.ndarray, sd: np.ndarray, rho: np.ndarray,
                          z: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact central interval of N/D for bivariate normal (N, D) with D > 0 (Fieller/Hinkley 1969).

    P(N/D <= r) = P(N - r D <= 0) = Phi((r md - mn) / sqrt(sn^2 - 2 r rho sn sd + r^2 sd^2)), so the
    quantiles at -z and +z are the two roots of (r md - mn)^2 = z^2 (sn^2 - 2 r rho sn sd + r^2 sd^2).
    Valid (third value True) when the denominator is safely positive (md > 4 sd) and real roots exist.
    """
    z2 = z * z
    qa = md * md - z2 * sd * sd
    qb = -2.0 * (mn * md - z2 * rho * sn * sd)
    qc = mn * mn - z2 * sn * sn
    disc = qb * qb - 4.0 * qa * qc
    valid = (md > 0) & (md > 4.0 * sd) & (disc >= 0) & (qa > 0)
    root = np.sqrt(np.where(valid, disc, 0.0))
    den = np.where(valid, 2.0 * qa, 1.0)
    return (-qb - root) / den, (-qb + root) / den, valid


def ratio_forecast(num: BatchForecast, den: BatchForecast, scale: float = 100.0, n_draws: int = 2000,
                   seed: int = 20240401, chunk: int = 2048) -> RatioForecast:
    """Percentage forecast from numerator and denominator forecasts.

    Why not the numerator's interval alone: numerator and denominator move together (a busy month has more
    attendances AND more seen within 4 hours), so the percentage is far steadier than either. Each month's
    (num, den) is taken as bivariate normal with the two forecasts' means and sds and the correlation of their
    one-step in-sample residuals. Intervals are the exact quantiles of num/den under that distribution
    (`ratio_quantile_bounds`), times `scale`, clipped to [0, scale] (clipping a ratio and taking its quantile
    commute). Where the denominator is not safely positive (mean < 4 sd: tiny, noisy denominators) the
    quantiles come from `n_draws` seeded simulations instead. The point forecast is scale * num_mean / den_mean
    (traceable to num_mean and den_mean); sd is the delta-method sd (simulated where simulated).
    """
    rho = residual_correlation(num.resid, den.resid)
    r = rho[:, None]
    mn, sn, md, sdd = num.mean, num.sd, den.mean, den.sd
    bounds = {}
    valid = np.ones(mn.shape, dtype=bool)
    for level, z in ((80, Z80), (95, Z95)):
        lo, hi, ok = ratio_quantile_bounds(mn, sn, md, sdd, r, z)
        bounds[level] = (np.clip(scale * lo, 0.0, scale), np.clip(scale * hi, 0.0, scale))
        valid &= ok
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (sn ** 2 / md ** 2 - 2 * r * mn * sn * sdd / md ** 3 + mn ** 2 * sdd ** 2 / md ** 4)
        sd_out = scale * np.sqrt(np.maximum(var, 0.0))
    out = {"sd": sd_out, "lo80": bounds[80][0], "hi80": bounds[80][1], "lo95": bounds[95][0],
           "hi95": bounds[95][1]}
    bad_i, bad_h = np.nonzero(~valid)
    if len(bad_i):
        zs = standard_normal_draws(mn.shape[1], n_draws, seed)
        qs = np.array([0.025, 0.1, 0.9, 0.975])
        for lo_i in range(0, len(bad_i), chunk):
            ii, hh = bad_i[lo_i:lo_i + chunk], bad_h[lo_i:lo_i + chunk]
            z0, z1 = zs[0, hh], zs[1, hh]  # (cells, draws)
            rr = rho[ii, None]
            n_draw = mn[ii, hh, None] + sn[ii, hh, None] * z0
            d_draw = md[ii, hh, None] + sdd[ii, hh, None] * (rr * z0 + np.sqrt(1 - rr ** 2) * z1)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = scale * np.maximum(n_draw, 0.0) / d_draw
            ratio = np.where(d_draw > 0, np.clip(ratio, 0.0, scale), scale * (n_draw > 0))
            q = np.quantile(ratio, qs, axis=1)
            for key, qi in (("lo95", 0), ("lo80", 1), ("hi80", 2), ("hi95", 3)):
                out[key][ii, hh] = q[qi]
            out["sd"][ii, hh] = ratio.std(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = scale * np.maximum(mn, 0.0) / md
    mean = np.where(md > 0, np.clip(mean, 0.0, scale), np.nan)
    return RatioForecast(mean, out["sd"], out["lo80"], out["hi80"], out["lo95"], out["hi95"], rho,
                         simulated=~valid)


# --------------------------------------------------------------------------------------------------- backtests
@dataclass
class BacktestPlan:
    """Rolling origins per series: training lengths (S, O; -1 = unused) and the horizon tested (S,)."""

    train: np.ndarray
    horizon: np.ndarray


def backtest_plan(lengths: np.ndarray, n_origins: int = 6, horizon_max: int = 12, min_train: int = 6
                  ) -> BacktestPlan:
    """Last `n_origins` monthly origins, each forecasting 1..H months where H = min(horizon_max, what's left).

    Every origin of a series tests the same horizons, so each month-ahead is scored over the same origins.
    Short series get fewer origins (at least one) and shorter horizons; under min_train + 1 points, none.
    """
    lengths = np.asarray(lengths, dtype=int)
    spare = lengths - min_train  # points available for testing beyond the first training set
    n_orig = np.clip(np.minimum(n_origins, spare), 0, None)
    hb = np.clip(spare - (n_orig - 1), 0, horizon_max)
    hb = np.where(n_orig > 0, np.maximum(hb, 1), 0)
    o = np.arange(n_origins)[None, :]
    train = lengths[:, None] - hb[:, None] - (n_orig[:, None] - 1 - o)
    train = np.where(o < n_orig[:, None], train, -1)
    return BacktestPlan(train, hb)


def mase_scale(y: np.ndarray, lengths: np.ndarray, seasonal: np.ndarray) -> np.ndarray:
    """In-sample mean absolute (seasonal) naive error of each training window: lag 12 where `seasonal`, else 1."""
    n_steps = y.shape[1]
    out = np.full(len(lengths), np.nan)
    for lag in (1, SEASON):
        rows = np.flatnonzero((seasonal if lag == SEASON else ~seasonal) & (lengths > lag))
        if not len(rows) or n_steps <= lag:
            continue
        d = np.abs(y[rows, lag:] - y[rows, :-lag])
        valid = np.arange(lag, n_steps)[None, :] < lengths[rows, None]
        with np.errstate(invalid="ignore"):
            out[rows] = np.where(valid, d, 0.0).sum(1) / valid.sum(1)
    # a (near-)flat training window has no scale: MASE undefined there rather than astronomically large
    level = np.abs(np.where(np.arange(n_steps)[None, :] < lengths[:, None], y, 0.0)).sum(1) / np.maximum(lengths, 1)
    return np.where(out > 1e-6 * np.maximum(level, 1e-12), out, np.nan)


@dataclass
class BacktestScores:
    """Per-series accuracy over all rolling origins x horizons."""

    n_origins: np.ndarray
    horizon_max: np.ndarray
    n_forecasts: np.ndarray
    mae: np.ndarray
    mase: np.ndarray
    mase_h1: np.ndarray
    coverage80: np.ndarray
    coverage95: np.ndarray
    seasonal_scale: np.ndarray  # bool: MASE against seasonal naive (lag 12) rather than naive (lag 1)
    models: list[dict]


def score_backtest(actual: np.ndarray, plan: BacktestPlan, scale_series: np.ndarray,
                   forecaster: Callable[[np.ndarray, np.ndarray], dict], seasonal_min_train: int = 24
                   ) -> BacktestScores:
    """Run `forecaster(rows, train_lengths)` at each origin and score it against `actual` (S, N).

    forecaster returns a dict with mean, lo80, hi80, lo95, hi95 (len(rows), H >= max horizon) and model
    (len(rows),), computed from the first train_lengths[j] points of series rows[j].
    MASE divides each origin's errors by that origin's in-sample mean absolute seasonal-naive change (lag 12)
    when the shortest training window has >= 24 points, else the naive (lag 1) change, as Hyndman & Koehler.
    """
    s_count = actual.shape[0]
    n_or = plan.train.shape[1]
    hmax = int(plan.horizon.max()) if s_count else 0
    used = plan.train > 0
    min_train = np.where(used, plan.train, np.iinfo(int).max).min(1)
    seasonal = min_train >= seasonal_min_train
    abs_err = np.full((s_count, n_or, max(hmax, 1)), np.nan)
    scaled = np.full_like(abs_err, np.nan)
    in80 = np.full_like(abs_err, np.nan)
    in95 = np.full_like(abs_err, np.nan)
    models: list[dict] = [{} for _ in range(s_count)]
    hcols = np.arange(max(hmax, 1))
    for o in range(n_or):
        rows = np.flatnonzero(used[:, o])
        if not len(rows):
            continue
        tl = plan.train[rows, o]
        res = forecaster(rows, tl)
        idx = tl[:, None] + hcols[None, :]
        ok = hcols[None, :] < plan.horizon[rows, None]
        idx = np.where(ok, idx, 0)
        act = np.take_along_axis(actual[rows], idx, axis=1)
        mean = res["mean"][:, :len(hcols)]
        err = np.where(ok, np.abs(act - mean), np.nan)
        sc = mase_scale(scale_series[rows], tl, seasonal[rows])
        abs_err[rows, o] = err
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled[rows, o] = np.where(sc[:, None] > 0, err / sc[:, None], np.nan)
        for level, arr in ((80, in80), (95, in95)):
            lo, hi = res[f"lo{level}"][:, :len(hcols)], res[f"hi{level}"][:, :len(hcols)]
            arr[rows, o] = np.where(ok, ((act >= lo - 1e-9) & (act <= hi + 1e-9)).astype(float), np.nan)
        for j, i in enumerate(rows):
            name = str(res["model"][j])
            models[i][name] = models[i].get(name, 0) + 1
    with np.errstate(invalid="ignore"), _quiet_nan():
        n_fc = np.isfinite(abs_err).sum((1, 2))
        return BacktestScores(
            n_origins=used.sum(1), horizon_max=plan.horizon, n_forecasts=n_fc,
            mae=np.nanmean(abs_err, axis=(1, 2)), mase=np.nanmean(scaled, axis=(1, 2)),
            mase_h1=np.nanmean(scaled[:, :, 0], axis=1),
            coverage80=np.nanmean(in80, axis=(1, 2)), coverage95=np.nanmean(in95, axis=(1, 2)),
            seasonal_scale=seasonal, models=models)


class _quiet_nan:
    """Silence numpy's 'mean of empty slice' for series with no backtest."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


# --------------------------------------------------------------------------------------------------- helpers
def latest_segment(months: np.ndarray, values: np.ndarray, max_fill: int = 2, max_points: int = 72
                   ) -> tuple[np.ndarray, int, int]:
    """The recent contiguous stretch of a monthly series: (values, first month number, months interpolated).

    Why: NHS series have holes (the bundled A&E data skips April 2019 - March 2021). Holes of up to `max_fill`
    months are filled by straight-line interpolation; at a longer hole the series restarts after it. Only the
    last `max_points` months are kept (older history predates structural breaks such as COVID).
    """
    months = np.asarray(months, dtype=int)
    values = np.asarray(values, dtype=float)
    order = np.argsort(months)
    months, values = months[order], values[order]
    ok = np.isfinite(values)
    months, values = months[ok], values[ok]
    if not len(months):
        return values, 0, 0
    gaps = np.diff(months) - 1
    breaks = np.flatnonzero(gaps > max_fill)
    start = breaks[-1] + 1 if len(breaks) else 0
    months, values = months[start:], values[start:]
    full = np.arange(months[0], months[-1] + 1)
    filled = len(full) - len(months)
    out = np.interp(full, months, values) if filled else values
    if len(out) > max_points:
        full, out = full[-max_points:], out[-max_points:]
    return out, int(full[0]), int(filled)


def statsmodels_reference(y: np.ndarray, forms: tuple[EtsForm, ...] = DEFAULT_FORMS, horizon: int = 12,
                          start: str = "2020-01-01") -> dict:
    """Fit each eligible form with statsmodels' ETSModel itself and choose by AICc (slow: for tests/benchmark).

    Returns the chosen label, every form's AICc and log-likelihood, and the chosen form's mean and 95% interval.
    """
    import warnings

    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    series = pd.Series(np.asarray(y, float), index=pd.date_range(start, periods=len(y), freq="MS"))
    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for form in forms:
            if len(y) < form.min_points:
                continue
            res = ETSModel(series, **form.statsmodels_kwargs()).fit(disp=False)
            results[form.label] = res
    best = min(results, key=lambda k: results[k].aicc)
    pred = results[best].get_prediction(start=len(y), end=len(y) + horizon - 1)
    frame = pred.summary_frame(alpha=0.05)
    return {"model": best, "aicc": {k: float(r.aicc) for k, r in results.items()},
            "llf": {k: float(r.llf) for k, r in results.items()}, "mean": frame["mean"].to_numpy(),
            "lo95": frame["pi_lower"].to_numpy(), "hi95": frame["pi_upper"].to_numpy()}
