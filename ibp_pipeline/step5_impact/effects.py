"""Step 5: effects learned from the data. How much does A&E 4-hour performance move with bed occupancy and with
delayed discharges, and which trust-month conditions matter most?

Why learn them: the initiatives catalogue (initiatives.yaml) states effects as planners' 80% intervals. Where the
published data can support an estimate, the estimate sits beside the planner's figure so a leader sees both and the
simulation can use the one that rests on evidence.

Two kinds of relation, both written to `s5_impact.effects` (one row per relation x driver):

1. Panel regressions with trust fixed effects (statsmodels OLS on the within-trust transformation, standard errors
   clustered by trust, t-based confidence intervals with G-1 degrees of freedom, G = number of trusts). Data: the
   provider rows of s1_current_state.metric_values, ae_4hr_pct joined to ga_bed_occupancy_pct (and
   discharge_nctr_avg / ga_beds_available) on trust and month, April 2022 onwards (when the daily bed sitrep starts).
   The sample is acute trusts: at least MIN_GA_BEDS general and acute beds and MIN_ATTENDANCES A&E attendances that
   month, occupancy between 50% and 105% (a handful of tiny units report 20-40% on 10 beds).
   - ae4hr_occupancy_trust_fe: 4hr% = a_trust + b x occupancy. The relation within a trust over time.
   - ae4hr_occupancy_twoway_fe: adds month fixed effects (national shocks: winter, strikes, covid recovery), so b is
     the relation between a trust's occupancy relative to other trusts that month and its 4-hour performance. This
     is the preferred estimate: without month effects, the national winter pattern (occupancy up, performance down
     everywhere at once) is attributed to occupancy.
   - ae4hr_occupancy_nctr_twoway_fe: adds delayed discharges, as patients not meeting the criteria to reside per 100
     G&A beds (discharge_nctr_avg x 100 / ga_beds_available), as a second driver.
   The coefficient is "points of 4-hour performance per 1 point of occupancy" (or per 1 NCTR patient per 100 beds).
   In a two-driver model each row carries the other driver's name and the covariance of the two coefficients
   (other_driver, covariance_with_other) so a combined effect can be drawn jointly.
   r2_within is the R2 of the within-trust regression (month dummies included in the two-way models). These are
   associations within trusts, not experiments: a trust whose occupancy falls for a reason that also improves flow
   gets both. The notes say so on every row.

2. Non-linear driver importance (scikit-learn): a histogram gradient-boosting regressor on trust-month features ->
   ae_4hr_pct, evaluated on a grouped split by trust (GroupKFold, 5 folds: no trust is in its own training set, so
   the fit statistic is out-of-sample for unseen trusts), with permutation importance on each held-out fold
   (fixed seed, so a run is reproducible). The "coefficient" of these rows is the mean drop in out-of-sample R2 when
   that feature is shuffled; std_error is the standard deviation over folds x repeats; ci_low/ci_high are the 2.5th
   and 97.5th percentiles of those values. The fit statistic (r2_within column, named in fit_statistic) is the
   pooled out-of-sample R2. The occupancy row's notes carry the partial dependence of 4-hour % on occupancy at
   85/90/92/95/98% so the non-linearity is visible.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import statsmodels.api as sm
from scipy import stats
from ibp_pipeline.lib.duckdb_tables import replace_table

SCHEMA = "s5_impact"
S1 = "s1_current_state"
OUTCOME = "ae_4hr_pct"
MIN_GA_BEDS = 100.0
MIN_ATTENDANCES = 1000.0
OCCUPANCY_RANGE = (50.0, 105.0)
SAMPLE_FROM = dt.date(2022, 4, 1)
CI_LEVEL = 0.95
SEED = 20240401
ML_FEATURES: tuple[str, ...] = ("ga_bed_occupancy_pct", "nctr_per_100_beds", "ga_beds_available",
                                "attendances_per_bed", "emergency_admissions_per_bed", "calendar_month",
                                "months_since_april_2022")
FEATURE_UNITS = {
    "ga_bed_occupancy_pct": "percentage points of G&A bed occupancy",
    "nctr_per_100_beds": "patients not meeting the criteria to reside per 100 G&A beds",
    "ga_beds_available": "G&A beds available",
    "attendances_per_bed": "A&E attendances a month per G&A bed",
    "emergency_admissions_per_bed": "emergency admissions via A&E a month per G&A bed",
    "calendar_month": "month of the year (1-12)",
    "months_since_april_2022": "months since April 2022 (trend)",
}
CAUSAL_CAVEAT = ("Association within trusts over time, not a trial: use as the best available estimate of what a "
                 "sustained change in the driver is worth, with its interval.")


# ---- pure maths ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PanelFit:
    """A fixed-effects panel regression: coefficients, clustered uncertainty and fit, keyed by driver name."""
    drivers: tuple[str, ...]
    coefficient: dict[str, float]
    std_error: dict[str, float]
    ci_low: dict[str, float]
    ci_high: dict[str, float]
    ci80_low: dict[str, float]
    ci80_high: dict[str, float]
    p_value: dict[str, float]
    covariance: np.ndarray
    n_obs: int
    n_groups: int
    r2_within: float
    time_effects: bool
    df_inference: int


def _demean(values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Subtract each group's mean from each column (the within transformation)."""
    counts = np.bincount(codes, minlength=n_groups).astype(float)
    out = np.empty_like(values, dtype=float)
    for j in range(values.shape[1]):
        means = np.bincount(codes, weights=values[:, j], minlength=n_groups) / counts
        out[:, j] = values[:, j] - means[codes]
    return out


def fit_panel_fe(frame: pl.DataFrame | pd.DataFrame, outcome: str, drivers: list[str] | tuple[str, ...],
                 entity: str, time: str | None = None, ci_level: float = CI_LEVEL) -> PanelFit:
    """OLS of outcome on drivers with entity fixed effects (and time fixed effects if `time` is given).

    Entity effects are absorbed by the within transformation; time effects enter as dummies that are demeaned
    within entity too (Frisch-Waugh-Lovell, exact for an unbalanced panel). Standard errors are clustered by
    entity (statsmodels' small-sample correction G/(G-1) x (N-1)/(N-K), K excluding the absorbed entity means,
    as Stata's xtreg, fe vce(cluster) does) and intervals use t with G-1 degrees of freedom.
    """
    df = frame.to_pandas() if isinstance(frame, pl.DataFrame) else frame.copy()
    cols = [outcome, *drivers, entity] + ([time] if time else [])
    df = df[cols].dropna()
    if df.empty:
        raise ValueError("no complete rows for the panel regression")
    codes, uniques = pd.factorize(df[entity], sort=True)
    n_groups = len(uniques)
    if n_groups < 2:
        raise ValueError("need at least two entities for fixed effects with clustered errors")
    x = df[list(drivers)].to_numpy(dtype=float)
    if time:
        dummies = pd.get_dummies(df[time], drop_first=True, dtype=float).to_numpy()
        x = np.hstack([x, dummies])
    y = df[[outcome]].to_numpy(dtype=float)
    yx = _demean(np.hstack([y, x]), codes, n_groups)
    yw, xw = yx[:, 0], yx[:, 1:]
    keep = np.abs(xw).max(axis=0) > 1e-12  # a time dummy with no within-entity variation carries nothing
    keep[: len(drivers)] = True
    xw = xw[:, keep]
    res = sm.OLS(yw, xw).fit(cov_type="cluster", cov_kwds={"groups": codes}, use_t=True)
    k = len(drivers)
    coef = np.asarray(res.params)[:k]
    cov = np.asarray(res.cov_params())[:k, :k]
    se = np.sqrt(np.diag(cov))
    dfi = n_groups - 1
    t95 = stats.t.ppf(0.5 + ci_level / 2, dfi)
    t80 = stats.t.ppf(0.9, dfi)
    pvals = 2 * stats.t.sf(np.abs(coef / np.where(se > 0, se, np.nan)), dfi)
    sst = float(np.sum(yw ** 2))
    r2 = 1.0 - float(np.sum(np.asarray(res.resid) ** 2)) / sst if sst > 0 else float("nan")
    d = list(drivers)
    return PanelFit(
        drivers=tuple(d),
        coefficient=dict(zip(d, coef.tolist())),
        std_error=dict(zip(d, se.tolist())),
        ci_low=dict(zip(d, (coef - t95 * se).tolist())),
        ci_high=dict(zip(d, (coef + t95 * se).tolist())),
        ci80_low=dict(zip(d, (coef - t80 * se).tolist())),
        ci80_high=dict(zip(d, (coef + t80 * se).tolist())),
        p_value=dict(zip(d, pvals.tolist())),
        covariance=cov,
        n_obs=len(df),
        n_groups=n_groups,
        r2_within=r2,
        time_effects=time is not None,
        df_inference=dfi,
    )


@dataclass(frozen=True)
class DriverImportance:
    """Permutation importance of each feature for a gradient-boosting model, on held-out trusts."""
    features: tuple[str, ...]
    mean: dict[str, float]
    std: dict[str, float]
    p025: dict[str, float]
    p975: dict[str, float]
    r2_oos: float
    r2_folds: tuple[float, ...]
    n_obs: int
    n_groups: int
    seed: int
    partial_dependence: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


def driver_importance(frame: pl.DataFrame | pd.DataFrame, outcome: str, features: list[str] | tuple[str, ...],
                      groups: str, seed: int = SEED, n_splits: int = 5, n_repeats: int = 5,
                      pd_grid: dict[str, list[float]] | None = None) -> DriverImportance:
    """Fit HistGradientBoostingRegressor on GroupKFold folds (grouped by `groups`), score each held-out fold and
    compute permutation importance (scoring R2) there. Missing feature values are allowed (the model routes
    them). Deterministic for a given seed."""
    import importlib

    from threadpoolctl import threadpool_limits

    importlib.import_module("sklearn.ensemble")  # load the OpenMP runtime BEFORE limiting it, or the limit misses it

    with threadpool_limits(limits=1):  # OpenMP on ~5,000 rows with other work running: one thread is far faster
        return _driver_importance(frame, outcome, list(features), groups, seed, n_splits, n_repeats, pd_grid)


def _driver_importance(frame: pl.DataFrame | pd.DataFrame, outcome: str, feats: list[str], groups: str, seed: int,
                       n_splits: int, n_repeats: int, pd_grid: dict[str, list[float]] | None) -> DriverImportance:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import r2_score
    from sklearn.model_selection import GroupKFold

    df = frame.to_pandas() if isinstance(frame, pl.DataFrame) else frame.copy()
    df = df[df[outcome].notna()].reset_index(drop=True)
    x = df[feats].to_numpy(dtype=float)
    y = df[outcome].to_numpy(dtype=float)
    g, _ = pd.factorize(df[groups], sort=True)
    n_groups = int(g.max()) + 1
    splits = min(n_splits, n_groups)
    imp: list[np.ndarray] = []
    r2s: list[float] = []
    pred = np.full(len(y), np.nan)

    def model() -> HistGradientBoostingRegressor:
        return HistGradientBoostingRegressor(max_iter=150, learning_rate=0.06, max_leaf_nodes=15,
                                             min_samples_leaf=30, l2_regularization=1.0, random_state=seed)

    for fold, (tr, te) in enumerate(GroupKFold(n_splits=splits).split(x, y, g)):
        m = model().fit(x[tr], y[tr])
        pred[te] = m.predict(x[te])
        r2s.append(float(r2_score(y[te], pred[te])))
        pi = permutation_importance(m, x[te], y[te], n_repeats=n_repeats, random_state=seed + fold, scoring="r2")
        imp.append(pi.importances)  # (features, repeats)
    allimp = np.concatenate(imp, axis=1)
    pdep: dict[str, list[tuple[float, float]]] = {}
    if pd_grid:
        full = model().fit(x, y)
        for name, grid in pd_grid.items():
            j = feats.index(name)
            values = []
            for v in grid:  # partial dependence by hand: set the feature to v for every row, average the predictions
                xv = x.copy()
                xv[:, j] = v
                values.append(float(full.predict(xv).mean()))
            pdep[name] = list(zip([float(v) for v in grid], values))
    return DriverImportance(
        features=tuple(feats),
        mean={f: float(allimp[i].mean()) for i, f in enumerate(feats)},
        std={f: float(allimp[i].std(ddof=1)) for i, f in enumerate(feats)},
        p025={f: float(np.percentile(allimp[i], 2.5)) for i, f in enumerate(feats)},
        p975={f: float(np.percentile(allimp[i], 97.5)) for i, f in enumerate(feats)},
        r2_oos=float(r2_score(y, pred)),
        r2_folds=tuple(r2s),
        n_obs=len(y),
        n_groups=n_groups,
        seed=seed,
        partial_dependence=pdep,
    )


# ---- data ---------------------------------------------------------------------------------------------------
def read_trust_month_panel(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Acute trust x month rows with 4-hour %, occupancy, beds, delayed discharges, attendances and admissions."""
    q = f"""
    with mv as (select org_code, period_start, metric_id, value, denominator from {S1}.metric_values
                where org_level = 'provider' and period_grain = 'month' and period_start >= DATE '{SAMPLE_FROM}'
                  and metric_id in ('ae_4hr_pct', 'ga_bed_occupancy_pct', 'ga_beds_available',
                                    'discharge_nctr_avg', 'ae_emergency_admissions')),
    w as (select org_code, period_start,
                 max(case when metric_id = 'ae_4hr_pct' then value end) as ae_4hr_pct,
                 max(case when metric_id = 'ae_4hr_pct' then denominator end) as ae_attendances,
                 max(case when metric_id = 'ga_bed_occupancy_pct' then value end) as ga_bed_occupancy_pct,
                 max(case when metric_id = 'ga_beds_available' then value end) as ga_beds_available,
                 max(case when metric_id = 'discharge_nctr_avg' then value end) as discharge_nctr_avg,
                 max(case when metric_id = 'ae_emergency_admissions' then value end) as ae_emergency_admissions
          from mv group by org_code, period_start)
    select org_code, period_start, ae_4hr_pct, ga_bed_occupancy_pct, ga_beds_available, discharge_nctr_avg,
           ae_attendances, ae_emergency_admissions,
           100.0 * discharge_nctr_avg / ga_beds_available as nctr_per_100_beds,
           ae_attendances / ga_beds_available as attendances_per_bed,
           ae_emergency_admissions / ga_beds_available as emergency_admissions_per_bed,
           month(period_start) as calendar_month,
           date_diff('month', DATE '{SAMPLE_FROM}', period_start) as months_since_april_2022,
           strftime(period_start, '%Y-%m') as month_key
    from w
    where ae_4hr_pct is not null and ga_bed_occupancy_pct is not null
      and ga_beds_available >= {MIN_GA_BEDS} and ae_attendances >= {MIN_ATTENDANCES}
      and ga_bed_occupancy_pct between {OCCUPANCY_RANGE[0]} and {OCCUPANCY_RANGE[1]}
    order by org_code, period_start
    """
    return con.sql(q).pl()


# ---- table --------------------------------------------------------------------------------------------------
PANEL_MODELS: tuple[tuple[str, tuple[str, ...], bool, bool, str], ...] = (
    # relation_id, drivers, month effects, preferred, description
    ("ae4hr_occupancy_trust_fe", ("ga_bed_occupancy_pct",), False, False,
     "panel OLS, trust fixed effects (within transformation), SE clustered by trust"),
    ("ae4hr_occupancy_twoway_fe", ("ga_bed_occupancy_pct",), True, True,
     "panel OLS, trust and month fixed effects (two-way), SE clustered by trust"),
    ("ae4hr_occupancy_nctr_twoway_fe", ("ga_bed_occupancy_pct", "nctr_per_100_beds"), True, True,
     "panel OLS, trust and month fixed effects (two-way), SE clustered by trust"),
)


def _range(frame: pl.DataFrame) -> tuple[dt.date | None, dt.date | None]:
    if frame.height == 0:
        return None, None
    return frame["period_start"].min(), frame["period_start"].max()


def effects_frame(panel: pl.DataFrame, seed: int = SEED) -> pl.DataFrame:
    """All learned relations as rows (one per relation x driver), with uncertainty, fit and plain-English notes."""
    rows: list[dict] = []
    for rid, drivers, month_fe, preferred, method in PANEL_MODELS:
        sample = panel.drop_nulls(list(drivers))
        if sample.select(pl.col("org_code").n_unique()).item() < 3:
            continue
        fit = fit_panel_fe(sample, OUTCOME, list(drivers), "org_code", "month_key" if month_fe else None)
        lo, hi = _range(sample)
        formula = (f"{OUTCOME} = trust effect" + (" + month effect" if month_fe else "")
                   + "".join(f" + b_{d} x {d}" for d in drivers) + " + error")
        for d in drivers:
            unit = FEATURE_UNITS[d]
            note = (f"{CAUSAL_CAVEAT} b = {fit.coefficient[d]:+.3f} points of 4-hour % per 1 unit "
                    f"({unit}); 95% CI {fit.ci_low[d]:+.3f} to {fit.ci_high[d]:+.3f}, p = {fit.p_value[d]:.3g}; "
                    f"t with {fit.df_inference} df. Sample: acute trusts with >= {MIN_GA_BEDS:g} G&A beds and "
                    f">= {MIN_ATTENDANCES:g} attendances a month, occupancy {OCCUPANCY_RANGE[0]:g}-"
                    f"{OCCUPANCY_RANGE[1]:g}%.")
            if len(drivers) > 1:
                others = [o for o in drivers if o != d]
                j, i = drivers.index(d), drivers.index(others[0])
                note += (f" Holding {', '.join(others)} fixed; covariance with {others[0]}'s coefficient "
                         f"{fit.covariance[j, i]:.6g}.")
            other = next((o for o in drivers if o != d), None)
            cov_other = float(fit.covariance[drivers.index(d), drivers.index(other)]) if other else None
            rows.append(dict(
                relation_id=rid, outcome_metric_id=OUTCOME, driver=d, driver_unit=unit, method=method,
                coefficient=fit.coefficient[d], coefficient_unit=f"points of {OUTCOME} per 1 {unit}",
                std_error=fit.std_error[d], ci_level=CI_LEVEL, ci_low=fit.ci_low[d], ci_high=fit.ci_high[d],
                ci80_low=fit.ci80_low[d], ci80_high=fit.ci80_high[d], p_value=fit.p_value[d],
                n_obs=fit.n_obs, n_groups=fit.n_groups, r2_within=fit.r2_within,
                fit_statistic="within-trust R2" + (" (month dummies included)" if month_fe else ""),
                preferred=preferred, sample_from=lo, sample_to=hi, formula=formula, seed=None,
                other_driver=other, covariance_with_other=cov_other, notes=note))
    if panel.select(pl.col("org_code").n_unique()).item() >= 5:
        grid = [85.0, 90.0, 92.0, 95.0, 98.0]
        imp = driver_importance(panel, OUTCOME, ML_FEATURES, "org_code", seed=seed,
                                pd_grid={"ga_bed_occupancy_pct": grid})
        lo, hi = _range(panel)
        pd_text = ", ".join(f"{v:g}% -> {p:.1f}" for v, p in imp.partial_dependence.get("ga_bed_occupancy_pct", []))
        folds = ", ".join(f"{r:.2f}" for r in imp.r2_folds)
        for f in ML_FEATURES:
            note = (f"Drop in out-of-sample R2 when {f} is shuffled (mean over {len(imp.r2_folds)} held-out trust "
                    f"folds x 5 repeats, seed {imp.seed}); features: {', '.join(ML_FEATURES)}. Out-of-sample R2 "
                    f"by fold: {folds}. Importance is predictive, not causal; correlated features share credit.")
            if f == "ga_bed_occupancy_pct" and pd_text:
                note += f" Partial dependence of 4-hour % on occupancy: {pd_text}."
            rows.append(dict(
                relation_id="ae4hr_gbm_permutation_importance", outcome_metric_id=OUTCOME, driver=f,
                driver_unit=FEATURE_UNITS[f],
                method="HistGradientBoostingRegressor, GroupKFold by trust (5 folds), permutation importance",
                coefficient=imp.mean[f], coefficient_unit="drop in out-of-sample R2 when shuffled",
                std_error=imp.std[f], ci_level=CI_LEVEL, ci_low=imp.p025[f], ci_high=imp.p975[f],
                ci80_low=None, ci80_high=None, p_value=None, n_obs=imp.n_obs, n_groups=imp.n_groups,
                r2_within=imp.r2_oos, fit_statistic="out-of-sample R2 on held-out trusts (GroupKFold)",
                preferred=False, sample_from=lo, sample_to=hi,
                formula=f"{OUTCOME} ~ gradient boosting({', '.join(ML_FEATURES)})", seed=imp.seed,
                other_driver=None, covariance_with_other=None, notes=note))
    schema = {
        "relation_id": pl.Utf8, "outcome_metric_id": pl.Utf8, "driver": pl.Utf8, "driver_unit": pl.Utf8,
        "method": pl.Utf8, "coefficient": pl.Float64, "coefficient_unit": pl.Utf8, "std_error": pl.Float64,
        "ci_level": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64, "ci80_low": pl.Float64,
        "ci80_high": pl.Float64, "p_value": pl.Float64, "n_obs": pl.Int64, "n_groups": pl.Int64,
        "r2_within": pl.Float64, "fit_statistic": pl.Utf8, "preferred": pl.Boolean, "sample_from": pl.Date,
        "sample_to": pl.Date, "formula": pl.Utf8, "seed": pl.Int64, "other_driver": pl.Utf8,
        "covariance_with_other": pl.Float64, "notes": pl.Utf8,
    }
    return pl.DataFrame(rows, schema=schema)


def write_table(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    """Replace s5_impact.<table> with frame."""
    return replace_table(con, SCHEMA, table, frame)


def build_effects(con: duckdb.DuckDBPyConnection, seed: int = SEED) -> int:
    """Fit the learned relations on the warehouse's trust-month panel and write s5_impact.effects."""
    return write_table(con, "effects", effects_frame(read_trust_month_panel(con), seed=seed))

