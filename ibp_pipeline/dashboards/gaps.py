"""The Gaps and needs page: how far each measure is from its target (s4_gaps.metric_gaps) and what it would take
to close the gap (s4_gaps.needs: waiting-list capacity, beds, tests, staff, cost, A&E).

Data functions read one organisation's rows; pure functions turn them into plain-English tables and the needs
chart, and are tested directly."""
from __future__ import annotations

import json
from datetime import date

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from . import theme
from .formatting import fmt_months, fmt_value, unit_words
from .serving import Serving

TREND_STATUS = {
    "meets_end_target": "Already meets the target",
    "improving": "Improving: reaches the target at the current trend",
    "not_at_current_trend": "Not at the current trend (flat or getting worse)",
    "too_few_points": "Too few months to judge a trend",
}
KIND = {"constitutional": "Constitutional standard", "planning_target": "Planning target"}
NEED_TYPES = {"waiting_list": "Waiting list capacity (RTT)", "beds": "Beds", "diagnostics": "Diagnostic tests",
              "workforce": "Staff", "cost": "Cost", "ae_4hr": "A&E four-hour standard"}

# One headline figure per need, in reading order: (need_type, measure, plain-English label).
HEADLINES: tuple[tuple[str, str, str], ...] = (
    ("waiting_list", "extra_capacity_needed", "Extra RTT clock stops a week over current removals"),
    ("beds", "beds_gap_at_92pct", "G&A beds short (+) or spare (-) to run at 92% occupancy"),
    ("diagnostics", "extra_tests_per_week", "Extra diagnostic tests a week to meet the 6-week standard in 26 weeks"),
    ("workforce", "extra_fte_for_beds", "Extra staff (FTE) to staff the extra beds like peers"),
    ("workforce", "extra_fte_cost_gbp_per_year", "Annual pay cost of those extra staff"),
    ("ae_4hr", "extra_within_4h_per_month", "Extra A&E patients a month seen within 4 hours to meet the target"),
)

QUEUE_EXPLANATION = (
    "A waiting list is a queue that shrinks only when more patients leave it each week than join it, so the "
    "capacity needed is the weekly demand, plus a small allowance for week-to-week ups and downs, plus enough extra "
    "to bring the list down within 26 weeks to the size at which the typical wait meets the 18-week standard "
    "(list size = weekly demand x mean wait, Little's law; the NHS-R waiting list method).")


def gap_table(db: Serving, org_code: str, period_to: date) -> pl.DataFrame:
    """Each measure's gap at its latest month on or before the end of the period, with its unit; whether the
    target is met is judged on the figures as shown (overview.judged_as_shown: 92.0% meets a 92% ceiling)."""
    from .overview import judged_as_shown

    return judged_as_shown(db.query("""
        select g.metric_id, coalesce(c.name, g.metric_name) as metric_name, c.unit, c.definition, g.period_start,
               g.value, g.numerator, g.denominator, g.standard_name, g.kind, g.direction, g.target_value,
               g.is_trajectory, g.end_target_value, g.deadline, g.gap_points, g.gap_pct, g.meets_target,
               g.trend_status, g.trend_slope_per_month, g.trend_points, g.months_to_target,
               g.projected_period_reaching_target, g.on_track_for_deadline, g.constitutional_target_value,
               g.constitutional_gap_points, g.constitutional_gap_pct, g.meets_constitutional, g.peer_median,
               g.peer_top_quartile, g.peer_top_quartile_gap_points, g.peer_n_orgs, g.national_top_quartile,
               g.national_top_quartile_gap_points, g.target_method, g.gap_method, g.trend_method,
               g.benchmark_method, c.source
        from s4_gaps.metric_gaps g
        left join s1_current_state.metric_catalogue c using (metric_id)
        where g.org_code = $org and g.period_start <= $to
        qualify row_number() over (partition by g.metric_id order by g.period_start desc) = 1
        order by case g.metric_id when 'ae_4hr_pct' then 0 when 'rtt_18wk_pct' then 1 when 'dm01_6wk_pct' then 2
                 when 'cancer_62d_pct' then 3 when 'cancer_31d_pct' then 4 else 5 end, g.metric_id""",
                    {"org": org_code, "to": period_to}))


def needs(db: Serving, org_code: str, period_to: date) -> pl.DataFrame:
    """The needs of the organisation, each need type at its latest month on or before the end of the period
    (needs are worked out for the latest month of each source, so months differ between types)."""
    return db.query("""
        select need_type, measure, description, result, unit, period_start, formula, inputs, assumptions, source,
               is_estimate
        from s4_gaps.needs
        where org_code = $org and period_start <= $to
        qualify period_start = max(period_start) over (partition by need_type)
        order by need_type, measure""", {"org": org_code, "to": period_to})


def need_months(db: Serving, org_code: str) -> pl.DataFrame:
    """Which months have needs for the organisation, per need type: to say where to move the period."""
    return db.query("select need_type, max(period_start) as latest from s4_gaps.needs where org_code = ? "
                    "group by need_type order by need_type", [org_code])


# ---- pure reshaping --------------------------------------------------------------------------------------------

def gap_display(gaps: pl.DataFrame) -> pl.DataFrame:
    """The gap table a leader reads: plain-English column names, trend statuses in words, and a gap that reads
    positive when short of the target (points for percentages)."""
    return gaps.select(
        pl.col("metric_name").alias("Measure"),
        pl.col("period_start").alias("Month"),
        pl.col("value").alias("Value"),
        pl.col("standard_name").alias("Standard or target"),
        pl.col("kind").replace_strict(KIND, default=pl.col("kind")).alias("Kind"),
        pl.col("target_value").alias("Target this month"),
        pl.col("gap_points").alias("Gap (points)"),
        pl.col("gap_pct").alias("Gap (% of target)"),
        pl.col("meets_target").alias("Meets target"),
        pl.col("trend_status").replace_strict(TREND_STATUS, default=pl.col("trend_status")).alias("Trend"),
        pl.col("trend_slope_per_month").alias("Change a month (points)"),
        pl.col("months_to_target").map_elements(fmt_months, return_dtype=pl.String).alias("Time to target at trend"),
        pl.col("projected_period_reaching_target").alias("Reaches target in"),
        pl.col("deadline").alias("Deadline"),
        pl.col("on_track_for_deadline").alias("On track for deadline"),
        pl.col("constitutional_target_value").alias("Constitutional standard"),
        pl.col("constitutional_gap_points").alias("Gap to constitutional standard (points)"),
        pl.col("peer_top_quartile").alias("Peer top quartile"),
        pl.col("peer_top_quartile_gap_points").alias("Gap to peer top quartile (points)"),
        pl.col("national_top_quartile").alias("National top quartile"),
        pl.col("national_top_quartile_gap_points").alias("Gap to national top quartile (points)"),
    )


MILESTONE_RESULT = {"met": "Met", "missed": "Missed", "not yet due": "Not yet due",
                    "not loaded": "Month over, figures not loaded yet",
                    "year incomplete": "Year average: months missing"}


def milestones(db: Serving, org_code: str) -> pl.DataFrame:
    """The organisation's planning milestones judged (s4_gaps.milestone_outcomes): the 2025/26 round's March
    2026 and the Medium Term Planning Framework's March 2027, 2028 and 2029; empty on an older served copy."""
    if not db.has_table("s4_gaps", "milestone_outcomes"):
        return pl.DataFrame()
    return db.query("""
        select standard_name, milestone_deadline, milestone_target_value, direction, averaged_over_financial_year,
               judged_on, judged_value, status, latest_period, latest_value
        from s4_gaps.milestone_outcomes where org_code = $org
        order by milestone_deadline, standard_name""", {"org": org_code})


def milestone_display(rows: pl.DataFrame) -> pl.DataFrame:
    """The milestones a board reads: when, what, the target, how it is judged, the result in words, and the
    latest figure loaded before it."""
    return rows.select(
        pl.col("milestone_deadline").dt.strftime("%B %Y").alias("Milestone"),
        pl.col("standard_name").alias("Standard"),
        pl.col("milestone_target_value").alias("Target"),
        pl.col("judged_on").str.replace("^the ", "").map_elements(lambda t: t[:1].upper() + t[1:],
                                                                  return_dtype=pl.String).alias("Judged on"),
        pl.col("judged_value").alias("Value"),
        pl.col("status").replace_strict(MILESTONE_RESULT, default=pl.col("status")).alias("Result"),
        pl.col("latest_value").alias("Latest figure"),
        pl.col("latest_period").dt.strftime("%B %Y").alias("Latest month loaded"),
    )


def gap_sentence(row: dict) -> str:
    """One plain line per measure: 'RTT ...: 57.1% in Mar 2025 against 92.0%, 34.9 points short; improving, at
    the current trend it reaches the target in about 289 months.' A trajectory met this month but short of its
    end target says so, rather than 'meets the target' beside a count of months to it."""
    fmt = (lambda v: f"{v:.1f}%") if row.get("unit") == "percent" else (lambda v: fmt_value(v, row.get("unit")))
    if row["value"] is None or row["target_value"] is None:
        return f"{row['metric_name']}: no target applies."
    gap = row["gap_points"] or 0.0
    text = (f"{row['metric_name']}: {fmt(row['value'])} in {row['period_start']:%b %Y} against "
            f"{fmt(row['target_value'])}, ")
    short = f"{abs(gap):.1f} points" if row.get("unit") == "percent" else fmt_value(abs(gap), row.get("unit"))
    text += "meets the target" if row["meets_target"] else f"{short} short"
    end = row.get("end_target_value")
    goal = "the target"
    if row.get("is_trajectory") and end is not None and end != row["target_value"]:
        goal = f"the end target of {fmt(end)}" + (f" due {row['deadline']:%b %Y}" if row.get("deadline") else "")
        text += " of this month's step on the trajectory"
    status = row.get("trend_status")
    if status == "improving" and row.get("months_to_target") is not None:
        when = fmt_months(row["months_to_target"])
        text += f"; improving, at the current trend it reaches {goal} in {when}" if when.startswith("about") else \
            f"; improving, but at the current trend it takes {when} to reach {goal}"
    elif status == "not_at_current_trend":
        text += f"; at the current trend it will not reach {goal}"
    elif status == "too_few_points":
        text += "; too few months to judge the trend"
    return text + "."


UNIT_WORDS = {"fte": "FTE", "gbp per year": "a year", "percent": "%"}


def format_need(value: float | None, unit: str | None) -> str:
    """A need's result with its unit in words: '£51,673 a year', '985 patients a week', '2.07 (ratio)'."""
    if value is None:
        return "-"
    unit = unit or ""
    if unit.startswith("gbp"):
        return f"£{value:,.0f}" + (" a year" if unit.endswith("per year") else "")
    if unit == "percent":
        return f"{value:.1f}%"
    if unit == "ratio":
        return f"{value:.2f} (ratio)"
    number = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"
    return f"{number} {UNIT_WORDS.get(unit) or unit_words(unit)}".strip()


def parse_inputs(text: str | None) -> dict:
    """The inputs column is a JSON object of the figures a need was worked out from; {} when missing or bad."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def needs_headline(need_rows: pl.DataFrame) -> pl.DataFrame:
    """One row per headline need (waiting list, beds, tests, staff, cost, A&E) the organisation has, in reading
    order, with the month, unit, formula, inputs and assumptions behind it."""
    rows = []
    for need_type, measure, label in HEADLINES:
        part = need_rows.filter((pl.col("need_type") == need_type) & (pl.col("measure") == measure))
        if part.is_empty():
            continue
        r = part.row(0, named=True)
        rows.append({"need": "Cost" if measure.endswith("_gbp_per_year") else NEED_TYPES.get(need_type, need_type),
                     "what": label, "result": r["result"], "unit": r["unit"], "month": r["period_start"],
                     "is_estimate": r["is_estimate"], "formula": r["formula"], "inputs": r["inputs"],
                     "assumptions": r["assumptions"], "source": r["source"], "need_type": need_type,
                     "measure": measure})
    schema = {"need": pl.String, "what": pl.String, "result": pl.Float64, "unit": pl.String, "month": pl.Date,
              "is_estimate": pl.Boolean, "formula": pl.String, "inputs": pl.String, "assumptions": pl.String,
              "source": pl.String, "need_type": pl.String, "measure": pl.String}
    return pl.DataFrame(rows, schema=schema)


def needs_chart_frame(need_rows: pl.DataFrame) -> pl.DataFrame:
    """What the needs chart draws: for each need type, today's level beside what is needed, in one unit per
    panel (need, label, value, unit, kind 'now' or 'needed'). Today's levels come from the inputs of the need;
    a need whose figures are all zero is left out."""
    def result(need_type: str, measure: str) -> tuple[float | None, dict]:
        part = need_rows.filter((pl.col("need_type") == need_type) & (pl.col("measure") == measure))
        if part.is_empty():
            return None, {}
        r = part.row(0, named=True)
        return r["result"], parse_inputs(r["inputs"])

    out: list[dict] = []

    def add(need: str, label: str, value: float | None, unit: str, kind: str) -> None:
        if value is not None:
            out.append({"need": need, "label": label, "value": float(value), "unit": unit, "kind": kind})

    demand, _ = result("waiting_list", "weekly_demand")
    clearances, _ = result("waiting_list", "weekly_clearances")
    hold, _ = result("waiting_list", "target_capacity")
    relief, _ = result("waiting_list", "relief_capacity")
    need = NEED_TYPES["waiting_list"]
    add(need, "Joining the list a week", demand, "patients per week", "now")
    add(need, "Removed from the list a week now", clearances, "patients per week", "now")
    add(need, "Capacity to hold the list at target size", hold, "patients per week", "needed")
    add(need, "Capacity to reach the target size in 26 weeks", relief, "patients per week", "needed")

    at92, inputs = result("beds", "beds_needed_at_92pct")
    at85, _ = result("beds", "beds_needed_at_85pct")
    need = NEED_TYPES["beds"]
    add(need, "G&A beds available now", inputs.get("ga_beds_available"), "beds", "now")
    add(need, "Beds needed at 92% occupancy", at92, "beds", "needed")
    add(need, "Beds needed at 85% occupancy", at85, "beds", "needed")

    extra_tests, inputs = result("diagnostics", "extra_tests_per_week")
    monthly = inputs.get("monthly_activity")
    need = NEED_TYPES["diagnostics"]
    add(need, "Tests a week now", monthly * 12 / 52 if monthly is not None else None, "tests per week", "now")
    add(need, "Extra tests a week needed", extra_tests, "tests per week", "needed")

    extra_fte, _ = result("workforce", "extra_fte_for_beds")
    extra_nurses, _ = result("workforce", "extra_nurse_fte_for_beds")
    need = NEED_TYPES["workforce"]
    add(need, "Extra staff for the extra beds (FTE)", extra_fte, "fte", "needed")
    add(need, "of whom nurses (FTE)", extra_nurses, "fte", "needed")

    extra_4h, inputs = result("ae_4hr", "extra_within_4h_per_month")
    need = NEED_TYPES["ae_4hr"]
    add(need, "Seen within 4 hours in the month now", inputs.get("within_4h"), "attendances per month", "now")
    if extra_4h is not None and inputs.get("within_4h") is not None:
        add(need, "Needed within 4 hours to meet the target", inputs["within_4h"] + extra_4h,
            "attendances per month", "needed")
    frame = pl.DataFrame(out, schema={"need": pl.String, "label": pl.String, "value": pl.Float64,
                                      "unit": pl.String, "kind": pl.String})
    # a panel of zeros (no extra staff when no beds are short) says nothing a chart can show: the table has it
    return frame.filter((pl.col("value") != 0).any().over("need"))


def needs_figure(chart: pl.DataFrame, height_per_panel: int = 150) -> go.Figure:
    """One small horizontal bar panel per need: grey for today, blue for what is needed."""
    panels = chart["need"].unique(maintain_order=True).to_list()
    if not panels:
        fig = go.Figure()
        fig.add_annotation(text="No needs to chart", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        return fig
    units = [chart.filter(pl.col("need") == p)["unit"][0] for p in panels]
    fig = make_subplots(rows=len(panels), cols=1, vertical_spacing=0.12 if len(panels) < 4 else 0.08,
                        subplot_titles=[f"{p} ({u.replace('fte', 'FTE')})" for p, u in zip(panels, units)])
    shown = set()
    for i, panel in enumerate(panels, start=1):
        part = chart.filter(pl.col("need") == panel)
        for kind, colour, name in (("now", theme.NHS_MID_GREY, "Today"), ("needed", theme.NHS_BLUE, "Needed")):
            sub = part.filter(pl.col("kind") == kind)
            if sub.is_empty():
                continue
            fig.add_trace(go.Bar(x=sub["value"].to_list(), y=sub["label"].to_list(), orientation="h", name=name,
                                 marker_color=colour, showlegend=kind not in shown, legendgroup=kind,
                                 hovertemplate="%{y}: %{x:,.0f}<extra></extra>"), row=i, col=1)
            shown.add(kind)
        fig.update_yaxes(autorange="reversed", row=i, col=1)
    fig.update_layout(height=max(300, height_per_panel * len(panels) + 80), barmode="group",
                      legend=dict(orientation="h", x=0, y=-0.04, yanchor="top"), margin=dict(t=40, b=50))
    return fig


GAP_BASES = {"target": ("gap_points", "meets_target", "Target that applies this month"),
             "constitutional": ("constitutional_gap_points", "meets_constitutional", "Constitutional standard"),
             "peer": ("peer_top_quartile_gap_points", None, "Peer-group top quartile"),
             "national": ("national_top_quartile_gap_points", None, "National top quartile")}


def gap_figure(gaps: pl.DataFrame, basis: str = "target", height: int = 340) -> go.Figure:
    """Horizontal bars of each measure's gap in points against the chosen comparator: red when short of it,
    green when at or past it (positive = short, as in s4_gaps)."""
    column, _, label = GAP_BASES[basis]
    frame = gaps.filter(pl.col(column).is_not_null())
    fig = go.Figure()
    if frame.is_empty():
        fig.add_annotation(text=f"No {label.lower()} to compare with", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
        return fig.update_layout(height=height)
    values = frame[column].to_list()
    fig.add_trace(go.Bar(x=values, y=frame["metric_name"].to_list(), orientation="h",
                         marker_color=[theme.NHS_RED if v > 0 else theme.NHS_GREEN for v in values],
                         customdata=[("short of it" if v > 0 else "at or better than it") for v in values],
                         hovertemplate="%{y}: %{x:.1f} points, %{customdata}<extra></extra>", name=label))
    fig.add_vline(x=0, line=dict(color=theme.NHS_BLACK, width=1))
    fig.update_layout(height=height, xaxis_title=f"Gap to the {label.lower()} (percentage points; right = short)",
                      yaxis=dict(autorange="reversed"), showlegend=False)
    return fig
