"""Data quality: how fresh each source is, which checks passed and failed, what was quarantined and why, where
sources disagreed, and when the data on these pages was published."""
from datetime import date

import polars as pl
import streamlit as st

from ibp_pipeline.dashboards import ui
from ibp_pipeline.dashboards.formatting import plural
from ibp_pipeline.dashboards import data_quality as dq

sel = ui.selection()
ui.header("Data quality", sel, "Can the figures on these pages be trusted, and how old are they? Every source file "
          "is checked before it loads; rows that break a rule are set aside (quarantined) with the reason, and "
          "where two publications give different figures the rule that chose between them is recorded. This page "
          "covers all organisations; the selected one is picked out where it appears.")



today = date.today()
ui.data_as_of(behind=False)  # the sources behind are listed below, with their due files

# ---- publication -----------------------------------------------------------------------------------------------
published = ui.call(dq.publication)
if published.is_empty():
    st.warning("The served data has no publication record: it may have been copied by hand rather than published "
               "by a pipeline run.")
else:
    pub = published.row(0, named=True)
    st.markdown(f"**Published** {pub['published_at']:%d %b %Y at %H:%M} by pipeline run `{pub['run_id']}`.",
                help="When the refresh replaced the copy these dashboards read (meta.publication).")

# ---- freshness -------------------------------------------------------------------------------------------------
st.subheader("How fresh is each source?")
st.markdown(dq.schedule_text())
loads = ui.call(dq.source_loads)
if loads.is_empty():
    st.info("No file has been loaded yet: run `ibp run` to load the bundled publications.")
else:
    fresh = dq.with_freshness(loads, today)
    stale = fresh.filter(pl.col("freshness") == "Stale")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Sources", len(fresh), help="Publications loaded, each from one or more files.")
    c2.metric("Up to date", int((fresh["freshness"] == "Up to date").sum()), help=dq.STATUS_HELP["Up to date"])
    c3.metric("Stale", len(stale), help=dq.STATUS_HELP["Stale"])
    c4.metric("Files with rows set aside", int((fresh["status"] != "loaded").sum()),
              help="Sources whose files loaded only partly: some rows were quarantined (see below).")
    if len(stale):
        st.warning(f"**{len(stale)} of {len(fresh)} sources are behind** their publication calendar (a newer "
                   "file was due and has not been loaded): " + dq.name_list(stale["title"].to_list())
                   + ". Each one's due file and date are listed below.", icon=":material/schedule:")
    else:
        st.success("Every dated source is up to date with its publication calendar.", icon=":material/check_circle:")
    with st.expander("Latest month and next file due, source by source", expanded=bool(len(stale))):
        st.markdown(dq.next_file_lines(fresh))
    st.plotly_chart(dq.freshness_figure(fresh, today), key="dq_freshness")
    ui.table(fresh.select(
        pl.col("title").alias("Source"), pl.col("freshness").alias("Freshness"),
        pl.col("latest_month").alias("Latest month"), pl.col("next_file").alias("Next file"),
        pl.col("due_date").alias("Due"), pl.col("overdue_files").alias("Files overdue"),
        pl.col("period_min").alias("First period"), pl.col("age_days").alias("Days old"),
        pl.col("grain").alias("Cadence"), pl.col("loaded_at").alias("Loaded at"), pl.col("files").alias("Files"),
        pl.col("rows_loaded").alias("Rows loaded"), pl.col("rows_quarantined").alias("Rows quarantined"),
        pl.col("status").alias("Load status"), pl.col("file_names").alias("File names")), "source freshness", sel,
        key="dq-freshness",
        column_config={"Days old": st.column_config.NumberColumn(help="Days since the latest period ended."),
                       "Due": st.column_config.DateColumn(
                           format="D MMM YYYY", help="When the file after the latest one loaded was (or is) due."),
                       "Files overdue": st.column_config.NumberColumn(
                           help="Newer files whose publication day has passed but that are not loaded."),
                       "Freshness": st.column_config.TextColumn(help=" ".join(f"{k}: {v}" for k, v in
                                                                              dq.STATUS_HELP.items())),
                       "Loaded at": st.column_config.DatetimeColumn(format="D MMM YYYY, HH:mm"),
                       "Rows loaded": st.column_config.NumberColumn(format="%,d"),
                       "Load status": st.column_config.TextColumn(
                           help="loaded: every row loaded; partial: some rows quarantined; anything else: the file "
                                "was refused.")})

# ---- checks ----------------------------------------------------------------------------------------------------
st.subheader("Checks in the latest run")
checks = ui.call(dq.latest_checks)
if checks.is_empty():
    st.info("No check results recorded yet.")
else:
    counts = dq.check_counts(checks)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Checks run", counts["checks"], help=f"On {counts['sources']} sources, run {checks['run_id'][0]}.")
    c2.metric("Passed", counts["passed"])
    c3.metric("Failed", counts["failed"])
    c4.metric("Failed and blocking", counts["failed_blocking"], help=dq.CHECK_BLOCKING_HELP)
    st.caption(f"Checked {checks['checked_at'].min():%d %b %Y %H:%M}. {dq.CHECK_BLOCKING_HELP}")
    if counts["failed"]:
        st.error(f"{counts['failed']} checks failed, {counts['failed_blocking']} of them blocking: they are listed "
                 "first below.")
    else:
        st.success(f"All {counts['checks']} checks passed.")
    ui.table(checks.select(
        pl.col("passed").alias("Passed"), pl.col("blocking").alias("Blocking"), pl.col("source").alias("Source"),
        pl.col("check_name").alias("Check"), pl.col("details").alias("What it checks"),
        pl.col("failing_rows").alias("Failing rows"), pl.col("rows_validated").alias("Rows checked"),
        pl.col("expectation").alias("Great Expectations expectation"), pl.col("checked_at").alias("Checked at")),
        "data quality checks", sel, key="dq-checks",
        column_config={"Blocking": st.column_config.CheckboxColumn(help=dq.CHECK_BLOCKING_HELP),
                       "Passed": st.column_config.CheckboxColumn(help="Ticked when the check passed.")})

# ---- quarantine ------------------------------------------------------------------------------------------------
st.subheader("Quarantined rows")
sources = ui.call(dq.quarantine_sources)
if sources.is_empty():
    st.success("No row has been quarantined: every row of every file passed the row rules.")
else:
    labels = {r["source"]: f"{ui.plain(r['source'])} ({plural(r['rows'], 'row')})"
              for r in sources.iter_rows(named=True)}
    choice = st.selectbox("Source", ["(all sources)"] + sources["source"].to_list(), key="dq_source",
                          format_func=lambda s: labels.get(s, s),
                          help="Quarantined rows are kept out of the data with the rule they broke.")
    rows = ui.call(dq.quarantine, None if choice == "(all sources)" else choice)
    rules = dq.quarantine_rules(rows)
    st.markdown("\n".join(f"- **{ui.plain(r['source'])}**: {plural(r['rows'], 'row')} broke the rule "
                          f"'{ui.plain(r['rule'])}', for example {ui.plain(r['example'])}"
                          for r in rules.iter_rows(named=True)))
    if len(rows) >= dq.QUARANTINE_LIMIT:
        st.caption(f"Showing the newest {dq.QUARANTINE_LIMIT:,} rows.")
    ui.table(rows.select(
        pl.col("source").alias("Source"), pl.col("file_name").alias("File"), pl.col("row_number").alias("Row"),
        pl.col("column_name").alias("Column"), pl.col("value").alias("Value"), pl.col("rule").alias("Rule"),
        pl.col("message").alias("Message"), pl.col("quarantined_at").alias("Quarantined at")),
        "quarantined rows", sel, key="dq-quarantine")

# ---- source conflicts ------------------------------------------------------------------------------------------
st.subheader("Where sources disagreed")
conflicts = ui.call(dq.conflicts_summary)
if conflicts.is_empty():
    st.success("No two sources gave different figures for the same organisation, month and measure.")
else:
    st.markdown("When two publications give a figure for the same organisation, month and measure, one rule picks "
                "the figure used (the official file first) and the other is kept for comparison.")
    ui.table(conflicts.select(
        pl.col("metric_id").alias("Measure"), pl.col("winning_source").alias("Source used"),
        pl.col("other_source").alias("Other source"), pl.col("conflicts").alias("Disagreements"),
        pl.col("organisations").alias("Organisations"), pl.col("first_month").alias("First month"),
        pl.col("last_month").alias("Last month"), pl.col("mean_abs_difference").alias("Mean difference"),
        pl.col("max_abs_difference").alias("Largest difference"), pl.col("rule").alias("Rule")),
        "source conflicts", sel, key="dq-conflicts",
        column_config={"Mean difference": st.column_config.NumberColumn(format="%.2f",
                                                                        help="Mean of |used - other|."),
                       "Largest difference": st.column_config.NumberColumn(format="%.2f")})
    own = ui.call(dq.conflicts_for_org, sel.org_code)
    if sel.org_level != "england":
        with st.expander(f"Disagreements for {sel.title} ({len(own)})"):
            if own.is_empty():
                st.write(f"None: no two sources disagreed on {sel.title}.")
            else:
                ui.table(own.select(
                    pl.col("period_start").alias("Month"), pl.col("metric_id").alias("Measure"),
                    pl.col("winning_source").alias("Source used"), pl.col("winning_value").alias("Value used"),
                    pl.col("other_source").alias("Other source"), pl.col("other_value").alias("Other value"),
                    pl.col("difference").alias("Difference"), pl.col("winning_source_file").alias("File used"),
                    pl.col("other_source_file").alias("Other file"), pl.col("rule").alias("Rule")),
                    "source conflicts for organisation", sel, key="dq-conflicts-org")

# ---- Great Expectations Data Docs ------------------------------------------------------------------------------
st.subheader("The full validation report")
docs = dq.data_docs_path()
st.markdown("Great Expectations writes a browsable report of every check and its results (Data Docs).")
st.code(str(docs), language=None)
if docs.exists():
    st.link_button("Open the Data Docs report", docs.resolve().as_uri(), icon=":material/open_in_new:")
    st.caption("Browsers often block links to files on this computer from a web page: if nothing opens, copy the "
               "path above into the browser's address bar.")
else:
    st.info("The report has not been built here yet: it is written when the pipeline runs its checks (`ibp run`).")
