"""Forecasts and risk: where each measure is heading, how likely each standard is to be met, and how far to trust it.

Data functions read s5_impact (forecasts, risk, risk_register, forecast_accuracy), s1_current_state.metric_values
and s2_triple_aim.targets with bound parameters; pure helpers turn model codes and accuracy figures into plain
English for trust leaders, and are tested directly."""
from __future__ import annotations

import re
from datetime import date

import plotly.graph_objects as go
import polars as pl

from . import theme
from .formatting import chance_percent, chance_percents, fmt_chance, fmt_value
from .organisations import plain_name
from .serving import Serving

KEY_METRICS = ("ae_4hr_pct", "rtt_18wk_pct", "dm01_6wk_pct", "cancer_fds_pct", "cancer_62d_pct", "cancer_31d_pct")
HISTORY_FALLBACK_MONTHS = 36

# Risk bands of s5_impact.risk_register (probability of meeting the standard), worst first, with NHS colours.
RISK_BANDS = {  # the stops of theme.DIVERGING_SCALE, so bars, pills and the heatmap read alike (no red-green)
    "very unlikely": ("Very unlikely (under 10%)", theme.NHS_ORANGE),
    "unlikely": ("Unlikely (10% to 40%)", theme.NHS_WARM_YELLOW),
    "uncertain": ("Uncertain (40% to 60%)", theme.NHS_PALE_GREY),
    "likely": ("Likely (60% to 90%)", theme.NHS_LIGHT_BLUE),
    "very likely": ("Very likely (90% or more)", theme.NHS_DARK_BLUE),
}


def metric_name_sql(column: str) -> str:
    """SQL for a measure's plain name: the catalogue's, or for a derived share ('a_pct_of_b', e.g. 52-week
    waiters as a share of the waiting list) built from its two parts, else the code. column is a qualified
    column reference from this code ('r.metric_id'), never user input."""
    cat = "s1_current_state.metric_catalogue"
    return (f"coalesce((select c0.name from {cat} c0 where c0.metric_id = {column}), "
            f"(select a.name || ', as % of the ' || b.name from {cat} a, {cat} b "
            f"where a.metric_id = split_part({column}, '_pct_of_', 1) "
            f"and b.metric_id = split_part({column}, '_pct_of_', 2)), {column})")


def forecast_metrics(db: Serving, org_code: str) -> pl.DataFrame:
    """Measures with a forecast for this organisation, key standards first: metric_id, name, unit, model,
    forecast_origin. The name falls back to the code when the catalogue lacks the measure."""
    return db.query("""
        select f.metric_id, coalesce(c.name, f.metric_id) as name, coalesce(c.unit, any_value(f.unit)) as unit,
               any_value(f.model) as model, max(f.forecast_origin) as forecast_origin
        from s5_impact.forecasts f
        left join s1_current_state.metric_catalogue c using (metric_id)
        where f.org_code = $org
        group by f.metric_id, c.name, c.unit
        order by case f.metric_id when 'ae_4hr_pct' then 0 when 'rtt_18wk_pct' then 1 when 'dm01_6wk_pct' then 2
                 when 'cancer_fds_pct' then 3 when 'cancer_62d_pct' then 4 when 'cancer_31d_pct' then 5
                 else 6 end, name""", {"org": org_code})


def history(db: Serving, org_code: str, metric_id: str, period_from: date, period_to: date) -> pl.DataFrame:
    """Published monthly values in the selected period (period_start, value); when the period holds none, the
    last 36 months that have data, so the fan chart always starts from what actually happened."""
    params = {"org": org_code, "metric": metric_id, "from": period_from, "to": period_to}
    within = db.query("""
        select period_start, value from s1_current_state.metric_values
        where org_code = $org and metric_id = $metric and period_grain = 'month' and value is not null
          and period_start between $from and $to
        order by period_start""", params)
    if not within.is_empty():
        return within
    return db.query("""
        select period_start, value from (
            select period_start, value from s1_current_state.metric_values
            where org_code = $org and metric_id = $metric and period_grain = 'month' and value is not null
            order by period_start desc limit $n)
        order by period_start""", {"org": org_code, "metric": metric_id, "n": HISTORY_FALLBACK_MONTHS})


def forecast(db: Serving, org_code: str, metric_id: str) -> pl.DataFrame:
    """The forecast rows (24 months ahead) with their intervals and the model that made them."""
    return db.query("""
        select period_start, horizon, mean, lo80, hi80, lo95, hi95, sd, model, forecast_origin, history_months,
               history_start, months_interpolated, merged_from, clipped, interval_method, method, unit
        from s5_impact.forecasts where org_code = $org and metric_id = $metric
        order by period_start""", {"org": org_code, "metric": metric_id})


def publication_of(metric_id: str) -> str | None:
    """The source whose publication calendar a measure follows: its first catalogue source with a schedule (a
    rate series '<a>_pct_of_<b>' follows its numerator)."""
    from ..step1_current_state.catalogue import BY_ID
    from ..step1_current_state.freshness import PUBLICATION_RULES

    metric = BY_ID.get(metric_id.split("_pct_of_")[0])
    return next((s for s in metric.sources if s in PUBLICATION_RULES), None) if metric else None


def with_publication_status(rows: pl.DataFrame, metric_id: str, today: date) -> pl.DataFrame:
    """Forecast rows with `status`: 'Forecast', or, for a month whose file NHS England has already published
    (its due date has passed), 'Not loaded: the January 2026 A&E file was published on 12 February 2026', so a
    month that could be known never passes for a forecast."""
    from ..step1_current_state.freshness import PUBLICATION_RULES, due_date, long_date, period_label

    source = publication_of(metric_id)
    if rows.is_empty() or source is None:
        return rows.with_columns(pl.lit("Forecast").alias("status"))
    rule = PUBLICATION_RULES[source]

    def status(month: date) -> str:
        due = due_date(rule, month)
        if due > today:
            return "Forecast"
        return f"Not loaded: the {period_label(month, rule.grain)} {rule.subject} file was published on {long_date(due)}"

    return rows.with_columns(pl.col("period_start").map_elements(status, return_dtype=pl.String).alias("status"))


def fan_targets(db: Serving, org_code: str, metric_id: str, period_from: date) -> pl.DataFrame:
    """The primary target month by month (s2_triple_aim.targets), then, beyond its last month, the target the
    risk calculation holds flat (s5_impact.risk, primary standard): period_start, target_value, standard_name,
    basis. One line, so the chart shows the bar the probabilities are measured against."""
    return db.query("""
        with t as (
            select period_start, target_value, standard_name, 'target for the month' as basis
            from s2_triple_aim.targets
            where org_code = $org and metric_id = $metric and is_primary and period_grain = 'month'
              and period_start >= $from),
        held as (
            select period_start, any_value(target_value) as target_value, any_value(standard_name) as standard_name,
                   'held at the standard''s last target (as in the risk calculation)' as basis
            from s5_impact.risk
            where org_code = $org and metric_id = $metric and is_primary
              and period_start > coalesce((select max(period_start) from t), date '1900-01-01')
            group by period_start)
        select * from t union all select * from held order by period_start""",
        {"org": org_code, "metric": metric_id, "from": period_from})


def risk(db: Serving, org_code: str, metric_id: str) -> pl.DataFrame:
    """Monte Carlo risk by month for every standard of this measure: p10/p50/p90 and the probability of
    meeting the target, with deadline months flagged."""
    return db.query("""
        select standard_id, standard_name, kind, direction, is_primary, deadline, period_start, horizon,
               target_value, target_basis, p10, p50, p90, mean, prob_meet_target, is_deadline_month, draws, seed,
               forecast_model, scenario, method
        from s5_impact.risk where org_code = $org and metric_id = $metric
        order by is_primary desc, standard_id, period_start""", {"org": org_code, "metric": metric_id})


_REGISTER_COLUMNS = f"""
    r.org_code, r.org_name, r.org_level, r.standard_id, r.standard_name, r.metric_id,
    {metric_name_sql("r.metric_id")} as metric_name, coalesce(c.unit, case when r.metric_id like '%_pct%'
    then 'percent' end) as unit, r.kind, r.direction, r.is_primary, r.deadline,
    r.assessed_period, r.assessed_basis, r.months_to_assessed, r.target_value, r.p10, r.p50, r.p90, r.gap_p50,
    r.prob_meet_target, r.risk_band, r.rank_in_org, r.rank_in_icb, r.rank_in_level, r.draws"""


def register(db: Serving, org_code: str) -> pl.DataFrame:
    """This organisation's risk register: every standard ranked from least to most likely to be met."""
    frame = db.query(f"""
        select {_REGISTER_COLUMNS}
        from s5_impact.risk_register r left join s1_current_state.metric_catalogue c using (metric_id)
        where r.org_code = $org order by r.rank_in_org""", {"org": org_code})
    return _plain_names(frame)


def member_register(db: Serving, org_code: str, org_level: str) -> pl.DataFrame:
    """The risk registers of the organisations within an ICB (its trusts), a region (its ICBs and trusts) or
    England (everyone), least likely to be met first. Empty for a trust. Pages pass it through ui.restrict."""
    frame = db.query(f"""
        select {_REGISTER_COLUMNS}
        from s5_impact.risk_register r
        left join s1_current_state.metric_catalogue c using (metric_id)
        left join s1_current_state.organisations o on o.org_code = r.org_code
        where r.org_code <> $org and (
              ($level = 'england')
           or ($level = 'region' and o.region_code = $org)
           or ($level = 'icb' and r.icb_code = $org))
        order by r.prob_meet_target, r.org_code, r.standard_id""",
        {"org": org_code, "level": org_level})
    return _plain_names(frame)


def accuracy(db: Serving, org_code: str) -> pl.DataFrame:
    """Backtest accuracy of every forecast for this organisation (s5_impact.forecast_accuracy)."""
    return db.query(f"""
        select a.metric_id, {metric_name_sql("a.metric_id")} as metric_name, coalesce(c.unit, a.unit) as unit,
               a.model, a.models_in_backtest, a.n_origins, a.horizon_max, a.n_forecasts, a.mae, a.mase, a.mase_h1,
               a.mase_benchmark, a.coverage80, a.coverage95, a.first_origin, a.last_origin, a.forecast_origin,
               a.history_months, a.method
        from s5_impact.forecast_accuracy a left join s1_current_state.metric_catalogue c using (metric_id)
        where a.org_code = $org
        order by case a.metric_id when 'ae_4hr_pct' then 0 when 'rtt_18wk_pct' then 1 when 'dm01_6wk_pct' then 2
                 when 'cancer_fds_pct' then 3 when 'cancer_62d_pct' then 4 when 'cancer_31d_pct' then 5
                 else 6 end, metric_name""", {"org": org_code})


def _plain_names(frame: pl.DataFrame) -> pl.DataFrame:
    if frame.is_empty():
        return frame
    return frame.with_columns(pl.col("org_name").map_elements(plain_name, return_dtype=pl.String))


# ---- pure helpers: plain English -------------------------------------------------------------------------------

_ETS = {
    ("N", "N"): "level only: no trend, no seasonal pattern",
    ("A", "N"): "level and a steady trend",
    ("Ad", "N"): "level and a trend that flattens out (damped)",
    ("N", "A"): "level and a repeating seasonal pattern",
    ("A", "A"): "level, a steady trend and a seasonal pattern",
    ("Ad", "A"): "level, a trend that flattens out and a seasonal pattern",
}


def model_plain(model: str | None) -> str:
    """'ETS(A,Ad,N)' -> 'exponential smoothing (level and a trend that flattens out (damped))'; ratio models
    are explained through their numerator and denominator; unknown codes are returned as they are."""
    if not model:
        return "no model recorded"
    ratio = re.fullmatch(r"ratio\(num=(.+); den=(.+)\)", model)
    if ratio:
        return (f"a percentage forecast through its parts: the numerator by {model_plain(ratio.group(1))}, "
                f"the denominator by {model_plain(ratio.group(2))}")
    ets = re.fullmatch(r"ETS\(A,(N|A|Ad),(N|A)\)", model)
    if ets:
        return f"exponential smoothing ({_ETS[(ets.group(1), ets.group(2))]})"
    simple = {"naive": "the last value carried forward (too little history for a fitted model)",
              "constant": "a constant (the series has not changed)",
              "croston_sba": "Croston's method for measures that are often zero (average size x how often)"}
    return simple.get(model, model)


def benchmark_words(benchmark: str | None) -> str:
    """The simple rule a forecast is scored against, in words ('seasonal_naive_12' -> 'same month a year before')."""
    return ("same month a year before" if benchmark == "seasonal_naive_12" else
            "last month's value" if benchmark in ("naive", "naive_1") else (benchmark or "-").replace("_", " "))


def mase_sentence(mase: float | None, benchmark: str | None) -> str:
    """MASE in plain English: below 1 the forecast beat the simple rule it is compared with."""
    if mase is None:
        return "No scaled error: the measure did not change in the test months, so there is nothing to scale by."
    rule = ("repeating the value of the same month a year before" if benchmark == "seasonal_naive_12"
            else "repeating last month's value")
    if mase < 0.95:
        verdict = f"better than the simple rule of {rule}: its errors were {1 - mase:.0%} smaller"
    elif mase <= 1.05:
        verdict = f"about as good as the simple rule of {rule}"
    else:
        verdict = f"worse than the simple rule of {rule}: its errors were {mase - 1:.0%} larger"
    return f"MASE {mase:.2f}: {verdict} (below 1 means better than that rule)."


def coverage_sentence(coverage: float | None, nominal: float, n_forecasts: int | None) -> str:
    """How often the actual fell inside the interval, against how often it should (80% or 95%)."""
    if coverage is None:
        return f"No test of the {nominal:.0%} interval."
    if coverage >= nominal - 0.05:
        if coverage > nominal + 0.1 and nominal < 0.9:
            judgement = "more often than promised: the interval is, if anything, too cautious"
        else:
            judgement = "about as often as promised"
    elif coverage >= nominal - 0.15:
        judgement = "somewhat less often than promised: treat the interval as a little too narrow"
    else:
        judgement = "much less often than promised: the real uncertainty is wider than the shaded band"
    n = f" of {n_forecasts} test forecasts" if n_forecasts else ""
    return f"The actual fell inside the {nominal:.0%} interval in {coverage:.0%}{n}, {judgement}."


def trust_verdict(mase: float | None, coverage80: float | None) -> tuple[str, str]:
    """(one-line verdict, colour) combining accuracy and interval honesty."""
    if mase is None or coverage80 is None:
        return "Not enough test data to judge", theme.NHS_MID_GREY
    good_cover = coverage80 >= 0.65
    if mase < 1 and good_cover:
        return "Reasonable to plan with: beat the simple rule and the intervals held", theme.NHS_GREEN
    if mase < 1:
        return "Central forecast useful, but the intervals are too narrow", theme.NHS_ORANGE
    if good_cover:
        return "Use the range, not the central line: no better than the simple rule", theme.NHS_ORANGE
    return "Treat with caution: no better than the simple rule and the intervals were too narrow", theme.NHS_RED


def range_sentence(p10: float | None, p50: float | None, p90: float | None, unit: str | None) -> str:
    """'in 8 of 10 simulated futures the value is between 73.5% and 80.5%, and in half it is above 77.1%'."""
    if p10 is None or p50 is None or p90 is None:
        return "no simulated range"
    return (f"in 8 of 10 simulated futures the value is between {fmt_value(p10, unit)} and {fmt_value(p90, unit)} "
            f"(1 in 10 below, 1 in 10 above); the middle one (the median, p50) is {fmt_value(p50, unit)}")


def headline_risk(risk_rows: pl.DataFrame) -> pl.DataFrame:
    """One row per standard: its deadline month when it has one in the forecast, else the last forecast month."""
    if risk_rows.is_empty():
        return risk_rows
    return (risk_rows.sort("is_deadline_month", "period_start", descending=[True, True])
            .group_by("standard_id", maintain_order=True).first()
            .sort("is_primary", "standard_id", descending=[True, False]))


def probability_sentence(row: dict, unit: str | None) -> str:
    """A headline for one standard: when, the simulated range and the chance of meeting the target."""
    when = f"{row['period_start']:%B %Y}"
    why = "its deadline" if row["is_deadline_month"] else "the last forecast month"
    direction = "at least" if row["direction"] == "at_least" else "at most"
    chance = row["prob_meet_target"]
    chance_text = fmt_chance(chance)  # the one rounding rule, as in the register, its bars and the heatmap
    spread = range_sentence(row["p10"], row["p50"], row["p90"], unit)
    return (f"**{row['standard_name']}**: in {when} ({why}), {spread}."
            f" Chance of being {direction} {fmt_value(row['target_value'], unit)}: **{chance_text}**.")


def chance_column(column: str = "prob_meet_target") -> pl.Expr:
    """A probability column as the whole percentage every other place shows (formatting.chance_percent)."""
    return (pl.col(column) * 100 + 0.5 + 1e-9).floor().cast(pl.Int64)


def band_label(band: str | None) -> str:
    return RISK_BANDS.get(band or "", (band or "-", theme.NHS_MID_GREY))[0]


def band_colour(band: str | None) -> str:
    return RISK_BANDS.get(band or "", ("", theme.NHS_MID_GREY))[1]


def rank_register(frame: pl.DataFrame) -> pl.DataFrame:
    """Rank rows from least to most likely to be met (ties: the larger median shortfall first), 1 = most at risk;
    ranks are recomputed on what the reader may see, so they never reveal hidden organisations."""
    frame = frame.drop("rank", strict=False)
    if frame.is_empty():
        return frame.with_columns(pl.lit(None, pl.Int64).alias("rank"))
    shortfall = pl.when(pl.col("direction") == "at_most").then(pl.col("gap_p50")).otherwise(-pl.col("gap_p50"))
    return (frame.with_columns(shortfall.alias("_shortfall"))
            .sort(["prob_meet_target", "_shortfall", "org_code", "standard_id"], descending=[False, True, False, False],
                  nulls_last=True)
            .with_row_index("rank", offset=1).with_columns(pl.col("rank").cast(pl.Int64)).drop("_shortfall"))




# ---- figures ---------------------------------------------------------------------------------------------------

def probability_figure(risk_rows: pl.DataFrame, *, title: str = "", height: int = 400) -> go.Figure:
    """Probability of meeting each standard by month (0-100%), one line per standard; deadline months are
    marked with a large diamond and a dotted vertical line so the month that counts stands out."""
    fig = go.Figure()
    if risk_rows.is_empty():
        fig.add_annotation(text="No risk estimate for this measure", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
        return fig.update_layout(height=height, title=title)
    for i, ((standard_id,), part) in enumerate(risk_rows.sort("period_start").group_by("standard_id",
                                                                                        maintain_order=True)):
        colour = theme.SERIES[i % len(theme.SERIES)]
        name = part["standard_name"][0] + ("" if part["is_primary"][0] else " (not the primary standard)")
        fig.add_trace(go.Scatter(
            x=part["period_start"].to_list(), y=chance_percents(part["prob_meet_target"]), mode="lines+markers",
            name=name, line=dict(color=colour, width=2), marker=dict(size=5),
            customdata=part.select("target_value", "p10", "p50", "p90").to_numpy(),
            hovertemplate="%{x|%b %Y}: %{y:.0f}% chance of meeting %{customdata[0]:.1f}<br>"
                          "8 in 10 futures between %{customdata[1]:.1f} and %{customdata[3]:.1f}, "
                          "median %{customdata[2]:.1f}<extra></extra>"))
        deadline = part.filter(pl.col("is_deadline_month"))
        if not deadline.is_empty():
            fig.add_trace(go.Scatter(
                x=deadline["period_start"].to_list(), y=chance_percents(deadline["prob_meet_target"]),
                mode="markers", name=f"Deadline: {part['standard_name'][0]}", showlegend=False,
                marker=dict(symbol="diamond", size=14, color=colour, line=dict(color=theme.NHS_BLACK, width=1.5)),
                hovertemplate="Deadline %{x|%b %Y}: %{y:.0f}% chance<extra></extra>"))
            for d in deadline["period_start"].to_list():
                fig.add_vline(x=d, line=dict(color=theme.NHS_DARK_GREY, dash="dot", width=1))
                fig.add_annotation(x=d, y=100, text=f"deadline {d:%b %Y}", showarrow=False, yshift=10,
                                   font=dict(size=11, color=theme.NHS_DARK_GREY))
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), height=height,
                      legend=dict(orientation="h", yanchor="top", y=-0.15, x=0),
                      yaxis=dict(title="Chance of meeting the target (%)", range=[0, 108], ticksuffix="%"))
    return fig


def register_figure(register_rows: pl.DataFrame) -> go.Figure:
    """The organisation's register as horizontal bars: chance of meeting each standard, coloured by risk band
    and labelled with it, most at risk at the top."""
    fig = go.Figure()
    if register_rows.is_empty():
        return fig
    rows = rank_register(register_rows)
    labels = [f"{name} ({when:%b %Y})" for name, when in zip(rows["standard_name"], rows["assessed_period"])]
    fig.add_trace(go.Bar(
        y=labels, x=chance_percents(rows["prob_meet_target"]), orientation="h", showlegend=False,
        marker_color=[band_colour(b) for b in rows["risk_band"]],
        marker_line=dict(color=theme.NHS_DARK_GREY, width=1),  # a pale bar still has an edge on white
        text=[f"{fmt_chance(p)} · {band_label(b).split(' (')[0].lower()}" for p, b in
              zip(rows["prob_meet_target"], rows["risk_band"])], textposition="outside", cliponaxis=False,
        customdata=rows.select("target_value", "p10", "p50", "p90").to_numpy(),
        hovertemplate="%{y}<br>%{x:.0f}% chance of meeting %{customdata[0]:.1f}; 8 in 10 futures between "
                      "%{customdata[1]:.1f} and %{customdata[3]:.1f}<extra></extra>"))
    fig.update_layout(height=max(260, 32 * rows.height + 80), margin=dict(r=140),
                      xaxis=dict(title="Chance of meeting the standard (%)", range=[0, 100], ticksuffix="%"),
                      yaxis=dict(autorange="reversed", automargin=True))
    return fig


def register_matrix(members: pl.DataFrame) -> pl.DataFrame:
    """Organisations x standards: the chance of meeting each primary standard (0-1), organisations ordered from
    the lowest average chance; for a heatmap of an ICB's or a region's members."""
    primary = members.filter(pl.col("is_primary"))
    if primary.is_empty():
        return pl.DataFrame()
    wide = primary.pivot(on="standard_name", index=["org_code", "org_name"], values="prob_meet_target",
                         aggregate_function="first")
    standards = sorted(c for c in wide.columns if c not in ("org_code", "org_name"))
    return (wide.with_columns(pl.mean_horizontal(standards).alias("_mean"))
            .sort("_mean", "org_code").drop("_mean").select("org_code", "org_name", *standards))


def register_heatmap(matrix: pl.DataFrame) -> go.Figure:
    """Heatmap of register_matrix on the theme's colour-blind-safe diverging scale (NHS orange for a low chance,
    pale grey at even odds, NHS dark blue for a high chance), every organisation's row labelled."""
    standards = [c for c in matrix.columns if c not in ("org_code", "org_name")]
    z = [[None if v is None else chance_percent(v) for v in row] for row in matrix.select(standards).rows()]
    labels = [f"{n} ({c})" for c, n in zip(matrix["org_code"], matrix["org_name"])]
    fig = go.Figure(go.Heatmap(
        z=z, x=standards, y=labels, zmin=0, zmax=100, colorscale=theme.DIVERGING_SCALE, xgap=2, ygap=2,
        text=[["" if v is None else f"{v}%" for v in row] for row in z], texttemplate="%{text}",
        colorbar=dict(title="Chance", ticksuffix="%"),
        hovertemplate="%{y}<br>%{x}<br>%{z:.0f}% chance<extra></extra>"))
    fig.update_layout(height=max(300, 30 * len(labels) + 160),
                      yaxis=dict(autorange="reversed", automargin=True, tickmode="array", tickvals=labels,
                                 ticktext=labels),  # plotly thins category labels to fit; a register names all
                      xaxis=dict(tickangle=-30, automargin=True, tickmode="array", tickvals=standards,
                                 ticktext=standards))
    return fig


# ---- tables a leader can take away (labels, not column names) --------------------------------------------------

def forecast_table(rows: pl.DataFrame) -> pl.DataFrame:
    """The fan chart's forecast figures with readable headings."""
    return rows.select(
        pl.col("period_start").alias("Month"), pl.col("horizon").alias("Months ahead"),
        pl.col("mean").round(2).alias("Forecast (central)"), pl.col("lo80").round(2).alias("80% range: low"),
        pl.col("hi80").round(2).alias("80% range: high"), pl.col("lo95").round(2).alias("95% range: low"),
        pl.col("hi95").round(2).alias("95% range: high"),
        pl.col("model").map_elements(model_plain, return_dtype=pl.String).alias("Model"),
        pl.col("forecast_origin").alias("Last actual month used"),
        (pl.col("status") if "status" in rows.columns else pl.lit("Forecast")).alias("Status"))


def risk_table(rows: pl.DataFrame) -> pl.DataFrame:
    """Risk by month with readable headings; probability as a percentage."""
    return rows.select(
        pl.col("standard_name").alias("Standard"), pl.col("period_start").alias("Month"),
        pl.col("is_deadline_month").alias("Deadline month"), pl.col("target_value").round(2).alias("Target"),
        pl.col("p10").round(2).alias("Low (p10)"), pl.col("p50").round(2).alias("Median (p50)"),
        pl.col("p90").round(2).alias("High (p90)"),
        chance_column().alias("Chance of meeting (%)"),
        pl.col("target_basis").alias("Target used"), pl.col("draws").alias("Simulated futures"))


def register_table(rows: pl.DataFrame, *, with_org: bool) -> pl.DataFrame:
    """A ranked register (rank_register first) with readable headings; organisation columns for areas."""
    org = [pl.col("org_code").alias("Code"), pl.col("org_name").alias("Organisation"),
           pl.col("org_level").alias("Level")] if with_org else []
    return rows.select(
        pl.col("rank").alias("Rank"), *org, pl.col("standard_name").alias("Standard"),
        chance_column().alias("Chance of meeting (%)"),
        pl.col("risk_band").map_elements(band_label, return_dtype=pl.String).alias("Risk"),
        pl.col("assessed_period").alias("Assessed at"), pl.col("assessed_basis").alias("Why that month"),
        pl.col("target_value").round(2).alias("Target"), pl.col("p10").round(2).alias("Low (p10)"),
        pl.col("p50").round(2).alias("Median (p50)"), pl.col("p90").round(2).alias("High (p90)"),
        pl.col("gap_p50").round(2).alias("Median minus target"), pl.col("metric_name").alias("Measure"))


def accuracy_table(rows: pl.DataFrame) -> pl.DataFrame:
    """Backtest accuracy of every forecast with readable headings."""
    return rows.select(
        pl.col("metric_name").alias("Measure"),
        pl.col("model").map_elements(model_plain, return_dtype=pl.String).alias("Model"),
        pl.col("mae").round(3).alias("Typical error (MAE)"), pl.col("unit").alias("Unit"),
        pl.col("mase").round(2).alias("MASE (below 1 = better than simple rule)"),
        pl.col("mase_benchmark").map_elements(benchmark_words, return_dtype=pl.String)
        .alias("Simple rule compared with"),
        (pl.col("coverage80") * 100).round(0).alias("Inside 80% range (%)"),
        (pl.col("coverage95") * 100).round(0).alias("Inside 95% range (%)"),
        pl.col("n_forecasts").alias("Test forecasts"), pl.col("horizon_max").alias("Up to months ahead"),
        pl.col("first_origin").alias("First test start"), pl.col("last_origin").alias("Last test start"),
        pl.col("history_months").alias("Months of history"))
