"""Performance report (IPR): every measure the Making Data Count way, the exceptions with the organisation's
narrative and actions, and the risk register beside the simulated chance of missing each standard."""
import datetime as dt

import polars as pl
import streamlit as st

from ibp_pipeline.config import get_paths
from ibp_pipeline.dashboards import ipr, ui
from ibp_pipeline.records import store

sel = ui.selection()
ui.header("Performance report", sel, "The Integrated Performance Report a board reads each month: every measure "
          "with its latest value, target, variation and assurance; the exceptions (measures in special-cause "
          "concern or that will consistently miss their target), each with its narrative, actions, owner and "
          "recovery date; and the risk register beside the simulated chance of missing each standard.")

rows = ui.call(ipr.summary, sel.org_code, sel.period_to)
if rows.is_empty():
    st.info(f"No measure of {sel.title} has monthly figures in the two years to {ui.month_label(sel.period_to)}.")
    st.stop()
ui.data_as_of(rows["metric_id"])
editable = ipr.may_enter(sel.user, sel.org_code, sel.visible)
who = sel.user.display if sel.user is not None else "local user"

st.subheader("Summary of every measure")
summary = ipr.summary_table(rows)
ui.table(summary, "performance report", sel, key="ipr-summary", height=35 * (summary.height + 1) + 3,
         column_config={
    "Section": None,  # the rows are in section order; at laptop width the column would push the icons off screen
    "Month": None,  # in "Latest" on screen; a column of its own in the downloads
    "Latest": st.column_config.TextColumn(help="The latest month's figure, and its month"),
    "Trend": st.column_config.LineChartColumn("Last 13 months", width="small",
                                              help="The measure's last 13 months, oldest first"),
    "Variation": st.column_config.TextColumn(help="Making Data Count: common cause (chance), improving or "
                                                  "concerning special cause, or higher/lower than usual"),
    "Assurance": st.column_config.TextColumn(help="Making Data Count assurance: whether the process, as it runs, "
                                                  "will consistently meet the target ('Will meet it'), consistently "
                                                  "miss it ('Will miss it'), or meet it in some months only ('Hit "
                                                  "and miss'); '-' where no target applies"),
})

st.subheader("Exceptions")
found = ipr.exceptions(rows)
entered = ipr.entered_exceptions([sel.org_code])
if found.is_empty():
    st.success("No measure is in special-cause concern or consistently missing its target.")
for r in found.iter_rows(named=True):
    mine = entered.filter(pl.col("metric_id") == r["metric_id"]) if not entered.is_empty() else entered
    report = mine.row(0, named=True) if mine.height else None
    with st.expander(f"{r['name']}: {ui.fmt_value(r['value'], r['unit'])} in {r['period_start']:%B %Y}",
                     expanded=report is None):
        st.markdown(f"**Why it is an exception:** {r['reason']}.")
        if report:
            st.markdown(f"**Narrative:** {report['narrative']}  \n**Actions:** {report['actions']}  \n"
                        f"**Owner:** {report['owner']} · **Recovery expected by** "
                        f"{report['recovery_date']:%-d %B %Y}")
            st.caption(f"Entered by {report['entered_by']} on {report['entered_at']:%-d %B %Y} (version "
                       f"{report['revision']}).")
        else:
            st.warning("No exception report yet: the board expects a narrative, actions, an owner and a recovery "
                       "date.")
        if editable:
            with st.form(f"exc-{r['metric_id']}"):
                narrative = st.text_area("Narrative: what is happening and why",
                                         value=report["narrative"] if report else "")
                actions = st.text_area("Actions", value=report["actions"] if report else "")
                owner = st.text_input("Owner", value=report["owner"] if report else "")
                recovery = st.date_input("Recovery expected by", format="DD/MM/YYYY",
                                         value=report["recovery_date"] if report else
                                         dt.date.today() + dt.timedelta(days=90))
                if st.form_submit_button("Save exception report"):
                    try:
                        n = store.save_exception(get_paths().records_store, store.ExceptionReport(
                            sel.org_code, r["metric_id"], narrative.strip(), actions.strip(), owner.strip(),
                            recovery), who)
                    except ValueError as exc:
                        st.error(str(exc))
                    else:
                        st.success(f"Saved (version {n}).")
                        st.rerun()

st.subheader("Risk register")
simulated = ui.call(ipr.simulated_risks, sel.org_code)
risks = ipr.entered_risks([sel.org_code])
register = ipr.risk_register(simulated, risks)
if register.is_empty():
    st.info("No risk entered and no standard simulated for this organisation.")
else:
    ui.table(register, "risk register", sel, key="ipr-risks", column_config={
        "Impact": st.column_config.NumberColumn(help="1 (negligible) to 5 (catastrophic)"),
        "Likelihood": st.column_config.NumberColumn(help="1 (rare) to 5 (almost certain)"),
        "Score": st.column_config.TextColumn(help="Impact x likelihood on the NHS 5 x 5 risk matrix: 1-3 low, "
                                                  "4-6 moderate, 8-12 high, 15-25 extreme"),
        "Simulated chance of missing": st.column_config.TextColumn(
            help="From the Monte Carlo simulation of the forecast (Forecasts and risk page), at the standard's "
                 "deadline"),
    })
if editable:
    with st.expander("Add or update a risk"):
        names = dict(zip(simulated["standard_id"].to_list(), simulated["standard_name"].to_list())) \
            if not simulated.is_empty() else {}
        existing = {r["risk_id"]: r for r in risks.iter_rows(named=True)} if not risks.is_empty() else {}
        with st.form("risk-form"):
            pick = st.selectbox("Risk", ["A new risk", *existing], format_func=lambda k: k if k == "A new risk"
                                else existing[k]["title"])
            old = existing.get(pick)
            title = st.text_input("Title", value=old["title"] if old else "")
            standard = st.selectbox("Standard it threatens", [None, *names], format_func=lambda k: "None"
                                    if k is None else names[k],
                                    index=([None, *names].index(old["standard_id"]) if old and old["standard_id"]
                                           in names else 0))
            owner = st.text_input("Owner", value=old["owner"] if old else "")
            impact = st.slider("Impact", 1, 5, old["impact"] if old else 3)
            likelihood = st.slider("Likelihood", 1, 5, old["likelihood"] if old else 3)
            controls = st.text_area("Controls in place", value=old["controls"] if old else "")
            status = st.radio("Status", list(store.RISK_STATUSES), horizontal=True,
                              index=list(store.RISK_STATUSES).index(old["status"]) if old else 0)
            if st.form_submit_button("Save risk"):
                risk_id = pick if old else f"R{len(existing) + 1:03d}"
                try:
                    n = store.save_risk(get_paths().records_store, store.Risk(
                        sel.org_code, risk_id, title.strip(), standard, owner.strip(), int(impact),
                        int(likelihood), controls.strip(), status), who)
                except ValueError as exc:
                    st.error(str(exc))
                else:
                    st.success(f"Saved risk {risk_id} (version {n}).")
                    st.rerun()
elif sel.user is not None:
    st.caption("Exception reports and risks are entered by the organisation's own users.")
