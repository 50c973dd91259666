"""Step 5 tables s5_impact.forecasts and s5_impact.forecast_accuracy, from s1_current_state.metric_values.

What is forecast: every organisation (provider, ICB, region, England) x monthly metric with at least
MIN_HISTORY (6) months in its recent contiguous stretch, ending no more than MAX_STALENESS_MONTHS (3) before the
metric's latest month (a trust whose data stopped years ago gets no forecast). Each series is forecast from the
latest month it has (forecast_origin), `horizon` months ahead (default 24).

- Counts and other additive measures (attendances, waiting lists, 52-week waiters, FTE, beds, ...) are forecast
  directly. Means and interval bounds are clipped at 0; `clipped` is true on months where the unclipped mean or
  lower 95% bound was negative.
- Percentages (catalogue unit 'percent': ae_4hr_pct, rtt_18wk_pct, dm01_6wk_pct, cancer_*, occupancy) are
  forecast through their numerator and denominator (each its own model; num_mean, den_mean on the row), then
  recombined: mean = 100 x num_mean / den_mean, intervals = exact quantiles of the ratio of the two correlated
  normal forecasts (`interval_method` 'ratio_exact'), or seeded simulation where the denominator could reach 0
  ('ratio_simulated'); everything within 0-100 (`clipped` where 100 x num/den fell outside).
- Mergers: rows are grouped by current_org_code (the successor), summing predecessors' values (numerators and
  denominators for percentages) month by month, so a merged trust's history continues under its current code;
  `merged_from` lists the predecessor codes that contributed to the months used.
- Holes of up to 12 months are bridged linearly to fit the model (`months_interpolated`, said on the Forecasts
  page; the bridged months are never shown as data): the bundle's RTT jumps from March 2025 to April 2026, DM01
  from March to July 2025, cancer from July 2025 to January 2026, and each forecast still starts from the latest
  month. At a longer hole (A&E's April 2019 - March 2021, the pandemic break) the series restarts
  after it (the bundled A&E data skips April 2019 - March 2021, so A&E history starts April 2021); at most the
  last 72 months are used.
Model choice and fallbacks: forecasting.py; `model` and `method` on every row say what made it.

forecasts: org_code, org_level, metric_id, unit, period_start, forecast_origin, horizon, model, mean, lo80, hi80,
  lo95, hi95, sd, num_mean, den_mean, history_months, history_start, months_interpolated, merged_from, clipped,
  interval_method, method.
forecast_accuracy (one row per series): org_code, org_level, metric_id, unit, model (the production model, as in
  forecasts), models_in_backtest, n_origins, horizon_max, n_forecasts, mae, mase, mase_h1, mase_benchmark
  ('seasonal_naive_12' | 'naive_1'), coverage80, coverage95, first_origin, last_origin, forecast_origin,
  history_months, method. The backtest reruns the whole procedure (model choice included) at each origin.
"""
from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl

from ibp_pipeline.lib.chunks import chunk_of
from ibp_pipeline.step5_impact.series_reuse import (Reuse, combine, fingerprints, plan_reuse, reused_rows,
                                                    write_with_fingerprints)
from ibp_pipeline.step5_impact.forecasting import (
    DEFAULT_FORMS,
    BatchForecast,
    backtest_plan,
    forecast_batch,
    latest_segment,
    ratio_forecast,
    score_backtest,
)

SCHEMA = "s5_impact"
S1 = "s1_current_state"
RATIO_UNITS = ("percent",)
MIN_HISTORY = 6
MAX_TRAIN = 72
MAX_FILL = 12  # a year of months not published or not loaded is bridged (and counted); a longer hole restarts
MAX_STALENESS_MONTHS = 3
N_DRAWS = 2000
SEED = 20240401


@dataclass
class SeriesSet:
    """Monthly series ready to fit: one row of `keys` per series, left-aligned matrices (S, N)."""

    keys: pl.DataFrame  # org_code, org_level, metric_id, unit, is_ratio, first_month, n_points, months_filled, merged_from
    value: np.ndarray  # the metric as published (percentages 0-100)
    num: np.ndarray  # numerators (ratio series), NaN otherwise
    den: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.lengths)


def read_monthly(con: duckdb.DuckDBPyConnection, metrics: list[str] | None = None) -> pl.DataFrame:
    """Monthly metric values summed into each organisation's current (successor) code."""
    where = ""
    params: list = []
    if metrics:
        where = "and v.metric_id in (select unnest(?))"
        params = [list(metrics)]
    return con.sql(f"""
        select v.current_org_code as org_code, v.org_level, v.metric_id, c.unit, v.period_start,
               sum(v.value) as value, sum(v.numerator) as numerator, sum(v.denominator) as denominator,
               count(v.numerator) = count(*) and count(v.denominator) = count(*) as complete_ratio,
               list(distinct v.org_code order by v.org_code) as codes
        from {S1}.metric_values v join {S1}.metric_catalogue c using (metric_id)
        where v.period_grain = 'month' {where}
        group by all
        """, params=params or None).pl()


def prepare_series(raw: pl.DataFrame, min_history: int = MIN_HISTORY, max_train: int = MAX_TRAIN,
                   max_fill: int = MAX_FILL, max_staleness: int = MAX_STALENESS_MONTHS) -> SeriesSet:
    """Cut each series to its recent contiguous stretch and stack them into matrices.

    raw: columns org_code, org_level, metric_id, unit, period_start, value, numerator, denominator,
    complete_ratio, codes (as `read_monthly` returns).
    """
    is_ratio_unit = pl.col("unit").is_in(list(RATIO_UNITS))
    df = (raw.with_columns(
            is_ratio=is_ratio_unit,
            month=pl.col("period_start").dt.year() * 12 + pl.col("period_start").dt.month() - 1)
          .filter(~pl.col("is_ratio") | (pl.col("complete_ratio") & (pl.col("denominator") > 0)))
          .filter(pl.col("is_ratio") | pl.col("value").is_not_null()))
    latest = df.group_by("metric_id").agg(metric_latest=pl.col("month").max())
    grouped = (df.sort("month").group_by(["org_code", "org_level", "metric_id", "unit", "is_ratio"])
               .agg("month", "value", "numerator", "denominator", "codes")
               .join(latest, on="metric_id")
               .sort(["metric_id", "org_level", "org_code"]))
    keys, vals, nums, dens = [], [], [], []
    for row in grouped.iter_rows(named=True):
        months = np.asarray(row["month"])
        if months.max() < row["metric_latest"] - max_staleness:
            continue
        if row["is_ratio"]:
            num, first, filled = latest_segment(months, np.asarray(row["numerator"], float), max_fill, max_train)
            den, _, _ = latest_segment(months, np.asarray(row["denominator"], float), max_fill, max_train)
            value = 100.0 * num / den
        else:
            value, first, filled = latest_segment(months, np.asarray(row["value"], float), max_fill, max_train)
            num = den = np.full(len(value), np.nan)
        if len(value) < min_history:
            continue
        used = months >= first
        preds = sorted({c for cs, u in zip(row["codes"], used) if u for c in cs} - {row["org_code"]})
        keys.append({"org_code": row["org_code"], "org_level": row["org_level"], "metric_id": row["metric_id"],
                     "unit": row["unit"], "is_ratio": row["is_ratio"], "first_month": first,
                     "n_points": len(value), "months_filled": filled, "merged_from": "+".join(preds) or None})
        vals.append(value), nums.append(num), dens.append(den)
    n_max = max((len(v) for v in vals), default=0)

    def stack(rows: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(rows), n_max))
        for i, r in enumerate(rows):
            out[i, :len(r)] = r
        return out

    schema = {"org_code": pl.String, "org_level": pl.String, "metric_id": pl.String, "unit": pl.String,
              "is_ratio": pl.Boolean, "first_month": pl.Int64, "n_points": pl.Int64, "months_filled": pl.Int64,
              "merged_from": pl.String}
    return SeriesSet(pl.DataFrame(keys, schema=schema), stack(vals), stack(nums), stack(dens),
                     np.array([len(v) for v in vals], dtype=int))


def subset_series(ss: SeriesSet, rows: np.ndarray) -> SeriesSet:
    """The series `rows` of ss (in that order), their matrices trimmed to the longest of them."""
    n = int(ss.lengths[rows].max()) if len(rows) else 0
    return SeriesSet(ss.keys[rows], ss.value[rows, :n], ss.num[rows, :n], ss.den[rows, :n], ss.lengths[rows])


def split_series(ss: SeriesSet, chunks: int) -> list[SeriesSet]:
    """ss cut into `chunks` independent sets for the fan-out (empty sets dropped; always at least one set).

    Each series is forecast from its own data only, so any split gives the same forecasts; the collect step
    restores one order (`combine_forecasts`)."""
    which = chunk_of(ss.keys["org_code"], chunks)
    parts = [subset_series(ss, np.flatnonzero(which == c)) for c in range(chunks)]
    return [p for p in parts if len(p)] or [ss]


FORECAST_ORDER = ["metric_id", "org_level", "org_code", "horizon"]


def combine_forecasts(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """The chunks' forecast rows as one table in prepare_series' order (metric, level, organisation, month)."""
    frames = [f for f in frames if not f.is_empty()]
    if not frames:
        return _empty_forecasts()
    return pl.concat(frames, how="vertical").sort(FORECAST_ORDER)


# ------------------------------------------------------------------------------------------------- forecasting
@dataclass
class _Components:
    """The count series actually fitted: each non-ratio series once, each ratio series as numerator + denominator."""

    y: np.ndarray
    value_row: np.ndarray  # component row of each non-ratio series (-1 for ratio series)
    num_row: np.ndarray
    den_row: np.ndarray


def _components(ss: SeriesSet) -> _Components:
    ratio = ss.keys["is_ratio"].to_numpy()
    plain = np.flatnonzero(~ratio)
    rat = np.flatnonzero(ratio)
    y = np.concatenate([ss.value[plain], ss.num[rat], ss.den[rat]], axis=0)
    value_row = np.full(len(ss), -1)
    num_row = np.full(len(ss), -1)
    den_row = np.full(len(ss), -1)
    value_row[plain] = np.arange(len(plain))
    num_row[rat] = len(plain) + np.arange(len(rat))
    den_row[rat] = len(plain) + len(rat) + np.arange(len(rat))
    return _Components(y, value_row, num_row, den_row)


def _subset(bf: BatchForecast, rows: np.ndarray) -> BatchForecast:
    return BatchForecast(bf.model[rows], bf.mean[rows], bf.sd[rows], bf.resid[rows], bf.aicc[rows],
                         bf.candidates[rows], [bf.params[i] for i in rows])


@dataclass
class SeriesForecast:
    """Forecast distributions for a set of target series (counts or recombined percentages)."""

    model: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    lo80: np.ndarray
    hi80: np.ndarray
    lo95: np.ndarray
    hi95: np.ndarray
    num_mean: np.ndarray
    den_mean: np.ndarray
    clipped: np.ndarray  # (S, H) bool
    interval_method: np.ndarray  # (S, H) str: normal | none | ratio_exact | ratio_simulated
    method: np.ndarray  # (S,) str (empty unless describe=True)


def forecast_targets(ss: SeriesSet, rows: np.ndarray, lengths: np.ndarray, horizon: int,
                     comp: _Components | None = None, n_draws: int = N_DRAWS, seed: int = SEED,
                     forms=DEFAULT_FORMS, warm_store: dict | None = None, describe: bool = True
                     ) -> SeriesForecast:
    """Forecast series `rows` of ss from their first `lengths` points (one batch fit of all component series).

    warm_store (backtests): per ETS form, starting points for every component series, read before the fit and
    updated after it, so each rolling origin starts from the previous (earlier) origin's fit.
    """
    comp = comp or _components(ss)
    ratio = ss.keys["is_ratio"].to_numpy()[rows]
    plain_r, ratio_r = np.flatnonzero(~ratio), np.flatnonzero(ratio)
    crow = np.concatenate([comp.value_row[rows[plain_r]], comp.num_row[rows[ratio_r]], comp.den_row[rows[ratio_r]]])
    clen = np.concatenate([lengths[plain_r], lengths[ratio_r], lengths[ratio_r]])
    n_used = int(clen.max()) if len(clen) else 1
    warm = None
    if warm_store is not None:
        warm = {lab: (u[crow], x[crow]) for lab, (u, x) in warm_store.items()}
    bf = forecast_batch(comp.y[crow, :n_used], clen, horizon, forms=forms, warm=warm)
    if warm_store is not None:
        n_comp = comp.y.shape[0]
        for lab, (u, x) in bf.fits.items():
            if lab not in warm_store:
                warm_store[lab] = (np.full((n_comp, 4), np.nan), np.full((n_comp, x.shape[1]), np.nan))
            ok = np.isfinite(u).all(1)
            warm_store[lab][0][crow[ok]] = u[ok]
            warm_store[lab][1][crow[ok]] = x[ok]
    s, h = len(rows), horizon
    out = {k: np.full((s, h), np.nan) for k in ("mean", "sd", "lo80", "hi80", "lo95", "hi95", "num", "den")}
    model = np.empty(s, dtype=object)
    method = np.full(s, "", dtype=object)
    clipped = np.zeros((s, h), dtype=bool)
    interval_method = np.full((s, h), "normal", dtype=object)
    # counts: normal intervals, clipped at zero
    p = _subset(bf, np.arange(len(plain_r)))
    lo80, hi80 = p.interval(80, lower=None)
    lo95, hi95 = p.interval(95, lower=None)
    clipped[plain_r] = (p.mean < 0) | (lo95 < 0)
    out["mean"][plain_r] = np.maximum(p.mean, 0.0)
    out["sd"][plain_r] = p.sd
    for k, v in (("lo80", lo80), ("hi80", hi80), ("lo95", lo95), ("hi95", hi95)):
        out[k][plain_r] = np.maximum(v, 0.0)
    model[plain_r] = p.model
    interval_method[plain_r[p.model == "constant"]] = "none"
    if describe:
        method[plain_r] = [_method_text(m, c, prm) for m, c, prm in zip(p.model, p.candidates, p.params)]
    # percentages: numerator and denominator recombined
    if len(ratio_r):
        k = len(plain_r)
        nb = _subset(bf, np.arange(k, k + len(ratio_r)))
        db = _subset(bf, np.arange(k + len(ratio_r), k + 2 * len(ratio_r)))
        rf = ratio_forecast(nb, db, scale=100.0, n_draws=n_draws, seed=seed)
        raw_mean = 100.0 * nb.mean / np.where(db.mean > 0, db.mean, np.nan)
        clipped[ratio_r] = ~np.isfinite(raw_mean) | (raw_mean < 0) | (raw_mean > 100) | (nb.mean < 0)
        for key, v in (("mean", rf.mean), ("sd", rf.sd), ("lo80", rf.lo80), ("hi80", rf.hi80),
                       ("lo95", rf.lo95), ("hi95", rf.hi95)):
            out[key][ratio_r] = v
        out["num"][ratio_r] = np.maximum(nb.mean, 0.0)
        out["den"][ratio_r] = np.maximum(db.mean, 0.0)
        model[ratio_r] = [f"ratio(num={a}; den={b})" for a, b in zip(nb.model, db.model)]
        interval_method[ratio_r] = np.where(rf.simulated, "ratio_simulated", "ratio_exact")
        if describe:
            method[ratio_r] = [
                f"mean = 100 x num_mean / den_mean. Numerator: {_method_text(a, ca, pa)} Denominator: "
                f"{_method_text(b, cb, pb)} Intervals: exact quantiles of numerator/denominator for correlated "
                f"normal forecasts (residual correlation {r:.2f}; ratio_simulated months: {n_draws} draws, seed "
                f"{seed}, where the denominator may reach 0), within 0-100."
                for a, ca, pa, b, cb, pb, r in zip(nb.model, nb.candidates, nb.params, db.model, db.candidates,
                                                    db.params, rf.rho)]
    return SeriesForecast(model, out["mean"], out["sd"], out["lo80"], out["hi80"], out["lo95"], out["hi95"],
                          out["num"], out["den"], clipped, interval_method, method)


def _method_text(model: str, candidates: str, params: dict) -> str:
    if model.startswith("ETS"):
        p = ", ".join(f"{k}={v:.3g}" for k, v in params.items()
                      if not (k == "phi" and v == 1.0) and not (k in ("beta", "gamma") and v == 0.0))
        return f"{model} ({p}), lowest AICc of [{candidates}]; interval mean +- z x analytic sd."
    if model == "naive":
        chosen = f", lowest AICc of [{candidates}]" if candidates else ""
        return f"naive (< 12 months{chosen}): last value; sd = RMS monthly change x sqrt(h)."
    if model == "croston_sba":
        return "croston_sba (intermittent): Croston-SBA rate, alpha 0.1; sd = RMS one-step error."
    if model == "constant":
        return "constant: every month the same value."
    return model


def _date_expr(month_col: str) -> pl.Expr:
    m = pl.col(month_col)
    return pl.date(m // 12, m % 12 + 1, 1)


def _forecast_frame(ss: SeriesSet, fc: SeriesForecast, horizon: int) -> pl.DataFrame:
    s = len(ss)
    ratio = ss.keys["is_ratio"].to_numpy()
    base = ss.keys.select("org_code", "org_level", "metric_id", "unit", "merged_from", "first_month").with_columns(
        origin_m=pl.col("first_month") + pl.Series(ss.lengths - 1),
        model=pl.Series(fc.model.astype(str)), method=pl.Series(fc.method.astype(str)),
        history_months=pl.Series(ss.lengths, dtype=pl.Int32),
        months_interpolated=ss.keys["months_filled"].cast(pl.Int32))
    rep = np.repeat(np.arange(s), horizon)
    frame = base[rep].with_columns(
        horizon=pl.Series(np.tile(np.arange(1, horizon + 1), s), dtype=pl.Int32),
        mean=fc.mean.ravel(), lo80=fc.lo80.ravel(), hi80=fc.hi80.ravel(), lo95=fc.lo95.ravel(),
        hi95=fc.hi95.ravel(), sd=fc.sd.ravel(),
        num_mean=pl.Series(np.where(ratio[rep], fc.num_mean.ravel(), np.nan)).fill_nan(None),
        den_mean=pl.Series(np.where(ratio[rep], fc.den_mean.ravel(), np.nan)).fill_nan(None),
        clipped=fc.clipped.ravel(), interval_method=pl.Series(fc.interval_method.ravel().astype(str)))
    frame = frame.with_columns(period_m=pl.col("origin_m") + pl.col("horizon")).with_columns(
        period_start=_date_expr("period_m"), forecast_origin=_date_expr("origin_m"),
        history_start=_date_expr("first_month"))
    return frame.select(
        "org_code", "org_level", "metric_id", "unit", "period_start", "forecast_origin", "horizon", "model",
        "mean", "lo80", "hi80", "lo95", "hi95", "sd", "num_mean", "den_mean", "history_months", "history_start",
        "months_interpolated", "merged_from", "clipped", "interval_method", "method")


def forecast_frame(ss: SeriesSet, horizon: int = 24, n_draws: int = N_DRAWS, seed: int = SEED) -> pl.DataFrame:
    """Forecast rows (series x horizon) for every series in ss, from the latest month each series has."""
    if not len(ss):
        return pl.DataFrame()
    fc = forecast_targets(ss, np.arange(len(ss)), ss.lengths, horizon, n_draws=n_draws, seed=seed)
    return _forecast_frame(ss, fc, horizon)


def accuracy_frame(ss: SeriesSet, origins: int = 6, horizon: int = 12, n_draws: int = 1000,
                   seed: int = SEED) -> pl.DataFrame:
    """Rolling-origin backtest of the whole forecasting procedure (model choice included) for every series."""
    if not len(ss):
        return pl.DataFrame()
    comp = _components(ss)
    plan = backtest_plan(ss.lengths, n_origins=origins, horizon_max=horizon)
    hmax = max(1, int(plan.horizon.max()))

    warm_store: dict = {}

    def forecaster(rows: np.ndarray, train: np.ndarray) -> dict:
        f = forecast_targets(ss, rows, train, hmax, comp=comp, n_draws=n_draws, seed=seed, warm_store=warm_store,
                             describe=False)
        return {"mean": f.mean, "lo80": f.lo80, "hi80": f.hi80, "lo95": f.lo95, "hi95": f.hi95, "model": f.model}

    scores = score_backtest(ss.value, plan, ss.value, forecaster)
    prod = forecast_targets(ss, np.arange(len(ss)), ss.lengths, 1, comp=comp, n_draws=200, seed=seed,
                            describe=False)
    first_m = ss.keys["first_month"].to_numpy()
    used = plan.train > 0
    has = scores.n_origins > 0
    first_origin = np.where(has, first_m + np.where(used, plan.train, np.iinfo(np.int32).max).min(1) - 1, -1)
    last_origin = np.where(has, first_m + np.where(used, plan.train, -1).max(1) - 1, -1)

    def as_date(months: np.ndarray) -> pl.Series:
        m = pl.Series(months, dtype=pl.Int64)
        return pl.select(pl.when(m >= 0).then(pl.date(m // 12, m % 12 + 1, 1))).to_series()

    models_text = ["; ".join(f"{k} x{v}" for k, v in sorted(m.items(), key=lambda kv: -kv[1])) or None
                   for m in scores.models]
    frame = ss.keys.select("org_code", "org_level", "metric_id", "unit").with_columns(
        model=pl.Series(prod.model.astype(str)),
        models_in_backtest=pl.Series(models_text, dtype=pl.String),
        n_origins=pl.Series(scores.n_origins, dtype=pl.Int32),
        horizon_max=pl.Series(scores.horizon_max, dtype=pl.Int32),
        n_forecasts=pl.Series(scores.n_forecasts, dtype=pl.Int32),
        mae=pl.Series(scores.mae).fill_nan(None),
        mase=pl.Series(scores.mase).fill_nan(None),
        mase_h1=pl.Series(scores.mase_h1).fill_nan(None),
        mase_benchmark=pl.Series(np.where(scores.seasonal_scale, "seasonal_naive_12", "naive_1")),
        coverage80=pl.Series(scores.coverage80).fill_nan(None),
        coverage95=pl.Series(scores.coverage95).fill_nan(None),
        first_origin=as_date(first_origin), last_origin=as_date(last_origin),
        forecast_origin=as_date(first_m + ss.lengths - 1),
        history_months=pl.Series(ss.lengths, dtype=pl.Int32),
        method=pl.lit(
            f"Rolling origins: the last up-to-{origins} months as origins, each forecasting 1..horizon_max months "
            "ahead with the same procedure as the nightly forecast (model re-chosen at each origin). MAE in the "
            "metric's unit; MASE = mean |error| / in-sample mean |seasonal-naive (lag 12) change| at that origin "
            "(lag-1 naive when the shortest training window < 24 months; see mase_benchmark); coverage = share "
            "of actuals inside the 80%/95% interval."),
    )
    return frame.with_columns(
        mase_benchmark=pl.when(pl.col("n_origins") > 0).then(pl.col("mase_benchmark")))


# ------------------------------------------------------------------------------------------------- builders
def load_series(con: duckdb.DuckDBPyConnection, metrics: list[str] | None = None, **kwargs) -> SeriesSet:
    """read_monthly + prepare_series."""
    return prepare_series(read_monthly(con, metrics), **kwargs)


def forecast_reuse(con: duckdb.DuckDBPyConnection, ss: SeriesSet, output: str, params: str,
                   reuse: bool = True) -> Reuse:
    """Which series of ss keep last run's rows of s5_impact.<output> (series_reuse.py); none when reuse=False."""
    fps = fingerprints(ss.keys, ss.value, ss.num, ss.den, ss.lengths, params)
    if reuse:
        return plan_reuse(con, output, ss.keys, fps)
    return Reuse(output, ss.keys.select("org_code", "metric_id"), fps, np.zeros(len(ss), dtype=bool))


def forecast_params(horizon: int) -> str:
    return f"forecasts horizon={horizon} draws={N_DRAWS} seed={SEED}"


def build_forecasts(con: duckdb.DuckDBPyConnection, horizon: int = 24, metrics: list[str] | None = None,
                    chunks: int = 1, reuse: bool = True) -> int:
    """s5_impact.forecasts: `horizon` months ahead for every eligible organisation x monthly metric; series
    unchanged since the last run keep their rows (reuse; series_reuse.py).

    In one process, chunk by chunk; the Dagster asset runs the same three stages as separate steps (plan,
    forecast_chunk per chunk, collect) so an executor can spread the chunks over processes or machines."""
    ss = load_series(con, metrics)
    plan = forecast_reuse(con, ss, "forecasts", forecast_params(horizon), reuse)
    parts = split_series(subset_series(ss, plan.changed_rows), chunks)
    return write_forecasts(con, plan, [forecast_frame(p, horizon) for p in parts])


def write_forecasts(con: duckdb.DuckDBPyConnection, plan: Reuse, frames: list[pl.DataFrame]) -> int:
    """Replace s5_impact.forecasts with the chunks' rows and the reused series' rows, in one order
    (combine_forecasts), and record the fingerprints."""
    frame = combine(reused_rows(con, plan), combine_forecasts(frames), FORECAST_ORDER)
    return write_with_fingerprints(con, plan, frame)


ACCURACY_ORDER = ["metric_id", "org_level", "org_code"]


def build_forecast_accuracy(con: duckdb.DuckDBPyConnection, origins: int = 6, horizon: int = 12,
                            metrics: list[str] | None = None, reuse: bool = True) -> int:
    """s5_impact.forecast_accuracy: rolling-origin backtest scores per series and model; series unchanged since
    the last run keep their rows (series_reuse.py). Returns the row count."""
    return update_forecast_accuracy(con, origins, horizon, metrics, reuse)[0]


def update_forecast_accuracy(con: duckdb.DuckDBPyConnection, origins: int = 6, horizon: int = 12,
                             metrics: list[str] | None = None, reuse: bool = True) -> tuple[int, Reuse]:
    """build_forecast_accuracy, also returning what was reused (for the asset's metadata)."""
    ss = load_series(con, metrics)
    plan = forecast_reuse(con, ss, "forecast_accuracy",
                          f"accuracy origins={origins} horizon={horizon} draws=1000 seed={SEED}", reuse)
    fresh = accuracy_frame(subset_series(ss, plan.changed_rows), origins=origins, horizon=horizon)
    frame = combine(reused_rows(con, plan), fresh, ACCURACY_ORDER)
    if frame.is_empty():
        frame = pl.DataFrame(schema={"org_code": pl.String, "org_level": pl.String, "metric_id": pl.String,
                                     "model": pl.String, "n_origins": pl.Int32, "horizon_max": pl.Int32,
                                     "mae": pl.Float64, "mase": pl.Float64, "mase_benchmark": pl.String,
                                     "coverage80": pl.Float64, "coverage95": pl.Float64})
    return write_with_fingerprints(con, plan, frame), plan


def _empty_forecasts() -> pl.DataFrame:
    return pl.DataFrame(schema={
        "org_code": pl.String, "org_level": pl.String, "metric_id": pl.String, "unit": pl.String,
        "period_start": pl.Date, "forecast_origin": pl.Date, "horizon": pl.Int32, "model": pl.String,
        "mean": pl.Float64, "lo80": pl.Float64, "hi80": pl.Float64, "lo95": pl.Float64, "hi95": pl.Float64,
        "sd": pl.Float64, "num_mean": pl.Float64, "den_mean": pl.Float64, "history_months": pl.Int32,
        "history_start": pl.Date, "months_interpolated": pl.Int32, "merged_from": pl.String,
        "clipped": pl.Boolean, "interval_method": pl.String, "method": pl.String})

