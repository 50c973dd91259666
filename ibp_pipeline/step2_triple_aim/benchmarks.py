"""Step-2 benchmarks: the national and peer-group median and quartiles of every metric in every period.

Why: "how are we doing against our peers" needs the peer median and the top-quartile boundary a trust could aim
for. Step 4 joins this table to measure the peer top-quartile gap.

Contract (fixed; other steps join on it): metric_id, period_start, scope, peer_group_id, n_orgs, median,
top_quartile, bottom_quartile; then, for traceability, period_grain, higher_is_better, method.
- scope 'national': every NHS trust with a value (peer_group_id NULL). Independent-sector providers are left
  out on purpose: the scores compare trusts with trusts, and hundreds of small independent providers (566 have
  a 52-week row, 454 a DM01 row) would move the quartiles a trust is judged by.
- scope 'peer': the trusts of one peer group (s2_triple_aim.peer_groups), one row per group; the fallback group
  (peer_group_id 0, trusts too short of data to group) gets no peer benchmark.
- scope 'type': the trusts of one comparison type nationally (peer_groups.comparison_type: general acute,
  acute specialist, specialist children's, community, mental health, ambulance, other), in column
  comparison_type (NULL for the other scopes). National ranks and quartiles a trust is judged by use this scope:
  a community trust has no A&E to compare, and a children's hospital is not a district general hospital.
- scope 'national_icb': the ICBs of today, April 2026 (ICB rows of metric_values: the sum of their providers' numerators and
  denominators, as step 1 builds them).
Percentiles: linear interpolation between order statistics (numpy's and DuckDB quantile_cont's default).
top_quartile is the best-performing quartile boundary given the metric's direction (higher_is_better True -> the
75th percentile, False -> the 25th) and bottom_quartile the other one; with no direction (counts such as
attendances, beds, FTE) both are NULL and only the median is given.

Metrics: every catalogue metric in s1_current_state.metric_values at its own grain (monthly, or quarterly for
KH03), plus the rate series built from two catalogue metrics (RATIO_METRICS), so that size-driven counts can be
compared fairly, named '<metric>_pct_of_<denominator>' (100 x metric / denominator, where the denominator > 0)
as the standards registry names its ratio series (rtt_52wk_waiters_pct_of_rtt_waiting_list is the "52-week
waiters under 1% of the list" standard).
"""
from __future__ import annotations

import logging

import duckdb
import polars as pl

from ibp_pipeline.lib.duckdb_tables import replace_table

from ibp_pipeline.step2_triple_aim.peers import FALLBACK_GROUP_ID
from ibp_pipeline.step2_triple_aim.peers import TABLE as PEER_GROUPS

log = logging.getLogger(__name__)

SCHEMA = "s2_triple_aim"
TABLE = f"{SCHEMA}.benchmarks"
S1 = "s1_current_state"
CONTRACT_COLUMNS = ("metric_id", "period_start", "scope", "peer_group_id", "n_orgs", "median", "top_quartile",
                    "bottom_quartile")

# (numerator metric, denominator metric): the rate 100 x numerator / denominator, per organisation and period.
RATIO_METRICS: tuple[tuple[str, str], ...] = (
    ("rtt_52wk_waiters", "rtt_waiting_list"),       # 52-week waiters as % of the RTT waiting list (standard < 1%)
    ("ae_12hr_dta_waits", "ae_attendances"),        # 12-hour decision-to-admit waits per 100 A&E attendances
    ("discharge_nctr_avg", "ga_beds_available"),    # patients no longer meeting criteria to reside, % of G&A beds
)
METHOD = ("linear-interpolated percentiles over the organisations with a value; top_quartile = 75th percentile "
          "when higher is better, 25th when lower is better, NULL without a direction")


def ratio_metric_id(numerator: str, denominator: str) -> str:
    """The standards registry's name for a ratio series."""
    return f"{numerator}_pct_of_{denominator}"


def metric_values_sql(levels: tuple[str, ...] = ("provider", "icb")) -> str:
    """Values of every catalogue metric and ratio series for NHS trusts (org_level 'provider', org_type
    'nhs_trust') and ICBs: org_code, org_level, period_start, period_grain, metric_id, value, numerator,
    denominator, higher_is_better, formula."""
    level_list = ", ".join(f"'{x}'" for x in levels)
    base = f"""
        select mv.org_code, mv.org_level, mv.period_start, mv.period_grain, mv.metric_id, mv.value,
               mv.numerator, mv.denominator
        from {S1}.metric_values mv
        left join {S1}.organisations o on o.org_code = mv.org_code
        where mv.org_level in ({level_list}) and mv.value is not null and not isnan(mv.value)
          and (mv.org_level <> 'provider' or o.org_type = 'nhs_trust')
          and (mv.org_level <> 'icb' or o.valid_to is null)"""  # ICBs of today (April 2026), not the merged ones
    parts = [f"""
        select b.*, c.higher_is_better, 'step 1 metric ' || b.metric_id as formula
        from b join {S1}.metric_catalogue c using (metric_id)"""]
    for num, den in RATIO_METRICS:
        parts.append(f"""
        select n.org_code, n.org_level, n.period_start, n.period_grain, '{ratio_metric_id(num, den)}' as metric_id,
               100.0 * n.value / d.value as value, n.value as numerator, d.value as denominator,
               c.higher_is_better, '100 x {num} / {den}' as formula
        from b n
        join b d on d.org_code = n.org_code and d.org_level = n.org_level and d.period_start = n.period_start
                and d.metric_id = '{den}'
        join {S1}.metric_catalogue c on c.metric_id = '{num}'
        where n.metric_id = '{num}' and d.value > 0""")
    return f"with b as ({base})\n" + "\nunion all\n".join(parts)


def summarise(values: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """n_orgs, median, 25th and 75th percentile of `value` by the given columns (pure)."""
    v = values.filter(pl.col("value").is_not_null() & pl.col("value").is_not_nan())
    return v.group_by(by).agg(
        pl.col("value").count().cast(pl.Int64).alias("n_orgs"),
        pl.col("value").median().alias("median"),
        pl.col("value").quantile(0.25, interpolation="linear").alias("p25"),
        pl.col("value").quantile(0.75, interpolation="linear").alias("p75"),
        pl.col("higher_is_better").first().alias("higher_is_better"))


def with_direction(stats: pl.DataFrame) -> pl.DataFrame:
    """top_quartile / bottom_quartile from p25 / p75 and the metric's direction (NULL direction -> NULL both)."""
    hib = pl.col("higher_is_better")
    return stats.with_columns(
        pl.when(hib).then(pl.col("p75")).when(~hib).then(pl.col("p25")).otherwise(None).alias("top_quartile"),
        pl.when(hib).then(pl.col("p25")).when(~hib).then(pl.col("p75")).otherwise(None).alias("bottom_quartile"))


def benchmarks_frame(values: pl.DataFrame, peers: pl.DataFrame) -> pl.DataFrame:
    """The benchmarks table from long values (org_code, org_level, period_start, period_grain, metric_id, value,
    higher_is_better) and peer groups (org_code, peer_group_id, comparison_type). Pure."""
    keys = ["metric_id", "period_start", "period_grain"]
    trusts = values.filter(pl.col("org_level") == "provider")
    national = summarise(trusts, keys).with_columns(pl.lit("national").alias("scope"),
                                                    pl.lit(None, dtype=pl.Int64).alias("peer_group_id"))
    grouped = trusts.join(peers.select("org_code", pl.col("peer_group_id").cast(pl.Int64)), on="org_code",
                          how="inner").filter(pl.col("peer_group_id") != FALLBACK_GROUP_ID)
    peer = summarise(grouped, [*keys, "peer_group_id"]).with_columns(pl.lit("peer").alias("scope"))
    typed = trusts.join(peers.select("org_code", "comparison_type"), on="org_code", how="inner").filter(
        pl.col("comparison_type").is_not_null())
    by_type = summarise(typed, [*keys, "comparison_type"]).with_columns(
        pl.lit("type").alias("scope"), pl.lit(None, dtype=pl.Int64).alias("peer_group_id"))
    icb = summarise(values.filter(pl.col("org_level") == "icb"), keys).with_columns(
        pl.lit("national_icb").alias("scope"), pl.lit(None, dtype=pl.Int64).alias("peer_group_id"))
    cols = [*CONTRACT_COLUMNS, "period_grain", "higher_is_better", "method", "comparison_type"]
    frames = [with_direction(f).with_columns(pl.lit(METHOD).alias("method"),
                                             *([] if "comparison_type" in f.columns else
                                               [pl.lit(None, dtype=pl.String).alias("comparison_type")])).select(cols)
              for f in (national, peer, by_type, icb) if f.height]
    if not frames:
        return pl.DataFrame(schema={c: t for c, t in zip(cols, (pl.String, pl.Date, pl.String, pl.Int64, pl.Int64,
                                                                pl.Float64, pl.Float64, pl.Float64, pl.String,
                                                                pl.Boolean, pl.String, pl.String))})
    return pl.concat(frames, how="vertical_relaxed").sort("metric_id", "period_start", "scope", "peer_group_id",
                                                          "comparison_type", nulls_last=False)


def build_benchmarks(con: duckdb.DuckDBPyConnection) -> int:
    """Write s2_triple_aim.benchmarks (needs s2_triple_aim.peer_groups) and return its row count."""
    values = con.sql(metric_values_sql()).pl()
    peers = con.sql(f"select org_code, peer_group_id, comparison_type from {PEER_GROUPS}").pl()
    frame = benchmarks_frame(values, peers)
    log.info("benchmarks: %s rows (%s metrics)", frame.height, frame["metric_id"].n_unique())
    replace_table(con, *TABLE.split("."), frame)
    return frame.height
