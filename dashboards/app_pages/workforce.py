"""Workforce: the Six Steps workforce plan (Skills for Health) behind the organisation's plan: the service change,
the workforce it requires, the staff available, and how the plan closes the gap (recruitment, bank, agency)."""
import polars as pl
import streamlit as st

from ibp_pipeline.dashboards import ui, workforce

sel = ui.selection()
ui.header("Workforce plan", sel, "The workforce behind the organisation's plan, in the six steps of Skills for "
          "Health's method: the plan's scope, the change in its activity, the staff that activity requires, the "
          "staff available as people leave and join, and how the plan bridges the difference.")

v = ui.plan_version(sel, "workforce_version", ", so no workforce plan",
                    "its bank and agency staff are made up.")
steps = ui.call(workforce.six_steps, v["plan_id"], v["version"])
if steps.is_empty():
    st.info("The workforce plan is worked out for each plan's plan of record (else its latest version): choose "
            "that version.")
    st.stop()

st.subheader("1. Scope")
st.markdown(f"{sel.title}, plan {v['period']}, version {v['version']} ({v['status']}): every staff group of NHS "
            f"Workforce Statistics ({steps['staff_group'].n_unique()}), substantive, bank and agency, month by "
            "month.")

st.subheader("2. Service change")
index = workforce.activity_index(steps)
st.markdown(f"The plan's activity, weighted at national unit costs, against the year before the plan: "
            f"{index['activity_index'][0]:.2f} in its first month, {index['activity_index'][-1]:.2f} in its last "
            "(1.00 = the same).")

st.subheader("3 to 5. Required, available, and the plan to deliver")
yearly = workforce.by_year(steps)
ui.table(yearly, "workforce six steps by year", sel, key="workforce-years",
         column_config={c: st.column_config.NumberColumn(format="%,.1f") for c in workforce.FTE_COLUMNS.values()}
         | {"Bank and agency cost (£)": st.column_config.NumberColumn(format="£%,.0f")})
st.caption("Required (own ratio): the organisation's staff in post x its weighted activity against the year before "
           "the plan, less 2% a year productivity. Peers' range: the 25th to 75th percentile of its peer group's "
           "staff per £1m of A&E, emergency and diagnostic activity, x the plan's. Available: staff in post carried "
           "forward with the plan's leaver and joiner rates (Assumptions sheet). FTE are averages over the year.")
groups = yearly["Staff group"].unique(maintain_order=True).to_list()
label = st.selectbox("Staff group", groups, index=groups.index("Nurses and health visitors")
                     if "Nurses and health visitors" in groups else 0, key="workforce_group")
st.plotly_chart(workforce.group_figure(steps, label), key="workforce_group_chart")

st.subheader("6. Implement and monitor")
seen = steps.filter(pl.col("actual_fte").is_not_null())
if seen.is_empty():
    st.info("No month of the plan has published staff in post yet: the plan is tracked here as NHS Workforce "
            "Statistics publish each month.")
else:
    ui.table(seen.select(pl.col("staff_group_label").alias("Staff group"), pl.col("month").alias("Month"),
                         pl.col("planned_substantive_fte").alias("Planned substantive FTE"),
                         pl.col("actual_fte").alias("Staff in post (FTE)")), "workforce against plan", sel,
             key="workforce-monitor")
