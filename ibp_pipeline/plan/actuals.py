"""Plan against actual, month by month: each plan's tracked version (the plan of record, else its latest version)
against the published actuals (activity and performance from s1_current_state.metric_values, substantive FTE from
NHS Workforce Statistics) and the organisation's finance ledger (latest.finance_ledger, local data).

For each line and month with an actual: variance (actual - plan) and % variance; year to date (sums for flows,
averages for levels such as a list, FTE, beds or a percentage); the forecast outturn for the financial year (the
actual months, then the pipeline's forecast of the remaining months where there is one, else the plan's own); the
chance of meeting the plan for the year (the Monte Carlo engine's baseline forecast draw over the remaining months,
see `chance_of_meeting`); an XmR chart of the monthly variance (Making Data Count: is the gap to plan moving, or
noise?); and whether it is an exception: off plan by more than the plan's thresholds (Assumptions sheet), said in
one sentence. Ledger lines that are not plan lines are listed as exceptions too, so nothing in the ledger is
silently ignored.
"""
from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import polars as pl

from ..lib.duckdb_tables import replace_table, table_columns, table_exists
from ..simulation.engine import DEFAULT_SEED, ar1_noise, split_normal_scales, stream
from ..step2_triple_aim.spc import spc_series
from .document import PlanDocument
from .lines import Line, by_id
from .period import financial_year
from .store import read_document

VALUES = "s1_current_state.metric_values"
FORECASTS = "s5_impact.forecasts"
LEDGER = "latest.finance_ledger"
SCHEMA = {"plan_id": pl.String, "version": pl.Int32, "org_code": pl.String, "example": pl.Boolean,
          "part": pl.String, "line_id": pl.String, "line": pl.String, "unit": pl.String, "month": pl.Date,
          "financial_year": pl.String, "planned": pl.Float64, "actual": pl.Float64, "variance": pl.Float64,
          "variance_pct": pl.Float64, "ytd_planned": pl.Float64, "ytd_actual": pl.Float64,
          "ytd_variance_pct": pl.Float64, "year_planned": pl.Float64, "outturn": pl.Float64,
          "outturn_method": pl.String, "p_meeting_plan": pl.Float64, "p_meeting_method": pl.String,
          "variance_centre": pl.Float64, "variance_lower": pl.Float64, "variance_upper": pl.Float64,
          "variance_variation": pl.String, "variance_signal": pl.String, "favourable": pl.Boolean,
          "is_exception": pl.Boolean, "sentence": pl.String, "actual_source": pl.String}
DRAWS = 4000  # draws of the remaining months: the chance is then within about +/- 1.6 points (95%)
Forecast = dict[dt.date, tuple[float, float, float]]  # month -> (mean, lower scale, upper scale)


def tracked_versions(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    """Each plan's version to track: its plan of record, else its latest version."""
    return con.execute("""select plan_id, coalesce(max(version) filter (where status = 'approved'), max(version))
                          from plan.versions group by plan_id order by plan_id""").fetchall()


def _actuals(con: duckdb.DuckDBPyConnection, org: str, line: Line) -> tuple[dict[dt.date, float], str]:
    if line.part == "finance":
        if not table_exists(con, LEDGER):
            return {}, ""
        rows = con.execute(f"select period_start, sum(amount_gbp) from {LEDGER} where org_code = ? and line = ? "
                           "group by 1", [org, line.line_id]).fetchall()
        return dict(rows), "the organisation's finance ledger"
    if not line.actual:
        return {}, ""
    marks = ", ".join("?" * len(line.actual))
    rows = con.execute(f"""select period_start, sum(value), count(distinct metric_id) from {VALUES}
                           where org_code = ? and metric_id in ({marks}) and period_grain = 'month'
                           and value is not null group by 1""", [org, *line.actual]).fetchall()
    return {m: v for m, v, n in rows if n == len(line.actual)}, "published: " + ", ".join(line.actual)


def _forecast(con: duckdb.DuckDBPyConnection, org: str, line: Line) -> Forecast:
    """The series' forecast as the Monte Carlo engine draws it: its mean and the two scales of its split normal."""
    if len(line.actual) != 1 or not table_exists(con, FORECASTS):
        return {}
    have = set(table_columns(con, *FORECASTS.split(".")))
    bounds = [f"{c}" if c in have else f"null::double as {c}" for c in ("lo80", "hi80", "lo95", "hi95")]
    rows = con.execute(f"select period_start, mean, {', '.join(bounds)} from {FORECASTS} "
                       "where org_code = ? and metric_id = ? order by period_start", [org, line.actual[0]]).fetchall()
    if not rows:
        return {}
    cols = list(zip(*rows))
    arr = [np.array(c, dtype=np.float64) for c in cols[1:]]
    s_lo, s_hi = split_normal_scales(arr[0], *arr[1:])
    return {m: (float(v), float(a), float(b)) for m, v, a, b in zip(cols[0], arr[0], s_lo, s_hi)}


def chance_of_meeting(known: np.ndarray, mean: np.ndarray, s_lo: np.ndarray, s_hi: np.ndarray, z: np.ndarray,
                      line: Line, year_planned: float) -> float:
    """P(the year's outturn meets the plan): months of `known` that are NaN are drawn as the Monte Carlo engine
    draws a baseline forecast (engine step 1: median `mean`, two-piece normal scales s_lo / s_hi, noise z of shape
    (NaN months, draws), AR(1) across months); the others are fixed (actual months, or the plan where there is no
    forecast). The outturn of each draw is the year's sum (flows) or average (levels) and it meets the plan when it
    is on the line's favourable side of `year_planned` (at least the plan where above is good news)."""
    draws = np.repeat(known[:, None], z.shape[1], axis=1)
    gaps = np.flatnonzero(np.isnan(known))
    scale = np.where(z < 0, s_lo[gaps, None], s_hi[gaps, None])
    draws[gaps] = np.maximum(mean[gaps, None] + z * scale, 0.0)
    if line.percent:
        draws = np.minimum(draws, 100.0)
    outturn = draws.mean(axis=0) if line.stock else draws.sum(axis=0)
    tol = 1e-9 * max(1.0, abs(year_planned))
    met = outturn >= year_planned - tol if line.favourable == "above" else outturn <= year_planned + tol
    return float(met.mean())


def _chance(doc: PlanDocument, line: Line, fy: str, idx: list[int], actual: dict[dt.date, float],
            forecast: Forecast, year_planned: float) -> tuple[float | None, str]:
    if line.favourable is None:
        return None, "neither side of plan is better for this line"
    months = [doc.period.months[i] for i in idx]
    planned = doc.values[line.line_id]
    known = np.array([actual[m] if m in actual else (np.nan if m in forecast else planned[i])
                      for i, m in zip(idx, months)], dtype=np.float64)
    gaps = np.flatnonzero(np.isnan(known))
    z = ar1_noise(stream(DEFAULT_SEED, "plan", doc.org_code, line.line_id, fy), len(gaps), DRAWS) if len(gaps) \
        else np.zeros((0, 1), dtype=np.float32)
    fc = np.array([forecast.get(m, (np.nan, 0.0, 0.0)) for m in months], dtype=np.float64).reshape(-1, 3)
    plan_months = sum(1 for m in months if m not in actual and m not in forecast)
    if not len(gaps) and plan_months:
        return None, "no forecast of the rest of the year to draw from (its months are taken at plan)"
    p = chance_of_meeting(known, fc[:, 0], fc[:, 1], fc[:, 2], z, line, year_planned)
    if not len(gaps):
        return p, "the year's months are all known: no draw"
    return p, (f"{DRAWS:,} Monte Carlo draws of the baseline forecast for {len(gaps)} month(s)"
               + (f"; {plan_months} month(s) beyond the forecast taken at plan" if plan_months else ""))


def _variance_spc(rows: list[dict], line: Line) -> None:
    """XmR limits and the variation of each month's variance, in place (the line's months in order)."""
    if not rows:
        return
    direction = {"above": "increase", "below": "decrease"}.get(line.favourable or "", "neutral")
    res = spc_series([r["variance"] for r in rows], direction)
    for k, r in enumerate(rows):
        lo, hi = float(res.lpl[k]), float(res.upl[k])
        r.update(variance_centre=float(res.mean[k]), variance_lower=lo if np.isfinite(lo) else None,
                 variance_upper=hi if np.isfinite(hi) else None, variance_variation=str(res.point_type[k]),
                 variance_signal=str(res.special_cause_type[k]))


def _agg(values: list[float], line: Line) -> float:
    return float(np.mean(values) if line.stock else np.sum(values))


def _sentence(line: Line, month: dt.date, planned: float, actual: float, pct: float | None,
              favourable: bool | None) -> str:
    def fmt(v: float) -> str:
        if line.percent:
            return f"{v:.1f}%"
        return f"£{v:,.0f}" if line.unit == "GBP" else (f"{v:,.1f} FTE" if line.unit == "FTE" else f"{v:,.0f}")

    side = "on" if actual == planned else ("above" if actual > planned else "below")
    if side == "on":
        off = "on plan"
    elif line.percent:
        off = f"{abs(actual - planned):.1f} points {side} plan"
    else:
        off = f"{abs(pct):.1f}% {side} plan" if pct is not None else f"{side} a plan of none"
    judged = "" if favourable is None else (", better than planned" if favourable else ", worse than planned")
    return f"{line.label} in {month:%B %Y}: {fmt(actual)} against a plan of {fmt(planned)}, {off}{judged}."


def plan_vs_actual(con: duckdb.DuckDBPyConnection, doc: PlanDocument, pid: str, version: int) -> list[dict]:
    """The rows for one plan version (see the module doc)."""
    months = doc.period.months
    fys = [financial_year(m) for m in months]
    pct_limit = doc.assumption("exception_threshold_pct")
    pts_limit = doc.assumption("exception_threshold_points")
    out = []
    for line_id, line in by_id().items():
        if line.derived or line_id not in doc.values:
            continue
        actual, source = _actuals(con, doc.org_code, line)
        if not actual:
            continue
        forecast = _forecast(con, doc.org_code, line)
        planned = doc.values[line_id]
        line_rows: list[dict] = []
        for fy in doc.period.years:
            idx = [i for i, f in enumerate(fys) if f == fy]
            seen = [i for i in idx if months[i] in actual]
            if not seen:
                continue
            path, used = [], set()
            for i in idx:
                if months[i] in actual:
                    path.append(actual[months[i]])
                elif months[i] in forecast:
                    path.append(forecast[months[i]][0])
                    used.add("forecast")
                else:
                    path.append(planned[i])
                    used.add("plan")
            method = ("actual months" + ("; then the forecast" if "forecast" in used else "")
                      + ("; then the plan" if "plan" in used else ""))
            year_planned = _agg([planned[i] for i in idx], line)
            outturn = _agg(path, line)
            chance, chance_method = _chance(doc, line, fy, idx, actual, forecast, year_planned)
            for k, i in enumerate(seen):
                m = months[i]
                p, a = float(planned[i]), float(actual[m])
                pct = 100 * (a - p) / p if p else None
                to_date = seen[:k + 1]
                ytd_p = _agg([planned[j] for j in to_date], line)
                ytd_a = _agg([actual[months[j]] for j in to_date], line)
                fav = None if line.favourable is None or a == p else ((a > p) == (line.favourable == "above"))
                exceptional = (abs(a - p) > pts_limit) if line.percent else (pct is not None and abs(pct) > pct_limit)
                line_rows.append({
                    "plan_id": pid, "version": version, "org_code": doc.org_code, "example": doc.example,
                    "part": line.part, "line_id": line_id, "line": line.label, "unit": line.unit,
                    "month": m, "financial_year": fy, "planned": p, "actual": a, "variance": a - p,
                    "variance_pct": pct, "ytd_planned": ytd_p, "ytd_actual": ytd_a,
                    "ytd_variance_pct": 100 * (ytd_a - ytd_p) / ytd_p if ytd_p else None,
                    "year_planned": year_planned, "outturn": outturn, "outturn_method": method,
                    "p_meeting_plan": chance, "p_meeting_method": chance_method, "favourable": fav,
                    "is_exception": bool(exceptional),
                    "sentence": _sentence(line, m, p, a, pct, fav), "actual_source": source})
        _variance_spc(line_rows, line)
        out += line_rows
    return out


def unknown_ledger_lines(con: duckdb.DuckDBPyConnection, doc: PlanDocument, pid: str, version: int) -> list[dict]:
    """Ledger rows for this organisation whose line is not a plan finance line: exceptions, never dropped."""
    if not table_exists(con, LEDGER):
        return []
    known = [i for i, line in by_id().items() if line.part == "finance" and not line.derived]
    rows = con.execute(f"""select line, period_start, sum(amount_gbp) from {LEDGER} where org_code = ?
                           and line not in ({', '.join('?' * len(known))}) group by 1, 2 order by 1, 2""",
                       [doc.org_code, *known]).fetchall()
    return [{"plan_id": pid, "version": version, "org_code": doc.org_code, "example": doc.example,
             "part": "finance", "line_id": line, "line": line, "unit": "GBP", "month": m,
             "financial_year": financial_year(m), "planned": None, "actual": amount, "is_exception": True,
             "sentence": f"The ledger has £{amount:,.0f} in {m:%B %Y} on '{line}', which is not a line of the "
                         f"plan, so it is not compared: map it to a plan line in the extract.",
             "actual_source": "the organisation's finance ledger"} for line, m, amount in rows]


def build_plan_vs_actual(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """plan.plan_vs_actual for every plan's tracked version; returns (rows, exceptions)."""
    rows: list[dict] = []
    for pid, version in tracked_versions(con):
        doc = read_document(con, pid, version)
        rows += plan_vs_actual(con, doc, pid, version) + unknown_ledger_lines(con, doc, pid, version)
    frame = pl.DataFrame(rows, schema=SCHEMA) if rows else pl.DataFrame(schema=SCHEMA)
    replace_table(con, "plan", "plan_vs_actual", frame)
    return frame.height, frame.filter(pl.col("is_exception")).height
