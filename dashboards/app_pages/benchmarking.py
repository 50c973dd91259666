"""Benchmarking: the organisation against its peer group and nationally, for one measure in one month."""
import polars as pl
import streamlit as st

from ibp_pipeline.dashboards import ui
from ibp_pipeline.dashboards import benchmarking as bm
from ibp_pipeline.dashboards import theme
from ibp_pipeline.step2_triple_aim.trust_types import COMPARISON_LABELS

sel = ui.selection()
ui.header("Benchmarking", sel, "How the organisation compares with similar organisations and with everyone "
          "nationally, for one measure in the latest month of the period that has data. Trusts are compared "
          "only with trusts of the same type: with their peer group (same type, similar size and case mix) and "
          "with every trust of their type nationally; ICBs with the other ICBs.")

level = bm.comparison_level(sel.org_level)
if sel.org_level in ("england", "region"):
    st.info("Peer groups are for NHS trusts. For " + ("England" if sel.org_level == "england" else sel.title)
            + ", this page compares the 42 ICBs nationally"
            + (", with the ICBs of this region in blue." if sel.org_level == "region" else ".")
            + " Pick a trust in the sidebar to see it against its peer group.")

choices = ui.call(bm.metric_choices, level, sel.org_code, sel.period_to)
if choices.is_empty():
    st.info(f"No benchmarked measure for {sel.title} up to {ui.month_label(sel.period_to)}: benchmarks compare NHS "
            "trusts with NHS trusts and ICBs with ICBs, so independent providers and organisations without "
            "published values are not benchmarked; for an early period, pick a later end month.")
    st.stop()

ids = choices["metric_id"].to_list()
if st.session_state.get("bench_metric") not in ids:
    st.session_state["bench_metric"] = bm.default_metric(ids)
names = dict(zip(ids, choices["name"].to_list()))
metric = st.selectbox("Measure", ids, format_func=lambda m: names.get(m, m), key="bench_metric",
                      help="Measures with a national benchmark by the end of the period that this organisation has "
                           "a value for.")
ui.data_as_of([metric])
info = choices.row(ids.index(metric), named=True)
unit, hib, name = info["unit"], info["higher_is_better"], info["name"]
better = {True: "higher is better", False: "lower is better"}.get(hib, "no better direction: a volume")
order = "largest first" if hib is None else "best first"

catalogue = ui.metric_catalogue()
cat_names = dict(zip(catalogue["metric_id"].to_list(), catalogue["name"].to_list()))
month = ui.call(bm.benchmark_month, metric, level, sel.period_to)
if month is None:
    st.info(f"No national benchmark of {name} up to {ui.month_label(sel.period_to)}: pick a later period.")
    st.stop()
st.caption(f"{name} ({better}) in **{ui.month_label(month)}**, the latest period up to "
           f"{ui.month_label(sel.period_to)} with a national benchmark"
           + (" (before the start of the selected period)." if month < sel.period_from else ".")
           + f" {bm.plain_words(info['definition'], cat_names)}")

values = ui.call(bm.values_at, metric, level, month)
bench = ui.call(bm.benchmarks_at, metric, month)
own = ui.call(bm.own_value, sel.org_code, metric, month)
my_type = None
if sel.org_level == "provider":
    mine_row = values.filter(pl.col("org_code") == sel.org_code)
    my_type = mine_row["comparison_type"][0] if mine_row.height else None
if my_type is not None:  # national ranks only among trusts of the same type
    values = values.filter(pl.col("comparison_type") == my_type)
    nat_median = bm.benchmark_line(bench, "type", "median", comparison_type=my_type)
    nat_top = bm.benchmark_line(bench, "type", "top_quartile", comparison_type=my_type)
    who = COMPARISON_LABELS.get(my_type, "NHS trusts")
else:
    nat_median = bm.benchmark_line(bench, bm.SCOPE[level], "median")
    nat_top = bm.benchmark_line(bench, bm.SCOPE[level], "top_quartile")
    who = "NHS trusts" if level == "provider" else "ICBs"
national = bm.ranked(values, hib)
n_total = national.height
value_label = f"{name} ({unit})"

if sel.org_level == "region":
    highlight = set(national.filter(pl.col("region_code") == sel.org_code)["org_code"].to_list())
elif sel.org_level == "england":
    highlight = set()
else:
    highlight = {sel.org_code}
mine = national.filter(pl.col("org_code") == sel.org_code)
rank_text = f"{mine['rank'][0]} of {n_total}" if mine.height else "-"

peer_id, peer_label, peer_median, peers, why_not = None, None, None, pl.DataFrame(), ""
members = pl.DataFrame()
if level == "provider":
    members = ui.call(bm.peer_group, sel.org_code)
    me = members.filter(pl.col("org_code") == sel.org_code)
    why_not = me["assignment"][0] if me.height else "not among the trusts grouped"
    if me.height and me["peer_group_id"][0] != 0:
        peer_id, peer_label = me["peer_group_id"][0], me["peer_group_label"][0]
        peer_median = bm.benchmark_line(bench, "peer", "median", peer_id)
        peers = bm.ranked(national.filter(pl.col("peer_group_id") == peer_id), hib)

tiles = [(f"Value, {ui.month_label(month)}", ui.fmt_value(own, unit),
          f"{name} of {sel.title} in {ui.month_label(month)}.")]
if level == "provider":
    my_peer = peers.filter(pl.col("org_code") == sel.org_code) if peers.height else peers
    tiles += [("Peer median", ui.fmt_value(peer_median, unit),
               "Middle value of the trusts in the peer group" + (f" ({peer_label})." if peer_label else
                                                                 ": this trust is not in a peer group.")),
              ("Rank in peer group", f"{my_peer['rank'][0]} of {peers.height}" if my_peer.height else "-",
               "1 = best in the group (largest for a measure with no better direction).")]
tiles += [("National median", ui.fmt_value(nat_median, unit),
           f"Middle value of the {n_total} {who} with a value in {ui.month_label(month)}."),
          ("National top quartile", ui.fmt_value(nat_top, unit),
           f"The value the best quarter of {who} reach or beat (none for a measure with no better direction).")]
if sel.org_level in ("provider", "icb"):
    tiles.append(("National rank" if level == "provider" else "Rank among ICBs", rank_text,
                  f"1 = best of the {n_total} {who} (largest for a measure with no better direction)."))
for col, (label, value, help_text) in zip(st.columns(len(tiles)), tiles):
    col.metric(label, value, help=help_text)

visible_national = ui.restrict(national, sel)
if sel.visible is not None and visible_national.height < national.height:
    st.caption(f"Your account sees {visible_national.height} of the {national.height} {who}: the others are "
               "left out of the charts and tables; medians, quartiles and funnel limits still use all of them.")

# ---- peer group ------------------------------------------------------------------------------------------------
if level == "provider":
    st.subheader("Against the peer group")
    if peer_id is None:
        st.info(f"{sel.title} is not in a peer group ({why_not}), so it is compared nationally only.")
    elif peers.is_empty():
        st.info(f"No trust of the peer group has a value of {name} in {ui.month_label(month)}.")
    else:
        shown = ui.restrict(peers, sel)
        lines = [("Peer median", peer_median, theme.NHS_DARK_BLUE), ("National median", nat_median, theme.NHS_BLACK),
                 ("National top quartile", nat_top, theme.NHS_GREEN)]
        st.plotly_chart(bm.ranked_bar_figure(shown, highlight, lines, unit=unit, value_label=value_label,
                                             title=f"{name}: peer group, {ui.month_label(month)}"),
                        key="bench_peer_chart")
        st.caption(f"Peer group: **{peer_label}**, {peers.height} trusts with a value this month, best at the "
                   f"top. {sel.org_name} in NHS blue. Top quartile: the value the best quarter of trusts reach.")

# ---- national --------------------------------------------------------------------------------------------------
st.subheader(f"Against all {who} nationally")
funnel = bm.can_funnel(unit, national)
table_frame = national
if funnel:
    p0 = bm.national_proportion(national)
    points = bm.funnel_points(national, p0, hib)
    table_frame = points
    shown = ui.restrict(points, sel)
    curve = bm.funnel_curve(p0, national["denominator"].min(), national["denominator"].max())
    parts = bm.ratio_parts(metric)
    x_title = (f"{cat_names.get(parts[1], parts[1])} (the denominator)" if parts else
               "Denominator: the number of patients, attendances or beds the percentage is out of")
    reference = (f"{sel.org_name} as a whole", own) if sel.org_level == "region" and own is not None else None
    st.plotly_chart(bm.funnel_figure(shown, curve, p0, highlight, x_title=x_title, y_title=value_label,
                                     title=f"{name}: all {who}, {ui.month_label(month)}", reference=reference),
                    key="bench_funnel")
    st.caption(f"A funnel plot: each dot is one organisation, its percentage against how many cases it is out of. "
               f"The black line is the national rate ({100 * p0:.1f}%: all numerators over all denominators). "
               "Smaller organisations vary more by chance, so the limits widen to the left: a dot outside the "
               "dashed 95% lines would happen by chance about 1 time in 20, outside the solid 99.8% lines about "
               "1 in 500. Limits are exact binomial quantiles (Spiegelhalter 2005) and treat every case as "
               "independent: with thousands of cases a month they are narrow, so many organisations sit outside "
               "them, a sign that real differences between organisations (case mix, pressures, practice) are "
               "larger than chance alone.")
else:
    lines = [(f"National median ({who})", nat_median, theme.NHS_BLACK),
             ("National top quartile", nat_top, theme.NHS_GREEN)]
    if sel.org_level in ("region", "england") and own is not None:
        lines.append((f"{'England' if sel.org_level == 'england' else sel.org_name} as a whole", own,
                      theme.NHS_DARK_BLUE))
    st.plotly_chart(bm.ranked_bar_figure(visible_national, highlight, lines, unit=unit, value_label=value_label,
                                         horizontal=level == "icb", order=order,
                                         title=f"{name}: all {who}, {ui.month_label(month)}"),
                    key="bench_national_chart")
    st.caption(f"Every one of the {who} with a value, {order}"
               + (" (this measure has no better direction)" if hib is None else "")
               + (". Selected in NHS blue." if highlight else "."))

ui.table(bm.comparison_table(ui.restrict(table_frame, sel), n_total, unit),
         f"benchmark {names.get(metric, metric)} {who}", sel,
         key="bench-national", column_config={
             "Rank": st.column_config.NumberColumn(help=f"1 = best of the {who} nationally (largest when no better "
                                                        "direction)"),
             f"Value ({unit})": st.column_config.NumberColumn(format="%,.1f", help=f"{name} ({unit})"),
             **{c: st.column_config.NumberColumn(format="%.1f", help="Funnel limit at this organisation's "
                                                                     "denominator (percent)")
                for c in ("Lower 99.8% limit", "Lower 95% limit", "Upper 95% limit", "Upper 99.8% limit")},
             "Numerator": st.column_config.NumberColumn(format="%,.0f", help="What is counted"),
             "Denominator": st.column_config.NumberColumn(format="%,.0f", help="What it is out of"),
         })

# ---- peer group members ----------------------------------------------------------------------------------------
if level == "provider" and peer_id is not None:
    st.subheader("Who is in the peer group, and why")
    st.markdown(bm.GROUPING)
    ui.table(bm.members_table(ui.restrict(members, sel)), "peer group members", sel, key="bench-members",
             column_config={
                 "A&E attendances a month": st.column_config.NumberColumn(format="%,.0f"),
                 "General and acute beds": st.column_config.NumberColumn(format="%,.0f"),
                 "Staff (full-time equivalent)": st.column_config.NumberColumn(format="%,.0f"),
                 "Deprivation (IMD score)": st.column_config.NumberColumn(
                     format="%.1f", help="Index of Multiple Deprivation score of the trust's patients: higher is "
                                         "more deprived"),
                 "Specialisation (percentile)": st.column_config.NumberColumn(
                     format="%.0f", help="Share of trusts less specialised than this one"),
             })

with st.expander("The benchmark figures behind the lines"):
    st.caption("Medians and quartiles over the organisations with a value; the top quartile is the value the best "
               "quarter reach or beat.")
    ui.table(bench.select(
        pl.col("scope").replace(bm.SCOPES).alias("Compared with"),
        pl.coalesce(pl.col("peer_group_label"), pl.col("comparison_type").replace(COMPARISON_LABELS))
        .alias("Which group"), pl.col("n_orgs").alias("Organisations"),
        pl.col("median").alias("Median"), pl.col("top_quartile").alias("Top quartile"),
        pl.col("bottom_quartile").alias("Bottom quartile")),
        f"benchmarks {names.get(metric, metric)}", sel, key="bench-lines")
