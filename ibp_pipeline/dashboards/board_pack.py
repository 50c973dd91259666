"""A one-click board pack: one self-contained HTML document per organisation and period.

Built from the same functions and tables as the dashboards (overview tiles, SPC charts, the gaps table), so the
board sees the numbers the dashboards show. Self-contained (plotly.js inline once) so it opens offline, can be
emailed, and prints to PDF from any browser."""
from __future__ import annotations

import html
from collections.abc import Callable
from datetime import date
from pathlib import Path

import plotly.io as pio
import polars as pl
import polars.selectors as cs

from . import charts, data_quality, gaps, ipr, overview, plan, theme, workforce
from .formatting import PERCENT_UNITS, fmt_cell, fmt_value
from .organisations import plain_name
from .serving import Serving



def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def gap_text(gap: float | None, unit: str | None) -> str:
    """The gap to a target in words (gap_points is positive when short of it): '2.8 points short' for a
    percentage, '1,200 short' for a count, 'met, 1.6 points to spare'; a gap that rounds to nothing is 'met
    exactly', judged on the figures as shown, like formatting.meets."""
    if gap is None:
        return "-"
    percent = (unit or "").lower() in PERCENT_UNITS
    size = f"{abs(gap):.1f} points" if percent else fmt_value(abs(gap), unit)
    if gap > 0 and size not in ("0.0 points", "0"):
        return f"{size} short"
    return "met exactly" if size in ("0.0 points", "0") else f"met, {size} to spare"


def gaps_table(standards: pl.DataFrame) -> pl.DataFrame:
    """The key standards' gaps in the words of the Gaps page: every figure through the one formatter."""
    return pl.DataFrame([{
        "Measure": r["metric_name"], "Month": fmt_cell(r["period_start"]),
        "Value": fmt_value(r["value"], r["unit"]),
        "Standard": r["standard_name"] or "-", "Target": fmt_value(r["target_value"], r["unit"]),
        "Gap to target": gap_text(r["gap_points"], r["unit"]),
        "Meets target": "-" if r["meets_target"] is None else ("yes" if r["meets_target"] else "no"),
        "Trend": gaps.TREND_STATUS.get(r["trend_status"], "-") if r["trend_status"] else "-",
        "Constitutional standard": fmt_value(r["constitutional_target_value"], r["unit"])
        if r["constitutional_target_value"] is not None else "-",
    } for r in standards.iter_rows(named=True)], schema={c: pl.String for c in (
        "Measure", "Month", "Value", "Standard", "Target", "Gap to target", "Meets target", "Trend",
        "Constitutional standard")})


def build(db: Serving, org_code: str, period_from: date, period_to: date,
          visible: frozenset[str] | None = None, today: date | None = None, plotly_js: str | bool = "inline") -> str:
    """The board pack HTML for one organisation; refuses an organisation the reader may not see. today dates the
    "latest month loaded" line's verdicts (which files are behind), as on the dashboards."""
    if visible is not None and org_code not in visible:
        raise PermissionError(f"organisation {org_code} is not visible to this user")
    org = db.query("select org_code, org_name from s1_current_state.organisations where org_code = ?", [org_code])
    name = plain_name(org["org_name"][0]) if not org.is_empty() else org_code
    published = db.query("select max(published_at) as at, any_value(run_id) as run_id from meta.publication")
    scores = overview.scorecard(db, org_code, period_to)
    standards = overview.key_standards(db, org_code, period_to)
    sections = [f"<h1>{_e(name)} ({_e(org_code)})</h1>",
                f"<p class='sub'>Integrated Business Plan board pack · {period_from:%b %Y} to {period_to:%b %Y} · "
                f"data published {_e(fmt_cell(published['at'][0]))}</p>"]
    if not standards.is_empty():
        line, behind = data_quality.data_as_of(
            data_quality.latest_months(db, tuple(standards["metric_id"].unique().sort().to_list())),
            today or date.today())
        if line:
            sections.append(f"<p class='sub asof'>{'<br>'.join(_e(t) for t in [line, *behind])}</p>")
    sections.append("<h2>Triple Aim scorecard</h2>")
    if scores.is_empty():
        sections.append("<p>No Triple Aim score for this organisation in the period.</p>")
    else:
        first = scores.row(0, named=True)
        names = dict(db.query("select metric_id, name from s1_current_state.metric_catalogue").iter_rows())
        sections.append(f"<p><strong>{_e(first['standing'] or 'Peer quartile: not available')}</strong> "
                        f"({_e(fmt_cell(first['period_start']))}). Scores run from 1 (best quarter of comparable "
                        "trusts) to 4; ranks: 1 = best. Not the NHS Oversight Framework segmentation.</p>"
                        f"<p>{_e(overview.NO_MONEY)}</p>")
        sections.append(_frame_table(scores.select(
            pl.col("aim").replace_strict(overview.AIMS, default=pl.col("aim")).alias("Aim"),
            pl.col("score").round(2).alias("Score (1 best, 4 worst)"),
            pl.when(pl.col("peer_rank").is_not_null()).then(pl.format("{} of {}", "peer_rank", "peer_n"))
            .alias("Peer rank"),
            pl.when(pl.col("national_rank").is_not_null())
            .then(pl.format("{} of {}", "national_rank", "national_n")).alias("Rank among its type"),
            pl.col("metrics_scored").map_elements(lambda t: overview.scored_measures(t, names),
                                                  return_dtype=pl.String).alias("Measures (quartile, 1 best)"),
            pl.coalesce(pl.col("not_scored"), pl.lit("")).alias("Note"))))
    sections.append("<h2>Key standards</h2>")
    if standards.is_empty():
        sections.append("<p>No standard applies to this organisation in the period.</p>")
    else:
        cards = []
        for row in standards.iter_rows(named=True):
            var_label, var_help, var_colour = theme.variation_label(row["point_type"])
            ass_label, ass_help, ass_colour = theme.assurance_label(row["assurance_type"])
            cards.append(
                f"<div class='tile'><h3>{_e(row['metric_name'])}</h3><div class='value'>"
                f"{_e(fmt_cell(row['value'], row['unit']))}</div><div>{_e(fmt_cell(row['period_start']))} · target "
                f"{_e(fmt_cell(row['target_value'], row['unit']))}</div>"
                f"{_pill(var_label, var_colour, var_help)}{_pill(ass_label, ass_colour, ass_help)}</div>")
        sections.append(f"<div class='tiles'>{''.join(cards)}</div>")
        sections.append("<h2>What changed since last month</h2><ul>"
                        + "".join(f"<li>{_e(line)}</li>" for line in overview.change_sentences(standards))
                        + "</ul>")
        sections.append("<h2>Charts: is it real change or noise?</h2><p>Making Data Count charts: grey points vary "
                        "as usual, blue points are special cause improvement, orange special cause concern; "
                        "the dashed lines are the process limits and the red dotted line the target.</p>")
        spc = db.query("""
            select s.*, v.coverage from s2_triple_aim.spc s
            left join s1_current_state.metric_values v
              on v.org_code = s.org_code and v.metric_id = s.metric_id and v.period_start = s.period_start
            where s.org_code = $org and s.period_start between $a and $b""",
                       {"org": org_code, "a": period_from, "b": period_to})
        targets = db.query("select metric_id, period_start, target_value, standard_name from s2_triple_aim.targets "
                           "where org_code = $org and is_primary and period_start between $a and $b",
                           {"org": org_code, "a": period_from, "b": period_to})
        for i, row in enumerate(standards.iter_rows(named=True)):
            fig = charts.spc_figure(spc.filter(pl.col("metric_id") == row["metric_id"]),
                                    targets.filter(pl.col("metric_id") == row["metric_id"]),
                                    title=charts._wrap(row["metric_name"], 60), unit=row["unit"] or "", height=330)
            fig.update_layout(template="plotly_white+nhs" if "nhs" in pio.templates else "plotly_white")
            sections.append(pio.to_html(fig, include_plotlyjs=plotly_js if i == 0 else False, full_html=False,
                                        config={"displaylogo": False, "responsive": True}))
            notes = charts.coverage_notes(spc.filter(pl.col("metric_id") == row["metric_id"]))
            if notes:
                sections.append(f"<p class='sub'>Dotted grey line: the providers this total covers change: "
                                f"{_e('. '.join(notes))}.</p>")
        sections.append("<h2>Gaps to the standards</h2>")
        sections.append(_frame_table(gaps_table(standards)))
    sections += ipr_sections(db, org_code, period_to, today)
    sections += plan_sections(db, org_code)
    sections.append(f"<p class='foot'>Source: the figures published by refresh {_e(published['run_id'][0])}: "
                    "the Triple Aim scores, the gaps to the standards, the SPC charts and the standards' "
                    "trajectories as the dashboards show them; the plan, its reviews and its checks from the plan "
                    "store. Public NHS statistics under the Open Government Licence v3.0. Built by ibp_pipeline."
                    "</p>")
    return _document(f"Board pack: {name}", "\n".join(sections))


def default_period(db: Serving, months: int = 36, last: date | None = None) -> tuple[date, date]:
    """The `months` months up to `last` (default: the latest month any measure has)."""
    last = last or db.query("select max(period_start) as m from s1_current_state.metric_values "
                            "where period_grain = 'month'")["m"][0]
    first = last.year * 12 + last.month - months
    return date(first // 12, first % 12 + 1, 1), last


def write_packs(db: Serving, org_codes: list[str], out: Path, period: tuple[date, date] | None = None,
                visible: frozenset[str] | None = None, shared_js: bool = False,
                progress: Callable[[str], None] = print) -> list[Path]:
    """Write one pack per organisation: to `out` for one organisation, else into the folder `out` as
    board-pack-<code>-<yyyy-mm>.html. shared_js: one plotly.min.js beside the packs instead of 4.6 MB inside each
    (for every organisation's pack at once). Refuses, before writing anything, an organisation the reader may not
    see (PermissionError)."""
    period_from, period_to = period or default_period(db)
    hidden = [c for c in org_codes if visible is not None and c not in visible]
    if hidden:
        raise PermissionError(f"organisation {', '.join(hidden)} is not visible to this user")
    many = len(org_codes) > 1 or out.is_dir()
    if many:
        out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, code in enumerate(org_codes, start=1):
        target = out / f"board-pack-{code.lower()}-{period_to:%Y-%m}.html" if many else out
        target.parent.mkdir(parents=True, exist_ok=True)
        page = build(db, code, period_from, period_to, visible=visible,
                     plotly_js="directory" if shared_js else "inline")
        if shared_js and not (target.parent / "plotly.min.js").exists():
            from plotly.offline import get_plotlyjs

            (target.parent / "plotly.min.js").write_text(get_plotlyjs(), encoding="utf-8")
        target.write_text(page, encoding="utf-8")
        written.append(target)
        progress(f"board pack {i} of {len(org_codes)}: {code} -> {target}")
    return written


def _frame_table(frame: pl.DataFrame, units: dict[str, str | list[str | None]] | None = None) -> str:
    """Any small frame as an HTML table, every cell as the dashboards format it; units: a column's unit, or each
    row's (money in pounds, percentages with %)."""
    units = units or {}
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    rows = []
    for i, row in enumerate(frame.rows()):
        cells = []
        for c, v in zip(frame.columns, row):
            unit = units.get(c)
            cells.append(f"<td>{_e(fmt_cell(v, unit[i] if isinstance(unit, list) else unit))}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _as_of(value: object) -> str:
    """The plan's 'data as of' (an ISO date in the store) as a month: 'April 2026'."""
    try:
        return f"{date.fromisoformat(str(value)[:10]):%B %Y}"
    except ValueError:
        return str(value)


def _pill(label: str, colour: str, tooltip: str) -> str:
    fill, text = theme.pill_colours(colour)  # darkened just enough for 4.5:1
    return f"<span class='pill' style='background:{fill};color:{text}' title='{_e(tooltip)}'>{_e(label)}</span>"


def ipr_sections(db: Serving, org_code: str, period_to: date, today: date | None = None) -> list[str]:
    """The Integrated Performance Report: every measure, the exceptions with what the organisation entered, the
    risk register, the forecasts at each standard's deadline and the scenarios; for an ICB, its trusts first."""
    from ..step2_triple_aim.standards import financial_year_start, planning_year_in_force

    out = ["<h2 class='new-page'>Integrated Performance Report</h2>"]
    trusts = ipr.icb_trusts(db, org_code, period_to)
    if not trusts.is_empty():
        out.append("<h3>The system's trusts</h3><p>How many of each trust's measures are in special-cause concern "
                   "(the latest month) and how many will consistently miss their target, on the same limits as "
                   "the trust's own report.</p>")
        out.append(_frame_table(trusts.select(
            pl.col("org_name").map_elements(plain_name, return_dtype=pl.String).alias("Trust"),
            pl.col("org_code").alias("Code"), pl.col("measures").alias("Measures"),
            pl.col("concerning").alias("Special-cause concern"),
            pl.col("failing").alias("Will consistently miss the target"))))
    rows = ipr.summary(db, org_code, period_to)
    if rows.is_empty():
        return out + ["<p>No measure has monthly figures in the two years to the end of the period.</p>"]
    out.append("<h3>Every measure</h3><p>Making Data Count: variation says whether the latest month is usual; "
               "assurance whether the process, as it runs, will meet the target. The line is the last 13 months.</p>")
    head = "".join(f"<th>{h}</th>" for h in ("Measure", "Month", "Latest", "Target", "Variation", "Assurance",
                                             "Last 13 months"))
    body, section = [], None
    for r in rows.iter_rows(named=True):
        if r["section"] != section:
            section = r["section"]
            body.append(f"<tr class='section'><th colspan='7'>{_e(section)}</th></tr>")
        var = theme.variation_label(r["point_type"])
        ass = theme.assurance_label(r["assurance_type"]) if r["target_value"] is not None else \
            ("No target", "No standard applies to this measure.", theme.NHS_DARK_GREY)
        target = fmt_value(r["target_value"], r["unit"]) if r["target_value"] is not None else "-"
        body.append(f"<tr><td>{_e(r['name'])}</td><td>{r['period_start']:%b %Y}</td>"
                    f"<td>{_e(fmt_value(r['value'], r['unit']))}</td><td>{_e(target)}</td>"
                    f"<td>{_pill(var[0], var[2], var[1])}</td><td>{_pill(ass[0], ass[2], ass[1])}</td>"
                    f"<td>{ipr.sparkline_svg(r['trend'])}</td></tr>")
    out.append(f"<table class='ipr'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
    found = ipr.exceptions(rows)
    entered = ipr.entered_exceptions([org_code])
    out.append(f"<h3>Exceptions ({found.height})</h3>")
    if found.is_empty():
        out.append("<p>No measure is in special-cause concern or consistently missing its target.</p>")
    for r in found.iter_rows(named=True):
        mine = entered.filter(pl.col("metric_id") == r["metric_id"]) if not entered.is_empty() else entered
        out.append(f"<div class='exception'><h4>{_e(r['name'])}: {_e(fmt_cell(r['value'], r['unit']))} in "
                   f"{r['period_start']:%B %Y}</h4><p><strong>Why it is an exception:</strong> {_e(r['reason'])}.</p>")
        if mine.height:
            e = mine.row(0, named=True)
            out.append(f"<p><strong>Narrative:</strong> {_e(e['narrative'])}</p><p><strong>Actions:</strong> "
                       f"{_e(e['actions'])}</p><p><strong>Owner:</strong> {_e(e['owner'])} · <strong>Recovery "
                       f"expected by</strong> {e['recovery_date']:%-d %B %Y} <span class='sub'>(entered by "
                       f"{_e(e['entered_by'])}, {e['entered_at']:%-d %B %Y})</span></p>")
        else:
            out.append("<p class='warn'>No exception report has been entered: the board expects a narrative, "
                       "actions, an owner and a recovery date.</p>")
        out.append("</div>")
    out.append("<h3>Risk register</h3><p>Risks the organisation entered (impact x likelihood on the NHS 5 x 5 "
               "matrix) beside the simulated chance of missing the standard each threatens; standards with no "
               "risk entered are listed after them.</p>")
    register = ipr.risk_register(ipr.simulated_risks(db, org_code), ipr.entered_risks([org_code]))
    out.append("<p>No risk entered and no standard simulated.</p>" if register.is_empty() else
               _frame_table(register))
    forecasts = ipr.forecast_table(db, org_code)
    if not forecasts.is_empty():
        out.append("<h3>Forecasts: where each standard is heading</h3><p>The forecast at the month each standard "
                   "is judged, from the Monte Carlo simulation of the pipeline's forecast: the median, the range "
                   "8 in 10 futures fall in, and the share of futures that meet the target.</p>")
        out.append(_frame_table(forecasts))
    year_end = date(financial_year_start(planning_year_in_force(today)).year + 1, 3, 1)
    scenarios = ipr.scenario_table(db, org_code, year_end)
    if not scenarios.is_empty():
        out.append(f"<h3>Scenarios against the baseline, {year_end:%B %Y}</h3><p>Each scenario's chance of "
                   "meeting the target at the end of the planning year against the baseline's, and what it adds "
                   "to cost over the year.</p>")
        out.append(_frame_table(scenarios))
    return out


def plan_sections(db: Serving, org_code: str) -> list[str]:
    """The plan of record (else the newest version): the latest month against plan with each line's chance of
    meeting the plan for the year, the exceptions and their open reviews, whether the plan's parts agree, and the
    Six Steps workforce plan by year. The same functions as the Plan and Workforce pages."""
    versions = plan.versions(db, org_code)
    out = ["<h2>The plan</h2>"]
    if versions.is_empty():
        return out + ["<p>No plan has been loaded for this organisation yet.</p>"]
    v = versions.row(plan.tracked(versions), named=True)
    out.append(f"<p><strong>Plan {_e(v['period'])}, version {v['version']} ({_e(v['status'])}"
               f"{', the plan of record' if v['is_plan_of_record'] else ''})</strong>, loaded "
               f"{v['loaded_at']:%-d %B %Y} by {_e(v['loaded_by'])}; drafted from data up to "
               f"{_e(_as_of(v['data_as_of']))}.</p>")
    if v["example"]:
        out.append("<p class='warn'><strong>This is an example plan, not the organisation's own. Its finance "
                   "actuals come from an example ledger: example, not real figures.</strong></p>")
    pva = plan.plan_vs_actual(db, v["plan_id"], v["version"])
    out.append("<h3>Plan against actual, latest month of each line</h3>")
    if pva.is_empty():
        out.append("<p>No month of the plan has an actual yet.</p>")
    else:
        latest = (pva.filter(pl.col("planned").is_not_null() & ((pl.col("planned") != 0) | (pl.col("actual") != 0)))
                  .sort("month").group_by("line_id", maintain_order=True).last().sort("part", "line"))
        row_units = latest["unit"].to_list()
        out.append(_frame_table(plan.variance_table(latest).select(
            "Line", "Month", "Plan", "Actual", "Variance (%)", "Plan for the year", "Forecast outturn",
            "Chance of meeting the plan for the year (%)", "Variance: is it changing?"),
            {"Plan": row_units, "Actual": row_units, "Plan for the year": row_units, "Forecast outturn": row_units,
             "Variance (%)": "%", "Chance of meeting the plan for the year (%)": "%"}))
        exceptions = pva.filter(pl.col("is_exception")).sort("month", descending=True)
        out.append(f"<h3>Exceptions ({exceptions.height})</h3>")
        out.append("<p>No line is off plan by more than the plan's thresholds.</p>" if exceptions.is_empty() else
                   "<ul>" + "".join(f"<li>{_e(t)}</li>" for t in exceptions["sentence"].to_list()[:15]) + "</ul>"
                   + (f"<p class='sub'>The latest 15 of {exceptions.height}.</p>" if exceptions.height > 15 else ""))
    reviewed = plan.reviews(db, org_code)
    open_rows = [r for r in reviewed.iter_rows(named=True) if r["status"] == "open"] if not reviewed.is_empty() \
        else []
    labels = dict(zip(pva["line_id"].to_list(), pva["line"].to_list())) if not pva.is_empty() else {}
    out.append(f"<h3>Open reviews ({len(open_rows)})</h3>")
    out.append("<p>No open review.</p>" if not open_rows else "<ul>" + "".join(
        f"<li>{_e(plan.review_sentence(r, labels.get(r['line_id'], r['line_id'])).replace('**', ''))}</li>"
        for r in open_rows) + "</ul>")
    out.append("<h3>Do the plan's parts agree?</h3>")
    out.append(_frame_table(plan.triangulation_summary(plan.triangulation(db, v["plan_id"], v["version"]))))
    spend = plan.budget(db, v["plan_id"], v["version"])
    if not spend.is_empty():
        out.append("<h3>Budget: the plan's surplus against what is needed or proposed</h3>")
        out.append(_frame_table(plan.budget_table(spend).drop("Where it came from"),
                                {c: "GBP" for c in ("Cost in the year (£)", "Plan's surplus (£)",
                                                    "Left after it (£)")}))
    steps = workforce.six_steps(db, v["plan_id"], v["version"])
    if not steps.is_empty():
        yearly = workforce.by_year(steps).select("Staff group", "Year", *[workforce.FTE_COLUMNS[c] for c in (
            "required_fte", "available_fte", "planned_substantive_fte", "planned_bank_fte", "planned_agency_fte",
            "gap_fte")], "Bank and agency cost (£)")
        out.append("<h3>Workforce plan (Six Steps), FTE averaged over each year</h3>")
        staffed = yearly.filter(pl.any_horizontal(cs.float() != 0))  # staff groups the organisation has
        out.append(_frame_table(staffed.with_columns(cs.float().round(1) + 0.0),  # + 0.0: never "-0"
                                {"Bank and agency cost (£)": "GBP"}))
    return out


def _document(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en-GB"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>
body {{ font-family: Frutiger, Arial, sans-serif; color: {theme.NHS_BLACK}; margin: 0 auto; max-width: 1100px;
  padding: 1.5rem; }}
h1 {{ color: {theme.NHS_WHITE}; background: {theme.NHS_BLUE}; padding: .8rem 1rem; margin: 0; }}
h2 {{ color: {theme.NHS_DARK_BLUE}; border-bottom: 2px solid {theme.NHS_BLUE}; padding-bottom: .2rem; }}
.sub {{ color: {theme.NHS_DARK_GREY}; }}
table {{ border-collapse: collapse; width: 100%; font-size: .9rem; }}
th {{ background: {theme.NHS_PALE_GREY}; text-align: left; }}
th, td {{ border: 1px solid {theme.NHS_PALE_GREY}; padding: .3rem .5rem; }}
.tiles {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: .6rem; }}
.tile {{ border-left: 6px solid {theme.NHS_BLUE}; background: {theme.NHS_PALE_GREY}; padding: .5rem .8rem; }}
.tile h3 {{ margin: 0; font-size: 1rem; color: {theme.NHS_DARK_BLUE}; }}
.value {{ font-size: 1.6rem; font-weight: 700; }}
.pill {{ display: inline-block; border-radius: 1rem; padding: 0 .5rem; margin: .2rem .2rem 0 0; font-size: .8rem; }}
.warn {{ border-left: 6px solid {theme.NHS_WARM_YELLOW}; padding: .3rem .6rem; }}
h3 {{ color: {theme.NHS_DARK_BLUE}; margin-bottom: .3rem; }}
.foot {{ color: {theme.NHS_DARK_GREY}; font-size: .8rem; margin-top: 2rem; }}
tr.section th {{ background: {theme.NHS_BLUE}; color: {theme.NHS_WHITE}; }}
.exception {{ border-left: 6px solid {theme.MDC_CONCERN}; padding: .1rem .8rem; margin: .6rem 0; }}
.exception h4 {{ margin: .3rem 0; color: {theme.NHS_DARK_BLUE}; }}
a:focus-visible {{ outline: 3px solid {theme.NHS_WARM_YELLOW}; }}
@page {{ size: A4 portrait; margin: 12mm; }}
@media print {{
  body {{ max-width: none; padding: 0; font-size: 10pt; }}
  h1, tr.section th, .pill {{ -webkit-print-color-adjust: exact; print-color-adjust: exact; }}
  h2 {{ page-break-after: avoid; }} h2.new-page {{ page-break-before: always; }}
  h3, h4 {{ page-break-after: avoid; }}
  tr, .tile, .exception {{ page-break-inside: avoid; }}
  thead {{ display: table-header-group; }}
  table {{ font-size: 8.5pt; }}
  .js-plotly-plot, .plotly-graph-div {{ page-break-inside: avoid; width: 100% !important; max-width: 180mm; }}
}}
</style></head><body>
{body}
</body></html>"""
