"""Step-2 Triple Aim scores: every NHS trust and ICB, every month, scored 1-4 (1 best) on each metric, averaged into
aim scores and an overall score, ranked among trusts of the same type and within the trust's peer group.

Why: a leader sees at a glance where the organisation stands on each aim (quality of care, our people,
population health, efficiency) and which measure drives it; every score row carries the value, the cut points
and the method behind it. This is the dashboard's own comparison with comparable trusts, not the NHS Oversight
Framework segmentation: the standing is named "Peer quartile: ..." so it cannot be read as an NOF segment.

Tables (schema s2_triple_aim)
- scores: one row per organisation x month x metric. Columns: org_code, org_name, org_level ('provider' = NHS
  trust, 'icb'), peer_group_id and comparison_type (trusts; NULL for ICBs),
  period_start (the month scored), aim, metric_id,
  metric_name, unit, value (the metric), value_period_start (the month the value comes from: the latest value
  in the scored month or the MONTHS_CARRIED months before it; for the static population-health sources the
  year or release used), higher_is_better, scored_value (the number ranked: the value, or its distance from a
  standard), method, scoring_rule, n_orgs_compared, cut_p25, cut_median, cut_p75 (cut points
  among organisations of the same level and comparison type that month, in scored_value units), score (1-4,
  NULL for context rows), is_estimate, formula, inputs (the numbers the value came from), source.
- aim_scores: one row per organisation x month x aim, plus aim 'overall'. Columns: org_code, org_name,
  org_level, peer_group_id, peer_group_label, comparison_type, period_start, aim, score (mean of the metric
  scores of the aim, NULL with fewer than MIN_METRICS_PER_AIM; overall = mean of the scored aims, each weighted
  equally), n_metrics_scored, n_aims_scored (overall), metrics_scored ('measure name: score; ...'), not_scored
  (why there is no score), peer_quartile (overall only, 1-4: the quarter of the peer group, ICBs of all ICBs,
  the rank falls in), standing ("Peer quartile: top quarter"), standing_rule, national_rank / national_n
  (rank among organisations of the same level and comparison type with a score that month; 1 = best; ties
  share the lowest rank, 'competition' ranking 1, 2, 2, 4), peer_rank / peer_n (the same within the trust's peer group; NULL for
  ICBs and for the fallback group).

Metric scoring (`method`)
- national_quartile: cut points are the 25th, 50th and 75th percentiles (linear interpolation) of the
  values of the organisations of the same level and comparison type that month (trusts of one type; all
  ICBs). Higher is better: 1 if value >= p75, 2 if >= median, 3 if >= p25, else 4. Lower is better: 1 if value <= p25, 2 if <= median, 3 if <= p75, else 4. A value on a
  cut point gets the better score. Fewer than MIN_ORGS_FOR_QUARTILES organisations -> no score.
- national_quartile_of_distance_from_standard: G&A bed occupancy has a ceiling standard (92%) and no better
  direction: too high is unsafe, too low leaves beds idle. The scored value is |occupancy - 92| and is scored
  lower-is-better by national quartile.
- context_only: shown with its value but not scored (the estimated cost of a trust's A&E activity grows with
  its size, so ranking it would rank size).
The fixed-threshold route (a standard such as the 95% A&E standard as a pass mark) is left to the standards
and gaps tables: nearly every trust misses most constitutional standards, so a threshold score would not
separate them.

Aims and metrics (METRICS below; the same list for trusts and ICBs unless `levels` says otherwise)
- quality_of_care: A&E 4-hour %, 12-hour decision-to-admit waits per 100 attendances, RTT 18-week %, 52-week
  waiters as % of the list, diagnostics 6-week %, cancer 28-day FDS, 31-day and 62-day %.
- population_health: ONS Health Index overall score (higher is healthier), IMD 2025 average score (context only, never
  scored: higher is more deprived), virtual ward capacity per 100,000 population. These are ICB figures; a
  trust gets the mean over the ICBs its patients come from weighted by latest.trust_icb_catchment (share of
  the trust's patients from each ICB; ICB E54 codes mapped to Q-codes through organisations.ons_code), or its
  host ICB's value when it is not in the catchment file (community, mental health, ambulance trusts); these
  trust rows are attributions, so they are is_estimate = true.
  The Health Index used for a month is the latest year published on or before that month's calendar year
  (2021 for every month from 2021; the earliest year, 2015, before that); IMD 2025 applies to every month.
- efficiency: workforce FTE per 1,000 A&E attendances (trusts with >= MIN_AE_FOR_FTE_RATIO
  attendances that month; an ICB sums the FTE and attendances of those trusts whose host it is, so ambulance,
  mental health and community staff do not count against it) - an estimate, since not all staff serve A&E;
  G&A bed occupancy (distance from 92%); patients no longer meeting the criteria to reside as % of G&A beds;
  estimated cost of A&E activity at the national unit cost (trusts, context only) and, for ICBs, the estimated
  A&E cost per head of resident population per month (attendances of every trust attributed to ICBs by the
  catchment shares, x unit cost / ONS mid-2020 population), lower is better.
  Unit cost: latest.national_cost_collection (NCC 2024/25) department_code 'Emergency Care' (currencies VB01Z
  to VB11Z and VB99Z, "Emergency Medicine ..."; the other departments - Ambulance, Critical care, Non-Elective
  Inpatient ... - are not A&E), activity-weighted: sum(cost) / sum(activity) = GBP 6.60bn / 23.57m = GBP 280.17
  per attendance. The A&E returns count 27.0m attendances in 2024/25 (they include booked appointments and
  type 3 units that the NCC does not all cost), so attendances x unit cost runs about 15% above the NCC total;
  these rows are is_estimate = true with the formula.

Our people: the NHS Staff Survey 2024 (latest.staff_survey_2024, occupation-group weighted scores out of 10,
higher better): staff engagement, morale and the seven People Promise elements; "would recommend the
organisation" (advocacy) counts in quality of care. Applied to every month from January 2024.
Deprivation (IMD 2025) is shown as context beside the trust and never scored: a trust does not control it.
No money measure: the national cost collection is one national price list, not each trust's costs, so the
efficiency aim (beds and staff) is not called cost; the A&E cost estimates are context.

Overall and peer quartile: overall = mean of the scored aims, given only when at least MIN_METRICS_FOR_SEGMENT
measures in at least MIN_AIMS_FOR_SEGMENT aims were scored (otherwise not_scored says so); the peer quartile is
ceil(4 x peer rank / peer n), from MIN_ORGS_FOR_QUARTILES ranked peers.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl

from ibp_pipeline.step2_triple_aim.benchmarks import metric_values_sql, ratio_metric_id
from ibp_pipeline.step2_triple_aim.peers import FALLBACK_GROUP_ID, icb_codes_sql, icb_imd_sql
from ibp_pipeline.step2_triple_aim.peers import TABLE as PEER_GROUPS

log = logging.getLogger(__name__)

SCHEMA = "s2_triple_aim"
SCORES = f"{SCHEMA}.scores"
AIM_SCORES = f"{SCHEMA}.aim_scores"
S1 = "s1_current_state"
AIMS = ("quality_of_care", "our_people", "population_health", "efficiency")

MONTHS_CARRIED = 12           # a month's value is the latest one in that month or the 12 months before (each
                              # value keeps its own month: publications differ by months, and a board reads the
                              # latest figure of every measure, said with its month)
MIN_ORGS_FOR_QUARTILES = 4
MIN_METRICS_FOR_SEGMENT = 3
MIN_AIMS_FOR_SEGMENT = 2
MIN_METRICS_PER_AIM = 2       # an aim resting on one measure is not scored: one measure is not an aim
STAFF_SURVEY_FROM = "2024-01-01"  # the 2024 survey (fieldwork autumn 2024) describes months from 2024 on
STAFF_SURVEY_MONTH = "2024-10-01"
QUARTER_WORDS = {1: "Peer quartile: top quarter", 2: "Peer quartile: second quarter",
                 3: "Peer quartile: third quarter", 4: "Peer quartile: bottom quarter"}
OCCUPANCY_STANDARD = 92.0
MIN_AE_FOR_FTE_RATIO = 1_000
EMERGENCY_CARE_DEPARTMENT = "Emergency Care"

QUARTILE = "national_quartile"
DISTANCE = "national_quartile_of_distance_from_standard"
CONTEXT = "context_only"


@dataclass(frozen=True)
class ScoredMetric:
    metric_id: str
    name: str
    aim: str
    unit: str
    higher_is_better: bool | None
    method: str
    formula: str
    source: str
    is_estimate: bool = False
    levels: tuple[str, ...] = ("provider", "icb")
    standard: float | None = None   # for the distance method


_MV = "s1_current_state.metric_values"
_RTT52 = ratio_metric_id("rtt_52wk_waiters", "rtt_waiting_list")
_AE12 = ratio_metric_id("ae_12hr_dta_waits", "ae_attendances")
_NCTR = ratio_metric_id("discharge_nctr_avg", "ga_beds_available")
_CATCHMENT = ("trusts: mean of the ICB values weighted by the share of the trust's patients from each ICB "
              "(latest.trust_icb_catchment), or the host ICB's value when the trust is not in that file")

METRICS: tuple[ScoredMetric, ...] = (
    ScoredMetric("ae_4hr_pct", "A&E: % seen within 4 hours", "quality_of_care", "percent", True, QUARTILE,
                 "100 x attendances within 4 hours / attendances", f"{_MV} (ae_4hr_pct)"),
    ScoredMetric(_AE12, "A&E: 12-hour decision-to-admit waits per 100 attendances", "quality_of_care", "percent",
                 False, QUARTILE, "100 x ae_12hr_dta_waits / ae_attendances", f"{_MV} (ae_12hr_dta_waits, ae_attendances)"),
    ScoredMetric("rtt_18wk_pct", "RTT: % waiting under 18 weeks", "quality_of_care", "percent", True, QUARTILE,
                 "100 x incomplete pathways under 18 weeks / incomplete pathways", f"{_MV} (rtt_18wk_pct)"),
    ScoredMetric(_RTT52, "RTT: 52-week waiters as % of the waiting list", "quality_of_care", "percent", False,
                 QUARTILE, "100 x rtt_52wk_waiters / rtt_waiting_list", f"{_MV} (rtt_52wk_waiters, rtt_waiting_list)"),
    ScoredMetric("dm01_6wk_pct", "Diagnostics: % waiting 6 weeks or more", "quality_of_care", "percent", False,
                 QUARTILE, "100 x waiting 6+ weeks / diagnostic waiting list", f"{_MV} (dm01_6wk_pct)"),
    ScoredMetric("cancer_fds_pct", "Cancer: 28-day faster diagnosis %", "quality_of_care", "percent", True, QUARTILE,
                 "100 x told within 28 days / told", f"{_MV} (cancer_fds_pct)"),
    ScoredMetric("cancer_31d_pct", "Cancer: 31-day decision to treatment %", "quality_of_care", "percent", True,
                 QUARTILE, "100 x treated within 31 days / treated", f"{_MV} (cancer_31d_pct)"),
    ScoredMetric("cancer_62d_pct", "Cancer: 62-day referral to treatment %", "quality_of_care", "percent", True,
                 QUARTILE, "100 x treated within 62 days / treated", f"{_MV} (cancer_62d_pct)"),
    ScoredMetric("health_index_overall", "ONS Health Index overall score", "population_health",
                 "index (England 2015 = 100)", True, QUARTILE, "ICB overall_score; " + _CATCHMENT,
                 "latest.health_index_icb (ONS Health Index for England, ICB overall_score)"),
    ScoredMetric("imd_2025_average_score", "Deprivation of the area served (IMD 2025 average score, higher = "
                 "more deprived; context, not scored)", "population_health", "score", False, CONTEXT,
                 "ICB imd_average_score; " + _CATCHMENT,
                 "latest.imd_icb (English Indices of Deprivation 2025, ICB 2024 summaries)"),
    ScoredMetric("vw_capacity_per_100k", "Virtual ward capacity per 100,000 population", "population_health",
                 "beds per 100,000 population", True, QUARTILE,
                 "vw_capacity x 100,000 / GP-registered population; " + _CATCHMENT, f"{_MV} (vw_capacity_per_100k)"),
    ScoredMetric("workforce_fte_per_1000_ae_attendances", "Workforce FTE per 1,000 A&E attendances (estimate)",
                 "efficiency", "fte per 1,000 attendances", False, QUARTILE,
                 f"1,000 x workforce_fte / ae_attendances, trusts with >= {MIN_AE_FOR_FTE_RATIO:,} attendances that "
                 "month; an ICB sums both over those trusts it hosts (all staff, not only A&E staff: a proxy)",
                 f"{_MV} (workforce_fte, ae_attendances)", is_estimate=True),
    ScoredMetric("ga_bed_occupancy_pct", "G&A bed occupancy (distance from 92%)", "efficiency", "percent",
                 None, DISTANCE, "100 x G&A beds occupied / available; scored on |occupancy - 92|",
                 f"{_MV} (ga_bed_occupancy_pct)", standard=OCCUPANCY_STANDARD),
    ScoredMetric(_NCTR, "Patients no longer meeting the criteria to reside, % of G&A beds", "efficiency",
                 "percent", False, QUARTILE, "100 x discharge_nctr_avg / ga_beds_available",
                 f"{_MV} (discharge_nctr_avg, ga_beds_available)"),
    ScoredMetric("ae_estimated_cost_gbp", "Estimated cost of A&E activity (GBP, estimate)", "efficiency",
                 "GBP per month", None, CONTEXT, "ae_attendances x national average Emergency Care unit cost",
                 f"{_MV} (ae_attendances); latest.national_cost_collection (Emergency Care)", is_estimate=True,
                 levels=("provider",)),
    ScoredMetric("ae_estimated_cost_per_head_gbp", "Estimated A&E cost per head of population (GBP per month, "
                 "estimate)", "efficiency", "GBP per head per month", False, QUARTILE,
                 "sum over trusts of ae_attendances x share of the trust's patients from the ICB x national "
                 "Emergency Care unit cost / ICB population (ONS mid-2020)",
                 f"{_MV} (ae_attendances); latest.trust_icb_catchment; latest.national_cost_collection; "
                 "latest.population_icb_2020", is_estimate=True, levels=("icb",)),
)

_NSS = "latest.staff_survey_2024 (NHS Staff Survey 2024, occupation-group weighted score out of 10)"


def _nss(measure: str, metric_id: str, name: str, aim: str = "our_people") -> ScoredMetric:
    return ScoredMetric(metric_id, name, aim, "score out of 10", True, QUARTILE,
                        f"NHS Staff Survey 2024 measure '{measure}'", _NSS, levels=("provider",))


STAFF_SURVEY: dict[str, ScoredMetric] = {
    "E_3 - Advocacy": _nss("E_3 - Advocacy", "nss_advocacy",
                           "Staff would recommend the organisation for care and as a place to work (staff survey)",
                           "quality_of_care"),
    "Staff Engagement - Staff engagement": _nss("Staff Engagement - Staff engagement", "nss_engagement",
                                                "Staff engagement (staff survey)"),
    "Morale - Morale": _nss("Morale - Morale", "nss_morale", "Staff morale (staff survey)"),
    "PP1 - We are compassionate and inclusive": _nss("PP1 - We are compassionate and inclusive", "nss_pp1",
                                                     "We are compassionate and inclusive (staff survey)"),
    "PP2 - We are recognised and rewarded": _nss("PP2 - We are recognised and rewarded", "nss_pp2",
                                                 "We are recognised and rewarded (staff survey)"),
    "PP3 - We each have a voice that counts": _nss("PP3 - We each have a voice that counts", "nss_pp3",
                                                   "We each have a voice that counts (staff survey)"),
    "PP4 - We are safe and healthy": _nss("PP4 - We are safe and healthy", "nss_pp4",
                                          "We are safe and healthy (staff survey)"),
    "PP5 - We are always learning": _nss("PP5 - We are always learning", "nss_pp5",
                                         "We are always learning (staff survey)"),
    "PP6 - We work flexibly": _nss("PP6 - We work flexibly", "nss_pp6", "We work flexibly (staff survey)"),
    "PP7 - We are a team": _nss("PP7 - We are a team", "nss_pp7", "We are a team (staff survey)"),
}
METRICS = METRICS + tuple(STAFF_SURVEY.values())
BY_ID: dict[str, ScoredMetric] = {m.metric_id: m for m in METRICS}


# ---- pure maths -------------------------------------------------------------------------------------------------
def quartile_cuts(values: np.ndarray) -> tuple[float, float, float]:
    """25th, 50th and 75th percentiles with linear interpolation (numpy's default)."""
    p25, p50, p75 = np.quantile(np.asarray(values, dtype=float), [0.25, 0.5, 0.75])
    return float(p25), float(p50), float(p75)


def quartile_score(value: float, p25: float, p50: float, p75: float, higher_is_better: bool) -> int:
    """1 (best quartile) to 4 (worst); a value on a cut point gets the better score."""
    if higher_is_better:
        return 1 if value >= p75 else 2 if value >= p50 else 3 if value >= p25 else 4
    return 1 if value <= p25 else 2 if value <= p50 else 3 if value <= p75 else 4


def _score_expr(better_high: pl.Expr) -> pl.Expr:
    v, p25, p50, p75 = pl.col("scored_value"), pl.col("cut_p25"), pl.col("cut_median"), pl.col("cut_p75")
    high = pl.when(v >= p75).then(1).when(v >= p50).then(2).when(v >= p25).then(3).otherwise(4)
    low = pl.when(v <= p25).then(1).when(v <= p50).then(2).when(v <= p75).then(3).otherwise(4)
    return pl.when(better_high).then(high).otherwise(low)


def score_metrics(long: pl.DataFrame) -> pl.DataFrame:
    """Add national cut points and the 1-4 score to long rows (org_code, org_level, period_start, metric_id,
    scored_value, scored_higher_is_better, method). Context rows and groups of fewer than MIN_ORGS_FOR_QUARTILES
    organisations get no score. Pure."""
    keys = ["org_level", "comparison_type", "period_start", "metric_id"]
    scorable = pl.col("method").is_in([QUARTILE, DISTANCE]) & pl.col("scored_value").is_not_null()
    if "comparison_type" not in long.columns:
        long = long.with_columns(pl.lit(None, dtype=pl.String).alias("comparison_type"))
    cuts = (long.filter(scorable).group_by(keys).agg(
        pl.col("scored_value").count().cast(pl.Int64).alias("n_orgs_compared"),
        pl.col("scored_value").quantile(0.25, interpolation="linear").alias("cut_p25"),
        pl.col("scored_value").quantile(0.5, interpolation="linear").alias("cut_median"),
        pl.col("scored_value").quantile(0.75, interpolation="linear").alias("cut_p75")))
    out = long.join(cuts, on=keys, how="left", nulls_equal=True)
    ok = scorable & (pl.col("n_orgs_compared") >= MIN_ORGS_FOR_QUARTILES)
    return out.with_columns(
        pl.when(ok).then(_score_expr(pl.col("scored_higher_is_better"))).otherwise(None).cast(pl.Int64).alias("score"),
        pl.when(scorable & ~ok).then(pl.col("method") + pl.lit(" (not scored: fewer than "
                                                               f"{MIN_ORGS_FOR_QUARTILES} organisations)"))
        .otherwise(pl.col("method")).alias("method"))


def scoring_rule(method: str, higher_is_better: bool | None, standard: float | None) -> str:
    """The rule in words, for the scores table."""
    if method == CONTEXT:
        return "not scored: shown for context"
    if method == DISTANCE:
        return (f"scored value = |value - {standard:g}|; lower is better: 1 if <= p25, 2 if <= median, "
                "3 if <= p75, else 4")
    if higher_is_better:
        return "higher is better: 1 if value >= p75, 2 if >= median, 3 if >= p25, else 4"
    return "lower is better: 1 if value <= p25, 2 if <= median, 3 if <= p75, else 4"


def _rank(frame: pl.DataFrame, by: list[str], prefix: str) -> pl.DataFrame:
    ranked = frame.filter(pl.col("score").is_not_null()).with_columns(
        pl.col("score").round(9).rank("min").over(by).cast(pl.Int64).alias(f"{prefix}_rank"),  # float noise
        pl.len().over(by).cast(pl.Int64).alias(f"{prefix}_n"))
    return frame.join(ranked.select(*by, "org_code", f"{prefix}_rank", f"{prefix}_n"),
                      on=[*by, "org_code"], how="left", nulls_equal=True)


def peer_quartile(rank: int | None, n: int | None) -> int | None:
    """Quarter of the comparison group a rank falls in (1 = top quarter): ceil(4 x rank / n); None for fewer than
    MIN_ORGS_FOR_QUARTILES organisations, so a group of two has no 'quarters'."""
    if rank is None or n is None or n < MIN_ORGS_FOR_QUARTILES:
        return None
    return min(4, max(1, -(-4 * rank // n)))


def aim_scores_frame(scores: pl.DataFrame) -> pl.DataFrame:
    """Aim and overall scores, ranks and the peer quartile from scored metric rows (org_code, org_level,
    peer_group_id, comparison_type, period_start, aim, metric_id, metric_name, score). An aim with fewer than
    MIN_METRICS_PER_AIM scored measures gets no score (not_scored says why) and does not count in the overall.
    Ranks: national_rank among organisations of the same level and comparison type (trusts of one type; all
    ICBs), peer_rank within the peer group; 1 = best. peer_quartile: the quarter of the peer group (ICBs: of all
    ICBs) the overall rank falls in. Pure."""
    if "comparison_type" not in scores.columns:
        scores = scores.with_columns(pl.lit(None, dtype=pl.String).alias("comparison_type"))
    if "metric_name" not in scores.columns:
        scores = scores.with_columns(pl.col("metric_id").alias("metric_name"))
    keys = ["org_code", "org_level", "peer_group_id", "comparison_type", "period_start"]
    scored = scores.filter(pl.col("score").is_not_null()).sort("metric_id")
    aims = scored.group_by([*keys, "aim"]).agg(
        pl.col("score").mean().alias("score"),
        pl.len().cast(pl.Int64).alias("n_metrics_scored"),
        pl.concat_str(pl.col("metric_name"), pl.lit(": "), pl.col("score").cast(pl.String)).str.join("; ")
        .alias("metrics_scored"))
    thin = pl.col("n_metrics_scored") < MIN_METRICS_PER_AIM
    aims = aims.with_columns(
        pl.when(thin).then(pl.lit("not scored: only ") + pl.col("n_metrics_scored").cast(pl.String)
                           + pl.when(pl.col("n_metrics_scored") == 1).then(pl.lit(" measure"))
                           .otherwise(pl.lit(" measures"))).otherwise(None).alias("not_scored"),
        pl.when(thin).then(None).otherwise(pl.col("score")).alias("score"))
    overall = aims.filter(pl.col("score").is_not_null()).sort("aim").group_by(keys).agg(
        pl.col("score").mean().alias("score"),
        pl.col("n_metrics_scored").sum().alias("n_metrics_scored"),
        pl.len().cast(pl.Int64).alias("n_aims_scored"),
        pl.concat_str(pl.col("aim"), pl.lit(": "), pl.col("score").round(2).cast(pl.String)).str.join("; ")
        .alias("metrics_scored")).with_columns(pl.lit("overall").alias("aim"))
    ok = ((pl.col("n_metrics_scored") >= MIN_METRICS_FOR_SEGMENT) & (pl.col("n_aims_scored") >= MIN_AIMS_FOR_SEGMENT))
    overall = overall.with_columns(
        pl.when(ok).then(None).otherwise(pl.lit(f"not ranked: needs {MIN_METRICS_FOR_SEGMENT} measures in "
                                                f"{MIN_AIMS_FOR_SEGMENT} aims")).alias("not_scored"),
        pl.when(ok).then(pl.col("score")).otherwise(None).alias("score"))
    aims = aims.with_columns(pl.lit(None, dtype=pl.Int64).alias("n_aims_scored"))
    frame = pl.concat([aims, overall.select(aims.columns)], how="vertical_relaxed")
    frame = _rank(frame, ["org_level", "comparison_type", "period_start", "aim"], "national")
    grouped = frame.filter((pl.col("org_level") == "provider") & pl.col("peer_group_id").is_not_null()
                           & (pl.col("peer_group_id") != FALLBACK_GROUP_ID))
    peer = _rank(grouped, ["period_start", "aim", "peer_group_id"], "peer").select(
        "org_code", "period_start", "aim", "peer_rank", "peer_n")
    frame = frame.join(peer, on=["org_code", "period_start", "aim"], how="left")
    is_icb = pl.col("org_level") == "icb"
    frame = frame.with_columns(
        pl.struct(rank=pl.when(is_icb).then(pl.col("national_rank")).otherwise(pl.col("peer_rank")),
                  n=pl.when(is_icb).then(pl.col("national_n")).otherwise(pl.col("peer_n")))
        .map_elements(lambda r: peer_quartile(r["rank"], r["n"]), return_dtype=pl.Int64).alias("peer_quartile"))
    frame = frame.with_columns(
        pl.when(pl.col("aim") == "overall").then(pl.col("peer_quartile")).otherwise(None).alias("peer_quartile"))
    rule = ("quarter of the peer group (ICBs: of all ICBs) the overall rank falls in, ceil(4 x rank / n), "
            f"1 = top quarter; needs {MIN_ORGS_FOR_QUARTILES}+ organisations ranked, and "
            f"{MIN_METRICS_FOR_SEGMENT} measures in {MIN_AIMS_FOR_SEGMENT} aims")
    return (frame.with_columns(
                pl.col("peer_quartile").replace_strict(QUARTER_WORDS, default=None, return_dtype=pl.String)
                .alias("standing"),
                pl.when(pl.col("aim") == "overall").then(pl.lit(rule)).otherwise(None).alias("standing_rule"),
                pl.when(pl.col("aim") == "overall")
                .then(pl.lit("mean of the aim scores (each aim weighted equally)"))
                .otherwise(pl.lit("mean of the aim's measure scores, each 1 (best quarter of its comparison "
                                  "type) to 4")).alias("method"))
            .sort("org_level", "org_code", "period_start", "aim"))


# ---- SQL inputs -----------------------------------------------------------------------------------------------
def emergency_care_unit_cost(con: duckdb.DuckDBPyConnection) -> tuple[float | None, str]:
    """Activity-weighted national unit cost of the NCC 'Emergency Care' department, and its derivation in words."""
    row = con.sql(f"""select sum(cost) / nullif(sum(activity), 0), sum(activity), sum(cost), count(*),
                             string_agg(distinct currency_code, ', ' order by currency_code),
                             string_agg(distinct _source_file, ', ')
                      from latest.national_cost_collection
                      where department_code = '{EMERGENCY_CARE_DEPARTMENT}'""").fetchone()
    if row is None or row[0] is None:
        return None, "no Emergency Care rows in latest.national_cost_collection"
    unit, activity, cost, n, codes, files = row
    return float(unit), (f"GBP {unit:,.2f} = GBP {cost:,.0f} / {activity:,.0f} attendances over {n} Emergency Care "
                         f"currencies ({codes}) in {files}")


def _values_sql(unit_cost: float | None) -> str:
    """Long monthly values before carrying forward: org_code, org_level, period_start, metric_id, value, inputs."""
    plain = ["ae_4hr_pct", _AE12, "rtt_18wk_pct", _RTT52, "dm01_6wk_pct", "cancer_fds_pct", "cancer_31d_pct",
             "cancer_62d_pct", "ga_bed_occupancy_pct", _NCTR]
    plain_list = ", ".join(f"'{m}'" for m in plain)
    parts = [f"""
        select org_code, org_level, period_start, metric_id, value,
               case when denominator is not null
                    then 'numerator ' || round(numerator, 2) || ' / denominator ' || round(denominator, 2) end as inputs
        from mv where metric_id in ({plain_list}) and period_grain = 'month'""",
             """
        select org_code, org_level, period_start, metric_id, value,
               'numerator ' || round(numerator, 2) || ' / denominator ' || round(denominator, 2) as inputs
        from mv where metric_id = 'vw_capacity_per_100k' and org_level = 'icb'""",
             f"""
        select f.org_code, 'provider', f.period_start, 'workforce_fte_per_1000_ae_attendances',
               1000.0 * f.value / a.value,
               'workforce_fte ' || round(f.value, 1) || ' / ae_attendances ' || round(a.value, 0) || ' x 1,000'
        from mv f join mv a on a.org_code = f.org_code and a.org_level = 'provider'
             and a.period_start = f.period_start and a.metric_id = 'ae_attendances'
        where f.metric_id = 'workforce_fte' and f.org_level = 'provider' and a.value >= {MIN_AE_FOR_FTE_RATIO}""",
             f"""
        select o.parent_icb_code, 'icb', f.period_start, 'workforce_fte_per_1000_ae_attendances',
               1000.0 * sum(f.value) / sum(a.value),
               'workforce_fte ' || round(sum(f.value), 1) || ' / ae_attendances ' || round(sum(a.value), 0)
                 || ' x 1,000 over ' || count(*) || ' hosted trusts with A&E'
        from mv f join mv a on a.org_code = f.org_code and a.org_level = 'provider'
             and a.period_start = f.period_start and a.metric_id = 'ae_attendances'
        join {S1}.organisations o on o.org_code = f.org_code
        where f.metric_id = 'workforce_fte' and f.org_level = 'provider' and a.value >= {MIN_AE_FOR_FTE_RATIO}
          and o.parent_icb_code is not null
        group by o.parent_icb_code, f.period_start"""]
    if unit_cost is not None:
        parts += [f"""
        select org_code, 'provider', period_start, 'ae_estimated_cost_gbp', value * {unit_cost!r},
               'ae_attendances ' || round(value, 0) || ' x GBP {unit_cost:.2f}'
        from mv where metric_id = 'ae_attendances' and org_level = 'provider'""",
                  f"""
        select w.icb_code, 'icb', a.period_start, 'ae_estimated_cost_per_head_gbp',
               sum(a.value * w.share) * {unit_cost!r} / any_value(p.population),
               'attributed attendances ' || round(sum(a.value * w.share), 0) || ' from ' || count(*)
                 || ' trusts x GBP {unit_cost:.2f} / population ' || round(any_value(p.population), 0)
        from mv a join catchment w on w.org_code = a.org_code
        join population p on p.icb_code = w.icb_code
        where a.metric_id = 'ae_attendances' and a.org_level = 'provider'
        group by w.icb_code, a.period_start"""]
    return "\nunion all\n".join(parts)


def _long_sql(unit_cost: float | None) -> str:
    """Every (org, month, metric) value with its source month, after carrying forward, plus population health."""
    return f"""
    with mv as ({metric_values_sql()}),
    icb_codes as ({icb_codes_sql()}),
    catchment as (
        select c.nhs_trust22_code as org_code, i.icb_code, c.proportion_trust_came_from_icb as share
        from latest.trust_icb_catchment c join icb_codes i on i.ons_code = c.icb22_code
        where c.proportion_trust_came_from_icb > 0),
    population as (select icb_code, total_population as population from latest.population_icb_2020
                   where total_population > 0),
    vals as ({_values_sql(unit_cost)}),
    months as (
        select unnest(generate_series(min(period_start), max(period_start), interval 1 month))::date as month
        from vals),
    carried as (
        select v.org_code, v.org_level, m.month as period_start, v.metric_id,
               arg_max(v.value, v.period_start) as value, max(v.period_start) as value_period_start,
               arg_max(v.inputs, v.period_start) as inputs
        from vals v join months m
          on m.month >= v.period_start and m.month <= v.period_start + interval {MONTHS_CARRIED} month
        where v.value is not null and not isnan(v.value)
        group by all),
    grid as (select distinct org_code, org_level, period_start from carried),
    hi as (
        select coalesce(a.icb_code, b.icb_code) as icb_code, h.year::int as year, h.overall_score
        from latest.health_index_icb h
        left join icb_codes a on a.ons_code = h.icb22_code
        left join icb_codes b on b.icb_name = upper(trim(h.icb22_name))
        where coalesce(a.icb_code, b.icb_code) is not null and h.overall_score is not null),
    icb_months as (  -- the ICBs of today (April 2026); the merged ones are history
        select i.icb_code, m.month from icb_codes i cross join months m
        where i.icb_code not in (select org_code from {S1}.organisations where org_type = 'icb'
                                 and valid_to is not null)),
    hi_year as (
        select g.icb_code, g.month,
               coalesce(max(h.year) filter (where h.year <= year(g.month)), min(h.year)) as year
        from icb_months g join hi h using (icb_code) group by all),
    icb_pop as (
        select y.icb_code, y.month, 'health_index_overall' as metric_id, h.overall_score as value,
               make_date(y.year, 1, 1) as value_period_start, 'Health Index year ' || y.year as inputs
        from hi_year y join hi h on h.icb_code = y.icb_code and h.year = y.year
        union all
        select g.icb_code, g.month, 'imd_2025_average_score', d.imd_average_score, date '2025-01-01',
               'IMD 2025 ICB ' || d.icb24_code
        from icb_months g join ({icb_imd_sql()}) d on d.icb_code = g.icb_code
        union all
        select org_code, period_start, metric_id, value, value_period_start, inputs
        from carried where metric_id = 'vw_capacity_per_100k' and org_level = 'icb'),
    weights as (
        select org_code, icb_code, share, 'catchment' as basis from catchment
        union all
        select o.org_code, coalesce(o.parent_icb_code_2022, o.parent_icb_code), 1.0, 'host ICB'
        from {S1}.organisations o  -- population, IMD and Health Index are published for the ICBs of 2022-2026
        where o.org_type = 'nhs_trust' and coalesce(o.parent_icb_code_2022, o.parent_icb_code) is not null
          and o.org_code not in (select org_code from catchment)),
    trust_pop as (
        select g.org_code, 'provider' as org_level, g.period_start, p.metric_id,
               sum(w.share * p.value) / sum(w.share) as value, max(p.value_period_start) as value_period_start,
               case when any_value(w.basis) = 'catchment'
                    then 'catchment-weighted over ' || count(*) || ' ICBs covering '
                         || round(100 * sum(w.share), 1) || '% of the trust''s patients'
                    else 'host ICB ' || any_value(w.icb_code) || ': ' || any_value(p.inputs) end as inputs
        from grid g join weights w on w.org_code = g.org_code
        join icb_pop p on p.icb_code = w.icb_code and p.month = g.period_start
        where g.org_level = 'provider'
        group by g.org_code, g.period_start, p.metric_id)
    , nss as (
        select upper(trim(org_code)) as org_code, measure,
               arg_max(score, weighting = 'Occupation Group') as score,
               arg_max(base_responses, weighting = 'Occupation Group') as responses
        from latest.staff_survey_2024
        where score is not null and measure in ({", ".join(repr(m) for m in STAFF_SURVEY)})
        group by all),
    trust_nss as (
        select n.org_code, 'provider' as org_level, g.period_start,
               case n.measure {" ".join(f"when {k!r} then {m.metric_id!r}" for k, m in STAFF_SURVEY.items())} end
                 as metric_id,
               n.score as value, date '{STAFF_SURVEY_MONTH}' as value_period_start,
               'NHS Staff Survey 2024, ' || coalesce(n.responses::varchar, 'unknown') || ' responses' as inputs
        from nss n join {S1}.organisations o on o.org_code = n.org_code and o.org_type = 'nhs_trust'
        join (select month as period_start from months) g
          on g.period_start >= date '{STAFF_SURVEY_FROM}' and (o.close_date is null or g.period_start <= o.close_date))
    select * from (
        select * from trust_nss
        union all
        select org_code, org_level, period_start, metric_id, value, value_period_start, inputs
        from carried where metric_id <> 'vw_capacity_per_100k'
        union all
        select p.icb_code, 'icb', p.month, p.metric_id, p.value, p.value_period_start, p.inputs
        from icb_pop p join grid g on g.org_code = p.icb_code and g.org_level = 'icb' and g.period_start = p.month
        union all
        select * from trust_pop)
    where org_level <> 'icb' or org_code not in (  -- ICBs of today only: the ones merged in April 2026 are history
        select org_code from {S1}.organisations where org_type = 'icb' and valid_to is not null)"""


def _registry_frame() -> pl.DataFrame:
    return pl.DataFrame([{
        "metric_id": m.metric_id, "metric_name": m.name, "aim": m.aim, "unit": m.unit,
        "higher_is_better": m.higher_is_better, "method": m.method, "formula": m.formula, "source": m.source,
        "is_estimate": m.is_estimate, "levels": list(m.levels), "standard": m.standard,
        "scoring_rule": scoring_rule(m.method, m.higher_is_better, m.standard),
    } for m in METRICS], schema_overrides={"higher_is_better": pl.Boolean, "standard": pl.Float64})


def scores_frame(long: pl.DataFrame, orgs: pl.DataFrame, peers: pl.DataFrame) -> pl.DataFrame:
    """Scored metric rows from long values (org_code, org_level, period_start, metric_id, value,
    value_period_start, inputs), organisation names (org_code, org_name) and peer groups (org_code,
    peer_group_id). Pure."""
    reg = _registry_frame()
    frame = (long.join(reg, on="metric_id", how="inner")
             .filter(pl.col("levels").list.contains(pl.col("org_level")))
             .with_columns(
                 pl.when(pl.col("method") == DISTANCE).then((pl.col("value") - pl.col("standard")).abs())
                 .when(pl.col("method") == QUARTILE).then(pl.col("value")).otherwise(None).alias("scored_value"),
                 pl.when(pl.col("method") == DISTANCE).then(False).otherwise(pl.col("higher_is_better"))
                 .alias("scored_higher_is_better")))
    if "comparison_type" not in peers.columns:
        peers = peers.with_columns(pl.lit(None, dtype=pl.String).alias("comparison_type"))
    frame = (frame.join(peers.select("org_code", pl.col("peer_group_id").cast(pl.Int64), "comparison_type"),
                        on="org_code", how="left")
             .with_columns(*(pl.when(pl.col("org_level") == "provider").then(pl.col(c)).otherwise(None).alias(c)
                             for c in ("peer_group_id", "comparison_type"))))
    frame = score_metrics(frame)
    frame = (frame.join(orgs.select("org_code", "org_name").unique("org_code"), on="org_code", how="left")
             .with_columns(
                           (pl.col("is_estimate") | ((pl.col("aim") == "population_health")
                                                     & (pl.col("org_level") == "provider"))).alias("is_estimate")))
    return frame.select(
        "org_code", "org_name", "org_level", "peer_group_id", "comparison_type", "period_start", "aim", "metric_id",
        "metric_name",
        "unit", "value", "value_period_start", "higher_is_better", "scored_value", "method", "scoring_rule",
        "n_orgs_compared", "cut_p25", "cut_median", "cut_p75", "score", "is_estimate", "formula", "inputs",
        "source").sort("org_level", "org_code", "period_start", "aim", "metric_id")


def _write(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    name = "_frame_" + table.split(".")[-1]
    con.register(name, frame.to_arrow())
    try:
        con.sql(f"create or replace table {table} as select * from {name}")
    finally:
        con.unregister(name)


def build_scores(con: duckdb.DuckDBPyConnection) -> int:
    """Write s2_triple_aim.scores and s2_triple_aim.aim_scores (needs s2_triple_aim.peer_groups); return the
    number of score rows."""
    departments = [r[0] for r in con.sql("select distinct department_code from latest.national_cost_collection "
                                         "order by 1").fetchall()]
    unit_cost, derivation = emergency_care_unit_cost(con)
    log.info("national cost collection departments: %s; A&E unit cost from %r: %s", departments,
             EMERGENCY_CARE_DEPARTMENT, derivation)
    long = con.sql(_long_sql(unit_cost)).pl()
    orgs = con.sql(f"select org_code, org_name from {S1}.organisations").pl()
    peers = con.sql(f"select org_code, peer_group_id, peer_group_label, comparison_type from {PEER_GROUPS}").pl()
    scores = scores_frame(long, orgs, peers)
    if unit_cost is not None:
        scores = scores.with_columns(
            pl.when(pl.col("metric_id").is_in(["ae_estimated_cost_gbp", "ae_estimated_cost_per_head_gbp"]))
            .then(pl.col("formula") + pl.lit(f"; unit cost {derivation}")).otherwise(pl.col("formula"))
            .alias("formula"))
    aims = (aim_scores_frame(scores)
            .join(orgs.unique("org_code"), on="org_code", how="left")
            .drop("comparison_type").join(peers.select("org_code", "peer_group_label", "comparison_type"),
                                          on="org_code", how="left")
            .with_columns(*(pl.when(pl.col("org_level") == "provider").then(pl.col(c)).otherwise(None).alias(c)
                            for c in ("peer_group_label", "comparison_type")))
            .select("org_code", "org_name", "org_level", "peer_group_id", "peer_group_label", "comparison_type",
                    "period_start", "aim", "score", "n_metrics_scored", "n_aims_scored", "metrics_scored",
                    "not_scored", "peer_quartile", "standing", "standing_rule", "national_rank", "national_n",
                    "peer_rank", "peer_n", "method"))
    con.sql(f"create schema if not exists {SCHEMA}")
    _write(con, SCORES, scores)
    _write(con, AIM_SCORES, aims)
    log.info("scores: %s metric rows, %s aim rows", scores.height, aims.height)
    return scores.height
