"""Overview: where do we stand, against what, is it real change or noise, and what changed since last month."""
import polars as pl
import streamlit as st

from ibp_pipeline.dashboards import ui
from ibp_pipeline.dashboards import board_pack, overview, theme
from ibp_pipeline.step2_triple_aim.trust_types import COMPARISON_LABELS as TYPE_WORDS

sel = ui.selection()
ui.header("Overview", sel, "The Triple Aim scorecard, each key standard against its target, and what changed "
          "since the month before. Hover over a tile or an icon for what it means.")
ui.data_as_of(ui.call(overview.key_standards, sel.org_code, sel.period_to)["metric_id"])

scores = ui.call(overview.scorecard, sel.org_code, sel.period_to)
st.subheader("Triple Aim scorecard")
if scores.is_empty():
    st.info(f"No Triple Aim score for {sel.title} up to {ui.month_label(sel.period_to)}: scores cover NHS trusts, "
            "ICBs, regions and England with enough published measures.")
else:
    first = scores.row(0, named=True)
    who = ("ICBs" if sel.org_level == "icb" else
           f"the {TYPE_WORDS.get(first['comparison_type'], 'trusts')} nationally")
    st.caption(overview.SCALE.format(who=who) + f" Scored month: {ui.month_label(first['period_start'])}.")
    cols = st.columns(len(scores))
    for col, row in zip(cols, scores.iter_rows(named=True)):
        peer = overview.rank_text(row["peer_rank"], row["peer_n"], "in its peer group")
        among = "ICBs" if sel.org_level == "icb" else TYPE_WORDS.get(row["comparison_type"], "trusts")
        national = overview.rank_text(row["national_rank"], row["national_n"], among)
        shown = f"{row['score']:.2f}" if row["score"] is not None else "Not scored"
        col.metric(overview.AIMS.get(row["aim"], row["aim"]), shown,
                   help=overview.AIM_HELP.get(row["aim"], "") + " "
                        + (row["not_scored"].capitalize() + "." if row["not_scored"] else
                           f"Rank (1 = best): {peer}; {national} nationally."))
        if row["not_scored"]:
            col.caption(row["not_scored"].capitalize())
        elif row["peer_rank"] is not None:
            col.caption(f"1 = best: {peer}")
    standing = first["standing"] or "Peer quartile: not available (too few peers or measures)"
    st.markdown(f"**{standing}**"
                + (f" · peer group: {first['peer_group_label']} (rank {first['peer_rank']} of {first['peer_n']}, "
                   "1 = best)" if first["peer_rank"] else ""),
                help="Where the overall score ranks within the peer group, in quarters. This is this dashboard's "
                     "own comparison, not the NHS Oversight Framework segmentation.")
    st.caption(overview.NO_MONEY)
    measures = ui.call(overview.aim_measures, sel.org_code, first["period_start"])
    context = measures.filter(pl.col("score").is_null() & pl.col("metric_name").str.contains("(?i)deprivation"))
    if context.height:
        dep = context.row(0, named=True)
        st.caption(f"Context, not scored: {dep['metric_name'].split(' (')[0]} "
                   f"{ui.fmt_value(dep['value'], dep['unit'])} (higher = more deprived). A trust does not control "
                   "the deprivation of the area it serves, so it adjusts expectations and is never part of a score.")
    with st.expander("The measures behind each aim"):
        ui.table(overview.measures_table(measures), "triple aim measures", sel, key="aim-measures")


standards = ui.call(overview.key_standards, sel.org_code, sel.period_to)
st.subheader("Key standards")
if standards.is_empty():
    st.info(f"No standard applies to {sel.title} in the published data up to {ui.month_label(sel.period_to)}.")
else:
    cols = st.columns(3)
    for i, row in enumerate(standards.iter_rows(named=True)):
        var_label, var_help, var_colour = theme.variation_label(row["point_type"])
        ass_label, ass_help, ass_colour = theme.assurance_label(row["assurance_type"])
        target = ui.fmt_value(row["target_value"], row["unit"])
        lines = [f"{ui.month_label(row['period_start'])} · target {target} ({row['standard_name']})"]
        if row["is_trajectory"] and row["deadline"]:
            lines.append(f"Trajectory to {ui.fmt_value(row['end_target_value'], row['unit'])} by "
                         f"{ui.month_label(row['deadline'])}")
        if row["constitutional_target_value"] is not None and row["constitutional_target_value"] != \
                row["target_value"]:
            lines.append(f"Constitutional standard {ui.fmt_value(row['constitutional_target_value'], row['unit'])}")
        met = row["meets_target"]
        colour = theme.NHS_MID_GREY if met is None else (theme.NHS_GREEN if met else theme.NHS_RED)
        with cols[i % 3]:
            ui.tile(row["metric_name"], ui.fmt_value(row["value"], row["unit"]), lines,
                    pills=[ui.icon(var_label, var_colour, var_help), ui.icon(ass_label, ass_colour, ass_help),
                           ui.icon("No target" if met is None else ("Meets target" if met else "Misses target"),
                                   colour,
                                   "Against the target that applies this month")],
                    help_text=" ".join(part for part in (row["definition"], row["source"] and
                                                         f"Source: {row['source']}.") if part), colour=colour)
    changes = overview.change_sentences(standards)
    st.subheader("What changed since last month")
    st.markdown("\n".join(f"- {line}" for line in changes) if changes else "Nothing to compare yet.")
    with st.expander("The figures behind the tiles"):
        ui.table(standards.select(
            pl.col("metric_name").alias("measure"), pl.col("period_start").alias("month"), "value",
            pl.col("prev_value").alias("previous month"), pl.col("target_value").alias("target"),
            pl.col("standard_name").alias("standard"), pl.col("meets_target").alias("meets target"),
            pl.col("point_type").map_elements(lambda c: theme.variation_label(c)[0], return_dtype=pl.String)
            .alias("variation"), pl.col("special_cause_type").alias("special cause"),
            pl.col("assurance_type").map_elements(lambda c: theme.assurance_label(c)[0], return_dtype=pl.String)
            .alias("assurance"), pl.col("trend_status").str.replace_all("_", " ").alias("trend"),
            pl.col("source").map_elements(ui.plain, return_dtype=pl.String).alias("source")),
            "key standards", sel)

st.subheader("Board pack")
st.write("One HTML document for the board: this overview, the SPC chart of every key standard and the gaps "
         "table, for the organisation and period selected. Open it in a browser and print to PDF if needed.")
if st.button("Prepare board pack", type="primary", icon=":material/description:"):
    with st.spinner("Building the board pack..."):
        st.session_state["ibp_board_pack"] = (sel.org_code, sel.period_to,
                                              board_pack.build(ui.db(), sel.org_code, sel.period_from,
                                                               sel.period_to, visible=sel.visible))
pack = st.session_state.get("ibp_board_pack")
if pack and pack[:2] == (sel.org_code, sel.period_to):
    st.download_button("Download board pack (HTML)", data=pack[2].encode("utf-8"),
                       file_name=f"board-pack-{sel.org_code.lower()}-{sel.period_to:%Y-%m}.html",
                       mime="text/html", icon=":material/download:", key="board-pack-download")
