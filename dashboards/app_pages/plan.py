"""Plan: the organisation's three-year plan (activity, workforce, finance) against what happened, its exceptions,
whether its parts agree, and the plan itself, by year, with its workbook to download."""
from datetime import date

import polars as pl
import streamlit as st

from ibp_pipeline.dashboards import plan, ui

sel = ui.selection()
ui.header("Plan", sel, "The organisation's operational plan for 2026/27 to 2028/29 in three parts (activity and "
          "performance, workforce, finance), month by month: how the months so far compare with it, the lines off "
          "plan, and whether activity, staff and money in the plan agree with each other.")


def plan_month(value: object) -> date | None:
    """The plan's data month as a date, whether stored as a date or as 'YYYY-MM-DD' text."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


v = ui.plan_version(sel, "plan_version", "", "the draft with made-up bank and agency staff and a made-up "
                    "capital scheme. Its finance actuals come from an example ledger: **example, not real figures**.")
st.caption(f"Drafted from data up to {ui.month_label(plan_month(v['data_as_of']))}; loaded from the planners' "
           "workbook as this version.")

pva = ui.call(plan.plan_vs_actual, v["plan_id"], v["version"])
tabs = st.tabs(["Plan against actual", "Exceptions", "Do the parts agree?", "Budget", "The plan by year"])

with tabs[0]:
    if pva.is_empty():
        st.info("No month of the plan has an actual yet: published figures and the finance ledger start after "
                "the months loaded.")
    else:
        part = st.radio("Part", list(plan.PARTS), format_func=plan.PARTS.get, horizontal=True, key="plan_part")
        these = pva.filter(pl.col("part") == part)
        if these.is_empty():
            st.info(f"No actuals yet for the {plan.PARTS[part].lower()} part of this plan.")
        else:
            if part == "finance":
                waterfall = plan.surplus_waterfall(pva)
                if waterfall is not None:
                    st.markdown(f"**{waterfall[1]}**")
                    st.plotly_chart(waterfall[0], key="plan_waterfall")
            money = {"format": "£%,.0f"} if part == "finance" else {"format": "%,.1f"}
            ui.table(plan.variance_table(these), f"plan against actual {part}", sel, key=f"pva-{part}",
                     column_config={c: st.column_config.NumberColumn(**money) for c in
                                    ("Plan", "Actual", "Variance", "Plan, year to date", "Actual, year to date",
                                     "Plan for the year", "Forecast outturn")}
                     | {"Chance of meeting the plan for the year (%)": st.column_config.NumberColumn(
                         format="%.0f", help="The share of 4,000 Monte Carlo draws of the rest of the year (the "
                                             "pipeline's forecast with its uncertainty) in which the year ends on "
                                             "the right side of the plan. Blank where neither side is better.")}
                     | {"Variance (%)": st.column_config.NumberColumn(
                         format="%+.1f", help="100 x (actual - plan) / plan. For a percentage line (such as "
                                              "the 18-week %), Variance is in percentage points.")})
            charted = these.filter(pl.col("planned").is_not_null()).select("line_id", "line").unique(
                maintain_order=True)
            pick = st.selectbox("Chart the variance of", charted["line_id"].to_list(), key=f"plan_spc_{part}",
                                format_func=dict(charted.iter_rows()).get)
            if pick is not None:
                st.plotly_chart(plan.variance_figure(these, pick), key=f"plan_spc_chart_{part}")
            st.caption("Year to date and the year: flows (attendances, clock stops, money) are summed; levels (the "
                       "waiting list, staff, beds, percentages) are averaged. Forecast outturn: the months so far, "
                       "then the pipeline's forecast of the rest of the year where there is one, else the "
                       "plan. The variance chart is a Making Data Count chart of actual minus plan: points outside "
                       "the dashed limits, or runs on one side of the centre, are a real change in the gap, not "
                       "noise.")

with tabs[1]:
    exceptions = pva.filter(pl.col("is_exception")).sort("month", descending=True) if not pva.is_empty() else pva
    reviewed = plan.reviews(ui.db(), sel.org_code)  # not cached: a review saved here shows at once
    labels = dict(zip(pva["line_id"].to_list(), pva["line"].to_list())) if not pva.is_empty() else {}
    st.markdown("**Reviews**: what happened, why, the action and its owner, for lines off plan. An open review "
                "is shown here every month until it is closed.")
    if "plan_review_saved" in st.session_state:
        st.success(st.session_state.pop("plan_review_saved"))
    if reviewed.is_empty():
        st.caption("No review yet. Your analyst team adds reviews from a spreadsheet with `ibp plan review` (the "
                   "README lists its columns: the line, the month, what happened, why, the action, its owner, "
                   "the date it is due and its status).")
    else:
        open_rows = [r for r in reviewed.iter_rows(named=True) if r["status"] == "open"]
        st.markdown("\n".join(f"- {plan.review_sentence(r, labels.get(r['line_id'], r['line_id']))}"
                               for r in open_rows) or "No open review.")
        closed = [r for r in reviewed.iter_rows(named=True) if r["status"] == "closed"]
        if closed:
            with st.expander(f"Closed reviews ({len(closed)})"):
                st.markdown("\n".join(f"- {plan.review_sentence(r, labels.get(r['line_id'], r['line_id']))}"
                                       for r in closed))
    if not exceptions.is_empty() and plan.may_review(sel.user):
        with st.expander("Add or update a review of an exception"):
            choices = exceptions.select("line_id", "line", "month").unique(maintain_order=True).rows()
            with st.form("plan_review_form"):
                pick = st.selectbox("Exception", range(len(choices)), key="review_exception",
                                    format_func=lambda i: f"{choices[i][1]}, {choices[i][2]:%B %Y}")
                what = st.text_area("What happened", key="review_what")
                why = st.text_area("Why", key="review_why")
                action = st.text_area("Action", key="review_action")
                owner = st.text_input("Owner", key="review_owner")
                due = st.date_input("Due date", key="review_due", format="DD/MM/YYYY")
                status = st.radio("Status", ["open", "closed"], horizontal=True, key="review_status")
                saved = st.form_submit_button("Save review")
            if saved:
                who = sel.user.username if sel.user else "local mode (no login)"
                line_id, line, month = choices[pick]
                try:
                    revision = plan.save_review(sel.org_code, line_id, month, {
                        "what_happened": what, "why": why, "action": action, "owner": owner, "due_date": due,
                        "status": status}, who)
                except ValueError as exc:
                    st.error(str(exc))
                else:
                    st.session_state["plan_review_saved"] = (f"Saved: revision {revision} of the review of {line}, "
                                                             f"{month:%B %Y}, kept in the plan store.")
                    st.rerun()
    if exceptions.is_empty():
        st.success("No line is off plan by more than the plan's thresholds.")
    else:
        st.markdown(f"**{exceptions.height} lines and months off plan by more than the plan's thresholds**, "
                    "latest first:")
        st.markdown("\n".join(f"- {s}" for s in exceptions["sentence"].to_list()[:40]))
        if exceptions.height > 40:
            st.caption(f"The first 40 of {exceptions.height}; the table below has them all.")
        ui.table(exceptions.select(pl.col("month").alias("Month"), pl.col("line").alias("Line"),
                                   pl.col("sentence").alias("What happened")), "plan exceptions", sel,
                 key="plan-exceptions")

with tabs[2]:
    checks = ui.call(plan.triangulation, v["plan_id"], v["version"])
    summary = plan.triangulation_summary(checks)
    st.markdown("Whether the plan's activity, workforce and money agree, check by check, worked out when it was "
                "loaded: the waiting list with its own flows, performance with the standards' trajectories, "
                "activity per member of staff with the 2% a year productivity the framework asks, pay with staff "
                "numbers, income with activity, and beds with the planned occupancy.")
    ui.table(summary, "plan triangulation", sel, key="plan-triangulation")
    failed = checks.filter(pl.col("status") == "fail")
    if not failed.is_empty():
        with st.expander(f"Every disagreement ({failed.height})"):
            st.markdown("\n".join(f"- {m}" for m in failed["message"].to_list()))

with tabs[3]:
    st.markdown("The plan's finance part is the budget: its surplus each year is the headroom left. Against it, on "
                "its own each: what step 4 says the organisation needs that costs money (the staff for the beds "
                "short at 92% occupancy), and what each scenario's initiatives would cost in the year.")
    money = st.column_config.NumberColumn(format="£%,.0f")
    ui.table(plan.budget_table(ui.call(plan.budget, v["plan_id"], v["version"])), "plan budget", sel,
             key="plan-budget", column_config={c: money for c in ("Cost in the year (£)", "Plan's surplus (£)",
                                                                   "Left after it (£)")})
    st.caption("A scenario's cost covers the months of the year its forecast reaches (see Where it came from). "
               "Items are alternatives, each against the whole surplus, not added together.")

with tabs[4]:
    all_lines = ui.call(plan.lines, v["plan_id"], v["version"])
    part = st.radio("Part", list(plan.PARTS), format_func=plan.PARTS.get, horizontal=True, key="plan_lines_part")
    ui.table(plan.by_year(all_lines.filter(pl.col("part") == part)), f"plan {part} by year", sel,
             key=f"plan-lines-{part}")
    st.download_button("Download the plan workbook", key="plan_workbook",
                       data=lambda: plan.workbook_bytes(ui.call(plan.stored, v["plan_id"], v["version"])),
                       file_name=f"plan_{sel.org_code}_{v['period'].replace('/', '-')}_v{v['version']}.xlsx",
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                       on_click="ignore", icon=":material/download:",
                       help="The workbook of this version, as `ibp plan draft` writes it: edit it and load it "
                            "as the next version.")
