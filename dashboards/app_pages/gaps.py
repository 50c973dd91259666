"""Gaps and needs: how far each measure is from its target, whether the trend will close the gap, and what it
would take (capacity, beds, tests, staff, money) to close it."""
import polars as pl
import streamlit as st

from ibp_pipeline.dashboards import ui
from ibp_pipeline.dashboards import gaps
from ibp_pipeline.dashboards.formatting import unit_words

sel = ui.selection()
ui.header("Gaps and needs", sel, "How far each measure is from its target in the latest month of the period, "
          "whether the current trend will close the gap, and the capacity, beds, tests and staff it would take. "
          "A positive gap means short of the target; for measures where lower is better (diagnostic waits, bed "
          "occupancy) it is how far above the target the value is.")



# ---- the gap table ---------------------------------------------------------------------------------------------
st.subheader("Gaps to target")
gap_rows = ui.call(gaps.gap_table, sel.org_code, sel.period_to)
ui.data_as_of(gap_rows["metric_id"])
if gap_rows.is_empty():
    st.info(f"No measure with a target for {sel.title} up to {ui.month_label(sel.period_to)}. Targets cover A&E, "
            "RTT, diagnostics, cancer and bed occupancy for trusts, ICBs, regions and England.")
else:
    st.markdown("\n".join(f"- {gaps.gap_sentence(row)}" for row in gap_rows.iter_rows(named=True)))
    basis = st.radio("Gap against", list(gaps.GAP_BASES), format_func=lambda b: gaps.GAP_BASES[b][2],
                     horizontal=True, key="gap_basis",
                     help="Target: the planning target or trajectory for this month (else the constitutional "
                          "standard). Constitutional: the NHS Constitution standard. Top quartile: the value the "
                          "best quarter of the peer group (trusts) or of all organisations at this level reach.")
    st.plotly_chart(gaps.gap_figure(gap_rows, basis), key="gap_chart")
    ui.table(gaps.gap_display(gap_rows), "gaps to target", sel, key="gaps-table",
          column_config={
              "Value": st.column_config.NumberColumn(format="%.1f"),
              "Target this month": st.column_config.NumberColumn(
                  format="%.1f", help="The primary target that applies this month: a trajectory step where "
                                      "one exists, else the standard."),
              "Gap (points)": st.column_config.NumberColumn(
                  format="%+.1f", help="Target - value (higher is better) or value - target (lower is better): "
                                       "positive = short of the target."),
              "Gap (% of target)": st.column_config.NumberColumn(format="%+.1f",
                                                                 help="100 x gap / target"),
              "Change a month (points)": st.column_config.NumberColumn(
                  format="%+.2f", help="Least-squares slope of the last 12 months."),
              "Time to target at trend": st.column_config.TextColumn(
                  help="Gap to the end target / improvement a month; blank when the trend is flat or moving "
                       "away; beyond ten years a straight-line trend says nothing, so it reads 'more than 10 "
                       "years'."),
              "Constitutional standard": st.column_config.NumberColumn(format="%.1f"),
              "Gap to constitutional standard (points)": st.column_config.NumberColumn(format="%+.1f"),
              "Peer top quartile": st.column_config.NumberColumn(
                  format="%.1f", help="The value the best quarter of the trust's peer group reach (trusts)."),
              "Gap to peer top quartile (points)": st.column_config.NumberColumn(format="%+.1f"),
              "National top quartile": st.column_config.NumberColumn(format="%.1f"),
              "Gap to national top quartile (points)": st.column_config.NumberColumn(format="%+.1f"),
          })
    with st.expander("How the gaps and trends are worked out"):
        first = gap_rows.row(0, named=True)
        st.markdown(f"- **Gap:** {ui.plain(first['gap_method'])}\n- **Trend:** {ui.plain(first['trend_method'])}\n"
                    f"- **Benchmarks:** {ui.plain(first['benchmark_method'])}")
        st.markdown("\n".join(f"- **{r['metric_name']}** target: {ui.plain(r['target_method'])}"
                              for r in gap_rows.iter_rows(named=True)))

# ---- the milestones -----------------------------------------------------------------------------------------
milestone_rows = ui.call(gaps.milestones, sel.org_code)
if not milestone_rows.is_empty():
    st.subheader("Planning milestones")
    st.markdown("Each planning round is judged at its milestones: March 2026 for the 2025/26 targets, and March "
                "2027, 2028 and 2029 for the Medium Term Planning Framework. A year-average milestone (A&E 85% "
                "across 2028/29 for England) is judged on the mean of the year's twelve months, not on March.")
    ui.table(gaps.milestone_display(milestone_rows), "planning milestones", sel, key="milestones-table",
             column_config={"Target": st.column_config.NumberColumn(format="%.1f"),
                            "Value": st.column_config.NumberColumn(format="%.1f"),
                            "Latest figure": st.column_config.NumberColumn(
                                format="%.1f", help="The latest figure loaded on or before the milestone.")})

# ---- the needs -------------------------------------------------------------------------------------------------
st.subheader("What it would take")
st.markdown(f"**How waiting-list capacity is worked out.** {gaps.QUEUE_EXPLANATION}")
need_rows = ui.call(gaps.needs, sel.org_code, sel.period_to)
if need_rows.is_empty():
    months = ui.call(gaps.need_months, sel.org_code)
    later = (" Needs are worked out for the latest month of each source only: "
             + ", ".join(f"{gaps.NEED_TYPES.get(r['need_type'], r['need_type'])} {ui.month_label(r['latest'])}"
                         for r in months.iter_rows(named=True))
             + ". Move the end of the period to see them.") if not months.is_empty() else ""
    st.info(f"No needs worked out for {sel.title} up to {ui.month_label(sel.period_to)}.{later}")
else:
    headline = gaps.needs_headline(need_rows)
    chart = gaps.needs_chart_frame(need_rows)
    if not chart.is_empty():
        st.plotly_chart(gaps.needs_figure(chart), key="needs_chart")
    if headline.is_empty():
        st.info(f"No headline need for {sel.title}: see the figures below.")
    else:
        ui.table(headline.select(
            pl.col("need").alias("Need"), pl.col("what").alias("What"), pl.col("result").alias("Result"),
            pl.col("unit").map_elements(unit_words, return_dtype=pl.String).alias("Unit"),
            pl.col("month").alias("Month"),
            pl.col("is_estimate").alias("Estimate"),
            pl.col("formula").map_elements(ui.plain, return_dtype=pl.String).alias("Formula")), "needs", sel,
            key="needs-table",
            column_config={"Result": st.column_config.NumberColumn(format="%,.1f"),
                           "Estimate": st.column_config.CheckboxColumn(
                               help="Ticked when an input is itself estimated (e.g. weekly referrals for a trust, "
                                    "inferred from the list)")})
        st.markdown("**Formula, inputs and assumptions of each need**")
        for row in headline.iter_rows(named=True):
            with st.expander(f"{row['need']}: {row['what']}"):
                st.markdown(f"**Result:** {gaps.format_need(row['result'], row['unit'])} "
                            f"({ui.month_label(row['month'])})" + (" · estimate" if row["is_estimate"] else ""))
                st.markdown(f"**Formula:** {ui.plain(row['formula'])}")
                inputs = gaps.parse_inputs(row["inputs"])
                if inputs:
                    st.dataframe(pl.DataFrame({"Input": [ui.plain(k) for k in inputs],
                                               "Value": [ui.plain(str(v)) for v in inputs.values()]}),
                                 hide_index=True, width="stretch")
                st.markdown(f"**Assumptions:** {ui.plain(row['assumptions'])}")
                st.caption(f"Source: {ui.plain(row['source'])}")
    with st.expander("Every figure behind the needs"):
        ui.table(need_rows.select(
            pl.col("need_type").replace_strict(gaps.NEED_TYPES, default=pl.col("need_type")).alias("Need"),
            pl.col("description").alias("Figure"), pl.col("result").alias("Result"),
            pl.col("unit").map_elements(unit_words, return_dtype=pl.String).alias("Unit"),
            pl.col("period_start").alias("Month"), pl.col("is_estimate").alias("Estimate"),
            *(pl.col(c).map_elements(ui.plain, return_dtype=pl.String).alias(c.title())
              for c in ("formula", "inputs", "assumptions", "source"))), "needs detail", sel,
            key="needs-detail")
