"""Benchmarking: one organisation against its peer group and against every NHS trust (or every ICB) nationally.

Values are read exactly as step 2 built the benchmarks (benchmarks.metric_values_sql: NHS trusts and ICBs, plus
the ratio series '<metric>_pct_of_<denominator>'), so the bars and the medians drawn over them agree. Peer
groups come from s2_triple_aim.peer_groups; medians and quartiles from s2_triple_aim.benchmarks. The national
funnel plot puts each organisation's percentage against its denominator, with exact binomial control limits
around the national proportion (Spiegelhalter 2005)."""
from __future__ import annotations

import math
import re
from datetime import date

import numpy as np
import plotly.graph_objects as go
import polars as pl
from scipy.stats import binom

from ibp_pipeline.step2_triple_aim.benchmarks import metric_values_sql

from . import theme
from .organisations import plain_name
from .serving import Serving

DEFAULT_METRIC = "ae_4hr_pct"
SCOPE = {"provider": "national", "icb": "national_icb"}
COVERAGES = (0.95, 0.998)
LEGEND_BELOW = dict(orientation="h", yanchor="top", y=-0.15, x=0)  # as charts.py: title and legend never overlap
GREY = "#AEB7BD"  # the other organisations: a light NHS grey, so the selected one in NHS blue stands out
RATIO = re.compile(r"^(?P<num>.+)_pct_of_(?P<den>.+)$")
# Every value step 2 benchmarks, for every level: fixed SQL built by step 2 (no user input), filtered below
# with bound parameters.
VALUES_SQL = metric_values_sql(("provider", "icb", "region", "england"))


def comparison_level(org_level: str) -> str:
    """Trusts are compared with trusts; an ICB, a region or England is shown against the 42 ICBs."""
    return "provider" if org_level == "provider" else "icb"


def ratio_parts(metric_id: str) -> tuple[str, str] | None:
    """'rtt_52wk_waiters_pct_of_rtt_waiting_list' -> ('rtt_52wk_waiters', 'rtt_waiting_list'); None otherwise."""
    match = RATIO.match(metric_id)
    return (match["num"], match["den"]) if match else None


def metric_choices(db: Serving, level: str, org_code: str, period_to: date) -> pl.DataFrame:
    """Measures benchmarked at this level (national for trusts, national_icb for ICBs) by the end of the period
    that the organisation has a value for. Columns: metric_id, name, unit, higher_is_better, definition,
    formula, source."""
    return db.query(f"""
        with bench as (
            select metric_id, bool_or(higher_is_better) as higher_is_better
            from s2_triple_aim.benchmarks where scope = $scope and period_start <= $to group by metric_id),
        own as (select distinct metric_id from ({VALUES_SQL}) v where org_code = $org),
        ratio_names as (
            select metric_id, any_value(metric_name) as metric_name, any_value(unit) as unit,
                   any_value(formula) as formula
            from s2_triple_aim.scores where metric_id like '%\\_pct\\_of\\_%' escape '\\' group by metric_id)
        select b.metric_id, coalesce(c.name, r.metric_name, b.metric_id) as name,
               coalesce(c.unit, r.unit, 'percent') as unit, b.higher_is_better,
               coalesce(c.definition, r.metric_name) as definition,
               coalesce(r.formula, c.formula) as formula, c.source
        from bench b
        join own using (metric_id)
        left join s1_current_state.metric_catalogue c using (metric_id)
        left join ratio_names r using (metric_id)
        order by name""", {"scope": SCOPE[level], "org": org_code, "to": period_to})


def plain_words(text: str | None, names: dict[str, str]) -> str:
    """A catalogue definition with every measure id in it replaced by the measure's plain name (longest id
    first, whole words only), so no code reaches the page."""
    out = text or ""
    for metric_id in sorted(names, key=len, reverse=True):
        out = re.sub(rf"\b{re.escape(metric_id)}\b", names[metric_id].lower(), out)
    return out


def default_metric(metric_ids: list[str]) -> str | None:
    """A&E four-hour performance when offered, else the first measure; None when there is none."""
    if DEFAULT_METRIC in metric_ids:
        return DEFAULT_METRIC
    return metric_ids[0] if metric_ids else None


def benchmark_month(db: Serving, metric_id: str, level: str, period_to: date) -> date | None:
    """The latest period up to the end of the selection that has a national benchmark for the measure."""
    frame = db.query("select max(period_start) as m from s2_triple_aim.benchmarks where metric_id = $metric "
                     "and scope = $scope and period_start <= $to",
                     {"metric": metric_id, "scope": SCOPE[level], "to": period_to})
    return frame["m"][0]


def values_at(db: Serving, metric_id: str, level: str, month: date) -> pl.DataFrame:
    """Every NHS trust's (level 'provider') or ICB's value in one period, with names, ICB, region and peer
    group: the population the national benchmarks were computed over."""
    frame = db.query(f"""
        select v.org_code, coalesce(o.org_name, v.org_code) as org_name, v.value, v.numerator, v.denominator,
               o.parent_icb_code, o.region_code, p.peer_group_id, p.peer_group_label, p.comparison_type,
               p.trust_type_label
        from ({VALUES_SQL}) v
        left join s1_current_state.organisations o using (org_code)
        left join s2_triple_aim.peer_groups p using (org_code)
        where v.metric_id = $metric and v.period_start = $month and v.org_level = $level
        order by v.org_code""", {"metric": metric_id, "month": month, "level": level})
    return frame.with_columns(pl.col("org_name").map_elements(plain_name, return_dtype=pl.String))


def own_value(db: Serving, org_code: str, metric_id: str, month: date) -> float | None:
    """The selected organisation's value in that period (a region's or England's too), None without one."""
    frame = db.query(f"select value from ({VALUES_SQL}) v where org_code = $org and metric_id = $metric "
                     "and period_start = $month", {"org": org_code, "metric": metric_id, "month": month})
    return frame["value"][0] if frame.height else None


def benchmarks_at(db: Serving, metric_id: str, month: date) -> pl.DataFrame:
    """All benchmark rows of the measure in that period: national (trusts), national_icb and each peer group."""
    return db.query("""
        select b.scope, b.peer_group_id, g.peer_group_label, b.comparison_type, b.n_orgs, b.median,
               b.top_quartile, b.bottom_quartile, b.higher_is_better, b.period_grain, b.method
        from s2_triple_aim.benchmarks b
        left join (select distinct peer_group_id, peer_group_label from s2_triple_aim.peer_groups) g
               on g.peer_group_id = b.peer_group_id
        where b.metric_id = $metric and b.period_start = $month
        order by b.scope, b.peer_group_id""", {"metric": metric_id, "month": month})


def peer_group(db: Serving, org_code: str) -> pl.DataFrame:
    """The members of this trust's peer group with the features the grouping used (empty when the organisation
    is not a grouped trust)."""
    frame = db.query("""
        select p.org_code, p.org_name, p.trust_type, p.trust_type_label, p.comparison_type, p.type_source,
               p.peer_group_id, p.peer_group_label, p.n_members, p.assignment,
               p.ae_attendances_monthly, p.ga_beds, p.workforce_fte, p.deprivation, p.specialisation_pct_rank,
               p.ambulance_share, p.z_ae_attendances, p.z_ga_beds, p.z_workforce_fte, p.z_deprivation,
               p.z_specialisation, p.imputed
        from s2_triple_aim.peer_groups p
        where p.peer_group_id = (select peer_group_id from s2_triple_aim.peer_groups where org_code = $org)
        order by p.assignment <> 'clustered', p.org_name""", {"org": org_code})
    return frame.with_columns(pl.col("org_name").map_elements(plain_name, return_dtype=pl.String))


# ---- pure helpers ------------------------------------------------------------------------------------------


def benchmark_line(bench: pl.DataFrame, scope: str, column: str, peer_group_id: int | None = None,
                   comparison_type: str | None = None) -> float | None:
    """One figure of the benchmarks table (e.g. the median of the trusts of one type), None when absent."""
    rows = bench.filter(pl.col("scope") == scope)
    if peer_group_id is not None:
        rows = rows.filter(pl.col("peer_group_id") == peer_group_id)
    if comparison_type is not None:
        rows = rows.filter(pl.col("comparison_type") == comparison_type)
    return rows[column][0] if rows.height else None


def ranked(values: pl.DataFrame, higher_is_better: bool | None) -> pl.DataFrame:
    """Best first with a rank (1 = best, ties share the better rank); largest first for a measure with no
    better direction (volumes and capacity)."""
    if values.is_empty():
        return values.with_columns(pl.lit(None, dtype=pl.Int64).alias("rank"))
    descending = higher_is_better is not False
    return (values.filter(pl.col("value").is_not_null())
            .with_columns(pl.col("value").rank("min", descending=descending).cast(pl.Int64).alias("rank"))
            .sort("rank", "org_name"))


def funnel_limits(p: float, n: np.ndarray | float, coverage: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper control limits (as proportions) for a proportion from n cases when the true rate is p.

    Exact binomial quantiles smoothed by Spiegelhalter's interpolation (Statistics in Medicine 2005;24:1185-1202,
    Appendix A.1.1): r = the smallest count with P(R <= r) >= q, alpha = (P(R <= r) - q) / (P(R = r)), limit
    (r - alpha) / n. The upper limit is the mirror image, 1 - the lower limit for the rate 1 - p (n - R is
    binomial with 1 - p), so both limits agree with the exact tails: a count lies below the lower limit exactly
    when P(R <= count) < (1 - coverage) / 2, and above the upper one exactly when P(R >= count) is. Clipped to
    0..1; n is rounded to whole cases."""
    n = np.maximum(np.rint(np.asarray(n, dtype=float)), 1.0)
    tail = (1.0 - coverage) / 2.0

    def lower(rate: float) -> np.ndarray:
        r = binom.ppf(tail, n, rate)
        at = binom.cdf(r, n, rate)
        step = at - binom.cdf(r - 1, n, rate)
        alpha = np.divide(at - tail, step, out=np.zeros_like(n), where=step > 0)
        return (r - alpha) / n

    return np.clip(lower(p), 0.0, 1.0), np.clip(1.0 - lower(1.0 - p), 0.0, 1.0)


def national_proportion(values: pl.DataFrame) -> float | None:
    """The pooled national proportion: all numerators over all denominators (the funnel's centre line)."""
    den = values["denominator"].sum() if values.height else 0
    return float(values["numerator"].sum() / den) if den else None


def can_funnel(unit: str | None, values: pl.DataFrame) -> bool:
    """A funnel needs a percentage built from counts: numerator and denominator for every organisation, no
    numerator above its denominator, and a national proportion strictly between 0 and 1."""
    if (unit or "").lower() != "percent" or values.is_empty():
        return False
    if values["numerator"].null_count() or values["denominator"].null_count():
        return False
    if (values["denominator"] <= 0).any() or (values["numerator"] > values["denominator"]).any():
        return False
    p = national_proportion(values)
    return p is not None and 0.0 < p < 1.0


def position_label(value: float, lo95: float, hi95: float, lo998: float, hi998: float,
                   higher_is_better: bool | None) -> str:
    """Where a point sits in the funnel (value and limits on the same scale), and whether that is better or
    worse than the national rate by more than chance explains."""
    if value > hi998 or value < lo998:
        band = "beyond the 99.8% limit"
    elif value > hi95 or value < lo95:
        band = "beyond the 95% limit"
    else:
        return "Within the limits: consistent with the national rate"
    high = value > hi95
    side = "Above" if high else "Below"
    if higher_is_better is None:
        return f"{side}: {band}"
    better = high == bool(higher_is_better)
    return f"{side}: {band} ({'better' if better else 'worse'} than the national rate)"


def funnel_points(values: pl.DataFrame, p0: float, higher_is_better: bool | None) -> pl.DataFrame:
    """Each organisation with its 95% and 99.8% limits at its own denominator and its funnel position."""
    n = values["denominator"].to_numpy()
    cols = {}
    for coverage in COVERAGES:
        lo, hi = funnel_limits(p0, n, coverage)
        tag = "95" if coverage == 0.95 else "998"
        cols[f"lo{tag}"], cols[f"hi{tag}"] = 100 * lo, 100 * hi
    frame = values.with_columns(*(pl.Series(k, v) for k, v in cols.items()))
    return frame.with_columns(pl.struct("value", "lo95", "hi95", "lo998", "hi998").map_elements(
        lambda r: position_label(r["value"], r["lo95"], r["hi95"], r["lo998"], r["hi998"], higher_is_better),
        return_dtype=pl.String).alias("funnel_position"))


def funnel_curve(p0: float, n_min: float, n_max: float, points: int = 150) -> pl.DataFrame:
    """The funnel's limit lines over the range of denominators, spaced evenly on a log scale (in percent)."""
    lo_n = max(1.0, math.floor(n_min * 0.8))
    hi_n = max(lo_n + 1.0, math.ceil(n_max * 1.1))
    n = np.unique(np.rint(np.geomspace(lo_n, hi_n, points)))
    lo95, hi95 = funnel_limits(p0, n, 0.95)
    lo998, hi998 = funnel_limits(p0, n, 0.998)
    return pl.DataFrame({"n": n, "lo95": 100 * lo95, "hi95": 100 * hi95, "lo998": 100 * lo998,
                         "hi998": 100 * hi998})


def _size_word(z: float | None) -> str:
    if z is None or math.isnan(z):
        return "unknown"
    return "well above average" if z >= 1 else "above average" if z >= 0.4 else \
        "well below average" if z <= -1 else "below average" if z <= -0.4 else "about average"


def peer_reason(row: dict) -> str:
    """Why a trust sits in its group, in words: its type first, then its size and case mix against the average
    NHS trust (from the standardised features: how many standard deviations from the average trust)."""
    if (row.get("assignment") or "").startswith("fallback"):
        return "Not grouped: " + ("its type is not published" if row.get("trust_type") in (None, "other")
                                  else "too little data") + ", so it has no peers"
    size = _mean([row.get("z_ae_attendances"), row.get("z_ga_beds"), row.get("z_workforce_fte")])
    kind = row.get("trust_type_label") or "Trust of unknown type"
    parts = [f"{kind} trust", f"size {_size_word(size)} (A&E attendances, beds and staff)",
             f"deprivation of its patients {_size_word(row.get('z_deprivation'))}",
             f"specialisation {_size_word(row.get('z_specialisation'))}"]
    text = "; ".join(parts)
    if (row.get("assignment") or "").startswith("nearest"):
        text = "Closed, no recent data or no size band: placed in the most similar group of its type. " + text
    return text[:1].upper() + text[1:]


def _mean(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None and not math.isnan(x)]
    return sum(vals) / len(vals) if vals else None


ASSIGNMENT = {"clustered": "Grouped with the most similar trusts of its type",
              "type": "One group for the whole type (too few trusts of this type to split)",
              "nearest_group": "Not current (closed or no recent data): placed in the most similar group of its type",
              "nearest": "No published size band: placed in the most similar general acute group",
              "fallback": "Not grouped: no peers"}
GROUPING = ("Each trust is first given its type: acute (teaching, large, medium, small), acute specialist, "
            "specialist children's, community, mental health or ambulance, from the NHS Staff Survey 2024 "
            "benchmarking group and the size band of the 2019/20 estates return (ERIC); a trust formed by a merger "
            "since then takes its predecessors' type. Trusts are only ever grouped with trusts of the same type. "
            "A type with 20 or more current trusts is then split into two or three groups of at least six by size "
            "(A&E attendances, general and acute beds and staff), the deprivation of the patients and how "
            "specialised the work is; the group name says what separates them. Smaller types stay one group. "
            "'Above average' means more than about 0.4 standard deviations above the average NHS trust.")
SCOPES = {"national": "All NHS trusts", "type": "Trusts of the same type", "peer": "Peer group",
          "national_icb": "All ICBs"}


def members_table(members: pl.DataFrame) -> pl.DataFrame:
    """The peer group as a table a leader can take away: who is in it and the features that put them there."""
    rows = [{
        "Code": r["org_code"], "Name": r["org_name"], "Peer group": r["peer_group_label"],
        "Type": r.get("trust_type_label"), "Where the type comes from": r.get("type_source"),
        "Why in this group": peer_reason(r),
        "A&E attendances a month": r["ae_attendances_monthly"],
        "General and acute beds": r["ga_beds"],
        "Staff (full-time equivalent)": r["workforce_fte"],
        "Deprivation (IMD score)": r["deprivation"],
        "Specialisation (percentile)": None if r["specialisation_pct_rank"] is None
        else 100 * r["specialisation_pct_rank"],
        "How placed": ASSIGNMENT.get((r["assignment"] or "").split(" ")[0], r["assignment"]),
        "Data filled in": r["imputed"] or "Nothing filled in",
    } for r in members.iter_rows(named=True)]
    schema = {"Code": pl.String, "Name": pl.String, "Peer group": pl.String, "Type": pl.String,
              "Where the type comes from": pl.String, "Why in this group": pl.String,
              "A&E attendances a month": pl.Float64, "General and acute beds": pl.Float64,
              "Staff (full-time equivalent)": pl.Float64, "Deprivation (IMD score)": pl.Float64,
              "Specialisation (percentile)": pl.Float64, "How placed": pl.String, "Data filled in": pl.String}
    return pl.DataFrame(rows, schema=schema)


def comparison_table(frame: pl.DataFrame, n_total: int, unit: str | None) -> pl.DataFrame:
    """Ranked values (and the funnel position when there is one) with plain column names."""
    out = frame.select(
        pl.col("rank").alias("Rank"), pl.lit(n_total).alias("Out of"), pl.col("org_code").alias("Code"),
        pl.col("org_name").alias("Name"), pl.col("value").alias(f"Value ({unit or 'value'})"),
        pl.col("numerator").alias("Numerator"), pl.col("denominator").alias("Denominator"),
        pl.col("peer_group_label").alias("Peer group"))
    if frame["peer_group_label"].null_count() == frame.height:  # ICBs: no peer groups
        out = out.drop("Peer group")
    if "funnel_position" in frame.columns:
        out = out.with_columns(frame["lo998"].alias("Lower 99.8% limit"), frame["lo95"].alias("Lower 95% limit"),
                               frame["hi95"].alias("Upper 95% limit"), frame["hi998"].alias("Upper 99.8% limit"),
                               frame["funnel_position"].alias("Funnel position"))
    return out


# ---- figures -------------------------------------------------------------------------------------------------


def _suffix(unit: str | None) -> str:
    return "%" if (unit or "").lower() == "percent" else ""


def ranked_bar_figure(frame: pl.DataFrame, highlight: set[str] | frozenset[str],
                      lines: list[tuple[str, float | None, str]], *, unit: str | None = None, title: str = "",
                      value_label: str = "", horizontal: bool = True, order: str = "best first") -> go.Figure:
    """Ranked bars, best first, the highlighted organisations in NHS blue and the rest grey, with reference
    values (medians, quartiles) as labelled lines. Horizontal with names for a peer group; vertical without
    names (hover for them) for a national ranking of 100+ organisations."""
    fig = go.Figure()
    if frame.is_empty():
        fig.add_annotation(text="No organisation to show", showarrow=False, x=0.5, y=0.5, xref="paper",
                           yref="paper")
        return fig.update_layout(title=title, height=250)
    suffix = _suffix(unit)
    labels = [f"{n} ({c})" for n, c in zip(frame["org_name"], frame["org_code"])]
    colours = [theme.NHS_BLUE if c in highlight else GREY for c in frame["org_code"]]
    values = frame["value"].to_list()
    hover = "%{hovertext}<br>%{" + ("x" if horizontal else "y") + ":,.1f}" + suffix + \
        " · rank %{customdata}<extra></extra>"
    fig.add_trace(go.Bar(x=values if horizontal else labels, y=labels if horizontal else values,
                         orientation="h" if horizontal else "v", marker_color=colours, showlegend=False,
                         hovertext=labels, customdata=frame["rank"].to_list(), hovertemplate=hover))
    dashes = ["solid", "dash", "dot", "dashdot"]
    for i, (label, value, colour) in enumerate(lines):
        if value is None:
            continue
        ends = [labels[0], labels[-1]]
        fig.add_trace(go.Scatter(x=[value, value] if horizontal else ends, y=ends if horizontal else [value, value],
                                 mode="lines", name=f"{label}: {value:,.1f}{suffix}",
                                 line=dict(color=colour, dash=dashes[i % len(dashes)], width=2),
                                 hovertemplate=f"{label}: {value:,.1f}{suffix}<extra></extra>"))
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), bargap=0.25, hovermode="closest")
    if horizontal:  # a long list: the legend of the lines stays on top, where the reader starts
        fig.update_layout(height=max(260, 18 * frame.height + 140), xaxis_title=value_label or None,
                          yaxis=dict(range=[frame.height - 0.5, -0.5], automargin=True, tickfont=dict(size=11)),
                          margin=dict(l=10, r=10, t=70, b=10))
    else:
        fig.update_layout(height=460, yaxis_title=value_label or None, margin=dict(l=10, r=10, t=50, b=10),
                          xaxis=dict(showticklabels=False, title=f"Organisations, {order} (hover for names)",
                                     range=[-0.5, frame.height - 0.5]),
                          legend=LEGEND_BELOW)
    return fig


def log_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Ticks for a log axis from lo to hi at 1, 2 and 5 of each power of ten, written in full with thousands
    separators ('2,000', '100,000'): plotly's own read '2 3 4 ... 100k' on the funnel plot."""
    if not (lo > 0 and hi >= lo):
        return [], []
    vals = [m * 10 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1) for m in (1, 2, 5)]
    vals = [v for v in vals if lo / 1.5 <= v <= hi * 1.5]
    if len(vals) > 8:  # a wide range: powers of ten only
        vals = [v for v in vals if str(int(v)).startswith("1")] if all(v >= 1 for v in vals) else vals[::3]
    return vals, [f"{v:,.0f}" if v >= 1 else f"{v:g}" for v in vals]


def _denominators(points: pl.DataFrame) -> list[float]:
    """The organisations' denominators, for the axis ticks."""
    return [float(v) for v in points["denominator"].drop_nulls().to_list() if v and v > 0] \
        if "denominator" in points.columns else []


def funnel_figure(points: pl.DataFrame, curve: pl.DataFrame, p0: float, highlight: set[str] | frozenset[str], *,
                  title: str = "", x_title: str = "", y_title: str = "",
                  reference: tuple[str, float] | None = None) -> go.Figure:
    """A funnel plot: each organisation's percentage against its denominator, the national rate and the 95%
    and 99.8% limits, highlighted organisations in NHS blue and the rest grey; reference: an extra labelled
    level (a region's own rate) drawn across."""
    fig = go.Figure()
    n = curve["n"].to_list()
    for tag, name, dash, colour in (("998", "99.8% limits", "solid", theme.NHS_MID_GREY),
                                    ("95", "95% limits", "dash", theme.NHS_MID_GREY)):
        fig.add_trace(go.Scatter(x=n, y=curve[f"hi{tag}"], mode="lines", name=name, legendgroup=tag,
                                 line=dict(color=colour, dash=dash, width=1.5),
                                 hovertemplate=f"{name}: %{{y:.1f}}% at %{{x:,.0f}}<extra></extra>"))
        fig.add_trace(go.Scatter(x=n, y=curve[f"lo{tag}"], mode="lines", name=name, legendgroup=tag,
                                 showlegend=False, line=dict(color=colour, dash=dash, width=1.5),
                                 hovertemplate=f"{name}: %{{y:.1f}}% at %{{x:,.0f}}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[n[0], n[-1]], y=[100 * p0, 100 * p0], mode="lines",
                             name=f"National rate: {100 * p0:.1f}%", line=dict(color=theme.NHS_BLACK, width=2),
                             hoverinfo="skip"))
    if reference is not None:
        fig.add_trace(go.Scatter(x=[n[0], n[-1]], y=[reference[1]] * 2, mode="lines",
                                 name=f"{reference[0]}: {reference[1]:.1f}%",
                                 line=dict(color=theme.NHS_DARK_BLUE, width=2, dash="dot"), hoverinfo="skip"))
    for selected, name, colour, size in ((False, "Other organisations", GREY, 8),
                                         (True, "Selected", theme.NHS_BLUE, 13)):
        part = points.filter(pl.col("org_code").is_in(list(highlight)) == selected)
        if part.is_empty():
            continue
        fig.add_trace(go.Scatter(
            x=part["denominator"].to_list(), y=part["value"].to_list(), mode="markers", name=name,
            marker=dict(color=colour, size=size, line=dict(color=theme.NHS_WHITE, width=1)),
            text=[f"{a} ({b})" for a, b in zip(part["org_name"], part["org_code"])],
            customdata=part["funnel_position"].to_list(),
            hovertemplate="%{text}<br>%{y:.1f}% of %{x:,.0f}<br>%{customdata}<extra></extra>"))
    ticks = log_ticks(min(n + _denominators(points)), max(n + _denominators(points))) if n else ([], [])
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), height=500, hovermode="closest",
                      xaxis=dict(type="log", title=x_title or "Denominator", tickvals=ticks[0], ticktext=ticks[1]),
                      yaxis_title=y_title or "%",
                      margin=dict(l=10, r=10, t=50, b=10), legend=LEGEND_BELOW)
    return fig
