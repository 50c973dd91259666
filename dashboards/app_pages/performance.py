"""Performance: any measure over the chosen months as a Making Data Count SPC chart, with what it means."""
import streamlit as st

from ibp_pipeline.dashboards import ui
from ibp_pipeline.dashboards import charts, performance, theme

sel = ui.selection()
ui.header("Performance", sel, "Pick a measure to see it month by month as a statistical process control (SPC) "
          "chart, the NHS Making Data Count way: the centre line is the average, the dashed lines are the "
          "process limits (the range the measure moves in by chance alone), and coloured points mark "
          "special-cause variation, a change too large or too lasting to be chance.")

choices = ui.call(performance.metric_choices, sel.org_code, sel.period_from, sel.period_to)
if choices.is_empty():
    st.info(f"No measure of {sel.title} has SPC points from {sel.span}: try a longer period or another "
            "organisation.")
    st.stop()

ids = choices["metric_id"].to_list()
names = dict(zip(ids, choices["name"].to_list()))
if st.session_state.get("perf_metric") not in ids:
    st.session_state["perf_metric"] = performance.default_metric(ids)
metric = st.selectbox("Measure", ids, format_func=lambda m: names.get(m, m), key="perf_metric",
                      help="Only measures with SPC points for this organisation in the period are listed.")
ui.data_as_of([metric])

spc = ui.call(performance.spc_series, sel.org_code, metric, sel.period_from, sel.period_to)
spc = spc.join(ui.call(performance.series_coverage, sel.org_code, metric, sel.period_from, sel.period_to),
               on="period_start", how="left")
targets = ui.call(performance.primary_targets, sel.org_code, metric, sel.period_from, sel.period_to)
facts = ui.call(performance.series_facts, sel.org_code, metric)
fact = facts.row(0, named=True) if not facts.is_empty() else {}
unit = fact.get("unit") or ""
name = names.get(metric, metric)

chart_col, info_col = st.columns([3, 2])
with chart_col:
    chart_title = name if sel.org_level == "england" else f"{name} ({sel.org_code})"
    st.plotly_chart(charts.spc_figure(spc, targets, title=chart_title, unit=unit, height=430),
                    key="perf_spc")
    if targets.is_empty():
        st.caption("No standard or trajectory applies to this measure in the period, so no target line is drawn.")
    else:
        standards = targets.unique("standard_name", maintain_order=True)
        lines = [f"{r['standard_name']}" + (" (a month-by-month trajectory)" if r["is_trajectory"] else "")
                 for r in standards.iter_rows(named=True)]
        st.caption("Red lines: the primary target that applies each month. " + "; ".join(lines) + ".")
    rebases = charts.rebase_months(spc)
    if rebases:
        st.caption("Dashed blue line: the limits were recalculated (a new baseline). "
                   + " ".join(f"From {m:%B %Y}: {why}." for m, why in rebases))
    changes = charts.coverage_notes(spc)
    if changes:
        st.caption("Dotted grey line: the providers this total covers change (the source changed), so a step there "
                   "may not be a change in performance. " + ". ".join(changes) + ".")

latest = spc.row(-1, named=True)
var_label, var_help, var_colour = theme.variation_label(latest["point_type"])
ass_label, ass_help, ass_colour = theme.assurance_label(fact.get("assurance_type"))
with info_col:
    st.subheader("What this measure is")
    st.markdown(f"**{name}**: {ui.plain(fact.get('definition')) or 'no definition in the catalogue.'}")
    st.markdown(f"- **Calculated as:** {performance.formula_text(fact.get('formula'), fact.get('aggregation'))}\n"
                f"- **Unit:** {unit or '-'}\n"
                f"- **Source:** {ui.plain(fact.get('source') or latest['source']) or '-'}\n"
                f"- **Better when:** " + ("higher" if fact.get("higher_is_better") else
                                         "lower" if fact.get("higher_is_better") is False else
                                         "neither (a volume or capacity measure)"))
    st.subheader("What the chart says")
    st.markdown(ui.icon(var_label, var_colour, var_help) + ui.icon(ass_label, ass_colour, ass_help),
                unsafe_allow_html=True)
    assurance_line = (f"Against the target of {ui.fmt_value(fact['target_value'], unit)}: {ass_help}"
                      if fact.get("target_value") is not None else ass_help)
    st.markdown(f"- **Latest month, {ui.month_label(latest['period_start'])}:** "
                f"{ui.fmt_value(latest['value'], unit)}. {var_label}: {var_help}\n"
                f"- **Assurance:** {ass_label}. {assurance_line}\n"
                f"- **Points:** {spc.height} months shown; the whole series has {fact.get('n_points') or spc.height}"
                f" months from {ui.month_label(fact.get('first_period'))} to "
                f"{ui.month_label(fact.get('last_period'))}.\n"
                f"- **Limits:** mean {ui.fmt_value(latest['mean'], unit)}, process limits "
                f"{ui.fmt_value(latest['lpl'], unit)} to {ui.fmt_value(latest['upl'], unit)}. "
                + performance.baseline_sentence(latest["baseline_start"], latest["baseline_end"],
                                                latest["baseline_points"], latest["period_reason"])
                + ("" if (latest["baseline_points"] or 0) >= performance.MIN_POINTS
                   else " " + performance.provisional_sentence(latest["baseline_points"])))
    with st.expander("How the limits were computed"):
        st.markdown(ui.plain(latest["limits_formula"] or fact.get("limits_formula")) or "-")
        if fact.get("rules"):
            st.markdown(f"**Special-cause rules:** {ui.plain(fact['rules'])}.")
        if fact.get("reference"):
            st.caption(f"Method: {ui.plain(fact['reference'])}.")

st.subheader("Special-cause months in the period")
special = performance.special_cause_months(spc)
if special.is_empty():
    st.markdown("None: every month in the period lies within the expected range (common-cause variation).")
else:
    for kind in special["variation"].unique(maintain_order=True).to_list():
        part = special.filter(special["variation"] == kind)
        st.markdown(f"- **{kind}** ({part.height} months): "
                    f"{performance.month_runs(part['period_start'].to_list())}")

st.subheader("The points behind the chart")
ui.table(performance.points_table(spc), f"spc {metric}", sel, key="perf-points", column_config={
    "Month": st.column_config.DateColumn("Month", format="MMM YYYY"),
    "Value": st.column_config.NumberColumn("Value", format="%.2f", help=f"{name} ({unit})"),
    "Mean": st.column_config.NumberColumn("Mean", format="%.2f", help="Centre line: mean of the baseline months"),
    "Baseline": st.column_config.TextColumn(help="The months this point's limits were computed from"),
    "Lower process limit": st.column_config.NumberColumn(format="%.2f", help="Mean minus 2.66 x average moving "
                                                                              "range"),
    "Upper process limit": st.column_config.NumberColumn(format="%.2f", help="Mean plus 2.66 x average moving "
                                                                              "range"),
    "Variation": st.column_config.TextColumn(help="Common cause (chance) or special cause (improving, "
                                                  "concerning, or higher/lower than usual)"),
    "Why": st.column_config.TextColumn(help="The Making Data Count rule that flagged the month"),
})
