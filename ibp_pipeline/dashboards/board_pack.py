"""A one-click board pack: one self-contained HTML document per organisation and period.

Built from the same functions and tables as the dashboards (overview tiles, SPC charts, the gaps table), so the
board sees the numbers the dashboards show. Self-contained (plotly.js inline once) so it opens offline, can be
emailed, and prints to PDF from any browser."""
from __future__ import annotations

import html
from datetime import date

import plotly.io as pio
import polars as pl
import polars.selectors as cs

from . import charts, data_quality, overview, plan, theme, workforce
from .formatting import fmt_cell
from .organisations import plain_name
from .serving import Serving

GAP_COLUMNS = {"metric_name": "Measure", "period_start": "Month", "value": "Value", "standard_name": "Standard",
               "target_value": "Target", "gap_points": "Gap (points)", "meets_target": "Meets target",
               "trend_status": "Trend", "constitutional_target_value": "Constitutional standard"}


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _table(frame: pl.DataFrame, columns: dict[str, str], units: list[str | None] | None = None) -> str:
    head = "".join(f"<th>{_e(label)}</th>" for label in columns.values())
    rows = []
    for i, row in enumerate(frame.iter_rows(named=True)):
        unit = units[i] if units else None
        cells = "".join(f"<td>{_e(fmt_cell(row[c], unit if c in ('value', 'target_value') else None))}</td>"
                        for c in columns)
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def build(db: Serving, org_code: str, period_from: date, period_to: date,
          visible: frozenset[str] | None = None, today: date | None = None) -> str:
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
        sections.append(f"<p><strong>{_e(first['standing'] or 'Peer quartile: not available')}</strong> "
                        f"({_e(fmt_cell(first['period_start']))}). Scores run from 1 (best quarter of comparable "
                        "trusts) to 4; ranks: 1 = best. Not the NHS Oversight Framework segmentation.</p>"
                        f"<p>{_e(overview.NO_MONEY)}</p>")
        sections.append(_table(scores.with_columns(pl.col("aim").replace(overview.AIMS),
                                                   pl.coalesce(pl.col("not_scored"), pl.lit("")).alias("note")),
                               {"aim": "Aim", "score": "Score (1 best)", "peer_rank": "Peer rank (1 best)",
                                "peer_n": "of", "national_rank": "Rank among its type", "national_n": "of ",
                                "note": "Note"}))
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
                f"<span class='pill' style='background:{var_colour};color:{theme.text_on(var_colour)}' "
                f"title='{_e(var_help)}'>{_e(var_label)}</span>"
                f"<span class='pill' style='background:{ass_colour};color:{theme.text_on(ass_colour)}' "
                f"title='{_e(ass_help)}'>{_e(ass_label)}</span></div>")
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
                                    title=row["metric_name"], unit=row["unit"] or "", height=330)
            fig.update_layout(template="plotly_white+nhs" if "nhs" in pio.templates else "plotly_white")
            sections.append(pio.to_html(fig, include_plotlyjs="inline" if i == 0 else False, full_html=False,
                                        config={"displaylogo": False, "responsive": True}))
            notes = charts.coverage_notes(spc.filter(pl.col("metric_id") == row["metric_id"]))
            if notes:
                sections.append(f"<p class='sub'>Dotted grey line: the providers this total covers change: "
                                f"{_e('. '.join(notes))}.</p>")
        sections.append("<h2>Gaps to the standards</h2>")
        sections.append(_table(standards, {k: v for k, v in GAP_COLUMNS.items() if k in standards.columns},
                               units=standards["unit"].to_list()))
    sections += plan_sections(db, org_code)
    sections.append(f"<p class='foot'>Source: the figures published by refresh {_e(published['run_id'][0])}: "
                    "the Triple Aim scores, the gaps to the standards, the SPC charts and the standards' "
                    "trajectories as the dashboards show them; the plan, its reviews and its checks from the plan "
                    "store. Public NHS statistics under the Open Government Licence v3.0. Built by ibp_pipeline."
                    "</p>")
    return _document(f"Board pack: {name}", "\n".join(sections))


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
@media print {{ h2 {{ page-break-after: avoid; }} .js-plotly-plot {{ page-break-inside: avoid; }} }}
</style></head><body>
{body}
</body></html>"""
