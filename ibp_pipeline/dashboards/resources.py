"""The Resources page: workforce, beds, discharge, virtual wards, estates, the estimated cost of activity and the
planner's ratios against peers, all from s3_resources (resource_map and activity_costs).

Data functions read one organisation's rows; pure functions reshape them for tables and build the figures, so
they are tested directly on small hand-made frames."""
from __future__ import annotations

from datetime import date

import plotly.graph_objects as go
import polars as pl

from . import theme
from .charts import with_gaps
from .formatting import meets
from .serving import Serving

# The NHS Workforce Statistics staff groups that add up to the total (doctors' grades are a breakdown of "HCHS
# doctors", and the three families are subtotals, so neither is summed with these): measure_id -> (label, family).
STAFF_GROUPS: dict[str, tuple[str, str]] = {
    "workforce_fte_hchs_doctors": ("Doctors (hospital and community)", "Professionally qualified clinical"),
    "workforce_fte_nurses_health_visitors": ("Nurses and health visitors", "Professionally qualified clinical"),
    "workforce_fte_midwives": ("Midwives", "Professionally qualified clinical"),
    "workforce_fte_ambulance_staff": ("Ambulance staff", "Professionally qualified clinical"),
    "workforce_fte_scientific_therapeutic_technical": ("Scientific, therapeutic and technical staff",
                                                       "Professionally qualified clinical"),
    "workforce_fte_support_to_doctors_nurses_midwives": ("Support to doctors, nurses and midwives",
                                                         "Support to clinical staff"),
    "workforce_fte_support_to_ambulance_staff": ("Support to ambulance staff", "Support to clinical staff"),
    "workforce_fte_support_to_stt_staff": ("Support to scientific, therapeutic and technical staff",
                                           "Support to clinical staff"),
    "workforce_fte_central_functions": ("Central functions", "NHS infrastructure support"),
    "workforce_fte_hotel_property_estates": ("Hotel, property and estates", "NHS infrastructure support"),
    "workforce_fte_senior_managers": ("Senior managers", "NHS infrastructure support"),
    "workforce_fte_managers": ("Managers", "NHS infrastructure support"),
    "workforce_fte_other_or_unknown": ("Other or unknown", "Other"),
}
FAMILY_COLOURS = {"Professionally qualified clinical": theme.NHS_BLUE,
                  "Support to clinical staff": theme.NHS_AQUA_GREEN,
                  "NHS infrastructure support": theme.NHS_PURPLE, "Other": theme.NHS_MID_GREY}
DOCTOR_GRADES: dict[str, str] = {
    "workforce_fte_consultant": "Consultants",
    "workforce_fte_associate_specialist": "Associate specialists",
    "workforce_fte_specialty_doctor": "Specialty doctors",
    "workforce_fte_staff_grade": "Staff grades",
    "workforce_fte_specialty_registrar": "Specialty registrars",
    "workforce_fte_core_training": "Core trainees",
    "workforce_fte_foundation_doctor_year_2": "Foundation doctors, year 2",
    "workforce_fte_foundation_doctor_year_1": "Foundation doctors, year 1",
    "workforce_fte_hospital_practitioner_clinical_assistant": "Hospital practitioners and clinical assistants",
    "workforce_fte_other_hchs_doctor_grades": "Other doctor grades",
}
# The planner's ratios, in reading order, with what "higher" means for a reader (no judgement where there is none).
RATIOS: dict[str, str] = {
    "fte_per_ga_bed": "Staff (all, whole time equivalent) per general and acute bed",
    "nurses_per_ga_bed": "Nurses and health visitors per general and acute bed",
    "hchs_doctors_per_ga_bed": "Doctors per general and acute bed",
    "consultants_per_ga_bed": "Consultants per general and acute bed",
    "ae_attendances_per_fte": "A&E attendances in the month per member of staff (FTE)",
    "ga_beds_per_100k_population": "General and acute beds per 100,000 people",
    "adult_critical_care_beds_per_100k_population": "Adult critical care beds per 100,000 people",
    "nctr_per_100_occupied_ga_beds": "Patients ready to leave but still in hospital, per 100 occupied beds",
    "vw_capacity_per_100k": "Virtual ward beds per 100,000 registered patients",
}
OCCUPANCY_STANDARD = 92.0  # NHS planning guidance: general and acute bed occupancy at or below 92%
ACTIVITY_TYPES = {"ae_attendances": "A&E attendances", "emergency_admissions": "Emergency admissions",
                  "elective_admissions": "Elective admissions (admitted RTT clock stops)",
                  "diagnostic_tests": "Diagnostic tests (DM01)"}
LEVEL_PLURAL = {"provider": "trusts", "icb": "ICBs", "region": "regions", "england": "organisations"}


def latest_measures(db: Serving, org_code: str, period_to: date) -> pl.DataFrame:
    """Each measure's latest value on or before the end of the period (estates: the one snapshot there is),
    with the peer and national medians resource_map already holds for that month."""
    return db.query("""
        select measure_group, measure_id, measure_name, unit, period_grain, period_start, value, numerator,
               denominator, numerator_measure, denominator_measure, formula, source, note, org_level,
               peer_group_label, peer_median, peer_count, national_median, national_count
        from s3_resources.resource_map
        where org_code = $org and (period_start <= $to or period_grain = 'snapshot')
        qualify row_number() over (partition by measure_id order by period_start desc) = 1
        order by measure_group, measure_id""", {"org": org_code, "to": period_to})


def measure_history(db: Serving, org_code: str, measure_ids: tuple[str, ...], period_from: date,
                    period_to: date) -> pl.DataFrame:
    """Monthly values of the given measures in the period, for trend charts."""
    return db.query("""
        select measure_id, measure_name, unit, period_start, value, numerator, denominator, peer_median,
               national_median
        from s3_resources.resource_map
        where org_code = $org and measure_id in (select unnest($ids::varchar[]))
          and period_start between $from and $to and period_grain = 'month'
        order by measure_id, period_start""",
                    {"org": org_code, "ids": list(measure_ids), "from": period_from, "to": period_to})


def activity_cost_months(db: Serving, org_code: str, period_from: date, period_to: date) -> pl.DataFrame:
    """Estimated cost of activity per month and activity type in the period: the type's total row only (all A&E
    attendances, all emergency admissions, all DM01 tests), so nothing is counted twice."""
    return db.query("""
        select period_start, financial_year, activity_type, activity_detail, activity, unit_cost_gbp,
               estimated_cost_gbp, price_base, method, source
        from s3_resources.activity_costs
        where org_code = $org and period_start between $from and $to
          and activity_detail in ('all', 'All DM01 tests')
        order by period_start, activity_type""", {"org": org_code, "from": period_from, "to": period_to})


def activity_cost_span(db: Serving, org_code: str) -> pl.DataFrame:
    """First and last month with an estimated cost per activity type, to say where to move the period."""
    return db.query("""
        select activity_type, min(period_start) as first_month, max(period_start) as last_month
        from s3_resources.activity_costs where org_code = ? group by activity_type order by activity_type""",
                    [org_code])


def diagnostic_test_costs(db: Serving, org_code: str, period_from: date, period_to: date) -> pl.DataFrame:
    """The DM01 tests priced one by one (the rows behind 'All DM01 tests'), summed over the period."""
    return db.query("""
        select activity_detail as test, sum(activity) as tests, any_value(unit_cost_gbp) as unit_cost_gbp,
               sum(estimated_cost_gbp) as estimated_cost_gbp, count(distinct period_start) as months,
               any_value(currency_codes) as currency_codes, any_value(method) as method
        from s3_resources.activity_costs
        where org_code = $org and period_start between $from and $to and activity_type = 'diagnostic_tests'
          and activity_detail <> 'All DM01 tests'
        group by activity_detail order by estimated_cost_gbp desc nulls last""",
                    {"org": org_code, "from": period_from, "to": period_to})


# ---- pure reshaping --------------------------------------------------------------------------------------------

def workforce_by_group(latest: pl.DataFrame) -> pl.DataFrame:
    """FTE by staff group (the groups that add up to the total), largest first, with each group's share of the
    staff-group total. Empty when the organisation has no staff-group breakdown."""
    part = latest.filter(pl.col("measure_id").is_in(list(STAFF_GROUPS)) & pl.col("value").is_not_null())
    if part.is_empty():
        return pl.DataFrame(schema={"staff_group": pl.String, "family": pl.String, "fte": pl.Float64,
                                    "share_pct": pl.Float64, "period_start": pl.Date, "peer_median": pl.Float64,
                                    "national_median": pl.Float64, "measure_id": pl.String})
    total = part["value"].sum()
    return (part.with_columns(
        pl.col("measure_id").replace_strict({k: v[0] for k, v in STAFF_GROUPS.items()}).alias("staff_group"),
        pl.col("measure_id").replace_strict({k: v[1] for k, v in STAFF_GROUPS.items()}).alias("family"),
        pl.col("value").alias("fte"),
        (100 * pl.col("value") / total if total else pl.lit(None, pl.Float64)).alias("share_pct"))
        .sort("fte", descending=True)
        .select("staff_group", "family", "fte", "share_pct", "period_start", "peer_median", "national_median",
                "measure_id"))


def doctor_grades(latest: pl.DataFrame) -> pl.DataFrame:
    """Doctors' FTE by grade (a breakdown of the doctors' staff group), largest first."""
    part = latest.filter(pl.col("measure_id").is_in(list(DOCTOR_GRADES)) & pl.col("value").is_not_null())
    return (part.with_columns(pl.col("measure_id").replace_strict(DOCTOR_GRADES).alias("grade"),
                              pl.col("value").alias("fte"))
            .sort("fte", descending=True).select("grade", "fte", "period_start", "measure_id"))


def ratio_comparison(latest: pl.DataFrame) -> pl.DataFrame:
    """The planner's ratios with the peer-group and national medians and how far the organisation sits from
    each, in percent of the median (+ above, - below). Only ratios the organisation has a value for."""
    part = latest.filter(pl.col("measure_id").is_in(list(RATIOS)) & pl.col("value").is_not_null())
    order = {m: i for i, m in enumerate(RATIOS)}

    def vs(median: str) -> pl.Expr:
        return (pl.when(pl.col(median).is_not_null() & (pl.col(median) != 0))
                .then(100 * (pl.col("value") - pl.col(median)) / pl.col(median)))

    return (part.with_columns(pl.col("measure_id").replace_strict(RATIOS).alias("ratio"),
                              vs("peer_median").alias("vs_peer_pct"), vs("national_median").alias("vs_national_pct"),
                              pl.col("measure_id").replace_strict(order).alias("_order"))
            .sort("_order")
            .select("ratio", "unit", "period_start", "value", "peer_median", "vs_peer_pct", "peer_count",
                    "national_median", "vs_national_pct", "national_count", "formula", "numerator", "denominator",
                    "source", "note", "measure_id"))


def missing_measures(latest: pl.DataFrame, wanted: dict[str, str]) -> list[str]:
    """Labels of the wanted measures the organisation has no value for, to say so plainly on the page."""
    have = set(latest.filter(pl.col("value").is_not_null())["measure_id"].to_list())
    return [label for measure_id, label in wanted.items() if measure_id not in have]


def occupancy_verdict(occupancy_pct: float | None, standard: float = OCCUPANCY_STANDARD) -> str:
    """'above 92%' style plain words on G&A bed occupancy against the planning standard."""
    if occupancy_pct is None:
        return "no occupancy figure"
    gap = round(occupancy_pct, 1) - standard  # judged on the figure as shown: 92.04% reads 92.0%, at the standard
    if not within_occupancy_standard(occupancy_pct, standard):
        return f"{gap:.1f} points above the {standard:g}% standard"
    if abs(gap) < 0.05:
        return f"at the {standard:g}% standard, which meets it"
    return f"within the {standard:g}% standard ({-gap:.1f} points below it)"


def within_occupancy_standard(occupancy_pct: float | None, standard: float = OCCUPANCY_STANDARD) -> bool | None:
    """At or below the standard on the figure as shown (one decimal place): equal to a ceiling meets it."""
    return meets(occupancy_pct, standard, "at_most", "percent")


def cost_summary(months: pl.DataFrame) -> pl.DataFrame:
    """Estimated cost per activity type over the months given: activity, cost, the average unit cost implied
    (cost / activity), the months covered (sources end at different months) and the price base."""
    if months.is_empty():
        return pl.DataFrame(schema={"activity": pl.String, "months": pl.UInt32, "first_month": pl.Date,
                                    "last_month": pl.Date, "activity_count": pl.Float64,
                                    "unit_cost_gbp": pl.Float64, "estimated_cost_gbp": pl.Float64,
                                    "price_base": pl.String, "method": pl.String})
    return (months.group_by("activity_type").agg(
        pl.col("period_start").n_unique().alias("months"), pl.col("period_start").min().alias("first_month"),
        pl.col("period_start").max().alias("last_month"), pl.col("activity").sum().alias("activity_count"),
        pl.col("estimated_cost_gbp").sum(), pl.col("price_base").first(), pl.col("method").first())
        .with_columns((pl.col("estimated_cost_gbp") / pl.col("activity_count")).alias("unit_cost_gbp"),
                      pl.col("activity_type").replace_strict(ACTIVITY_TYPES, default=pl.col("activity_type"))
                      .alias("activity"))
        .sort("estimated_cost_gbp", descending=True)
        .select("activity", "months", "first_month", "last_month", "activity_count", "unit_cost_gbp",
                "estimated_cost_gbp", "price_base", "method"))


# ---- figures ---------------------------------------------------------------------------------------------------

def titled(title: str) -> dict:
    """Layout for a figure with a title and the template's top legend: the title on its own line above the legend."""
    return dict(title=dict(text=title, x=0, xanchor="left", y=0.99, yanchor="top"), margin=dict(t=80 if title else 40))


def workforce_figure(groups: pl.DataFrame, title: str = "", height: int = 420) -> go.Figure:
    """Horizontal bars of FTE by staff group, coloured by staff family."""
    fig = go.Figure()
    frame = groups.sort("fte")
    for family, colour in FAMILY_COLOURS.items():
        part = frame.filter(pl.col("family") == family)
        if part.is_empty():
            continue
        fig.add_trace(go.Bar(x=part["fte"].to_list(), y=part["staff_group"].to_list(), orientation="h",
                             name=family, marker_color=colour, customdata=part["share_pct"].to_list(),
                             hovertemplate="%{y}: %{x:,.0f} FTE (%{customdata:.1f}% of staff)<extra></extra>"))
    fig.update_layout(**titled(title), height=height, xaxis_title="Whole-time equivalent staff (FTE)",
                      barmode="stack", yaxis=dict(categoryorder="array", categoryarray=frame["staff_group"].to_list()))
    return fig


def _step_months(frame: pl.DataFrame) -> int:
    """1 for a monthly series, 3 for a quarterly one (every period in Jan/Apr/Jul/Oct, none a month apart)."""
    months = sorted(set(frame["period_start"].drop_nulls().to_list()))
    steps = {(b.year - a.year) * 12 + b.month - a.month for a, b in zip(months, months[1:])}
    return 3 if steps and min(steps) >= 3 and all(m.month in (1, 4, 7, 10) for m in months) else 1


def trend_figure(history: pl.DataFrame, *, title: str = "", unit: str = "", threshold: float | None = None,
                 threshold_label: str = "", show_medians: bool = True, height: int = 340) -> go.Figure:
    """Monthly values of one or more measures (one line each), the national median of a single measure when
    asked, and a horizontal standard line (e.g. 92% occupancy)."""
    fig = go.Figure()
    suffix = "%" if unit == "percent" else ""
    for i, (name, part) in enumerate(history.sort("period_start").group_by("measure_name", maintain_order=True)):
        part = with_gaps(part.select("period_start", "value"), _step_months(part))  # a gap breaks the line
        fig.add_trace(go.Scatter(x=part["period_start"].to_list(), y=part["value"].to_list(), name=name[0],
                                 mode="lines+markers", marker=dict(size=4),
                                 line=dict(color=theme.SERIES[i % len(theme.SERIES)], width=2),
                                 hovertemplate="%{x|%b %Y}: %{y:,.1f}" + suffix + "<extra>" + name[0] + "</extra>"))
    names = history["measure_name"].unique().to_list()
    if show_medians and len(names) == 1 and history["national_median"].drop_nulls().len():
        h = with_gaps(history.sort("period_start").select("period_start", "national_median"), _step_months(history))
        fig.add_trace(go.Scatter(x=h["period_start"].to_list(), y=h["national_median"].to_list(),
                                 name="National median", mode="lines",
                                 line=dict(color=theme.NHS_MID_GREY, dash="dash", width=1.5),
                                 hovertemplate="%{x|%b %Y} national median %{y:,.1f}" + suffix + "<extra></extra>"))
    if threshold is not None:
        fig.add_hline(y=threshold, line=dict(color=theme.NHS_RED, dash="dot", width=2),
                      annotation_text=threshold_label, annotation_position="top left")
    fig.update_layout(**titled(title), height=height, yaxis_title=unit or None, hovermode="x unified")
    return fig


def ratio_figure(ratios: pl.DataFrame, height: int = 420) -> go.Figure:
    """Each ratio as a percent of the national median (100 = the median): the organisation and its peer-group
    median side by side, so ratios in different units share one axis."""
    frame = ratios.filter(pl.col("national_median").is_not_null() & (pl.col("national_median") != 0))
    fig = go.Figure()
    if frame.is_empty():
        fig.add_annotation(text="No national median to compare with", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
        return fig.update_layout(height=height)
    labels = frame["ratio"].to_list()
    own = (100 * frame["value"] / frame["national_median"]).to_list()
    fig.add_trace(go.Bar(y=labels, x=own, orientation="h", name="This organisation", marker_color=theme.NHS_BLUE,
                         customdata=frame.select("value", "national_median").to_numpy(),
                         hovertemplate="%{y}<br>%{customdata[0]:,.2f} = %{x:.0f}% of the national median "
                                       "%{customdata[1]:,.2f}<extra></extra>"))
    if frame["peer_median"].drop_nulls().len():
        peer = (100 * frame["peer_median"] / frame["national_median"]).to_list()
        fig.add_trace(go.Bar(y=labels, x=peer, orientation="h", name="Peer-group median",
                             marker_color=theme.NHS_LIGHT_BLUE,
                             customdata=frame.select("peer_median").to_numpy(),
                             hovertemplate="%{y}<br>peer median %{customdata[0]:,.2f} = %{x:.0f}% of the national "
                                           "median<extra></extra>"))
    fig.add_vline(x=100, line=dict(color=theme.NHS_BLACK, dash="dash", width=1.5),
                  annotation_text="National median = 100", annotation_position="top")
    fig.update_layout(height=height, barmode="group", xaxis_title="% of the national median",
                      yaxis=dict(autorange="reversed"))
    return fig


def cost_figure(months: pl.DataFrame, height: int = 360) -> go.Figure:
    """Stacked monthly bars of the estimated cost of activity by type (£ million)."""
    fig = go.Figure()
    colours = {"ae_attendances": theme.NHS_BLUE, "emergency_admissions": theme.NHS_DARK_PINK,
               "elective_admissions": theme.NHS_PURPLE, "diagnostic_tests": theme.NHS_AQUA_GREEN}
    for activity_type, label in ACTIVITY_TYPES.items():
        part = months.filter(pl.col("activity_type") == activity_type).sort("period_start")
        if part.is_empty():
            continue
        fig.add_trace(go.Bar(x=part["period_start"].to_list(), y=(part["estimated_cost_gbp"] / 1e6).to_list(),
                             name=label, marker_color=colours[activity_type],
                             customdata=part.select("activity", "unit_cost_gbp").to_numpy(),
                             hovertemplate="%{x|%b %Y}: £%{y:,.2f}m<br>%{customdata[0]:,.0f} x £%{customdata[1]:,.0f}"
                                           "<extra>" + label + "</extra>"))
    fig.update_layout(barmode="stack", height=height, yaxis_title="Estimated cost, £ million")
    return fig


def money(value: float | None) -> str:
    """£ in the size a reader takes in at a glance: £950, £13.8m, £23.7bn."""
    if value is None:
        return "-"
    if abs(value) >= 1e9:
        return f"£{value / 1e9:,.1f}bn"
    if abs(value) >= 1e6:
        return f"£{value / 1e6:,.1f}m"
    return f"£{value:,.0f}"


def measure_row(latest: pl.DataFrame, measure_id: str) -> dict | None:
    """The latest row of one measure as a dict, or None when the organisation has no value for it."""
    part = latest.filter((pl.col("measure_id") == measure_id) & pl.col("value").is_not_null())
    return part.row(0, named=True) if len(part) else None


def estates_backlog(latest: pl.DataFrame) -> pl.DataFrame:
    """Backlog maintenance cost by risk level (high first), from the ERIC snapshot."""
    levels = {"estates_backlog_high_risk_gbp": "High risk", "estates_backlog_significant_risk_gbp": "Significant risk",
              "estates_backlog_moderate_risk_gbp": "Moderate risk", "estates_backlog_low_risk_gbp": "Low risk"}
    order = {m: i for i, m in enumerate(levels)}
    return (latest.filter(pl.col("measure_id").is_in(list(levels)) & pl.col("value").is_not_null())
            .with_columns(pl.col("measure_id").replace_strict(levels).alias("risk"),
                          pl.col("measure_id").replace_strict(order).alias("_order"))
            .sort("_order").select("risk", pl.col("value").alias("cost_gbp"), "peer_median", "national_median",
                                   "period_start", "note", "measure_id"))


def backlog_figure(backlog: pl.DataFrame, height: int = 320) -> go.Figure:
    """Bars of the cost to clear backlog maintenance by risk level, red for high risk to grey for low."""
    colours = {"High risk": theme.NHS_RED, "Significant risk": theme.NHS_ORANGE, "Moderate risk": theme.NHS_WARM_YELLOW,
               "Low risk": theme.NHS_MID_GREY}
    fig = go.Figure(go.Bar(x=backlog["risk"].to_list(), y=(backlog["cost_gbp"] / 1e6).to_list(),
                           marker_color=[colours.get(r, theme.NHS_BLUE) for r in backlog["risk"].to_list()],
                           hovertemplate="%{x}: £%{y:,.1f}m<extra></extra>", name="Backlog"))
    fig.update_layout(height=height, yaxis_title="Cost to eradicate, £ million", showlegend=False)
    return fig
