"""Forecasts and risk: where a measure is heading, the chance of meeting each standard, the risk register, and how
far to trust the forecast."""
from datetime import date

import polars as pl
import streamlit as st

from ibp_pipeline.dashboards import ui
from ibp_pipeline.dashboards import charts, performance
from ibp_pipeline.dashboards import forecasts as fc



def month_format(frame: pl.DataFrame, extra: dict | None = None) -> dict:
    """Show date columns as 'Aug 2025' (Streamlit would add a time of day), plus any other column settings."""
    dates = {c: st.column_config.DateColumn(c, format="MMM YYYY") for c, t in frame.schema.items() if t == pl.Date}
    return dates | (extra or {})


CHANCE = {"Chance of meeting (%)": st.column_config.ProgressColumn(
    "Chance of meeting (%)", min_value=0, max_value=100, format="%.0f%%",
    help="Share of the simulated futures that meet the standard in the month assessed.")}

sel = ui.selection()
ui.header("Forecasts and risk", sel,
          "Where each measure is heading over the next 24 months, the chance of meeting each standard or "
          "trajectory, the standards most at risk, and how well the forecasts did when tested on past months. "
          "Forecasts look ahead from the latest published month; the period selector sets the history shown.")

metrics = ui.call(fc.forecast_metrics, sel.org_code)
metric = None
unit = None
if metrics.is_empty():
    st.info(f"No forecast for {sel.title}: forecasts are made for organisations with published monthly measures "
            "(NHS trusts, ICBs, regions and England). The risk register below may still apply.")
else:
    info = ui.measure_select(metrics, "fc_metric", "Measures with a forecast for this organisation; key "
                             "standards first.")
    metric, unit = info["metric_id"], info["unit"]
    ui.data_as_of([metric])

    # ---- fan chart ----
    history = ui.call(fc.history, sel.org_code, metric, sel.period_from, sel.period_to)
    if not history.is_empty():
        history = history.join(ui.call(performance.series_coverage, sel.org_code, metric,
                                       history["period_start"].min(), history["period_start"].max()),
                               on="period_start", how="left")
    forecast = fc.with_publication_status(ui.call(fc.forecast, sel.org_code, metric), metric, date.today())
    start = history["period_start"].min() if not history.is_empty() else forecast["period_start"].min()
    targets = ui.call(fc.fan_targets, sel.org_code, metric, start)
    st.subheader(f"{info['name']}: the next {forecast.height} months")
    st.plotly_chart(charts.fan_figure(history, forecast, targets, unit=unit or ""), key="fc_fan")
    origin = info["forecast_origin"]
    notes = []
    if history.is_empty():
        notes.append("No published value to show as history.")
    elif not history["period_start"].is_between(sel.period_from, sel.period_to).all():
        notes.append(f"No published value in the selected period, so the last {history.height} months with data "
                     "are shown.")
    elif history["period_start"].max() < origin:
        notes.append(f"Actual values are shown to {ui.month_label(history['period_start'].max())} (end of the "
                     f"selected period); the forecast starts after {ui.month_label(origin)}, the latest month "
                     "it uses.")
    notes.append(f"Forecast made from data up to {ui.month_label(origin)} by {fc.model_plain(info['model'])}. "
                 "Dark band: 8 in 10 likely outcomes (80% interval); light band: 19 in 20 (95%). "
                 "Red lines: the target or trajectory"
                 + (", held at its last value after it ends, as in the risk calculation." if not targets.is_empty()
                    and targets["basis"].str.starts_with("held").any() else "."))
    notes += [f"Dotted grey line: {note[:1].lower()}{note[1:]} (the source changed, so a step there may not be "
              "a change in performance)."
              for note in charts.coverage_notes(history)]
    bridged = int(forecast["months_interpolated"].max() or 0) if "months_interpolated" in forecast.columns else 0
    if bridged:
        notes.append(f"{bridged} month{'s' if bridged > 1 else ''} with no figure in the history "
                     f"{'were' if bridged > 1 else 'was'} bridged by a straight line to fit the model (not shown "
                     "as data on the chart).")
    unloaded = forecast.filter(pl.col("status") != "Forecast")
    if not unloaded.is_empty():
        notes.append(f"{unloaded.height} of these months NHS England has already published, but they are not "
                     f"loaded here ({unloaded['status'][0][len('Not loaded: '):]}): load the files with "
                     "`ibp ingest FILE` and the actual figures replace the forecast.")
    st.caption(" ".join(notes))
    with st.expander("The forecast figures and how they were made"):
        st.markdown(f"**Method**: {ui.plain(forecast['method'][0])}")
        table = fc.forecast_table(forecast)
        ui.table(table, f"forecast {metric}", sel, key="fc-forecast", column_config=month_format(table))

    # ---- probability of meeting the target ----
    st.subheader("Chance of meeting each standard")
    risk_rows = ui.call(fc.risk, sel.org_code, metric)
    if risk_rows.is_empty():
        st.info(f"No standard or trajectory applies to {info['name']} for {sel.title}, so there is no chance of "
                "meeting one to estimate. Risk is simulated for the measures with a standard: A&E 4-hour, RTT 18 "
                "weeks and 52 weeks, diagnostics 6 weeks, the cancer standards and G&A bed occupancy.")
    else:
        st.plotly_chart(fc.probability_figure(risk_rows), key="fc_prob")
        st.markdown("\n".join(f"- {fc.probability_sentence(row, unit)}"
                              for row in fc.headline_risk(risk_rows).iter_rows(named=True)))
        with st.expander("How to read this, and the figures by month"):
            draws = risk_rows["draws"].max()
            st.markdown(
                f"Each month the model simulates {draws:,} possible futures (a Monte Carlo simulation), drawing the "
                "forecast's own uncertainty together with uncertainty about demand, workforce and the effect sizes. "
                "**p10** is the value that 1 in 10 futures fall below, **p90** the value that 1 in 10 rise above, "
                "so in 8 of 10 futures the value lies between them; **p50** (the median) is the middle one. The "
                "**chance of meeting** a standard is the share of futures that meet it in that month. Diamonds mark "
                "each standard's deadline month.")
            table = fc.risk_table(risk_rows)
            ui.table(table, f"risk {metric}", sel, key="fc-risk", column_config=month_format(table, CHANCE))

# ---- risk register ----
st.subheader("Risk register")
own = ui.call(fc.register, sel.org_code)
if own.is_empty():
    st.info(f"No risk register for {sel.title}: it covers the organisations with forecasts of a measure that has a "
            "standard (acute trusts, ICBs, regions and England).")
else:
    ranked = fc.rank_register(own)
    counts = ranked.group_by("risk_band").len()
    pills = [ui.icon(f"{n} {fc.band_label(band).split(' (')[0].lower()}", fc.band_colour(band), fc.band_label(band))
             for band in fc.RISK_BANDS for n in counts.filter(pl.col("risk_band") == band)["len"].to_list()]
    st.markdown(f"The standards for {sel.title}, least likely to be met first, each assessed at its deadline (or "
                "at the last forecast month for a standard without one). " + "".join(pills),
                unsafe_allow_html=True)
    st.plotly_chart(fc.register_figure(ranked), key="fc_register")
    table = fc.register_table(ranked, with_org=False)
    ui.table(table, "risk register", sel, key="fc-register", column_config=month_format(table, CHANCE))

if sel.org_level != "provider":
    members = ui.restrict(ui.call(fc.member_register, sel.org_code, sel.org_level), sel)
    within = {"icb": "trusts in this ICB", "region": "ICBs and trusts in this region",
              "england": "regions, ICBs and trusts in England"}[sel.org_level]
    st.markdown(f"#### The {within}")
    if members.is_empty():
        st.info(f"No risk register for the {within} that you may see.")
    else:
        shown = members
        if members["org_code"].n_unique() > 60:
            shown = members.filter(pl.col("org_level").is_in(["region", "icb"]))
            st.caption("The grid shows regions and ICBs (too many trusts for one picture); every trust is in the "
                       "table below.")
        matrix = fc.register_matrix(shown)
        if not matrix.is_empty():
            st.plotly_chart(fc.register_heatmap(matrix), key="fc_members_heatmap")
            st.caption("Chance of meeting each primary standard at its deadline (or last forecast month): orange "
                       "for a low chance, through grey at even odds, to dark blue for a high chance (the number "
                       "is in every cell). Blank: the standard does not apply or there is no forecast.")
        table = fc.register_table(fc.rank_register(members), with_org=True)
        ui.table(table, "risk register within", sel, key="fc-register-within",
                 column_config=month_format(table, CHANCE))

# ---- forecast accuracy ----
st.subheader("How far to trust the forecast")
accuracy = ui.call(fc.accuracy, sel.org_code)
chosen = accuracy.filter(pl.col("metric_id") == metric) if metric else accuracy.clear()
if metric is None:
    st.info(f"No forecast for {sel.title}, so no backtest to show.")
elif chosen.is_empty():
    st.info(f"No backtest of this forecast for {sel.title}: too little history to test it on past months.")
else:
    row = chosen.row(0, named=True)
    verdict, colour = fc.trust_verdict(row["mase"], row["coverage80"])
    st.markdown(ui.icon(verdict, colour, "From the backtest below: accuracy against a simple rule, and how often "
                        "the actual fell inside the shaded ranges."), unsafe_allow_html=True)
    cols = st.columns(4)
    cols[0].metric("Typical error (MAE)", ui.fmt_value(row["mae"], unit) if unit != "percent"
                   else f"{row['mae']:.2f} points",
                   help="Mean absolute error: on average, how far the forecast was from what happened, in the "
                        "measure's own unit.")
    cols[1].metric("MASE", "-" if row["mase"] is None else f"{row['mase']:.2f}",
                   help="Mean absolute scaled error: the forecast's error divided by the error of a simple rule "
                        "(repeat last month, or the same month last year). Below 1: better than the simple rule.")
    cols[2].metric("Inside the 80% range", "-" if row["coverage80"] is None else f"{row['coverage80']:.0%}",
                   help="Share of test months whose actual fell inside the 80% interval; should be about 80%.")
    cols[3].metric("Inside the 95% range", "-" if row["coverage95"] is None else f"{row['coverage95']:.0%}",
                   help="Share of test months whose actual fell inside the 95% interval; should be about 95%.")
    st.markdown("\n".join([
        f"- **Model**: {fc.model_plain(row['model'])}; chosen each night as the best fit (lowest "
        "AICc, a measure of fit that penalises complexity) among the candidate models.",
        f"- **Test**: the forecast was re-made from {row['n_origins']} past starting months "
        f"({ui.month_label(row['first_origin'])} to {ui.month_label(row['last_origin'])}), each forecasting up to "
        f"{row['horizon_max']} months ahead, and compared with what happened ({row['n_forecasts']} test forecasts).",
        f"- **Typical error**: on average {ui.fmt_value(row['mae'], None if unit == 'percent' else unit)}"
        f"{' percentage points' if unit == 'percent' else ''} away from the actual value.",
        f"- {fc.mase_sentence(row['mase'], row['mase_benchmark'])}",
        f"- {fc.coverage_sentence(row['coverage80'], 0.8, row['n_forecasts'])}",
        f"- {fc.coverage_sentence(row['coverage95'], 0.95, row['n_forecasts'])}",
    ]))
    with st.expander(f"Accuracy of every forecast for {sel.title}"):
        st.caption(f"Method: {ui.plain(row['method'])}")
        table = fc.accuracy_table(accuracy)
        ui.table(table, "forecast accuracy", sel, key="fc-accuracy", column_config=month_format(table))
