"""Scenarios: each scenario against the baseline, what drives the difference, which uncertainties matter most, and
the cost of the initiatives against the chance of meeting the target."""
import polars as pl
import streamlit as st

from ibp_pipeline.dashboards import ui
from ibp_pipeline.dashboards import scenarios as sc



def month_format(frame: pl.DataFrame) -> dict:
    """Show date columns as 'Aug 2025' (Streamlit would add a time of day) and money in whole pounds with
    thousands separators ('1,543,333', not '1543333')."""
    dates = {c: st.column_config.DateColumn(c, format="MMM YYYY") for c, t in frame.schema.items() if t == pl.Date}
    money = {c: st.column_config.NumberColumn(c, format="%,.0f") for c in frame.columns if "(£" in c or "£)" in c}
    return dates | money


sel = ui.selection()
runs = ui.call(sc.runs)
draws = f"{int(runs['draws'].max()):,}" if not runs.is_empty() else "many"
ui.header("Scenarios", sel,
          "How a measure would turn out under each scenario compared with the **baseline** (no change beyond the "
          "trends already in the data), what drives the difference, which uncertainties matter most, and what the "
          f"initiatives cost against the chance of meeting the target. Every figure is simulated: {draws} possible "
          "futures per scenario and month.")
if runs.is_empty():
    st.info("No scenario has been run yet: the nightly refresh runs the scenarios in "
            "ibp_pipeline/documents/scenarios/ and data/config/scenarios/.")
    st.stop()
cover = ui.call(sc.coverage)
colours = sc.scenario_colours(runs["scenario"].to_list())
metrics = ui.call(sc.scenario_metrics, sel.org_code)
level_names = {"region": "regions", "icb": "ICBs", "provider": "trusts"}
parts = ["England" if r["org_level"] == "england"
         else f"{r['n_orgs']} {level_names.get(r['org_level'], r['org_level'])}" for r in cover.iter_rows(named=True)]
levels = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1] if parts else "no organisation"
all_metrics = sorted(set("; ".join(cover["metrics"].to_list()).split("; "))) if not cover.is_empty() else []
st.info(f"Scenario results exist only for {len(all_metrics)} measures ({'; '.join(all_metrics)}), for {levels}; "
        "other measures and organisations have none."
        + (f" {sel.title} has results for {metrics.height} of them." if not metrics.is_empty() else ""),
        icon=":material/info:")
if metrics.is_empty():
    st.info(f"No scenario results for {sel.title}: scenarios are simulated for the organisations with forecasts "
            "of these measures (acute trusts, ICBs, regions and England). Choose one of those in the sidebar.")
    st.stop()

# ---- choices ----
descriptions = dict(zip(runs["scenario"].to_list(), runs["description"].to_list()))
others = [s for s in runs["scenario"].to_list() if s != "baseline"]
chosen = st.multiselect("Scenarios to compare with the baseline", others, default=others, key="sc_scenarios",
                        format_func=sc.scenario_label,
                        help="Each scenario is a YAML file an analyst writes; all are compared with the baseline.")
info = ui.measure_select(metrics, "sc_metric", "Measures with scenario results for this organisation; key "
                         "standards first.")
metric, unit = info["metric_id"], info["unit"]
ui.data_as_of([metric])

lines = [f"- **Baseline**: {ui.plain(descriptions.get('baseline')) or 'no description'}"]
for row in runs.filter(pl.col("scenario").is_in(chosen)).iter_rows(named=True):
    extra = "".join(f" *{label}*: {ui.plain(row[col])}." for col, label in (("initiatives", "Initiatives"),
                                                                   ("policy_overrides", "New targets"))
                    if row[col])
    lines.append(f"- **{sc.scenario_label(row['scenario'])}**: {ui.plain(row['description'])}{extra}")
st.markdown("\n".join(lines))
with st.expander("The scenario runs (version, simulated futures, when)"):
    ui.table(runs.select(pl.col("scenario").map_elements(sc.scenario_label, return_dtype=pl.String).alias("Scenario"),
                         pl.col("description").map_elements(ui.plain, return_dtype=pl.String)
                         .alias("What it assumes"), pl.col("run_id").alias("Run"),
                         pl.col("scenario_version").alias("Version"), pl.col("draws").alias("Simulated futures"),
                         pl.col("seed").alias("Random seed"), pl.col("run_at").alias("Run at"),
                         pl.col("initiatives").map_elements(ui.plain, return_dtype=pl.String).alias("Initiatives"),
                         pl.col("policy_overrides").map_elements(ui.plain, return_dtype=pl.String)
                         .alias("New targets"),
                         pl.col("notes").alias("Notes")),
             "scenario runs", sel, key="sc-runs")

initiative_levels = {s: sc.initiative_level(t) for s, t in zip(runs["scenario"], runs["initiatives"])}
elsewhere = [s for s in chosen if initiative_levels.get(s) and initiative_levels[s] != sel.org_level]
if elsewhere:
    st.info(f"{', '.join(sc.scenario_label(s) for s in elsewhere)}: its initiatives are applied at "
            f"{sc.LEVELS.get(initiative_levels[elsewhere[0]], initiative_levels[elsewhere[0]])} level, so at "
            f"{sel.title} the simulation includes neither their effect nor their cost. Choose a trust in the "
            "sidebar to see them.")
if not info["has_target"]:
    st.info(f"No standard applies to {info['name']}, so there is no chance of meeting a target: the page "
            "compares the median forecast only.")

# ---- scenario against baseline ----
st.subheader(f"{info['name']}: each scenario against the baseline")
if not chosen:
    st.info("Choose at least one scenario above to compare with the baseline.")
else:
    comp = ui.call(sc.comparison, sel.org_code, metric, tuple(chosen))
    if comp.is_empty():
        st.info(f"No comparison for {info['name']} at {sel.title} in the chosen scenarios.")
    else:
        left, right = st.columns(2)
        with left:
            st.plotly_chart(sc.comparison_figure(comp, "p50", unit, colours), key="sc_cmp_p50")
        with right:
            if info["has_target"]:
                st.plotly_chart(sc.comparison_figure(comp, "prob", unit, colours), key="sc_cmp_prob")
            else:
                st.info("No target, so no chance of meeting one.")
        st.caption(f"Median (p50): the middle of the {draws} simulated futures. Chance of meeting the target: the "
                   "share of futures that meet the target that month (under a scenario's own target when it "
                   "changes it, as in Policy change).")
        table = sc.comparison_table(comp)
        ui.table(table, f"scenario comparison {metric}", sel, key="sc-comparison",
                 column_config=month_format(table))

# ---- drivers: waterfall and tornado ----
st.subheader("What drives the difference")
measure_options = ["p50", "prob"] if info["has_target"] else ["p50"]
if st.session_state.get("sc_measure") not in measure_options:
    st.session_state["sc_measure"] = measure_options[-1]
c1, c2, c3 = st.columns(3)
explainable = chosen or others
if explainable and st.session_state.get("sc_waterfall") not in explainable:
    st.session_state["sc_waterfall"] = explainable[0]
waterfall_scenario = c1.selectbox("Scenario to explain", explainable, format_func=sc.scenario_label,
                                  key="sc_waterfall") if explainable else None
measure = c3.radio("Show", measure_options, format_func=sc.MEASURES.get, key="sc_measure", horizontal=True,
                   help="The median forecast, or the chance of meeting the target.")
driver_rows = (ui.call(sc.drivers, sel.org_code, metric, waterfall_scenario) if waterfall_scenario
               else pl.DataFrame(schema={"period_start": pl.Date}))
baseline_sens = ui.call(sc.sensitivity, sel.org_code, metric, "baseline")
months = sc.month_options(driver_rows, baseline_sens)
if not months:
    st.info(f"No driver split or sensitivity for {info['name']} at {sel.title}.")
else:
    deadline = info["deadline"]
    if st.session_state.get("sc_month") not in months:
        st.session_state["sc_month"] = deadline if deadline in months else months[0]
    month = c2.selectbox("Month", months, key="sc_month",
                         format_func=lambda d: ui.month_label(d) + (" (deadline)" if d == deadline else ""),
                         help="The split is computed at each standard's deadline, at the end of each financial "
                              "year and in the last forecast month.")
    initiatives = ui.call(sc.initiative_names)
    steps = sc.waterfall_steps(driver_rows.filter(pl.col("period_start") == month), measure, initiatives)
    if steps.is_empty():
        st.info(f"No driver split for {sc.scenario_label(waterfall_scenario or '-')} in {ui.month_label(month)}.")
    else:
        st.plotly_chart(sc.waterfall_figure(
            steps, measure, unit,
            title=f"{sc.scenario_label(waterfall_scenario)} against the baseline, {ui.month_label(month)}"),
            key="sc_waterfall_chart")
        st.caption("Each bar is one driver changed alone from the baseline; 'interaction' is what the drivers add "
                   "when they act together. The bars add up exactly to the scenario's total change.")
        with st.expander("The waterfall's figures"):
            ui.table(steps.select(pl.col("label").alias("Step"), pl.col("kind").replace_strict(
                                      {"absolute": "Baseline level", "relative": "Change",
                                       "total": "Scenario level"}).alias("Bar"),
                                  (pl.col("value") * sc.scale(measure)).round(3).alias("Value"),
                                  (pl.col("running") * sc.scale(measure)).round(3).alias("Level after the step")),
                     f"drivers {waterfall_scenario} {metric}", sel, key="sc-waterfall-table")

    st.markdown("#### Which uncertainties matter most")
    tornado_options = ["baseline"] + chosen
    if st.session_state.get("sc_tornado") not in tornado_options:
        st.session_state["sc_tornado"] = "baseline"
    tornado_scenario = st.selectbox("Scenario", tornado_options, format_func=sc.scenario_label, key="sc_tornado",
                                    help="Each driver is moved to the low and then the high end of its range "
                                         "in this scenario, the others held at their central value.")
    sens = (baseline_sens if tornado_scenario == "baseline"
            else ui.call(sc.sensitivity, sel.org_code, metric, tornado_scenario))
    bars = sc.tornado_rows(sens.filter(pl.col("period_start") == month), measure, initiatives)
    if bars.is_empty():
        st.info(f"No sensitivities for {sc.scenario_label(tornado_scenario)} in {ui.month_label(month)}.")
    else:
        st.plotly_chart(sc.tornado_figure(bars, measure, unit, title=f"{sc.scenario_label(tornado_scenario)}, "
                                                                     f"{ui.month_label(month)}"),
                        key="sc_tornado_chart")
        top = bars.row(0, named=True)
        st.caption(f"Longest bar first: {top['label'].lower()} moves the {sc.MEASURES[measure].lower()} the most "
                   f"(by {top['swing'] * sc.scale(measure):.1f}{'%' if unit == 'percent' and measure == 'p50' else ''}"
                   f"{' points' if measure == 'prob' else ''} between its low and high setting).")
        with st.expander("The tornado's figures"):
            ui.table(bars.select(pl.col("label").alias("Driver"), pl.col("low_setting").alias("Low setting"),
                                 pl.col("high_setting").alias("High setting"), pl.col("setting_unit").alias("Unit"),
                                 (pl.col("at_low") * sc.scale(measure)).round(3).alias("At low setting"),
                                 (pl.col("at_high") * sc.scale(measure)).round(3).alias("At high setting"),
                                 (pl.col("baseline") * sc.scale(measure)).round(3).alias("Central"),
                                 (pl.col("swing") * sc.scale(measure)).round(3).alias("Swing")),
                     f"sensitivity {tornado_scenario} {metric}", sel, key="sc-tornado-table")

# ---- cost against the chance of meeting the target ----
st.subheader("Cost against the chance of meeting the target")
if not info["has_target"]:
    st.info(f"No target applies to {info['name']}, so there is no chance of meeting one to weigh against cost.")
elif not months:
    st.info("No month to compare.")
else:
    points = ui.call(sc.cost_probability, sel.org_code, metric, month).filter(
        pl.col("scenario").is_in(["baseline", *chosen]))
    if points.is_empty():
        st.info(f"No scenario results for {info['name']} at {sel.title} in {ui.month_label(month)}.")
    else:
        if sc.has_costs(points):
            st.plotly_chart(sc.cost_figure(points, colours, title=f"{info['name']}, {ui.month_label(month)}"),
                            key="sc_cost")
            st.caption("Cost: the yearly rate of the scenario's initiatives at this organisation (12 times that "
                       "month's cost, each initiative's cost counted once however many measures it moves). "
                       "Scenarios without initiatives (demand, workforce, funding, policy) are pressures from "
                       "outside, at no cost here, so they sit at £0.")
        else:
            st.info(f"None of the scenarios shown has a cost at {sel.title} in {ui.month_label(month)}: they are "
                    "pressures from outside (demand, workforce, funding, policy) or their initiatives cost "
                    "nothing here, so there is no cost to weigh against the chance. The table gives the "
                    "chances.")
        table = sc.cost_table(points)
        ui.table(table, f"cost and chance {metric}", sel, key="sc-cost",
                 column_config=month_format(table))
    effects = ui.call(sc.initiative_effects, metric)
    st.markdown("#### Initiatives in the catalogue")
    if effects.is_empty():
        st.info(f"No initiative in the catalogue acts directly on {info['name']} in the simulation.")
    else:
        per_m = sc.effect_per_million(effects)
        axis = f"Effect on {info['name']} per £1 million a year" + (" (percentage points)" if unit == "percent"
                                                                      else "")
        st.plotly_chart(sc.initiatives_figure(per_m, axis), key="sc_initiatives")
        st.caption("Effect per £1 million a year = effect per unit / yearly cost per unit x 1,000,000, assuming the "
                   "effect grows in proportion to spend; the bar is the middle and the line the 80% interval "
                   "(p10 to p90). Effects marked 'at the reference trust' are for a 700-bed trust at 93% occupancy "
                   "and scale with a trust's beds. Costs are planning assumptions from the project's catalogue of "
                   "initiatives, to be replaced by local business cases.")
        table = sc.initiatives_table(per_m)
        ui.table(table, f"initiatives {metric}", sel, key="sc-initiatives", column_config=month_format(table))
