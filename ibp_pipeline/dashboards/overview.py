"""The overview a leader reads first: Triple Aim scorecard, one tile per key standard, what changed."""
from __future__ import annotations

import re
from datetime import date

import polars as pl

from .formatting import fmt_value, meets
from .jargon import in_words
from .serving import Serving

AIMS = {"overall": "Overall", "quality_of_care": "Quality of care", "our_people": "Our people",
        "population_health": "Population health", "efficiency": "Efficiency (beds and staff)"}
AIM_HELP = {
    "quality_of_care": "Waiting times and standards (A&E, planned care, diagnostics, cancer) and whether staff "
                       "would recommend the care.",
    "our_people": "NHS Staff Survey 2024: engagement, morale and the seven People Promise elements.",
    "population_health": "Health of the area the patients come from (Health Index, virtual wards). Deprivation is "
                         "shown beside it as context, never scored.",
    "efficiency": "Use of beds and staff: bed occupancy, delayed discharges, staff per A&E attendance. Not a cost "
                  "score: the data hold no money measure per trust.",
    "overall": "The average of the aims that could be scored, each aim counting equally.",
}
NO_MONEY = ("No money measure per trust is in the data: the national cost collection gives one national price "
            "per unit of activity, not each trust's costs, so the efficiency aim covers the use of beds and staff "
            "only and is not a cost score.")
SCALE = ("Each measure scores 1 (best quarter of {who}) to 4 (worst quarter); an aim is the average of its "
         "measures, so lower is better. Ranks: 1 = best.")


def scorecard(db: Serving, org_code: str, period_to: date) -> pl.DataFrame:
    """Triple Aim scores (1 best to 4) of the latest scored month in the period, one row per aim."""
    return db.query("""
        select aim, score, not_scored, peer_quartile, standing, standing_rule, n_metrics_scored, metrics_scored,
               national_rank, national_n, peer_rank, peer_n, peer_group_label, comparison_type, period_start, method
        from s2_triple_aim.aim_scores
        where org_code = $org and period_start = (
            select max(period_start) from s2_triple_aim.aim_scores
            where org_code = $org and period_start <= $to and aim = 'overall')
        order by case aim when 'overall' then 0 when 'quality_of_care' then 1 when 'our_people' then 2
                 when 'population_health' then 3 else 4 end""", {"org": org_code, "to": period_to})


def aim_measures(db: Serving, org_code: str, period_start: date) -> pl.DataFrame:
    """The measures behind each aim in the scored month: plain name, value, unit, month of the value, score 1-4
    (NULL for context) and how many organisations it was compared with."""
    return db.query("""
        select aim, metric_name, value, unit, value_period_start, score, n_orgs_compared
        from s2_triple_aim.scores where org_code = $org and period_start = $month
        order by aim, score is null, metric_name""", {"org": org_code, "month": period_start})


def rank_text(rank: int | None, n: int | None, who: str) -> str:
    """'3 of 9 in its peer group' style text; '-' without a rank."""
    return f"{rank} of {n} {who}" if rank is not None and n else "-"


def measures_table(measures: pl.DataFrame) -> pl.DataFrame:
    """The measures behind the aims as a reader's table: aim, measure, value with its unit and month, score."""
    rows = [{"Aim": AIMS.get(r["aim"], r["aim"]), "Measure": r["metric_name"],
             "Value": fmt_value(r["value"], r["unit"]),
             "Month of the value": f"{r['value_period_start']:%b %Y}" if r["value_period_start"] else "-",
             "Score (1 best, 4 worst)": r["score"],
             "Compared with": ("context: not scored" if r["score"] is None else
                               f"{r['n_orgs_compared']} organisations")}
            for r in measures.iter_rows(named=True)]
    return pl.DataFrame(rows, schema={"Aim": pl.String, "Measure": pl.String, "Value": pl.String,
                                      "Month of the value": pl.String, "Score (1 best, 4 worst)": pl.Int64,
                                      "Compared with": pl.String})


def key_standards(db: Serving, org_code: str, period_to: date) -> pl.DataFrame:
    """One row per measure with a standard: the latest month in the period, the month before, the primary
    target (trajectory where one exists), the constitutional standard, the variation of that month's point and
    the series' assurance; whether the target is met is judged on the figures as shown (judged_as_shown).
    Every figure comes from s4_gaps.metric_gaps and s2_triple_aim.spc/spc_summary."""
    return judged_as_shown(db.query("""
        with g as (
            select *, row_number() over (partition by metric_id order by period_start desc) as recency
            from s4_gaps.metric_gaps where org_code = $org and period_start <= $to),
        latest as (select * from g where recency = 1),
        previous as (select metric_id, period_start as prev_period, value as prev_value from g where recency = 2)
        select l.metric_id, coalesce(c.name, l.metric_name) as metric_name,
               coalesce(c.unit, case when l.metric_id like '%pct%' then 'percent' end) as unit, c.definition,
               c.higher_is_better, l.period_start, l.value, p.prev_period, p.prev_value,
               l.value - p.prev_value as change, l.standard_name, l.kind, l.target_value, l.is_trajectory,
               l.end_target_value, l.deadline, l.gap_points, l.meets_target, l.direction, l.trend_status,
               l.months_to_target,
               l.on_track_for_deadline, l.constitutional_target_value, l.meets_constitutional,
               s.point_type, s.special_cause_type, s.mean, s.lpl, s.upl, ss.assurance_type, ss.provisional,
               c.source
        from latest l
        left join previous p using (metric_id)
        left join s1_current_state.metric_catalogue c using (metric_id)
        left join s2_triple_aim.spc s
               on s.org_code = l.org_code and s.metric_id = l.metric_id and s.period_start = l.period_start
        left join s2_triple_aim.spc_summary ss on ss.org_code = l.org_code and ss.metric_id = l.metric_id
        order by case l.metric_id when 'ae_4hr_pct' then 0 when 'rtt_18wk_pct' then 1 when 'dm01_6wk_pct' then 2
                 when 'cancer_fds_pct' then 3 when 'cancer_62d_pct' then 4 when 'cancer_31d_pct' then 5
                 else 6 end, l.metric_id""", {"org": org_code, "to": period_to}))


def scored_measures(text: str | None, names: dict[str, str]) -> str:
    """aim_scores.metrics_scored ('ae_4hr_pct=2; rtt_18wk_pct=3', or the aims for the overall score) in words:
    'A&E four-hour performance (quartile 2), RTT ... (quartile 3)'; the review met 'ae 4hr pct=2' in a table."""
    if not text:
        return "none"
    parts = []
    for item in re.split(r"[;,]\s*", text.strip()):
        code, _, score = item.partition("=")
        label = AIMS.get(code.strip()) or in_words(code.strip(), names)
        parts.append(f"{label} (quartile {float(score):g})" if score.strip() else label)
    return ", ".join(parts)


def judged_as_shown(standards: pl.DataFrame) -> pl.DataFrame:
    """meets_target judged on the figures as shown (formatting.meets): an occupancy of 92.04%, shown as 92.0%,
    meets a 92% ceiling; the warehouse compares the unrounded value and said it missed."""
    if standards.is_empty() or "direction" not in standards.columns:
        return standards
    judged = [row["meets_target"] if row["direction"] is None else
              meets(row["value"], row["target_value"], row["direction"], row["unit"])
              for row in standards.iter_rows(named=True)]
    return standards.with_columns(pl.Series("meets_target", judged, dtype=pl.Boolean))


def change_sentences(standards: pl.DataFrame) -> list[str]:
    """Plain-English lines on what moved since the month before, better or worse, and new special causes."""
    lines = []
    for row in standards.iter_rows(named=True):
        if row["prev_value"] is None or row["change"] is None:
            continue
        change = row["change"]
        better = (change > 0) == bool(row["higher_is_better"]) if change else None
        direction = "no change" if abs(change) < 0.05 else ("better" if better else "worse")
        unit = " points" if row["unit"] == "percent" else ""
        when = f"{row['period_start']:%b %Y}"
        text = (f"{row['metric_name']}: {fmt_value(row['value'], row['unit'])} in {when}, "
                f"{'up' if change > 0 else 'down'} {abs(change):,.1f}{unit} on {row['prev_period']:%b %Y} "
                f"({direction})" if direction != "no change" else
                f"{row['metric_name']}: {fmt_value(row['value'], row['unit'])} in {when}, unchanged on "
                f"{row['prev_period']:%b %Y}")
        if row["point_type"] in ("special_cause_improvement", "special_cause_concern"):
            text += f"; special cause {row['point_type'].rsplit('_', 1)[-1]} ({row['special_cause_type']})"
        if row["meets_target"] is not None:
            text += "; meets its target" if row["meets_target"] else "; misses its target"
        lines.append(text + ".")
    return lines


