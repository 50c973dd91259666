"""Resources: staff, beds, discharge, virtual wards, estates, the estimated cost of activity and how the
organisation's staffing and bed ratios compare with its peers and the national median."""
import polars as pl
import streamlit as st

from ibp_pipeline.dashboards import ui
from ibp_pipeline.dashboards.formatting import plural
from ibp_pipeline.dashboards import resources, theme

sel = ui.selection()
ui.header("Resources", sel, "What the organisation works with: its staff, beds, discharge delays, virtual wards and "
          "estate, what its activity costs at national average prices, and how its staffing and bed ratios "
          "compare with similar organisations. Figures are the latest month in the period that has data; hover "
          "over a figure for its definition.")

latest = ui.call(resources.latest_measures, sel.org_code, sel.period_to)
if latest.is_empty():
    st.info(f"No resource figures for {sel.title} up to {ui.month_label(sel.period_to)}. Workforce, bed and "
            "estates figures cover NHS trusts, ICBs, regions and England.")
    st.stop()
ui.data_as_of(latest["measure_id"])



LEVEL = resources.LEVEL_PLURAL[sel.org_level]
MEDIAN_HELP = (f"National median: the middle value of all {LEVEL} with a figure that month. Peer median: the middle "
               "value of the trust's peer group (similar size, specialisation and deprivation); trusts only.")


def metric(col, measure_id: str, label: str, help_text: str = "") -> dict | None:
    """One st.metric from the latest value of a measure, or a plain 'no data' line."""
    row = resources.measure_row(latest, measure_id)
    if row is None:
        col.metric(label, "No data", help=f"No figure for {sel.title}. {help_text}".strip())
        return None
    median = row["national_median"]
    extra = f" National median {ui.fmt_value(median, row['unit'])}." if median is not None else ""
    shown = resources.money(row["value"]) if row["unit"] == "gbp" else ui.fmt_value(row["value"], row["unit"])
    col.metric(label, shown,
               help=f"{row['measure_name']}, {ui.month_label(row['period_start'])}. {help_text}{extra} "
                    f"Source: {ui.plain(row['source'])}.")
    return row


def history(measure_ids: tuple[str, ...]) -> pl.DataFrame:
    return ui.call(resources.measure_history, sel.org_code, measure_ids, sel.period_from, sel.period_to)


def no_data(what: str, why: str = "") -> None:
    st.info(f"No {what} for {sel.title} in {sel.span}. {why}".strip())


tabs = st.tabs(["Workforce", "Beds and discharge", "Virtual wards", "Estates", "Cost of activity",
                "Ratios against peers"])

# ---- workforce -------------------------------------------------------------------------------------------------
with tabs[0]:
    st.subheader("Workforce")
    c1, c2, c3 = st.columns(3)
    metric(c1, "workforce_fte", "Staff (whole-time equivalent)",
           "Full-time equivalent (FTE) staff of all hospital and community health service staff groups: two "
           "half-time posts count as one.")
    metric(c2, "workforce_fte_nurses_health_visitors", "Nurses and health visitors (FTE)")
    metric(c3, "workforce_fte_hchs_doctors", "Doctors (FTE)")
    groups = resources.workforce_by_group(latest)
    if groups.is_empty():
        no_data("staff-group breakdown", "The published staff-group series starts later than this period: move "
                "the end of the period forward.")
    else:
        month = ui.month_label(groups["period_start"].max())
        st.markdown(f"**Staff by group, {month}** (whole-time equivalent)")
        st.plotly_chart(resources.workforce_figure(groups), key="res_workforce_bar")
        ui.table(groups.select(
            pl.col("staff_group").alias("Staff group"), pl.col("family").alias("Staff family"),
            pl.col("fte").alias("FTE"), pl.col("share_pct").alias("Share of staff (%)"),
            pl.col("peer_median").alias("Peer median FTE"), pl.col("national_median").alias("National median FTE"),
            pl.col("period_start").alias("Month")), "workforce by staff group", sel,
            column_config={"FTE": st.column_config.NumberColumn(format="%,.0f"),
                           "Share of staff (%)": st.column_config.NumberColumn(format="%.1f"),
                           "Peer median FTE": st.column_config.NumberColumn(format="%,.0f", help=MEDIAN_HELP),
                           "National median FTE": st.column_config.NumberColumn(format="%,.0f", help=MEDIAN_HELP)})
        grades = resources.doctor_grades(latest)
        if not grades.is_empty():
            with st.expander("Doctors by grade"):
                ui.table(grades.select(pl.col("grade").alias("Grade"), pl.col("fte").alias("FTE"),
                                    pl.col("period_start").alias("Month")), "doctors by grade", sel,
                      column_config={"FTE": st.column_config.NumberColumn(format="%.1f")})
    st.markdown("**Staff over the period**")
    options = ["workforce_fte"] + list(resources.STAFF_GROUPS)
    labels = {"workforce_fte": "All staff"} | {k: v[0] for k, v in resources.STAFF_GROUPS.items()}
    chosen = st.multiselect("Staff groups to plot", options, default=["workforce_fte"], format_func=labels.get,
                            key="res_trend_groups",
                            help="All staff goes back to April 2022; staff groups to August 2024.")
    trend = history(tuple(chosen)) if chosen else pl.DataFrame()
    if trend.is_empty():
        no_data("monthly staff figures for the groups chosen")
    else:
        trend = trend.with_columns(pl.col("measure_id").replace_strict(labels, default=pl.col("measure_name"))
                                   .alias("measure_name"))
        st.plotly_chart(resources.trend_figure(trend, unit="FTE", show_medians=len(chosen) == 1),
                        key="res_workforce_trend")

# ---- beds and discharge ----------------------------------------------------------------------------------------
with tabs[1]:
    st.subheader("General and acute beds")
    c1, c2, c3, c4 = st.columns(4)
    metric(c1, "ga_beds_available", "G&A beds available",
           "General and acute (G&A) beds open, average over the month (UEC sitrep).")
    metric(c2, "ga_beds_occupied", "G&A beds occupied")
    occ = metric(c3, "ga_bed_occupancy_pct", "G&A bed occupancy",
                 f"Occupied / available x 100. The planning standard is {resources.OCCUPANCY_STANDARD:g}% or below: "
                 "fuller hospitals struggle to admit from A&E.")
    metric(c4, "adult_critical_care_occupancy_pct", "Adult critical care occupancy")
    if occ is not None:
        verdict = resources.occupancy_verdict(occ["value"])
        within = resources.within_occupancy_standard(occ["value"])
        colour = theme.NHS_GREEN if within else theme.NHS_RED
        st.markdown(ui.icon("Within 92%" if within else "Above 92%", colour,
                            "General and acute bed occupancy against the 92% planning standard")
                    + f" In {ui.month_label(occ['period_start'])} occupancy was {occ['value']:.1f}%, {verdict}.",
                    unsafe_allow_html=True)
    occupancy = history(("ga_bed_occupancy_pct",))
    if occupancy.is_empty():
        no_data("G&A bed figures", "Bed figures come from the acute trusts' sitrep, so non-acute trusts have none.")
    else:
        st.markdown("**G&A bed occupancy by month**, against the 92% planning standard")
        st.plotly_chart(resources.trend_figure(occupancy, unit="percent", threshold=resources.OCCUPANCY_STANDARD,
                                               threshold_label="92% planning standard"), key="res_occupancy")
        beds = history(("ga_beds_available", "ga_beds_occupied"))
        st.markdown("**G&A beds available and occupied**")
        st.plotly_chart(resources.trend_figure(beds, unit="beds", show_medians=False), key="res_beds")
    st.subheader("Delayed discharges")
    c1, c2 = st.columns(2)
    metric(c1, "discharge_nctr_avg", "Patients ready to leave but still in hospital (daily average)",
           "Patients no longer meeting the criteria to reside: medically ready for discharge but still in a bed, "
           "averaged over the days of the month.")
    metric(c2, "nctr_per_100_occupied_ga_beds", "Per 100 occupied G&A beds")
    delays = history(("discharge_nctr_avg",))
    if delays.is_empty():
        no_data("discharge figures", "The discharge sitrep covers acute trusts.")
    else:
        st.markdown("**Patients ready to leave but still in hospital** (daily average, by month)")
        st.plotly_chart(resources.trend_figure(delays, unit="patients"), key="res_discharge")

# ---- virtual wards ---------------------------------------------------------------------------------------------
with tabs[2]:
    st.subheader("Virtual wards")
    c1, c2, c3 = st.columns(3)
    metric(c1, "vw_capacity", "Virtual ward beds",
           "Virtual wards (hospital at home) let patients get acute care at home; capacity counts the 'beds'.")
    metric(c2, "vw_occupancy_pct", "Virtual ward occupancy")
    metric(c3, "vw_capacity_per_100k", "Beds per 100,000 registered patients")
    wards = history(("vw_occupancy_pct",))
    if wards.is_empty():
        if sel.org_level == "provider":
            parent = f" See its ICB ({sel.parent_icb_code})." if sel.parent_icb_code else ""
            no_data("virtual ward figures", f"Virtual wards are published for ICBs, regions and England, not for "
                    f"trusts.{parent}")
        else:
            last = resources.measure_row(latest, "vw_occupancy_pct")
            no_data("monthly virtual ward figures", f"The latest month with figures is "
                    f"{ui.month_label(last['period_start'])}." if last else "The published series starts later.")
    else:
        st.markdown("**Virtual ward occupancy by month**")
        st.plotly_chart(resources.trend_figure(wards, unit="percent"), key="res_vw")

# ---- estates ---------------------------------------------------------------------------------------------------
with tabs[3]:
    st.subheader("Estates")
    backlog = resources.estates_backlog(latest)
    c1, c2, c3 = st.columns(3)
    metric(c1, "estates_backlog_total_gbp", "Backlog maintenance (total)",
           "Cost to bring the estate up to condition B (sound, operationally safe) from the Estates Returns "
           "Information Collection (ERIC).")
    metric(c2, "estates_floor_area_m2", "Floor area (m²)")
    metric(c3, "estates_site_count", "Sites")
    if backlog.is_empty():
        no_data("estates figures", "The Estates Returns Information Collection (ERIC) covers trusts, summed to "
                "ICBs, regions and England.")
    else:
        st.caption("ERIC 2019/20: the only estates return in the published data, a snapshot of financial year "
                   "2019/20 at that year's prices, not monthly. Trusts that merged since are summed.")
        st.plotly_chart(resources.backlog_figure(backlog), key="res_backlog")
        ui.table(backlog.select(pl.col("risk").alias("Risk level"), pl.col("cost_gbp").alias("Cost to eradicate (£)"),
                             pl.col("peer_median").alias("Peer median (£)"),
                             pl.col("national_median").alias("National median (£)"),
                             pl.col("note").alias("Note")), "estates backlog", sel,
              column_config={c: st.column_config.NumberColumn(format="£%,.0f", help=MEDIAN_HELP)
                             for c in ("Cost to eradicate (£)", "Peer median (£)", "National median (£)")})

# ---- cost of activity ------------------------------------------------------------------------------------------
with tabs[4]:
    st.subheader("Estimated cost of activity")
    months = ui.call(resources.activity_cost_months, sel.org_code, sel.period_from, sel.period_to)
    if months.is_empty():
        span = ui.call(resources.activity_cost_span, sel.org_code)
        no_data("activity to cost", "Estimated costs cover " + "; ".join(
            f"{resources.ACTIVITY_TYPES.get(r['activity_type'], r['activity_type'])} "
            f"{ui.month_label(r['first_month'])} to {ui.month_label(r['last_month'])}"
            for r in span.iter_rows(named=True)) + "." if len(span) else "")
    else:
        price_base = months["price_base"].drop_nulls().first()
        st.warning(f"**An estimate, not the organisation's spend.** Each activity count is multiplied by the national "
                   f"average unit cost of that activity ({price_base}). Local costs differ with case mix, "
                   "productivity and market forces.", icon=":material/calculate:")
        summary = resources.cost_summary(months)
        cols = st.columns(len(summary))
        for col, row in zip(cols, summary.iter_rows(named=True)):
            col.metric(f"{row['activity']}", resources.money(row["estimated_cost_gbp"]),
                       help=f"{row['activity_count']:,.0f} over {plural(row['months'], 'month')} "
                            f"({ui.month_label(row['first_month'])} to {ui.month_label(row['last_month'])}) "
                            "x average unit cost "
                            f"£{row['unit_cost_gbp']:,.0f}. {ui.plain(row['method'])}.")
        st.plotly_chart(resources.cost_figure(months), key="res_cost")
        ui.table(summary.select(
            pl.col("activity").alias("Activity"), pl.col("months").alias("Months"),
            pl.col("first_month").alias("From"), pl.col("last_month").alias("To"),
            pl.col("activity_count").alias("Activity (count)"),
            pl.col("unit_cost_gbp").alias("Average unit cost (£)"),
            pl.col("estimated_cost_gbp").alias("Estimated cost (£)"), pl.col("price_base").alias("Price base"),
            pl.col("method").alias("Method")), "estimated cost of activity", sel,
            column_config={"Activity (count)": st.column_config.NumberColumn(format="%,.0f"),
                           "Average unit cost (£)": st.column_config.NumberColumn(format="£%,.0f"),
                           "Estimated cost (£)": st.column_config.NumberColumn(format="£%,.0f")})
        tests = ui.call(resources.diagnostic_test_costs, sel.org_code, sel.period_from, sel.period_to)
        if not tests.is_empty():
            with st.expander("Diagnostic tests priced one by one"):
                ui.table(tests.select(pl.col("test").alias("Test"), pl.col("tests").alias("Tests"),
                                   pl.col("unit_cost_gbp").alias("Unit cost (£)"),
                                   pl.col("estimated_cost_gbp").alias("Estimated cost (£)"),
                                   pl.col("months").alias("Months"),
                                   pl.col("currency_codes").alias("HRG currencies priced"),
                                   pl.col("method").alias("Method")), "diagnostic test costs", sel,
                      column_config={"Unit cost (£)": st.column_config.NumberColumn(format="£%,.0f"),
                                     "Estimated cost (£)": st.column_config.NumberColumn(format="£%,.0f")})

# ---- ratios ----------------------------------------------------------------------------------------------------
with tabs[5]:
    st.subheader("The planner's ratios against peers")
    st.markdown("Each ratio of the organisation beside the median of its peer group (trusts only) and the national "
                f"median of all {LEVEL}. A ratio far from the medians is a question to ask, not a verdict: case mix, "
                "teaching status and community services all move them.")
    ratios = resources.ratio_comparison(latest)
    missing = resources.missing_measures(latest, resources.RATIOS)
    if ratios.is_empty():
        no_data("ratios")
    else:
        if ratios["national_median"].drop_nulls().is_empty():
            st.info(f"{sel.title} has no peers or national median to compare with: the ratios are shown alone.")
        else:
            st.plotly_chart(resources.ratio_figure(ratios), key="res_ratios")
        ui.table(ratios.select(
            pl.col("ratio").alias("Ratio"), pl.col("value").alias("Value"), pl.col("unit").alias("Unit"),
            pl.col("period_start").alias("Month"), pl.col("peer_median").alias("Peer median"),
            pl.col("vs_peer_pct").alias("Against peers (%)"), pl.col("national_median").alias("National median"),
            pl.col("vs_national_pct").alias("Against national (%)"),
            pl.col("national_count").alias("Organisations compared"), pl.col("formula").alias("Formula"),
            pl.col("numerator").alias("Numerator"), pl.col("denominator").alias("Denominator"),
            pl.col("source").alias("Source"), pl.col("note").alias("Note")), "resource ratios", sel,
            column_config={"Value": st.column_config.NumberColumn(format="%.2f"),
                           "Peer median": st.column_config.NumberColumn(format="%.2f", help=MEDIAN_HELP),
                           "National median": st.column_config.NumberColumn(format="%.2f", help=MEDIAN_HELP),
                           "Against peers (%)": st.column_config.NumberColumn(
                               format="%+.0f%%", help="100 x (value - peer median) / peer median"),
                           "Against national (%)": st.column_config.NumberColumn(
                               format="%+.0f%%", help="100 x (value - national median) / national median")})
    if missing:
        st.caption(f"No figure for {sel.title}: " + "; ".join(missing) + ". Population ratios are for ICBs, "
                   "regions and England; virtual wards are not published for trusts.")

with st.expander("Every resource figure behind this page"):
    ui.table(latest.select(
        pl.col("measure_group").alias("Group"), pl.col("measure_name").alias("Measure"),
        pl.col("unit").alias("Unit"), pl.col("period_start").alias("Month"), pl.col("value").alias("Value"),
        pl.col("peer_median").alias("Peer median"), pl.col("national_median").alias("National median"),
        pl.col("formula").alias("Formula"),
        pl.col("source").alias("Source"), pl.col("note").alias("Note")), "resource figures", sel)
