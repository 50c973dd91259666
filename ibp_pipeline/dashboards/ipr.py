"""The Integrated Performance Report (IPR): what a board reads every month.

One Making Data Count summary table of every measure the organisation has (latest value, target, variation and
assurance, the last 13 months' trend), the exceptions (measures in special-cause concern or that will consistently
miss their target) with the narrative, actions, owner and recovery date the organisation entered, and the risk
register (owner, impact, likelihood, controls) beside the simulated chance of missing each standard. The summary
comes from s2_triple_aim.spc / spc_summary (the same limits as the Performance page and the board pack) and the
primary targets; the chances from s5_impact.risk_register; what people entered from the records store
(records/store.py), read straight from it so a saved entry shows at once.
"""
from __future__ import annotations

from datetime import date

import polars as pl

from ..config import get_paths
from ..records import store
from . import theme
from .formatting import chance_percent, fmt_chance, fmt_value
from .serving import Serving

# Board sections, in the order an IPR reads, by measure id prefix; the staff-group breakdowns of the workforce
# (on the Workforce page) are left out so the report stays one page of measures.
SECTIONS = (("ae_", "Urgent and emergency care"), ("rtt_", "Planned care"), ("dm01_", "Diagnostics"),
            ("cancer_", "Cancer"), ("ga_", "Beds and flow"), ("kh03_", "Beds and flow"),
            ("discharge_", "Beds and flow"), ("vw_", "Virtual wards"), ("workforce_fte", "Workforce"))
LEFT_OUT = "workforce_fte_"
TREND_MONTHS = 13
RECENT_MONTHS = 24  # a measure whose latest month is older than this before the report month is not reported


# The assurance icons' words, short enough for a table row at laptop width (the page's help says them whole).
SHORT_ASSURANCE = {"consistent_pass": "Will meet it", "consistent_fail": "Will miss it",
                   "inconsistent": "Hit and miss"}


def section_of(metric_id: str) -> str | None:
    if metric_id.startswith(LEFT_OUT):
        return None
    return next((name for prefix, name in SECTIONS if metric_id.startswith(prefix)), None)


def summary(db: Serving, org_code: str, period_to: date) -> pl.DataFrame:
    """One row per measure: section, name, unit, latest month and value in the report period, the primary target
    that month, the point's variation, the series' assurance, and the last 13 values (trend), in section order."""
    rows = db.query(f"""
        with pts as (
            select s.metric_id, s.period_start, s.value, s.point_type, s.special_cause_type,
                   row_number() over (partition by s.metric_id order by s.period_start desc) as back
            from s2_triple_aim.spc s
            where s.org_code = $org and s.period_start <= $to and s.value is not null)
        select p.metric_id, coalesce(c.name, p.metric_id) as name, c.unit, c.higher_is_better,
               p.period_start, p.value, p.point_type, p.special_cause_type, ss.assurance_type,
               t.target_value, t.standard_name,
               (select list(q.value order by q.period_start) from pts q
                where q.metric_id = p.metric_id and q.back <= {TREND_MONTHS}) as trend
        from pts p
        left join s1_current_state.metric_catalogue c using (metric_id)
        left join s2_triple_aim.spc_summary ss on ss.org_code = $org and ss.metric_id = p.metric_id
        left join s2_triple_aim.targets t on t.org_code = $org and t.metric_id = p.metric_id
                                         and t.period_start = p.period_start and t.is_primary
        where p.back = 1 and p.period_start >= $from""",
                    {"org": org_code, "to": period_to, "from": _months_before(period_to, RECENT_MONTHS)})
    if rows.is_empty():
        return rows
    order = {name: i for i, (_, name) in enumerate(SECTIONS)}
    rows = rows.with_columns(pl.col("metric_id").map_elements(section_of, return_dtype=pl.String).alias("section"))
    rows = rows.filter(pl.col("section").is_not_null()).unique("metric_id", keep="first")
    return rows.with_columns(pl.col("section").replace_strict(order, return_dtype=pl.Int64).alias("_order")) \
        .sort("_order", "name").drop("_order")


def _months_before(d: date, n: int) -> date:
    m = d.year * 12 + d.month - 1 - n
    return date(m // 12, m % 12 + 1, 1)


def exception_reason(point_type: str | None, assurance_type: str | None, target: float | None,
                     unit: str | None) -> str | None:
    """Why a measure is an exception, in words, or None: special-cause concern, or it will consistently miss."""
    reasons = []
    if point_type == "special_cause_concern":
        reasons.append("the latest month is special-cause concern (a change too large or lasting to be chance, "
                       "in the wrong direction)")
    if assurance_type == "consistent_fail":
        reasons.append(f"it will consistently miss its target of {fmt_value(target, unit)} without a change to "
                       "the system (the target lies beyond the process limits)")
    return "; ".join(reasons) or None


def exceptions(summary_rows: pl.DataFrame) -> pl.DataFrame:
    """The summary's exception rows with their reason."""
    if summary_rows.is_empty():
        return summary_rows
    reasons = [exception_reason(r["point_type"], r["assurance_type"], r["target_value"], r["unit"])
               for r in summary_rows.iter_rows(named=True)]
    return summary_rows.with_columns(pl.Series("reason", reasons, dtype=pl.String)) \
        .filter(pl.col("reason").is_not_null())


def summary_table(summary_rows: pl.DataFrame) -> pl.DataFrame:
    """The summary in the words a board reads: one formatter for every figure, the icons' labels."""
    if summary_rows.is_empty():
        return pl.DataFrame()
    return pl.DataFrame([{
        "Section": r["section"], "Measure": r["name"], "Month": f"{r['period_start']:%b %Y}",
        "Latest": f"{fmt_value(r['value'], r['unit'])} ({r['period_start']:%b %Y})",
        "Target": fmt_value(r["target_value"], r["unit"]) if r["target_value"] is not None else "-",
        "Variation": theme.variation_label(r["point_type"])[0],
        "Assurance": SHORT_ASSURANCE.get(r["assurance_type"], "-") if r["target_value"] is not None else "-",
        "Trend": r["trend"],
    } for r in summary_rows.iter_rows(named=True)])


def entered_exceptions(org_codes: list[str]) -> pl.DataFrame:
    return store.latest_exceptions(get_paths().records_store, org_codes)


def entered_risks(org_codes: list[str]) -> pl.DataFrame:
    return store.latest_risks(get_paths().records_store, org_codes)


def simulated_risks(db: Serving, org_code: str) -> pl.DataFrame:
    """Each standard's simulated chance of missing it (1 - the Monte Carlo chance of meeting it), soonest first."""
    if not db.has_table("s5_impact", "risk_register"):
        return pl.DataFrame()
    return db.query("""
        select standard_id, standard_name, metric_id, assessed_period, target_value, p50,
               1 - prob_meet_target as p_miss, risk_band
        from s5_impact.risk_register where org_code = $org
        order by assessed_period, standard_name""", {"org": org_code})


def risk_register(simulated: pl.DataFrame, entered: pl.DataFrame) -> pl.DataFrame:
    """The register a board reads: every entered risk (open first, highest score first) with its standard's
    simulated chance of missing beside it, then every standard no risk covers yet, so a gap in the register shows."""
    rows = []
    covered = set()
    if not entered.is_empty():
        for r in entered.sort(["status", "impact", "likelihood"], descending=True).iter_rows(named=True):
            score, level = store.risk_level(r["impact"], r["likelihood"])
            sim = simulated.filter(pl.col("standard_id") == r["standard_id"]) if r["standard_id"] and \
                not simulated.is_empty() else pl.DataFrame()
            covered.add(r["standard_id"])
            rows.append({"Risk": r["title"], "Standard": sim["standard_name"][0] if sim.height else "-",
                         "Owner": r["owner"], "Impact": r["impact"], "Likelihood": r["likelihood"],
                         "Score": f"{score} ({level})", "Controls": r["controls"], "Status": r["status"],
                         "Simulated chance of missing": fmt_chance(sim["p_miss"][0]) if sim.height else "-"})
    if not simulated.is_empty():
        for r in simulated.iter_rows(named=True):
            if r["standard_id"] in covered:
                continue
            rows.append({"Risk": "No risk entered yet", "Standard": r["standard_name"], "Owner": "-", "Impact": None,
                         "Likelihood": None, "Score": "-", "Controls": "-", "Status": "-",
                         "Simulated chance of missing": fmt_chance(r["p_miss"])})
    return pl.DataFrame(rows, schema={"Risk": pl.String, "Standard": pl.String, "Owner": pl.String,
                                      "Impact": pl.Int64, "Likelihood": pl.Int64, "Score": pl.String,
                                      "Controls": pl.String, "Status": pl.String,
                                      "Simulated chance of missing": pl.String})


def icb_trusts(db: Serving, icb_code: str, period_to: date) -> pl.DataFrame:
    """For an ICB's pack: each open NHS trust of the ICB, with how many of its measures are special-cause concern
    and how many will consistently miss their target, from the same SPC tables."""
    return db.query("""
        select o.org_code, o.org_name,
               count(*) filter (where s.variation_type = 'special_cause_concern') as concerning,
               count(*) filter (where s.assurance_type = 'consistent_fail') as failing,
               count(s.metric_id) as measures
        from s1_current_state.organisations o
        left join s2_triple_aim.spc_summary s on s.org_code = o.org_code and s.last_period <= $to
             and s.metric_id not like 'workforce_fte_%'
        where o.parent_icb_code = $icb and o.org_type = 'nhs_trust' and o.close_date is null
        group by all having count(s.metric_id) > 0
        order by o.org_name""", {"icb": icb_code, "to": period_to})


def sparkline_svg(values: list[float | None], width: int = 110, height: int = 26) -> str:
    """A tiny inline SVG line of the trend for the board pack (no script: prints on paper)."""
    points = [(i, v) for i, v in enumerate(values or []) if v is not None]
    if len(points) < 2:
        return ""
    lo, hi = min(v for _, v in points), max(v for _, v in points)
    span = (hi - lo) or 1.0
    n = max(len(values) - 1, 1)
    xy = " ".join(f"{2 + i * (width - 4) / n:.1f},{height - 3 - (v - lo) / span * (height - 6):.1f}"
                  for i, v in points)
    return (f"<svg width='{width}' height='{height}' role='img' aria-label='trend over {len(values)} months'>"
            f"<polyline fill='none' stroke='{theme.NHS_BLUE}' stroke-width='1.5' points='{xy}'/></svg>")


def may_enter(user, org_code: str, visible: frozenset[str] | None) -> bool:
    """Who writes an organisation's exception reports and risks: its own users (a trust's for the trust, an ICB's
    for the ICB and its trusts), admins, and anyone in local mode; a trust's view of its peers is read-only."""
    if user is None or user.role == "admin":
        return True
    if user.role == "icb":
        return visible is None or org_code in visible
    return user.org_code == org_code


def forecast_table(db: Serving, org_code: str) -> pl.DataFrame:
    """Forecasts for the board: each standard's forecast at the month it is judged (median and 80% range, from the
    Monte Carlo simulation of the forecast) against its target, with the chance of meeting it (s5_impact)."""
    if not db.has_table("s5_impact", "risk_register"):
        return pl.DataFrame()
    rows = db.query("""
        select r.standard_name, r.assessed_period, r.target_value, r.p10, r.p50, r.p90, r.prob_meet_target, c.unit
        from s5_impact.risk_register r left join s1_current_state.metric_catalogue c using (metric_id)
        where r.org_code = $org and r.is_primary
        order by r.assessed_period, r.standard_name""", {"org": org_code})
    return pl.DataFrame([{
        "Standard": r["standard_name"], "Judged in": f"{r['assessed_period']:%b %Y}",
        "Target": fmt_value(r["target_value"], r["unit"]), "Forecast (median)": fmt_value(r["p50"], r["unit"]),
        "Likely range (80%)": f"{fmt_value(r['p10'], r['unit'])} to {fmt_value(r['p90'], r['unit'])}",
        "Chance of meeting": fmt_chance(r["prob_meet_target"]),
    } for r in rows.iter_rows(named=True)], schema={c: pl.String for c in (
        "Standard", "Judged in", "Target", "Forecast (median)", "Likely range (80%)", "Chance of meeting")})


def scenario_table(db: Serving, org_code: str, year_end: date) -> pl.DataFrame:
    """Each scenario against the baseline at the end of the planning year (the latest run of each): the chance of
    meeting each measure's target then, the change it makes, and its extra cost over the year."""
    if not db.has_table("s6_scenarios", "comparison"):
        return pl.DataFrame()
    year_start = _months_before(year_end, 11)
    rows = db.query("""
        with latest as (select scenario, run_id from s6_scenarios.runs
                        qualify row_number() over (partition by scenario order by run_at desc, run_id desc) = 1),
        c as (select c.* from s6_scenarios.comparison c join latest using (scenario, run_id)
              where c.org_code = $org and c.scenario <> 'baseline')
        select c.scenario, c.metric_id, coalesce(k.name, c.metric_id) as name,
               any_value(c.prob_baseline) filter (where c.period_start = $end) as prob_baseline,
               any_value(c.prob_scenario) filter (where c.period_start = $end) as prob_scenario,
               sum(c.delta_cost) filter (where c.period_start between $start and $end) as extra_cost
        from c left join s1_current_state.metric_catalogue k using (metric_id)
        group by all having prob_baseline is not null
        order by c.scenario, name""", {"org": org_code, "start": year_start, "end": year_end})
    return pl.DataFrame([{
        "Scenario": r["scenario"].replace("_", " ").capitalize(), "Measure": r["name"],
        "Chance, baseline": fmt_chance(r["prob_baseline"]), "Chance, scenario": fmt_chance(r["prob_scenario"]),
        "Change (points)": f"{chance_percent(r['prob_scenario']) - chance_percent(r['prob_baseline']):+d}",
        "Extra cost in the year": fmt_value(r["extra_cost"], "GBP") if r["extra_cost"] else "none",
    } for r in rows.iter_rows(named=True)], schema={c: pl.String for c in (
        "Scenario", "Measure", "Chance, baseline", "Chance, scenario", "Change (points)", "Extra cost in the year")})
