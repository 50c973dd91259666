"""Step 5: the elective (RTT) waiting list as a stock and flow, so a change of capacity shows up as a change of
list size and of the share waiting under 18 weeks.

The stock equation, per ICB and month t (counts of incomplete pathways at month end):

    list(t) = list(t-1) + clock_starts(t) - clock_stops(t) - removals(t),   removals(t) = r x list(t-1)

Why removals: in the published flows (latest.rtt_icb_flows: new = clock starts, completed = clock stops,
incomplete = the list) list(t) - list(t-1) is NOT new - completed. Validation sprints, patients who no longer want
treatment, transfers and late data take pathways off the list without a reported clock stop: nationally about
2.8-2.9% of the list a month in 2023-2025, i.e. roughly as many as the net inflow. r is calibrated per ICB as
the pooled residual rate sum(list(t-1) + new(t) - completed(t) - list(t)) / sum(list(t-1)) over the last
REMOVALS_WINDOW months (months whose unexplained change exceeds BREAK_SHARE of the list are reporting breaks, e.g.
QNQ's list reads ~900 from July to November 2022, and are left out and counted), shrunk towards the national rate
by its standard error (empirical Bayes; ICBs differ for real: boundaries, out-of-area activity, so the shrinkage
is small). A negative rate (an ICB whose list grows
faster than its reported flows) is kept: it is what makes that ICB's books add up; its unexplained additions enter
the list as new pathways.

Capacity: capacity_change is a fraction of the baseline clock stops (0.05 = 5% more stops a month, reached in a
straight line over ramp_months; 0 = from the first month). Stops never exceed the list available that month.

The 18-week share (a cohort/ageing approximation, documented because it is an approximation):
- The list is held as 25 monthly age bands: band k = waiting k to k+1 months (1 month = 52/12 weeks), k = 0..23,
  and band 24 = 104 weeks or more. The starting shares come from the weekly wait bands of the trusts' totals
  (provider x 'C_999' rows), summed to ICB through s1_current_state.organisations.parent_icb_code, each
  weekly band split across the monthly bands it overlaps. The ICB's flows list (commissioner based, ~8.6 M in
  England) and the provider list aggregated to the ICB (~7.0 M, what rtt_waiting_list / rtt_18wk_pct report)
  differ in coverage; the model uses the band SHARES, so its 18-week % is on the rtt_18wk_pct basis.
- Each month, every band and the month's new clock starts lose patients at an age-specific exit hazard
  h_k x lambda(t): exit fraction 1 - exp(-lambda h_k). h (the relative hazard by age) is calibrated once,
  nationally, from month-on-month continuation in the band data (survival of band k into band k+1); lambda(t) is
  solved each month so that exits add up exactly to clock stops + removals. More capacity means a larger lambda:
  every age leaves faster, the list gets smaller and younger. Survivors age one band; new starts that are still
  waiting form band 0.
- pct_within_18wk = (bands 0-3 + 0.1538 x band 4) / list (18 weeks = 4.154 months; uniform within band 4);
  pct_over_52wk = bands 12-24 / list (52 weeks = 12 months exactly).

Clock starts and stops ahead: each calendar month repeats the value of the same calendar month in the last 12
months (seasonal naive, "the last 12 months' averages by calendar month"); with trend=True (the default) both are
scaled by their own year-on-year growth (last 12 months / previous 12, national), compounding monthly. On the
bundled data stops grew +2.8% and starts +0.3% in the year to February 2025, so the baseline list drifts down;
trend=False repeats the last year flat. Choice of default and window by 12-month backtests at origins 2023-02,
2023-08 and 2024-02 (median absolute % error of ICB lists 5.1-6.4% with trend and a 12-month removals window,
against 4.8-8.2% for the other three combinations). A flat list (naive) scored 3.0-5.9% on the same origins:
this model is for what-if capacity questions, not a better point forecast of the list than the statistical
forecasts in s5_impact.forecasts; the backtest and the naive benchmark are stored on every row.

Real clock starts and stops (anchor_source): where NHS England's RTT full CSV extract gives a month after the
flows file's last (April 2026 in the bundle), the projection starts there: each of today's ICBs' published list,
clock starts (Part_3) and stops (Part_1A + Part_1B), every provider's pathways summed to the provider's parent ICB
(s1_current_state.metric_values). Ahead, starts and stops are the anchor month's level x the ICB's own
calendar-month pattern of the flows file's last 12 months (reseasoned), with the same growth. The flows file is
commissioner based (8.6 M pathways in England) and the extract provider based (7.1 M), so the share of the list
that leaves without a reported clock stop differs; the removals rate is rebased to the extract's basis
(rebased_removals_rate: the rate at which the list moves over the next 12 months by the share it moved over the
flows file's last 12), and the flows file's own rate is kept beside it (removals_rate_flows_file). The flows file
is restated to today's ICBs (a merged ICB is the sum of the ICBs it replaced) and the age bands come from the
provider file or, for months it lacks, the extract (rtt_pathways.provider_bands_sql). The in-sample checks and
the backtest below stay on the flows file (calibrated_to).

Calibration evidence stored on every row: the removals rate (raw, standard error, used, national), the one-step
in-sample error of the list equation, a 12-month backtest of the list (origin 12 months before the anchor,
starts/stops projected by the same method), and the in-sample error of the 18-week % replay (cohort model driven by
actual flows from the first band month to the anchor, against the published band shares).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Sequence

import duckdb
import numpy as np
import polars as pl

from ibp_pipeline.lib.duckdb_tables import table_columns
from ibp_pipeline.step1_current_state.rtt_pathways import WEEK_COLUMNS, provider_bands_sql, real_flows

SCHEMA = "s5_impact"
S1 = "s1_current_state"
WEEKS_PER_MONTH = 52.0 / 12.0
N_BANDS = 25  # 0..23 months, and 24+ months (104+ weeks)
FULL_BANDS_WITHIN_18 = 4  # bands 0-3 are all under 17.33 weeks
PARTIAL_BAND_WITHIN_18 = (18.0 - FULL_BANDS_WITHIN_18 * WEEKS_PER_MONTH) / WEEKS_PER_MONTH  # 0.1538 of band 4
BANDS_52_PLUS = 12  # band 12 starts at exactly 52 weeks
REMOVALS_WINDOW = 12  # backtests at three origins: 12 months tracks the drifting rate better than 24
BREAK_SHARE = 0.25  # a month whose unexplained change exceeds 25% of the list is a reporting break, not removals
BACKTEST_MONTHS = 12


# ---- age bands -----------------------------------------------------------------------------------------------
def week_to_month_matrix() -> np.ndarray:
    """(105, 25) matrix: the share of weekly band i ([i, i+1) weeks; the last is 104+) in monthly band k."""
    m = np.zeros((len(WEEK_COLUMNS), N_BANDS))
    for i in range(104):
        for k in range(N_BANDS - 1):
            lo, hi = k * WEEKS_PER_MONTH, (k + 1) * WEEKS_PER_MONTH
            m[i, k] = max(0.0, min(i + 1, hi) - max(i, lo))
    m[104, N_BANDS - 1] = 1.0
    return m


def weekly_to_monthly(weekly: np.ndarray) -> np.ndarray:
    """(..., 105) weekly band counts -> (..., 25) monthly band counts (totals preserved)."""
    return np.asarray(weekly, dtype=float) @ week_to_month_matrix()


def pct_within_18wk(bands: np.ndarray) -> np.ndarray:
    """Share (0-100) of the list under 18 weeks from monthly bands (uniform within band 4)."""
    b = np.asarray(bands, dtype=float)
    within = b[..., :FULL_BANDS_WITHIN_18].sum(axis=-1) + PARTIAL_BAND_WITHIN_18 * b[..., FULL_BANDS_WITHIN_18]
    total = b.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 100.0 * within / total, np.nan)


def pct_over_52wk(bands: np.ndarray) -> np.ndarray:
    """Share (0-100) of the list waiting 52 weeks or more."""
    b = np.asarray(bands, dtype=float)
    total = b.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 100.0 * b[..., BANDS_52_PLUS:].sum(axis=-1) / total, np.nan)


def calibrate_exit_hazard(bands: np.ndarray, new_starts: np.ndarray) -> tuple[np.ndarray, float]:
    """Relative monthly exit hazard by age band, and for the month's new starts, from consecutive months of band
    counts (T, 25) and the new starts of each month (T,) on the same basis as the bands.

    Continuation s_k = sum_t bands[t+1, k+1] / sum_t bands[t, k] (band k survives into band k+1); the open last
    band and band 23 share one rate (both feed band 24). New starts: s_new = sum_t bands[t, 0] / sum_t starts[t]
    (t >= 1). Hazard h = -ln(s)."""
    b = np.asarray(bands, dtype=float)
    n = np.asarray(new_starts, dtype=float)
    if b.shape[0] < 2:
        raise ValueError("need at least two consecutive months of bands")
    prev, nxt = b[:-1], b[1:]
    s = np.empty(N_BANDS)
    with np.errstate(invalid="ignore", divide="ignore"):
        s[: N_BANDS - 2] = nxt[:, 1: N_BANDS - 1].sum(0) / prev[:, : N_BANDS - 2].sum(0)
        s_open = nxt[:, N_BANDS - 1].sum() / prev[:, N_BANDS - 2:].sum()
        s_new = nxt[:, 0].sum() / n[1:].sum()
    s[N_BANDS - 2:] = s_open
    s = np.where(np.isfinite(s), s, np.nanmedian(s[np.isfinite(s)]) if np.isfinite(s).any() else 0.9)
    s = np.clip(s, 1e-4, 1 - 1e-6)
    s_new = float(np.clip(s_new if np.isfinite(s_new) else 0.5, 1e-4, 1 - 1e-6))
    return -np.log(s), float(-np.log(s_new))


def _solve_intensity(stock: np.ndarray, new: np.ndarray, hazard: np.ndarray, hazard_new: float,
                     exits: np.ndarray) -> np.ndarray:
    """lambda >= 0 with sum_k stock_k (1 - e^{-lambda h_k}) + new (1 - e^{-lambda h_new}) = exits, vectorised.
    Newton from lambda = 0: the left side is increasing and concave in lambda, so the iterates rise monotonically
    to the root."""
    lam = np.zeros(exits.shape)
    for _ in range(60):
        e_stock = np.exp(-lam[..., None] * hazard)
        e_new = np.exp(-lam * hazard_new)
        g = (stock * (1 - e_stock)).sum(-1) + new * (1 - e_new) - exits
        dg = (stock * hazard * e_stock).sum(-1) + new * hazard_new * e_new
        step = np.where(dg > 0, -g / np.where(dg > 0, dg, 1.0), 0.0)
        lam = np.maximum(lam + step, 0.0)
        if np.all(np.abs(g) <= 1e-9 * np.maximum(exits, 1.0)):
            break
    return lam


# ---- the projection ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Projection:
    """Month-by-month results, shape (..., months) (batch dimensions first, e.g. ICBs or Monte Carlo draws)."""
    list_size: np.ndarray
    clock_starts: np.ndarray
    clock_stops: np.ndarray
    removals: np.ndarray
    pct_within_18wk: np.ndarray | None
    pct_over_52wk: np.ndarray | None
    exit_intensity: np.ndarray | None
    final_bands: np.ndarray | None


def _months_axis(values: np.ndarray | float, months: int, name: str) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if a.ndim == 0:
        return np.full(months, float(a))
    if a.shape[-1] < months:
        raise ValueError(f"{name} has {a.shape[-1]} months, fewer than the {months} asked for")
    return a[..., :months]


def project_waiting_list(list0: np.ndarray | float, starts: np.ndarray | float, stops: np.ndarray | float,
                         removals_rate: np.ndarray | float, months: int,
                         capacity_change: np.ndarray | float = 0.0, *, ramp_months: int = 0,
                         bands0: np.ndarray | None = None, hazard: np.ndarray | None = None,
                         hazard_new: float | None = None) -> Projection:
    """Project the list `months` ahead: list(t) = list(t-1) + starts(t) - stops(t) x (1 + capacity) - r list(t-1).

    Shapes broadcast: list0, removals_rate and capacity_change over the batch (e.g. draws), starts and stops
    (..., months) or a scalar a month. capacity_change is a fraction of the baseline stops, reached in a straight
    line over ramp_months (0 = at once). Stops are capped at the list available. With bands0 (..., 25) (counts or
    shares; they are rescaled to list0) and a hazard profile, the list is aged month by month and the 18-week and
    52-week shares are returned; without them those fields are None."""
    if months < 1:
        raise ValueError("months must be at least 1")
    n_in = _months_axis(starts, months, "starts")
    c_in = _months_axis(stops, months, "stops")
    l0 = np.asarray(list0, dtype=float)
    r = np.asarray(removals_rate, dtype=float)
    cc = np.asarray(capacity_change, dtype=float)
    batch = np.broadcast_shapes(l0.shape, r.shape, cc.shape, n_in.shape[:-1], c_in.shape[:-1])
    if bands0 is not None:
        batch = np.broadcast_shapes(batch, np.shape(bands0)[:-1])
    n_in = np.broadcast_to(n_in, batch + (months,))
    c_in = np.broadcast_to(c_in, batch + (months,))
    level = np.broadcast_to(l0, batch).astype(float).copy()
    r = np.broadcast_to(r, batch)
    cc = np.broadcast_to(cc, batch)
    ramp = np.minimum(1.0, np.arange(1, months + 1) / ramp_months) if ramp_months > 0 else np.ones(months)
    out_l, out_n, out_c, out_r = (np.empty(batch + (months,)) for _ in range(4))
    cohort = bands0 is not None
    if cohort:
        if hazard is None or hazard_new is None:
            raise ValueError("bands0 needs hazard and hazard_new (see calibrate_exit_hazard)")
        b = np.broadcast_to(np.asarray(bands0, dtype=float), batch + (N_BANDS,))
        tot = b.sum(-1, keepdims=True)
        bands = np.where(tot > 0, b / np.where(tot > 0, tot, 1.0), 0.0) * level[..., None]
        h = np.asarray(hazard, dtype=float)
        out_p18, out_p52, out_lam = (np.empty(batch + (months,)) for _ in range(3))
    for t in range(months):
        removals = r * level
        available = np.maximum(level + n_in[..., t] - removals, 0.0)
        stops_t = np.minimum(c_in[..., t] * (1.0 + cc * ramp[t]), available)
        new_level = level + n_in[..., t] - stops_t - removals
        if cohort:
            extra_in = np.maximum(-removals, 0.0)  # a negative removal rate adds unexplained pathways
            new = n_in[..., t] + extra_in
            exits = np.minimum(stops_t + np.maximum(removals, 0.0), bands.sum(-1) + new)
            lam = _solve_intensity(bands, new, h, float(hazard_new), exits)
            e_stock = bands * (1 - np.exp(-lam[..., None] * h))
            e_new = new * (1 - np.exp(-lam * hazard_new))
            total_e = e_stock.sum(-1) + e_new
            scale = np.where(total_e > 0, exits / np.where(total_e > 0, total_e, 1.0), 0.0)
            e_stock, e_new = e_stock * scale[..., None], e_new * scale  # exits add up exactly
            survivors = bands - e_stock
            aged = np.empty_like(bands)
            aged[..., 0] = new - e_new
            aged[..., 1:N_BANDS - 1] = survivors[..., : N_BANDS - 2]
            aged[..., N_BANDS - 1] = survivors[..., N_BANDS - 2] + survivors[..., N_BANDS - 1]
            bands = np.maximum(aged, 0.0)
            out_p18[..., t] = pct_within_18wk(bands)
            out_p52[..., t] = pct_over_52wk(bands)
            out_lam[..., t] = lam
        out_l[..., t], out_n[..., t], out_c[..., t], out_r[..., t] = new_level, n_in[..., t], stops_t, removals
        level = new_level
    return Projection(out_l, out_n, out_c, out_r,
                      out_p18 if cohort else None, out_p52 if cohort else None, out_lam if cohort else None,
                      bands if cohort else None)


# ---- calibration -------------------------------------------------------------------------------------------
def removal_rates(flows: pl.DataFrame, window: int = REMOVALS_WINDOW) -> pl.DataFrame:
    """Per ICB: the unreported removals rate over the last `window` months (pooled), its standard error, the
    national pooled rate and the empirical-Bayes shrunk rate used for projection. flows: icb_code, period_start,
    starts, stops, list_size."""
    f = (flows.sort("icb_code", "period_start")
         .with_columns(pl.col("list_size").shift(1).over("icb_code").alias("prev"))
         .with_columns((pl.col("prev") + pl.col("starts") - pl.col("stops") - pl.col("list_size")).alias("removed"))
         .drop_nulls("removed")
         .with_columns(pl.col("period_start").rank("dense", descending=True).over("icb_code").alias("age"))
         .filter(pl.col("age") <= window)
         .with_columns((pl.col("removed").abs() > BREAK_SHARE * pl.col("prev")).alias("is_break")))
    breaks = f.group_by("icb_code").agg(pl.col("is_break").sum().cast(pl.Int64).alias("removals_months_excluded"))
    f = f.filter(~pl.col("is_break"))
    national = float(f["removed"].sum() / f["prev"].sum()) if f.height else float("nan")
    per = (f.group_by("icb_code")
           .agg((pl.col("removed").sum() / pl.col("prev").sum()).alias("removals_rate_raw"),
                ((pl.col("removed") / pl.col("prev")).std() / pl.len().sqrt()).alias("removals_rate_se"),
                pl.len().alias("removals_months"), pl.col("period_start").min().alias("removals_from"),
                pl.col("period_start").max().alias("removals_to"))
           .join(breaks, on="icb_code", how="left")
           .sort("icb_code"))
    raw = per["removals_rate_raw"].to_numpy()
    se = np.nan_to_num(per["removals_rate_se"].to_numpy(), nan=0.0)
    # between-ICB variance of the true rates (method of moments; median se^2 so one ICB with a broken month
    # cannot swamp it)
    tau2 = max(float(np.var(raw, ddof=1)) - float(np.median(se ** 2)), 0.0) if len(raw) > 2 else 0.0
    weight = np.where(tau2 + se ** 2 > 0, tau2 / np.maximum(tau2 + se ** 2, 1e-18), 1.0)
    used = weight * raw + (1 - weight) * national
    return per.with_columns(pl.Series("removals_rate", used), pl.Series("shrinkage_weight", weight),
                            pl.lit(national).alias("removals_rate_national"))


def seasonal_flows(history: np.ndarray, months: int, growth: float = 0.0) -> np.ndarray:
    """(..., T>=12) monthly history -> (..., months) ahead: the same calendar month of the last 12, scaled by
    (1 + growth) ** (h / 12) at horizon h."""
    h = np.asarray(history, dtype=float)
    if h.shape[-1] < 12:
        raise ValueError("need at least 12 months of history")
    last = h[..., -12:]
    idx = np.arange(months) % 12
    return last[..., idx] * (1.0 + growth) ** (np.arange(1, months + 1) / 12.0)


def yoy_growth(history: np.ndarray) -> float:
    """Last 12 months over the previous 12, minus 1 (0 without 24 months)."""
    h = np.asarray(history, dtype=float)
    if h.shape[-1] < 24:
        return 0.0
    prev = h[..., -24:-12].sum()
    return float(h[..., -12:].sum() / prev - 1.0) if prev > 0 else 0.0


# ---- data --------------------------------------------------------------------------------------------------
def read_flows(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """ICB monthly clock starts (new), stops (completed) and list (incomplete) from latest.rtt_icb_flows, restated
    to today's ICBs: an ICB merged in April 2026 counts under the ICB that replaced it (organisations.replaced_by),
    as NHS England restates history when boundaries change (a merged ICB is taken as the sum of its
    predecessors)."""
    today = ("coalesce(o.replaced_by, f.icb_code)" if "replaced_by" in table_columns(con, S1, "organisations")
             else "f.icb_code")
    join = f"left join {S1}.organisations o on o.org_code = f.icb_code" if today != "f.icb_code" else ""
    return con.sql(f"""
        select {today} as icb_code, f.period_start, sum(f."new") as starts, sum(f.completed) as stops,
               sum(f.incomplete) as list_size
        from latest.rtt_icb_flows f {join}
        where f.icb_code is not null and f.period_start is not null
        group by all
        having sum(f."new") is not null and sum(f.completed) is not null and sum(f.incomplete) is not null
        order by 1, 2""").pl()


def read_real_flows(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Today's ICBs' published clock starts, stops and list (the RTT full CSV extract, provider based, summed to
    the ICB through each provider's parent): icb_code, period_start, starts, stops, list_size."""
    return real_flows(con, "icb").select(pl.col("org_code").alias("icb_code"), "period_start", "starts", "stops",
                                         "list_size")


def read_icb_bands(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Weekly wait bands of the trust totals ('C_999', rtt_pathways.provider_bands_sql: the provider file, or
    the full extract for months it lacks) summed to today's ICB via organisations.parent_icb_code (a merged
    trust's successor's ICB when its own is missing), the ICBs the flows are restated to."""
    bands = provider_bands_sql(con)
    if bands is None:
        return pl.DataFrame()
    sums = ", ".join(f"sum(coalesce(r.{c}, 0)) as {c}" for c in WEEK_COLUMNS)
    return con.sql(f"""
        select coalesce(o.parent_icb_code, s.parent_icb_code) as icb_code, r.period_start,
               sum(r.total_incomplete) as total_incomplete, {sums}
        from ({bands}) r
        left join {S1}.organisations o on o.org_code = r.provider_code
        left join {S1}.organisations s on s.org_code = o.successor_code
        where coalesce(o.parent_icb_code, s.parent_icb_code) is not null
        group by all order by 1, 2""").pl()


# ---- table -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Calibrated:
    icbs: list[str]
    months: list[dt.date]
    starts: np.ndarray  # (I, T)
    stops: np.ndarray
    lists: np.ndarray
    rates: pl.DataFrame
    hazard: np.ndarray | None
    hazard_new: float | None
    bands_by_month: dict[dt.date, np.ndarray]  # month -> (I, 25) monthly band counts (nan rows where missing)


def _add_months(d: dt.date, n: int) -> dt.date:
    y, m = divmod(d.month - 1 + n, 12)
    return dt.date(d.year + y, m + 1, 1)


def _calibrate(flows: pl.DataFrame, bands: pl.DataFrame) -> _Calibrated:
    months = sorted(flows["period_start"].unique().to_list())
    icbs = sorted(flows["icb_code"].unique().to_list())
    grid = (pl.DataFrame({"icb_code": icbs}).join(pl.DataFrame({"period_start": months}), how="cross")
            .join(flows, on=["icb_code", "period_start"], how="left").sort("icb_code", "period_start"))
    shape = (len(icbs), len(months))
    # a gap in an ICB's flows: carry its last value, so a missing month does not read as an empty list
    filled = grid.with_columns(pl.col("starts", "stops", "list_size").forward_fill().backward_fill().over("icb_code"))
    starts, stops, lists = (filled[c].to_numpy().reshape(shape) for c in ("starts", "stops", "list_size"))
    rates = removal_rates(flows)
    by_month: dict[dt.date, np.ndarray] = {}
    hazard, hazard_new = None, None
    if bands.height:
        idx = {c: i for i, c in enumerate(icbs)}
        for (month,), part in bands.group_by(["period_start"]):
            arr = np.full((len(icbs), N_BANDS), np.nan)
            weekly = part.select(WEEK_COLUMNS).to_numpy().astype(float)
            monthly = weekly_to_monthly(weekly)
            for code, row in zip(part["icb_code"].to_list(), monthly):
                if code in idx:
                    arr[idx[code]] = row
            by_month[month] = arr
        band_months = sorted(m for m in by_month if m in months)
        if len(band_months) >= 2:
            nat = np.array([np.nansum(by_month[m], axis=0) for m in band_months])  # (T, 25) provider basis
            col = [months.index(m) for m in band_months]
            basis = nat.sum(1) / lists[:, col].sum(0)  # provider-based list / flows list, each month
            hazard, hazard_new = calibrate_exit_hazard(nat, starts[:, col].sum(0) * basis)
    return _Calibrated(icbs, months, starts, stops, lists, rates, hazard, hazard_new, by_month)


def _in_sample(cal: _Calibrated, r_used: np.ndarray, trend: bool) -> dict[str, np.ndarray]:
    """Per ICB: one-step list MAPE, the 12-month backtest APE of the list (and of a flat list, the naive
    benchmark), and the 18-week replay MAE (points)."""
    n_icb, n_t = cal.lists.shape
    prev, cur = cal.lists[:, :-1], cal.lists[:, 1:]
    pred = prev + cal.starts[:, 1:] - cal.stops[:, 1:] - r_used[:, None] * prev
    window = slice(max(0, n_t - 1 - REMOVALS_WINDOW), n_t - 1)
    err = np.abs(pred[:, window] / cur[:, window] - 1.0)
    resid = np.abs(prev + cal.starts[:, 1:] - cal.stops[:, 1:] - cur)[:, window]
    err = np.where(resid > BREAK_SHARE * prev[:, window], np.nan, err)  # reporting breaks, as in removal_rates
    one_step = np.nanmean(err, axis=1) * 100
    backtest = np.full(n_icb, np.nan)
    naive = np.full(n_icb, np.nan)
    origin = n_t - 1 - BACKTEST_MONTHS
    if origin >= 24:
        hist_s, hist_c = cal.starts[:, : origin + 1], cal.stops[:, : origin + 1]
        gs = yoy_growth(hist_s.sum(0)) if trend else 0.0
        gc = yoy_growth(hist_c.sum(0)) if trend else 0.0
        sub = pl.DataFrame({"icb_code": np.repeat(cal.icbs, origin + 1),
                            "period_start": cal.months[: origin + 1] * n_icb,
                            "starts": hist_s.ravel(), "stops": hist_c.ravel(),
                            "list_size": cal.lists[:, : origin + 1].ravel()})
        r_bt = removal_rates(sub)["removals_rate"].to_numpy()
        proj = project_waiting_list(cal.lists[:, origin], seasonal_flows(hist_s, BACKTEST_MONTHS, gs),
                                    seasonal_flows(hist_c, BACKTEST_MONTHS, gc), r_bt, BACKTEST_MONTHS)
        backtest = np.abs(proj.list_size[:, -1] / cal.lists[:, -1] - 1.0) * 100
        naive = np.abs(cal.lists[:, origin] / cal.lists[:, -1] - 1.0) * 100
    replay = np.full(n_icb, np.nan)
    band_months = sorted(m for m in cal.bands_by_month if m in cal.months)
    if cal.hazard is not None and len(band_months) >= 2:
        first = band_months[0]
        i0 = cal.months.index(first)
        steps = n_t - 1 - i0
        b0 = cal.bands_by_month[first]
        ok = np.isfinite(b0).all(1) & (np.nan_to_num(b0).sum(1) > 0)
        if steps >= 1 and ok.any():
            proj = project_waiting_list(cal.lists[ok, i0], cal.starts[ok, i0 + 1:], cal.stops[ok, i0 + 1:],
                                        r_used[ok], steps, bands0=b0[ok], hazard=cal.hazard,
                                        hazard_new=cal.hazard_new)
            errs = []
            for j in range(steps):
                m = cal.months[i0 + 1 + j]
                if m in cal.bands_by_month:
                    errs.append(np.abs(proj.pct_within_18wk[:, j] - pct_within_18wk(cal.bands_by_month[m][ok])))
            if errs:
                replay[ok] = np.nanmean(np.array(errs), axis=0)
    return {"one_step": one_step, "backtest": backtest, "naive": naive, "replay": replay}


@dataclass(frozen=True)
class _Anchor:
    """Where the projection starts: the month, each ICB's list and flows in it, and the flows ahead."""
    month: dt.date
    source: str
    list0: np.ndarray
    starts0: np.ndarray
    stops0: np.ndarray
    removals0: np.ndarray
    starts_ahead: np.ndarray
    stops_ahead: np.ndarray
    removals_rate: np.ndarray | None = None  # None: the history's calibrated rate applies


def rebased_removals_rate(list0: np.ndarray, starts_ahead: np.ndarray, stops_ahead: np.ndarray,
                          drift: np.ndarray) -> np.ndarray:
    """The removals rate on a new basis (the real anchor's provider-based list and flows, against the history's
    commissioner-based ones): the rate at which the list, fed by the next 12 months' starts and stops, moves by
    the same share as it moved over the history's last 12 months (drift, e.g. -0.02). Removals are what the
    flows leave unexplained, and that share differs by basis, so it is calibrated where it applies:
    r = (sum(starts - stops) - (L12 - L0)) / (12 x (L0 + L12) / 2), L12 = L0 x (1 + drift)."""
    target = list0 * (1.0 + drift)
    net = (starts_ahead[:, :12] - stops_ahead[:, :12]).sum(axis=1)
    return (net - (target - list0)) / (12.0 * (list0 + target) / 2.0)


def _history_anchor(cal: _Calibrated, months: int, gs: float, gc: float) -> _Anchor:
    removals0 = (cal.lists[:, -2] + cal.starts[:, -1] - cal.stops[:, -1] - cal.lists[:, -1]
                 if len(cal.months) > 1 else np.full(len(cal.icbs), np.nan))
    return _Anchor(cal.months[-1], "ICB flows file (commissioner based)", cal.lists[:, -1], cal.starts[:, -1],
                   cal.stops[:, -1], removals0, seasonal_flows(cal.starts, months, gs),
                   seasonal_flows(cal.stops, months, gc))


def reseasoned(level: np.ndarray, last12: np.ndarray, last12_months: list[dt.date], anchor: dt.date, months: int,
               growth: float) -> np.ndarray:
    """Flows ahead of a real anchor month: the anchor's published level x each ICB's own calendar-month pattern of
    its last 12 months of history (month m / the anchor's calendar month), x (1 + growth) ** (h / 12)."""
    col = {m.month: j for j, m in enumerate(last12_months)}
    base = last12[:, col[anchor.month]]
    ahead = np.stack([last12[:, col[_add_months(anchor, h).month]] for h in range(1, months + 1)], axis=-1)
    ratio = np.divide(ahead, base[:, None], out=np.full(ahead.shape, np.nan), where=base[:, None] > 0)
    return level[:, None] * ratio * (1.0 + growth) ** (np.arange(1, months + 1) / 12.0)


def _real_anchor(cal: _Calibrated, real: pl.DataFrame, months: int, gs: float, gc: float) -> _Anchor | None:
    """Anchor on the latest month of published clock starts and stops (the RTT full CSV extract), when it is
    after the history and the history has 12 months to give the seasonal pattern; ICBs without it get NaN."""
    if real.height == 0 or len(cal.months) < 12:
        return None
    month = real["period_start"].max()
    if month <= cal.months[-1]:
        return None
    got = {r["icb_code"]: r for r in real.filter(pl.col("period_start") == month).iter_rows(named=True)}
    pick = lambda col: np.array([got[c][col] if c in got else np.nan for c in cal.icbs], dtype=float)  # noqa: E731
    list0, starts0, stops0 = pick("list_size"), pick("starts"), pick("stops")
    last = cal.months[-12:]
    ahead = max(months, 12)
    starts_ahead = reseasoned(starts0, cal.starts[:, -12:], last, month, ahead, gs)
    stops_ahead = reseasoned(stops0, cal.stops[:, -12:], last, month, ahead, gc)
    drift = (cal.lists[:, -1] / cal.lists[:, -13] - 1.0 if len(cal.months) >= 13
             else np.zeros(len(cal.icbs)))
    rate = rebased_removals_rate(list0, starts_ahead, stops_ahead, drift)
    return _Anchor(month, f"RTT full CSV extract, {month:%B %Y} (every provider's pathways, summed to its parent "
                          "ICB); removals rate rebased to that basis", list0, starts0, stops0,
                   np.full(len(cal.icbs), np.nan), starts_ahead[:, :months], stops_ahead[:, :months], rate)


def projection_frame(flows: pl.DataFrame, bands: pl.DataFrame, months: int = 24,
                     capacity_change: float | Sequence[float] = 0.0, trend: bool = True,
                     ramp_months: int = 0, real: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per ICB (and England) x month x capacity scenario, from the anchor month (horizon 0, actual).

    real (icb_code, period_start, starts, stops, list_size): published clock starts, stops and list. When its
    latest month is after the history, the projection starts there, from the real list and flows; the history
    still gives the removals rate, the seasonal pattern, the growth and the age hazard. ICBs without a real month
    are left out (said in anchor_source)."""
    cal = _calibrate(flows, bands)
    changes = [0.0] + [float(c) for c in np.atleast_1d(capacity_change) if float(c) != 0.0]
    changes = list(dict.fromkeys(changes))
    rates = pl.DataFrame({"icb_code": cal.icbs}).join(cal.rates, on="icb_code", how="left")
    national = float(cal.rates["removals_rate_national"][0]) if cal.rates.height else 0.0
    r_used = rates["removals_rate"].fill_null(national).to_numpy()
    gs = yoy_growth(cal.starts.sum(0)) if trend else 0.0
    gc = yoy_growth(cal.stops.sum(0)) if trend else 0.0
    start = (_real_anchor(cal, real, months, gs, gc) if real is not None else None) or _history_anchor(
        cal, months, gs, gc)
    anchor, starts_ahead, stops_ahead = start.month, start.starts_ahead, start.stops_ahead
    # anchor bands: the latest band month at or before the anchor
    band_month = max((m for m in cal.bands_by_month if m <= anchor), default=None)
    b0 = cal.bands_by_month.get(band_month) if band_month is not None else None
    cohort = b0 is not None and cal.hazard is not None
    has_bands = np.isfinite(b0).all(1) & (np.nan_to_num(b0).sum(1) > 0) if cohort else np.zeros(len(cal.icbs), bool)
    checks = _in_sample(cal, r_used, trend)
    l0 = start.list0
    r_flows_file = r_used
    if start.removals_rate is not None:
        r_used = np.where(np.isfinite(start.removals_rate), start.removals_rate, r_used)
    batch_cc = np.array(changes)[:, None]  # (S, 1) x ICBs
    proj = project_waiting_list(l0[None, :], starts_ahead[None], stops_ahead[None], r_used[None, :], months,
                                batch_cc, ramp_months=ramp_months,
                                bands0=np.where(has_bands[:, None], np.nan_to_num(b0), 1.0)[None] if cohort else None,
                                hazard=cal.hazard, hazard_new=cal.hazard_new)
    p18 = proj.pct_within_18wk if cohort else np.full(proj.list_size.shape, np.nan)
    p52 = proj.pct_over_52wk if cohort else np.full(proj.list_size.shape, np.nan)
    lam = proj.exit_intensity if cohort else np.full(proj.list_size.shape, np.nan)
    p18 = np.where(has_bands[None, :, None], p18, np.nan)
    p52 = np.where(has_bands[None, :, None], p52, np.nan)
    a18 = np.where(has_bands, pct_within_18wk(np.nan_to_num(b0)), np.nan) if cohort else np.full(len(cal.icbs), np.nan)
    a52 = np.where(has_bands, pct_over_52wk(np.nan_to_num(b0)), np.nan) if cohort else np.full(len(cal.icbs), np.nan)
    periods = [_add_months(anchor, h) for h in range(months + 1)]
    n_icb, n_s = len(cal.icbs), len(changes)
    # arrays (S, I, months+1) with horizon 0 = the anchor's actual values
    def with_anchor(actual: np.ndarray, ahead: np.ndarray) -> np.ndarray:
        return np.concatenate([np.broadcast_to(actual, (n_s, n_icb))[..., None], ahead], axis=-1)
    cols = {
        "list_size": with_anchor(l0, proj.list_size),
        "clock_starts": with_anchor(start.starts0, proj.clock_starts),
        "clock_stops": with_anchor(start.stops0, proj.clock_stops),
        "removals": with_anchor(start.removals0, proj.removals),
        "pct_within_18wk": with_anchor(a18, p18),
        "pct_over_52wk": with_anchor(a52, p52),
        "exit_intensity": with_anchor(np.full(n_icb, np.nan), lam),
    }
    h_idx = np.arange(months + 1)
    frame = pl.DataFrame({
        "icb_code": np.tile(np.repeat(cal.icbs, months + 1), n_s),
        "org_level": "icb",
        "scenario": np.repeat([_scenario_name(c) for c in changes], n_icb * (months + 1)),
        "capacity_change": np.repeat(changes, n_icb * (months + 1)),
        "period_start": periods * (n_icb * n_s),
        "horizon": np.tile(h_idx, n_icb * n_s),
        "is_actual": np.tile(h_idx == 0, n_icb * n_s),
        **{k: v.ravel() for k, v in cols.items()},
    }).with_columns(pl.col(*cols).fill_nan(None))
    calib = rates.with_columns(pl.Series("removals_rate", r_used),
                               pl.Series("removals_rate_flows_file", r_flows_file)).select(
        "icb_code", "removals_rate", "removals_rate_flows_file", "removals_rate_raw", "removals_rate_se",
        "shrinkage_weight", "removals_rate_national", "removals_from", "removals_to", "removals_months",
        "removals_months_excluded").with_columns(
        pl.Series("in_sample_list_mape_pct", checks["one_step"]),
        pl.Series("backtest_list_ape_12m_pct", checks["backtest"]),
        pl.Series("backtest_naive_flat_ape_12m_pct", checks["naive"]),
        pl.Series("in_sample_pct18_mae_points", checks["replay"]))
    frame = frame.join(calib, on="icb_code", how="left")
    frame = frame.filter(pl.col("icb_code").is_in([c for c, v in zip(cal.icbs, l0) if np.isfinite(v)]))
    eng = _england(frame)
    frame = pl.concat([frame, eng], how="diagonal_relaxed")
    method = ("same calendar month of the last 12 months" + (f", x national year-on-year growth (starts "
              f"{gs:+.1%}, stops {gc:+.1%} a year)" if trend else ", no trend"))
    return frame.with_columns(
        pl.lit(anchor).alias("anchor_month"),
        pl.lit(start.source).alias("anchor_source"),
        pl.lit(cal.months[-1]).alias("calibrated_to"),
        pl.lit(band_month).cast(pl.Date).alias("age_bands_month"),
        pl.lit(method).alias("flows_method"),
        pl.lit(ramp_months).alias("ramp_months"),
        pl.lit("list(t) = list(t-1) + clock_starts(t) - clock_stops(t) - removals_rate x list(t-1); "
               "clock_stops = baseline stops x (1 + capacity_change), capped at the list; 18-week % from 25 "
               "monthly age bands aged each month with exits at hazard lambda(t) x h(age), lambda solved so "
               "exits = stops + removals").alias("formula"),
        pl.lit("latest.rtt_icb_flows restated to today's ICBs (history: removals, seasonality, growth); "
               "s1_current_state.metric_values rtt_clock_starts, rtt_clock_stops_*, rtt_waiting_list (the anchor "
               "month, where published); weekly bands of latest.rtt_incomplete or latest.rtt_full_extract via "
               "organisations.parent_icb_code (age bands)").alias("source"),
    ).sort("scenario", "org_level", "icb_code", "period_start")


def _scenario_name(change: float) -> str:
    return "baseline" if change == 0 else f"capacity {change:+.0%}" if abs(change * 100 - round(change * 100)) < 1e-9 \
        else f"capacity {change:+.1%}"


def _england(frame: pl.DataFrame) -> pl.DataFrame:
    """England = the sum of ICBs; shares weighted by list size."""
    return (frame.group_by("scenario", "capacity_change", "period_start", "horizon", "is_actual")
            .agg(pl.col("list_size", "clock_starts", "clock_stops", "removals").sum(),
                 ((pl.col("pct_within_18wk") * pl.col("list_size")).sum()
                  / pl.col("list_size").filter(pl.col("pct_within_18wk").is_not_null()
                                               & pl.col("pct_within_18wk").is_not_nan()).sum())
                 .alias("pct_within_18wk"),
                 ((pl.col("pct_over_52wk") * pl.col("list_size")).sum()
                  / pl.col("list_size").filter(pl.col("pct_over_52wk").is_not_null()
                                               & pl.col("pct_over_52wk").is_not_nan()).sum())
                 .alias("pct_over_52wk"),
                 (pl.col("removals_rate") * pl.col("list_size")).sum().alias("_rw"),
                 pl.col("removals_rate_national").first())
            .with_columns(pl.lit("ENGLAND").alias("icb_code"), pl.lit("england").alias("org_level"),
                          (pl.col("_rw") / pl.col("list_size")).alias("removals_rate"))
            .drop("_rw"))


def build_waiting_list_projection(con: duckdb.DuckDBPyConnection, months: int = 24,
                                  capacity_change: float | Sequence[float] = 0.0, trend: bool = True,
                                  ramp_months: int = 0) -> int:
    """Calibrate on the RTT flows and wait bands in the warehouse and write s5_impact.waiting_list_projection:
    the baseline plus one scenario per non-zero capacity_change."""
    from ibp_pipeline.step5_impact.effects import write_table

    frame = projection_frame(read_flows(con), read_icb_bands(con), months, capacity_change, trend, ramp_months,
                             real=read_real_flows(con))
    return write_table(con, "waiting_list_projection", frame)
