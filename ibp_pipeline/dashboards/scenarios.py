"""Scenarios: each scenario against the baseline, what drives the difference, which uncertainties matter most, and
what the initiatives cost against the chance of meeting the target.

Data functions read s6_scenarios (runs, results, comparison, drivers, sensitivity) and s5_impact.initiatives with
bound parameters, always from each scenario's latest run; pure helpers reshape them into waterfall steps and
tornado bars (tested directly with known answers) and build the figures."""
from __future__ import annotations

import re
from datetime import date

import plotly.graph_objects as go
import polars as pl

from . import theme
from .forecasts import metric_name_sql
from .formatting import chance_percents
from .organisations import plain_name
from .serving import Serving

# Each scenario's latest run (results are keyed by scenario and run id; a new run never overwrites an old one).
_LATEST = """latest as (
    select scenario, run_id from s6_scenarios.runs
    qualify row_number() over (partition by scenario order by run_at desc, run_id desc) = 1)"""

DRIVERS = {
    "demand": "Demand",
    "workforce_availability": "Staff available",
    "productivity": "Productivity",
    "demography": "Population change",
    "beds": "G&A beds",
    "funding": "Funding",
    "policy": "Demand diverted by national schemes",
    "policy_overrides": "New targets or deadlines",
    "occupancy_relation": "How much bed occupancy affects A&E (learned effect)",
    "interaction": "Drivers acting together (interaction)",
}
LEVELS = {"england": "England", "region": "region", "icb": "ICB", "provider": "trust"}
MEASURES = {"p50": "Median forecast (p50)", "prob": "Chance of meeting the target"}


def runs(db: Serving) -> pl.DataFrame:
    """The latest run of every scenario, baseline first: what it assumes (description, initiatives, policy
    overrides) and how it was run (version, draws, seed, when)."""
    return db.query(f"""
        with {_LATEST}
        select r.scenario, r.run_id, r.scenario_version, r.description, r.initiatives, r.policy_overrides,
               r.draws, r.seed, r.run_at, r.scenario_file, r.notes
        from s6_scenarios.runs r join latest using (scenario, run_id)
        order by r.scenario <> 'baseline', r.run_at, r.scenario""")


def coverage(db: Serving) -> pl.DataFrame:
    """Where baseline results exist: organisations and measures per level, with the measures' names (scenario
    results do not cover every organisation or measure, and the page says so)."""
    return db.query(f"""
        with {_LATEST},
        base as (select r.org_level, r.org_code, r.metric_id
                 from s6_scenarios.results r join latest using (scenario, run_id) where r.scenario = 'baseline'),
        names as (select d.metric_id, {metric_name_sql("d.metric_id")} as name
                  from (select distinct metric_id from base) d)
        select b.org_level, count(distinct b.org_code) as n_orgs, count(distinct b.metric_id) as n_metrics,
               string_agg(distinct n.name, '; ' order by n.name) as metrics
        from base b join names n using (metric_id)
        group by b.org_level
        order by case b.org_level when 'england' then 0 when 'region' then 1 when 'icb' then 2 else 3 end""")


def scenario_metrics(db: Serving, org_code: str) -> pl.DataFrame:
    """Measures with baseline scenario results for this organisation: metric_id, name, unit, whether a target
    applies (so a chance of meeting it exists), the standard and its deadline. Key standards first."""
    return db.query(f"""
        with {_LATEST}
        select r.metric_id, {metric_name_sql("r.metric_id")} as name,
               coalesce(c.unit, case when r.metric_id like '%pct%' then 'percent' end) as unit,
               count(r.prob_meet_target) > 0 as has_target, any_value(r.standard_id) as standard_id,
               any_value(s.name) as standard_name, any_value(s.deadline) as deadline
        from s6_scenarios.results r join latest using (scenario, run_id)
        left join s1_current_state.metric_catalogue c on c.metric_id = r.metric_id
        left join s2_triple_aim.standards s on s.standard_id = r.standard_id
        where r.scenario = 'baseline' and r.org_code = $org
        group by r.metric_id, c.name, c.unit
        order by case r.metric_id when 'ae_4hr_pct' then 0 when 'rtt_18wk_pct' then 1 when 'dm01_6wk_pct' then 2
                 when 'cancer_fds_pct' then 3 when 'cancer_62d_pct' then 4 when 'cancer_31d_pct' then 5
                 else 6 end, name""", {"org": org_code})


def comparison(db: Serving, org_code: str, metric_id: str, scenarios: tuple[str, ...]) -> pl.DataFrame:
    """Each chosen scenario against the baseline, month by month: target, median (p50), chance of meeting the
    target and cost, baseline and scenario side by side (s6_scenarios.comparison)."""
    return db.query(f"""
        with {_LATEST}
        select c.scenario, c.period_start, c.horizon, c.standard_id, c.target_baseline, c.target_scenario,
               c.p50_baseline, c.p50_scenario, c.delta_p50, c.prob_baseline, c.prob_scenario, c.delta_prob,
               c.cost_baseline, c.cost_scenario, c.delta_cost, c.run_id, c.scenario_version
        from s6_scenarios.comparison c join latest using (scenario, run_id)
        where c.org_code = $org and c.metric_id = $metric and list_contains($scenarios, c.scenario)
        order by c.scenario, c.period_start""",
        {"org": org_code, "metric": metric_id, "scenarios": list(scenarios)})


def drivers(db: Serving, org_code: str, metric_id: str, scenario: str) -> pl.DataFrame:
    """The change from baseline split by driver (each driver alone, then their interaction), for every month
    the split was computed (deadlines, year ends, the last month)."""
    return db.query(f"""
        with {_LATEST}
        select d.period_start, d.component, d.component_group, d.step, d.delta_p50, d.delta_prob, d.delta_cost,
               d.total_delta_p50, d.total_delta_prob, d.total_delta_cost, d.p50_baseline, d.p50_scenario,
               d.prob_baseline, d.prob_scenario
        from s6_scenarios.drivers d join latest using (scenario, run_id)
        where d.org_code = $org and d.metric_id = $metric and d.scenario = $scenario
        order by d.period_start, d.step""", {"org": org_code, "metric": metric_id, "scenario": scenario})


def sensitivity(db: Serving, org_code: str, metric_id: str, scenario: str) -> pl.DataFrame:
    """One-at-a-time sensitivities: each driver at its low and high setting, others at their central value."""
    return db.query(f"""
        with {_LATEST}
        select s.period_start, s.driver, s.driver_group, s.setting_unit, s.low_setting, s.high_setting,
               s.p50_baseline, s.p50_at_low, s.p50_at_high, s.prob_baseline, s.prob_at_low, s.prob_at_high,
               s.swing_p50, s.swing_prob, s.rank_by_swing
        from s6_scenarios.sensitivity s join latest using (scenario, run_id)
        where s.org_code = $org and s.metric_id = $metric and s.scenario = $scenario
        order by s.period_start, s.rank_by_swing""", {"org": org_code, "metric": metric_id, "scenario": scenario})


def cost_probability(db: Serving, org_code: str, metric_id: str, period_start: date) -> pl.DataFrame:
    """Per scenario in one month: the chance of meeting the target and the median for this measure, and the
    organisation's cost of the scenario's initiatives. Costs are recorded once, on the row of the measure the
    initiative acts on, so the organisation's cost is the sum over all its measures that month (monthly_cost),
    x 12 for a yearly rate (annual_cost), and summed over the forecast months up to this one (cost_to_date)."""
    return db.query(f"""
        with {_LATEST},
        res as (select r.* from s6_scenarios.results r join latest using (scenario, run_id)
                where r.org_code = $org),
        cost as (select scenario, sum(cost_gbp) filter (where period_start = $month) as monthly_cost,
                        sum(cost_gbp) filter (where period_start <= $month) as cost_to_date
                 from res group by scenario)
        select m.scenario, m.period_start, m.target_value, m.p10, m.p50, m.p90, m.prob_meet_target,
               coalesce(c.monthly_cost, 0) as monthly_cost, 12 * coalesce(c.monthly_cost, 0) as annual_cost,
               coalesce(c.cost_to_date, 0) as cost_to_date
        from res m left join cost c using (scenario)
        where m.metric_id = $metric and m.period_start = $month
        order by m.scenario <> 'baseline', m.scenario""",
        {"org": org_code, "metric": metric_id, "month": period_start})


def initiative_effects(db: Serving, metric_id: str) -> pl.DataFrame:
    """Catalogue initiatives with an effect on this measure that the simulation uses: yearly cost per unit and
    the effect per unit as an 80% interval (s5_impact.initiatives)."""
    return db.query("""
        select initiative_id, name, unit, cost_per_unit_gbp, capital_cost_per_unit_gbp,
               revenue_cost_per_unit_gbp_per_year, asset_life_years, cost_formula, ramp_up_months, effect_low,
               effect_high, effect_interval, effect_unit, scales_with_trust_beds, relation_id, use_reason, evidence
        from s5_impact.initiatives
        where effect_metric_id = $metric and use_for_simulation
        order by cost_per_unit_gbp""", {"metric": metric_id})


def initiative_names(db: Serving) -> dict[str, str]:
    """initiative_id -> name, to label 'initiative:...' drivers."""
    frame = db.query("select distinct initiative_id, name from s5_impact.initiatives order by initiative_id")
    return dict(zip(frame["initiative_id"].to_list(), frame["name"].to_list()))


def org_name(db: Serving, org_code: str) -> str:
    frame = db.query("select org_name from s1_current_state.organisations where org_code = ?", [org_code])
    return plain_name(frame["org_name"][0]) if not frame.is_empty() else org_code


# ---- pure helpers ----------------------------------------------------------------------------------------------

def scenario_label(code: str) -> str:
    """'demand_surge' -> 'Demand surge'."""
    return code.replace("_", " ").capitalize()


def driver_label(code: str, initiatives: dict[str, str] | None = None) -> str:
    """Plain name of a driver or component: 'initiative:virtual_ward_places' -> 'Initiative: Expand virtual ward
    (hospital at home) capacity'; unknown codes read with spaces for underscores."""
    if code.startswith("initiative:"):
        key = code.split(":", 1)[1]
        return f"Initiative: {(initiatives or {}).get(key, key.replace('_', ' '))}"
    return DRIVERS.get(code, code.replace("_", " ").capitalize())


def initiative_level(initiatives_text: str | None) -> str | None:
    """The level a scenario applies its initiatives at ('... at provider: ...' -> 'provider'), None if none."""
    if not initiatives_text:
        return None
    found = re.search(r"\bat (provider|icb|region|england)\b", initiatives_text)
    return found.group(1) if found else None


def waterfall_steps(rows: pl.DataFrame, measure: str, initiatives: dict[str, str] | None = None) -> pl.DataFrame:
    """Waterfall bars for one month of s6_scenarios.drivers: the baseline, each component's change in order of
    step, and the scenario total. measure 'p50' (the median) or 'prob' (chance of meeting the target, 0-1).

    Columns: label, kind ('absolute' | 'relative' | 'total', as plotly's Waterfall measure), value, running
    (level after the bar). A residual step is added only if the components do not add up to the total."""
    if rows.is_empty():
        return pl.DataFrame(schema={"label": pl.String, "kind": pl.String, "value": pl.Float64,
                                    "running": pl.Float64})
    rows = rows.sort("step")
    base = rows[f"{measure}_baseline"][0]
    final = rows[f"{measure}_scenario"][0]
    labels = ["Baseline"] + [driver_label(c, initiatives) for c in rows["component"]]
    kinds = ["absolute"] + ["relative"] * rows.height
    values = [base] + rows[f"delta_{measure}"].to_list()
    residual = final - sum(values)
    if abs(residual) > 1e-6 * max(1.0, abs(final)):
        labels.append("Not explained by the components (rounding)")
        kinds.append("relative")
        values.append(residual)
    labels.append("Scenario")
    kinds.append("total")
    values.append(final)
    running, level = [], 0.0
    for kind, value in zip(kinds, values):
        level = value if kind in ("absolute", "total") else level + value
        running.append(level)
    return pl.DataFrame({"label": labels, "kind": kinds, "value": values, "running": running})


def tornado_rows(rows: pl.DataFrame, measure: str, initiatives: dict[str, str] | None = None) -> pl.DataFrame:
    """Tornado bars for one month of s6_scenarios.sensitivity, largest swing first: label, setting range,
    value at the low and high setting, the baseline (centre) and the swing (|high - low|).
    measure 'p50' or 'prob'."""
    if rows.is_empty():
        return pl.DataFrame(schema={"driver": pl.String, "label": pl.String, "low_setting": pl.Float64,
                                    "high_setting": pl.Float64, "setting_unit": pl.String, "at_low": pl.Float64,
                                    "at_high": pl.Float64, "baseline": pl.Float64, "swing": pl.Float64})
    return (rows.select(
        "driver",
        pl.col("driver").map_elements(lambda d: driver_label(d, initiatives), return_dtype=pl.String).alias("label"),
        "low_setting", "high_setting", "setting_unit",
        pl.col(f"{measure}_at_low").alias("at_low"), pl.col(f"{measure}_at_high").alias("at_high"),
        pl.col(f"{measure}_baseline").alias("baseline"))
        .with_columns((pl.col("at_high") - pl.col("at_low")).abs().alias("swing"))
        .sort(["swing", "driver"], descending=[True, False]))


def month_options(drivers_rows: pl.DataFrame, sensitivity_rows: pl.DataFrame) -> list[date]:
    """Months that have a driver split or sensitivities, oldest first."""
    months = set(drivers_rows["period_start"].to_list()) | set(sensitivity_rows["period_start"].to_list())
    return sorted(months)


def scenario_colours(scenarios: list[str]) -> dict[str, str]:
    """One colour per scenario, the same in every chart: baseline NHS black, the others in the NHS series order."""
    others = [s for s in scenarios if s != "baseline"]
    return {"baseline": theme.NHS_BLACK} | {s: theme.SERIES[i % len(theme.SERIES)] for i, s in enumerate(others)}


LEGEND_BELOW = dict(orientation="h", yanchor="top", y=-0.18, x=0)


def scale(measure: str) -> float:
    """Probabilities are stored 0-1 and shown as percentages."""
    return 100.0 if measure == "prob" else 1.0


# ---- tables ----------------------------------------------------------------------------------------------------

def comparison_table(rows: pl.DataFrame) -> pl.DataFrame:
    """The comparison with readable headings; chances as percentages, changes in percentage points."""
    return rows.select(
        pl.col("scenario").map_elements(scenario_label, return_dtype=pl.String).alias("Scenario"),
        pl.col("period_start").alias("Month"),
        pl.col("target_baseline").round(2).alias("Target (baseline)"),
        pl.col("target_scenario").round(2).alias("Target (scenario)"),
        pl.col("p50_baseline").round(2).alias("Median, baseline"),
        pl.col("p50_scenario").round(2).alias("Median, scenario"),
        pl.col("delta_p50").round(2).alias("Change in median"),
        (pl.col("prob_baseline") * 100).round(1).alias("Chance, baseline (%)"),
        (pl.col("prob_scenario") * 100).round(1).alias("Chance, scenario (%)"),
        (pl.col("delta_prob") * 100).round(1).alias("Change in chance (points)"),
        pl.col("cost_scenario").round(0).alias("Cost this month, scenario (£)"),
        pl.col("delta_cost").round(0).alias("Extra cost this month (£)"))


def cost_table(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.select(
        pl.col("scenario").map_elements(scenario_label, return_dtype=pl.String).alias("Scenario"),
        pl.col("period_start").alias("Month"), pl.col("target_value").round(2).alias("Target"),
        pl.col("p50").round(2).alias("Median (p50)"),
        (pl.col("prob_meet_target") * 100 + 0.5 + 1e-9).floor().cast(pl.Int64).alias("Chance of meeting (%)"),
        pl.col("monthly_cost").round(0).alias("Cost that month (£)"),
        pl.col("annual_cost").round(0).alias("Yearly rate (£, 12 x that month)"),
        pl.col("cost_to_date").round(0).alias("Cost to that month (£)"))


def initiatives_table(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.select(
        pl.col("name").alias("Initiative"), pl.col("unit").alias("Unit"),
        pl.col("cost_per_unit_gbp").round(0).alias("Cost per unit a year (£)"),
        pl.col("effect_low").round(3).alias("Effect per unit: low (p10)"),
        pl.col("effect_high").round(3).alias("Effect per unit: high (p90)"),
        pl.col("effect_unit").alias("Effect measured as"), pl.col("ramp_up_months").alias("Months to full effect"),
        pl.col("use_reason").alias("Where the effect comes from"), pl.col("cost_formula").alias("Cost formula"))


# ---- figures ---------------------------------------------------------------------------------------------------

def _suffix(measure: str, unit: str | None) -> str:
    return "%" if measure == "prob" or unit == "percent" else ""


def comparison_figure(rows: pl.DataFrame, measure: str, unit: str | None, colours: dict[str, str] | None = None,
                      *, height: int = 420) -> go.Figure:
    """Baseline (black) and each scenario over the months; for the median, the target lines too (dotted)."""
    fig = go.Figure()
    colours = colours or scenario_colours(rows["scenario"].unique(maintain_order=True).to_list())
    if rows.is_empty():
        return fig
    k, suffix = scale(measure), _suffix(measure, unit)
    first = rows.filter(pl.col("scenario") == rows["scenario"][0]).sort("period_start")
    x = first["period_start"].to_list()
    if measure == "p50" and first["target_baseline"].is_not_null().any():
        fig.add_trace(go.Scatter(x=x, y=first["target_baseline"], name="Target (baseline)", mode="lines",
                                 line=dict(color=theme.NHS_RED, dash="dot", width=2),
                                 hovertemplate="%{x|%b %Y} target %{y:.1f}" + suffix + "<extra></extra>"))
    fig.add_trace(go.Scatter(x=x, y=(first[f"{measure}_baseline"] * k).to_list(), name="Baseline", mode="lines",
                             line=dict(color=theme.NHS_BLACK, width=3),
                             hovertemplate="%{x|%b %Y} baseline %{y:.1f}" + suffix + "<extra></extra>"))
    for (scenario,), part in rows.sort("period_start").group_by("scenario", maintain_order=True):
        if scenario == "baseline":
            continue
        colour = colours.get(scenario, theme.NHS_MID_GREY)
        fig.add_trace(go.Scatter(
            x=part["period_start"].to_list(), y=(part[f"{measure}_scenario"] * k).to_list(),
            name=scenario_label(scenario), mode="lines", line=dict(color=colour, width=2),
            hovertemplate="%{x|%b %Y} " + scenario_label(scenario) + " %{y:.1f}" + suffix + "<extra></extra>"))
        differs = (part["target_scenario"] - part["target_baseline"]).abs().fill_null(0).max()
        if measure == "p50" and differs and differs > 1e-9:
            fig.add_trace(go.Scatter(
                x=part["period_start"].to_list(), y=part["target_scenario"], mode="lines",
                name=f"Target ({scenario_label(scenario)})", line=dict(color=colour, dash="dot", width=2),
                hovertemplate="%{x|%b %Y} target %{y:.1f}" + suffix + "<extra></extra>"))
    title = MEASURES[measure]
    fig.update_layout(height=height, title=dict(text=title, x=0, xanchor="left"), legend=LEGEND_BELOW,
                      yaxis=dict(title=title, ticksuffix=suffix, **({"range": [0, 100]} if measure == "prob" else {})))
    return fig


def waterfall_figure(steps: pl.DataFrame, measure: str, unit: str | None, *, title: str = "",
                     height: int = 380) -> go.Figure:
    """plotly Waterfall: baseline, each driver's change (green helps, red harms), scenario total."""
    k, suffix = scale(measure), _suffix(measure, unit)
    values = (steps["value"] * k).to_list()
    change = " pts" if suffix == "%" else ""  # a change in a percentage is in percentage points
    text = [f"{v:.1f}{suffix}" if kind != "relative" else f"{v:+.2f}{change}"
            for v, kind in zip(values, steps["kind"])]
    fig = go.Figure(go.Waterfall(
        x=steps["label"].to_list(), measure=steps["kind"].to_list(), y=values, text=text, textposition="outside",
        connector=dict(line=dict(color=theme.NHS_MID_GREY, width=1)),
        increasing=dict(marker=dict(color=theme.NHS_GREEN if measure == "prob" else theme.NHS_AQUA_BLUE)),
        decreasing=dict(marker=dict(color=theme.NHS_RED if measure == "prob" else theme.NHS_ORANGE)),
        totals=dict(marker=dict(color=theme.NHS_BLUE)),
        hovertemplate="%{x}: %{y:.2f}" + suffix + "<extra></extra>"))
    levels = (steps["running"] * k).to_list()
    span = (max(levels) - min(levels)) or abs(max(levels)) * 0.1 or 1.0
    # a chance is shown on its whole 0-100% scale; a median is zoomed on the changes (the axis says where)
    y_range = ([0, min(100.0, max(levels) + max(5.0, span))] if measure == "prob"
               else [min(levels) - span * 0.6, max(levels) + span * 0.6])
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), height=height, showlegend=False,
                      yaxis=dict(title=MEASURES[measure], ticksuffix=suffix, range=y_range),
                      xaxis=dict(automargin=True))
    return fig


def tornado_figure(bars: pl.DataFrame, measure: str, unit: str | None, *, title: str = "") -> go.Figure:
    """Tornado: for each driver a bar from the baseline to the value at its low setting and one to its high
    setting; largest swing at the top."""
    k, suffix = scale(measure), _suffix(measure, unit)
    base = bars["baseline"][0] * k
    fig = go.Figure()
    for col, setting, name, colour in (("at_low", "low_setting", "Driver at its low setting", theme.NHS_LIGHT_BLUE),
                                       ("at_high", "high_setting", "Driver at its high setting", theme.NHS_DARK_BLUE)):
        fig.add_trace(go.Bar(
            y=bars["label"].to_list(), x=[v * k - base for v in bars[col]], base=base, orientation="h", name=name,
            marker_color=colour, customdata=bars.select(setting, "setting_unit", pl.col(col) * k).to_numpy(),
            hovertemplate="%{y}<br>setting %{customdata[0]:.2f} (%{customdata[1]}): %{customdata[2]:.1f}"
                          + suffix + "<extra></extra>"))
    fig.add_vline(x=base, line=dict(color=theme.NHS_BLACK, width=1.5))
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), barmode="overlay", legend=LEGEND_BELOW,
                      height=max(300, 44 * bars.height + 160),
                      xaxis=dict(title=f"{MEASURES[measure]} (centre line: all drivers at their central value)",
                                 ticksuffix=suffix),
                      yaxis=dict(autorange="reversed", automargin=True))
    return fig


def has_costs(points: pl.DataFrame) -> bool:
    """Whether any scenario has a yearly cost here: six dots at £0 say nothing, so the page says so instead."""
    return "annual_cost" in points.columns and bool(points["annual_cost"].fill_null(0).abs().max() or 0)


def cost_figure(points: pl.DataFrame, colours: dict[str, str] | None = None, *, title: str = "") -> go.Figure:
    """Scenarios as points: yearly cost of their initiatives at this organisation (x) against the chance of
    meeting the target (y); baseline in black; names in the legend, and on the point when it has a cost."""
    colours = colours or scenario_colours(points["scenario"].to_list())
    fig = go.Figure()
    for row in points.iter_rows(named=True):
        name = scenario_label(row["scenario"])
        fig.add_trace(go.Scatter(
            x=[row["annual_cost"]], y=chance_percents([row["prob_meet_target"]]), name=name,
            mode="markers+text" if row["annual_cost"] else "markers", text=[name], textposition="top center",
            marker=dict(size=14, color=colours.get(row["scenario"], theme.NHS_MID_GREY),
                        line=dict(color=theme.NHS_WHITE, width=1)),
            hovertemplate=name + ": £%{x:,.0f} a year, %{y:.0f}% chance<extra></extra>"))
    top = max([0.0] + points["annual_cost"].to_list()) or 1.0
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), height=420, legend=LEGEND_BELOW,
                      xaxis=dict(title="Yearly cost of the scenario's initiatives here (£)", tickprefix="£",
                                 range=[-0.08 * top, 1.15 * top]),
                      yaxis=dict(title="Chance of meeting the target (%)", ticksuffix="%", range=[0, 105]))
    return fig


def effect_per_million(rows: pl.DataFrame) -> pl.DataFrame:
    """Effect on the measure per £1 million a year, low and high (80% interval) and middle, assuming the effect
    grows in proportion to spend: effect per unit / yearly cost per unit x 1,000,000. Makes initiatives with
    different units (10 beds, 10 nurses, 10 virtual ward places) comparable."""
    per = 1_000_000 / pl.col("cost_per_unit_gbp")
    return (rows.filter(pl.col("cost_per_unit_gbp") > 0)
            .with_columns((pl.col("effect_low") * per).alias("per_m_low"),
                          (pl.col("effect_high") * per).alias("per_m_high"))
            .with_columns(((pl.col("per_m_low") + pl.col("per_m_high")) / 2).alias("per_m_mid"))
            .sort("per_m_mid", descending=True))


def initiatives_figure(rows: pl.DataFrame, axis_title: str, *, title: str = "") -> go.Figure:
    """Initiatives as bars: effect per £1 million a year (effect_per_million), with the 80% interval as an
    error bar; most effect per pound at the top."""
    fig = go.Figure(go.Bar(
        y=rows["name"].to_list(), x=rows["per_m_mid"].to_list(), orientation="h", marker_color=theme.NHS_BLUE,
        error_x=dict(type="data", symmetric=False, array=(rows["per_m_high"] - rows["per_m_mid"]).to_list(),
                     arrayminus=(rows["per_m_mid"] - rows["per_m_low"]).to_list(), color=theme.NHS_DARK_GREY),
        customdata=rows.select("per_m_low", "per_m_high", "cost_per_unit_gbp", "unit").to_numpy(),
        hovertemplate="%{y}<br>%{customdata[0]:.2f} to %{customdata[1]:.2f} per £1m a year (80% interval)<br>"
                      "£%{customdata[2]:,.0f} a year %{customdata[3]}<extra></extra>"))
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), height=max(240, 60 * rows.height + 120),
                      xaxis=dict(title=axis_title),
                      yaxis=dict(autorange="reversed", automargin=True))
    return fig
