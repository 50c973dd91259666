"""Step 3 resource map: what each trust, ICB, region and England has (staff, beds, critical care, virtual wards,
estate) against the demand it serves, with the ratios a planner compares, benchmarked against peers.

Why long: every figure must be traceable. One row per (organisation, period, measure) carries its value, its
numerator and denominator, the formula in words and the source, so a ratio can always be taken apart. Pivot it
wide for display (e.g. `pivot(on="measure_id", values="value")`).

Table s3_resources.resource_map, columns:
- org_code, org_name, org_level ('provider', 'icb', 'region', 'england'), period_start (DATE), period_grain
  ('month'; 'snapshot' for the ERIC 2019/20 estates return, dated 2019-04-01).
- measure_id, measure_name, measure_group ('workforce', 'beds', 'critical_care', 'discharge', 'virtual_wards',
  'estates', 'demand', 'ratio'), unit.
- value; numerator, denominator (for ratios and percentages; for counts numerator = value and denominator NULL);
  numerator_measure, denominator_measure (measure ids the parts come from), formula (text), source (metric ids
  or raw tables and files), note (caveats, e.g. the estates snapshot date or catchment coverage).
- peer_group_id (VARCHAR), peer_group_label, peer_median, peer_count: the median of the same measure and period
  over the providers in the org's peer group (the org included), from s2_triple_aim.peer_groups (org_code,
  peer_group_id, peer_group_label); NULL when that table or the org's group is absent, and for non-providers.
- national_median, national_count: the median over all organisations of the same level (providers, ICBs or
  regions) with a value for that measure and period; NULL for England.

Measures
- From s1_current_state.metric_values (values as published there, so ICB/region/England rows are step 1's sums
  over providers by ODS parent ICB / region): workforce_fte and every workforce_fte_<staff group>,
  ga_beds_available, ga_bed_occupancy_pct, ga_beds_occupied (= the occupancy numerator), discharge_nctr_avg
  (patients no longer meeting the criteria to reside, daily average), vw_capacity, vw_capacity_per_100k,
  vw_occupancy_pct (ICB and above), and demand: ae_attendances, ae_emergency_admissions, rtt_waiting_list,
  dm01_waiting_list.
- Critical care (latest.beds_ga_critical_care, monthly SitRep): adult critical care beds available and occupied,
  adult critical care occupancy, paediatric intensive care and neonatal intensive care beds available; summed to
  ICB (parent_icb_code), region and England like step 1 does.
- Estates (latest.estates_eric_site, ERIC 2019/20, a SNAPSHOT of one financial year, not monthly): backlog
  maintenance cost by risk level (high, significant, moderate, low) and in total, site count (all site types,
  including non-patient 'other reportable sites'), gross internal floor area. 2019/20 trust codes are mapped to
  their final successor (s1_current_state.organisations.successor_code) and summed.
- Ratios (monthly): fte_per_ga_bed, nurses_per_ga_bed, hchs_doctors_per_ga_bed, consultants_per_ga_bed,
  ae_attendances_per_fte, nctr_per_100_occupied_ga_beds. For a provider they are its own numerator / its own
  denominator. For ICB/region/England they sum numerator and denominator over the providers that report BOTH in
  that month (so mental-health, community and ambulance trusts without G&A beds do not inflate staff per bed).
  Caveat: workforce_fte is the whole trust, so trusts with large community services look richer per G&A bed.
- Population ratios (ICB, region, England): ga_beds_per_100k_population and
  adult_critical_care_beds_per_100k_population. Beds are apportioned to ICBs by where each trust's patients come
  from (latest.trust_icb_catchment.proportion_trust_came_from_icb, 2022 trust codes; shares sum to 1 per trust),
  divided by the ONS mid-2020 ICB population (latest.population_icb_2020.total_population) x 100,000. Region =
  its ICBs' apportioned beds / their population; England = all apportioned beds / England's population. Beds of
  trusts missing from the catchment file are left out (the note gives the count). The population is mid-2020:
  it understates 2024/25 populations by a few per cent, so beds per 100,000 are slightly high.
"""
from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from ibp_pipeline.lib.duckdb_tables import replace_table, table_exists

SCHEMA = "s3_resources"
TABLE = f"{SCHEMA}.resource_map"
S1 = "s1_current_state"
ORGS = f"{S1}.organisations"
VALUES = f"{S1}.metric_values"
CATALOGUE = f"{S1}.metric_catalogue"
PEER_GROUPS = "s2_triple_aim.peer_groups"
DEFAULT_SINCE = "2022-04-01"  # start of FY 2022/23, when the monthly G&A bed series begins
ESTATES_PERIOD = "2019-04-01"  # ERIC 2019/20 financial year

# Metrics copied from metric_values, by group (workforce_fte* are added from the catalogue at run time).
METRIC_GROUPS: dict[str, str] = {
    "ga_beds_available": "beds", "ga_bed_occupancy_pct": "beds",
    "discharge_nctr_avg": "discharge",
    "vw_capacity": "virtual_wards", "vw_capacity_per_100k": "virtual_wards", "vw_occupancy_pct": "virtual_wards",
    "ae_attendances": "demand", "ae_emergency_admissions": "demand", "rtt_waiting_list": "demand",
    "dm01_waiting_list": "demand",
}


@dataclass(frozen=True)
class Ratio:
    """A provider-level ratio: numerator metric / denominator metric x scale."""
    measure_id: str
    name: str
    numerator: str
    denominator: str
    unit: str
    scale: float = 1.0


RATIOS: tuple[Ratio, ...] = (
    Ratio("fte_per_ga_bed", "Workforce FTE (all staff) per G&A bed available", "workforce_fte",
          "ga_beds_available", "fte per bed"),
    Ratio("nurses_per_ga_bed", "Nurses and health visitors FTE per G&A bed available",
          "workforce_fte_nurses_health_visitors", "ga_beds_available", "fte per bed"),
    Ratio("hchs_doctors_per_ga_bed", "HCHS doctors FTE per G&A bed available", "workforce_fte_hchs_doctors",
          "ga_beds_available", "fte per bed"),
    Ratio("consultants_per_ga_bed", "Consultants FTE per G&A bed available", "workforce_fte_consultant",
          "ga_beds_available", "fte per bed"),
    Ratio("ae_attendances_per_fte", "A&E attendances in the month per workforce FTE", "ae_attendances",
          "workforce_fte", "attendances per fte per month"),
    Ratio("nctr_per_100_occupied_ga_beds",
          "Patients no longer meeting criteria to reside per 100 occupied G&A beds", "discharge_nctr_avg",
          "ga_beds_occupied", "patients per 100 occupied beds", 100.0),
)

CRITICAL_CARE: tuple[tuple[str, str, str], ...] = (
    ("adult_critical_care_beds_available", "Adult critical care beds available", "adult_critical_care_beds_available"),
    ("adult_critical_care_beds_occupied", "Adult critical care beds occupied", "adult_critical_care_beds_occupied"),
    ("paediatric_intensive_care_beds_available", "Paediatric intensive care beds available",
     "paediatric_intensive_cared_beds_available"),
    ("neonatal_intensive_care_beds_available", "Neonatal intensive care beds available",
     "neonatal_intensive_care_bed_available"),
)

ESTATES: tuple[tuple[str, str, str, str], ...] = (
    ("estates_backlog_high_risk_gbp", "Backlog maintenance: cost to eradicate high risk", "gbp",
     "sum(backlog_high_risk_gbp)"),
    ("estates_backlog_significant_risk_gbp", "Backlog maintenance: cost to eradicate significant risk", "gbp",
     "sum(backlog_significant_risk_gbp)"),
    ("estates_backlog_moderate_risk_gbp", "Backlog maintenance: cost to eradicate moderate risk", "gbp",
     "sum(backlog_moderate_risk_gbp)"),
    ("estates_backlog_low_risk_gbp", "Backlog maintenance: cost to eradicate low risk", "gbp",
     "sum(backlog_low_risk_gbp)"),
    ("estates_backlog_total_gbp", "Backlog maintenance: total cost to eradicate (all risk levels)", "gbp",
     "sum(coalesce(backlog_high_risk_gbp, 0) + coalesce(backlog_significant_risk_gbp, 0)"
     " + coalesce(backlog_moderate_risk_gbp, 0) + coalesce(backlog_low_risk_gbp, 0))"),
    ("estates_site_count", "Sites in the ERIC return (all site types)", "sites", "count(distinct site_code)"),
    ("estates_floor_area_m2", "Gross internal floor area", "m2", "sum(gross_internal_floor_area_m2)"),
)

OUTPUT_COLUMNS: tuple[str, ...] = (
    "org_code", "org_name", "org_level", "period_start", "period_grain", "measure_id", "measure_name",
    "measure_group", "unit", "value", "numerator", "denominator", "numerator_measure", "denominator_measure",
    "formula", "source", "note", "peer_group_id", "peer_group_label", "peer_median", "peer_count",
    "national_median", "national_count")

_ROW_SCHEMA: dict[str, pl.DataType] = {
    "org_code": pl.String, "org_level": pl.String, "period_start": pl.Date, "period_grain": pl.String,
    "measure_id": pl.String, "measure_name": pl.String, "measure_group": pl.String, "unit": pl.String,
    "value": pl.Float64, "numerator": pl.Float64, "denominator": pl.Float64, "numerator_measure": pl.String,
    "denominator_measure": pl.String, "formula": pl.String, "source": pl.String, "note": pl.String}


def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    """Run sql and conform it to the row schema (missing columns as NULL)."""
    df = con.sql(sql).pl()
    return df.select([(pl.col(c) if c in df.columns else pl.lit(None)).cast(t).alias(c)
                      for c, t in _ROW_SCHEMA.items()])


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


# ---- rows copied from metric_values ----------------------------------------------------------------------------
def _metric_rows(con: duckdb.DuckDBPyConnection, since: str) -> pl.DataFrame:
    groups = " ".join(f"when {_sql_str(k)} then {_sql_str(v)}" for k, v in METRIC_GROUPS.items())
    ids = ", ".join(_sql_str(k) for k in METRIC_GROUPS)
    base = f"""
        select v.org_code, v.org_level, v.period_start, v.period_grain, v.metric_id as measure_id,
               c.name as measure_name,
               case when v.metric_id like 'workforce_fte%' then 'workforce' else (case v.metric_id {groups} end)
               end as measure_group,
               c.unit, v.value,
               coalesce(v.numerator, v.value) as numerator, v.denominator,
               v.metric_id as numerator_measure,
               case v.metric_id when 'ga_bed_occupancy_pct' then 'ga_beds_available' end as denominator_measure,
               case when v.metric_id = 'ga_bed_occupancy_pct'
                    then '100 x ga_beds_occupied / ga_beds_available'
                    else '{VALUES}.' || v.metric_id end as formula,
               v.source || ' (' || v.source_file || ')' as source,
               case v.metric_id when 'discharge_nctr_avg'
                    then 'daily average over the month of patients no longer meeting the criteria to reside' end
                   as note
        from {VALUES} v left join {CATALOGUE} c using (metric_id)
        where v.period_grain = 'month' and v.period_start >= date '{since}'
          and (v.metric_id like 'workforce_fte%' or v.metric_id in ({ids}))"""
    occupied = f"""
        select v.org_code, v.org_level, v.period_start, v.period_grain, 'ga_beds_occupied' as measure_id,
               'General and acute beds occupied' as measure_name, 'beds' as measure_group, 'beds' as unit,
               v.numerator as value, v.numerator, null as denominator, 'ga_beds_occupied' as numerator_measure,
               null as denominator_measure,
               'numerator of {VALUES}.ga_bed_occupancy_pct (beds occupied)' as formula,
               v.source || ' (' || v.source_file || ')' as source, null as note
        from {VALUES} v
        where v.metric_id = 'ga_bed_occupancy_pct' and v.period_start >= date '{since}' and v.numerator is not null"""
    return pl.concat([_frame(con, base), _frame(con, occupied)])


# ---- provider rows rolled up like step 1 -------------------------------------------------------------------------
def _roll_up_sql(provider_table: str) -> str:
    """ICB (ODS parent ICB), region and England sums of a provider table with columns org_code, period_start,
    measure_id, numerator, denominator, n (providers); value is computed later."""
    levels = (("icb", "o.parent_icb_code"), ("region", "o.region_code"), ("england", "'ENGLAND'"))
    parts = [f"""select {expr} as org_code, '{level}' as org_level, p.period_start, p.measure_id,
                        sum(p.numerator) as numerator, sum(p.denominator) as denominator, sum(p.n) as n
                 from {provider_table} p left join {ORGS} o using (org_code)
                 where {expr} is not null
                 group by all""" for level, expr in levels]
    return " union all ".join(f"({p})" for p in parts)


def _critical_care_rows(con: duckdb.DuckDBPyConnection, since: str) -> pl.DataFrame:
    if not table_exists(con, "latest.beds_ga_critical_care"):
        return pl.DataFrame(schema=_ROW_SCHEMA)
    unions = " union all ".join(
        f"select org_code, period_start, {_sql_str(mid)} as measure_id, {col} as numerator, "
        f"null::double as denominator, 1 as n from latest.beds_ga_critical_care "
        f"where period_start >= date '{since}' and {col} is not null" for mid, _, col in CRITICAL_CARE)
    con.sql(f"create or replace temp table _s3_cc as {unions}")
    con.sql(f"""create or replace temp table _s3_cc_all as
                select org_code, 'provider' as org_level, period_start, measure_id, numerator, denominator, n
                from _s3_cc union all {_roll_up_sql('_s3_cc')}""")
    names = " ".join(f"when {_sql_str(m)} then {_sql_str(n)}" for m, n, _ in CRITICAL_CARE)
    counts = _frame(con, f"""
        select org_code, org_level, period_start, 'month' as period_grain, measure_id,
               case measure_id {names} end as measure_name, 'critical_care' as measure_group, 'beds' as unit,
               numerator as value, numerator, measure_id as numerator_measure,
               'latest.beds_ga_critical_care.' || measure_id ||
                   case when org_level = 'provider' then '' else ' summed over ' || n || ' providers' end
                   as formula,
               'beds_ga_critical_care (monthly G&A and critical care beds SitRep)' as source
        from _s3_cc_all""")
    occupancy = _frame(con, """
        select a.org_code, a.org_level, a.period_start, 'month' as period_grain,
               'adult_critical_care_occupancy_pct' as measure_id, 'Adult critical care bed occupancy' as measure_name,
               'critical_care' as measure_group, 'percent' as unit,
               100.0 * o.numerator / a.numerator as value, o.numerator as numerator, a.numerator as denominator,
               'adult_critical_care_beds_occupied' as numerator_measure,
               'adult_critical_care_beds_available' as denominator_measure,
               '100 x adult_critical_care_beds_occupied / adult_critical_care_beds_available' as formula,
               'beds_ga_critical_care (monthly G&A and critical care beds SitRep)' as source
        from _s3_cc_all a join _s3_cc_all o using (org_code, org_level, period_start)
        where a.measure_id = 'adult_critical_care_beds_available' and o.measure_id = 'adult_critical_care_beds_occupied'
          and a.numerator > 0""")
    return pl.concat([counts, occupancy])


def _estates_rows(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    if not table_exists(con, "latest.estates_eric_site"):
        return pl.DataFrame(schema=_ROW_SCHEMA)
    aggs = ", ".join(f"{expr} as {mid}" for mid, _, _, expr in ESTATES)
    con.sql(f"""create or replace temp table _s3_eric as
                select coalesce(o.successor_code, e.org_code) as org_code,
                       string_agg(distinct e.org_code, ', ' order by e.org_code) as eric_codes, {aggs}
                from latest.estates_eric_site e left join {ORGS} o using (org_code)
                where e.org_code is not null
                group by 1""")
    unions = " union all ".join(
        f"select org_code, date '{ESTATES_PERIOD}' as period_start, {_sql_str(mid)} as measure_id, "
        f"{mid}::double as numerator, null::double as denominator, 1 as n from _s3_eric" for mid, *_ in ESTATES)
    con.sql(f"create or replace temp table _s3_est as {unions}")
    names = " ".join(f"when {_sql_str(m)} then {_sql_str(n)}" for m, n, _, _ in ESTATES)
    units = " ".join(f"when {_sql_str(m)} then {_sql_str(u)}" for m, _, u, _ in ESTATES)
    return _frame(con, f"""
        with a as (select org_code, 'provider' as org_level, period_start, measure_id, numerator, denominator, n
                   from _s3_est union all {_roll_up_sql('_s3_est')})
        select a.org_code, a.org_level, a.period_start, 'snapshot' as period_grain, a.measure_id,
               case a.measure_id {names} end as measure_name, 'estates' as measure_group,
               case a.measure_id {units} end as unit, a.numerator as value, a.numerator,
               a.measure_id as numerator_measure,
               'ERIC 2019/20 site rows summed per trust (2019/20 codes mapped to their final successor)' ||
                   case when a.org_level = 'provider' then '' else ', then over ' || a.n || ' trusts' end as formula,
               'estates_eric_site (ERIC 2019/20, by site)' as source,
               'snapshot of financial year 2019/20, not monthly' ||
                   case when a.org_level = 'provider' and e.eric_codes <> a.org_code
                        then '; sums 2019/20 trust codes ' || e.eric_codes else '' end as note
        from a left join _s3_eric e on a.org_level = 'provider' and e.org_code = a.org_code""")


# ---- ratios -------------------------------------------------------------------------------------------------------
def _ratio_rows(con: duckdb.DuckDBPyConnection, since: str) -> pl.DataFrame:
    """Provider ratios and their ICB/region/England roll-ups over providers reporting both parts."""
    needed = sorted({r.numerator for r in RATIOS} | {r.denominator for r in RATIOS} - {"ga_beds_occupied"})
    ids = ", ".join(_sql_str(m) for m in needed)
    con.sql(f"""create or replace temp table _s3_parts as
                select org_code, period_start, metric_id, value from {VALUES}
                where org_level = 'provider' and period_grain = 'month' and period_start >= date '{since}'
                  and metric_id in ({ids})
                union all
                select org_code, period_start, 'ga_beds_occupied', numerator from {VALUES}
                where org_level = 'provider' and metric_id = 'ga_bed_occupancy_pct'
                  and period_start >= date '{since}' and numerator is not null""")
    unions = " union all ".join(
        f"""select n.org_code, n.period_start, {_sql_str(r.measure_id)} as measure_id, n.value as numerator,
                   d.value as denominator, 1 as n
            from _s3_parts n join _s3_parts d using (org_code, period_start)
            where n.metric_id = {_sql_str(r.numerator)} and d.metric_id = {_sql_str(r.denominator)}
              and n.value is not null and d.value > 0""" for r in RATIOS)
    con.sql(f"create or replace temp table _s3_ratio as {unions}")
    meta = pl.DataFrame({"measure_id": [r.measure_id for r in RATIOS], "measure_name": [r.name for r in RATIOS],
                         "unit": [r.unit for r in RATIOS], "scale": [r.scale for r in RATIOS],
                         "numerator_measure": [r.numerator for r in RATIOS],
                         "denominator_measure": [r.denominator for r in RATIOS]})
    con.register("_s3_ratio_meta", meta.to_arrow())
    try:
        return _frame(con, f"""
            with a as (select org_code, 'provider' as org_level, period_start, measure_id, numerator, denominator, n
                       from _s3_ratio union all {_roll_up_sql('_s3_ratio')})
            select a.org_code, a.org_level, a.period_start, 'month' as period_grain, a.measure_id, m.measure_name,
                   'ratio' as measure_group, m.unit, m.scale * a.numerator / a.denominator as value,
                   a.numerator, a.denominator, m.numerator_measure, m.denominator_measure,
                   case when m.scale = 1 then '' else m.scale::int || ' x ' end || m.numerator_measure || ' / ' ||
                       m.denominator_measure ||
                       case when a.org_level = 'provider' then ''
                            else ', both summed over the ' || a.n || ' providers reporting both' end as formula,
                   '{VALUES}: ' || m.numerator_measure || ', ' || m.denominator_measure as source
            from a join _s3_ratio_meta m using (measure_id)
            where a.denominator > 0""")
    finally:
        con.unregister("_s3_ratio_meta")


def _population_rows(con: duckdb.DuckDBPyConnection, since: str) -> pl.DataFrame:
    """Beds per 100,000 population for ICBs (catchment-apportioned), regions and England."""
    needed = ("latest.trust_icb_catchment", "latest.population_icb_2020")
    if not all(table_exists(con, t) for t in needed):
        return pl.DataFrame(schema=_ROW_SCHEMA)
    cc = ("select org_code, period_start, 'adult_critical_care_beds_available' as kind, "
          "adult_critical_care_beds_available as beds from latest.beds_ga_critical_care "
          f"where period_start >= date '{since}'") if table_exists(con, "latest.beds_ga_critical_care") else \
        "select null::varchar as org_code, null::date as period_start, null::varchar as kind, null::double as beds " \
        "where false"
    con.sql(f"""create or replace temp table _s3_pop_beds as
                select org_code, period_start, 'ga_beds_available' as kind, value as beds from {VALUES}
                where org_level = 'provider' and metric_id = 'ga_beds_available' and period_start >= date '{since}'
                union all {cc}""")
    con.sql(f"""create or replace temp table _s3_icb_pop as
                select upper(trim(p.icb_code)) as icb_code, upper(trim(p.icb22_code)) as icb22_code,
                       p.total_population, o.region_code
                from latest.population_icb_2020 p left join {ORGS} o on o.org_code = upper(trim(p.icb_code))""")
    con.sql("""create or replace temp table _s3_catch as
               select b.period_start, b.kind, p.icb_code, p.region_code,
                      sum(b.beds * c.proportion_trust_came_from_icb) as beds, count(distinct b.org_code) as trusts
               from _s3_pop_beds b
               join latest.trust_icb_catchment c on upper(trim(c.nhs_trust22_code)) = b.org_code
               join _s3_icb_pop p on p.icb22_code = upper(trim(c.icb22_code))
               group by all""")
    con.sql("""create or replace temp table _s3_catch_missing as
               select b.period_start, b.kind, count(*) as n from _s3_pop_beds b
               where b.org_code not in (select upper(trim(nhs_trust22_code)) from latest.trust_icb_catchment)
                 and b.beds > 0
               group by all""")
    kinds = {"ga_beds_available": ("ga_beds_per_100k_population", "G&A beds available per 100,000 population"),
             "adult_critical_care_beds_available": ("adult_critical_care_beds_per_100k_population",
                                                    "Adult critical care beds available per 100,000 population")}
    case_id = " ".join(f"when {_sql_str(k)} then {_sql_str(v[0])}" for k, v in kinds.items())
    case_name = " ".join(f"when {_sql_str(k)} then {_sql_str(v[1])}" for k, v in kinds.items())
    return _frame(con, f"""
        with icb as (select c.icb_code as org_code, 'icb' as org_level, c.period_start, c.kind, c.beds,
                            p.total_population as pop, c.trusts
                     from _s3_catch c join _s3_icb_pop p using (icb_code)),
        reg as (select c.region_code as org_code, 'region' as org_level, c.period_start, c.kind, sum(c.beds) as beds,
                       sum(p.total_population) as pop, null as trusts
                from _s3_catch c join _s3_icb_pop p using (icb_code) where c.region_code is not null group by all),
        eng as (select 'ENGLAND' as org_code, 'england' as org_level, c.period_start, c.kind, sum(c.beds) as beds,
                       (select sum(total_population) from _s3_icb_pop) as pop, null as trusts
                from _s3_catch c group by all),
        a as (select * from icb union all select * from reg union all select * from eng)
        select a.org_code, a.org_level, a.period_start, 'month' as period_grain,
               case a.kind {case_id} end as measure_id, case a.kind {case_name} end as measure_name,
               'ratio' as measure_group, 'beds per 100,000 population' as unit,
               100000.0 * a.beds / a.pop as value, a.beds as numerator, a.pop as denominator,
               a.kind || ' apportioned by catchment share' as numerator_measure,
               'ons_mid2020_population' as denominator_measure,
               '100000 x sum over trusts(' || a.kind || ' x proportion_trust_came_from_icb) / ONS mid-2020 population'
                   as formula,
               'metric_values / beds_ga_critical_care; trust_icb_catchment; population_icb_2020 (ONS mid-2020)'
                   as source,
               'population is mid-2020 (ONS); beds apportioned to ICBs by patient catchment shares, not by the '
                   || 'trust''s host ICB' ||
                   case when coalesce(m.n, 0) > 0
                        then '; ' || m.n || ' trusts with beds missing from the catchment file were left out'
                        else '' end as note
        from a left join _s3_catch_missing m using (period_start, kind)
        where a.pop > 0""")


# ---- benchmarks (pure) ------------------------------------------------------------------------------------------
def add_benchmarks(rows: pl.DataFrame, peers: pl.DataFrame | None) -> pl.DataFrame:
    """Add peer and national medians to long resource rows.

    rows: org_code, org_level, period_start, measure_id, value (+ anything). peers: org_code, peer_group_id,
    peer_group_label (providers), or None. Peer median = median value over providers of the same peer group,
    measure and period (the org itself included); national median = median over all organisations of the same
    level, measure and period (NULL for England). NULL values are ignored; counts say how many values were used."""
    keys = ["measure_id", "period_start"]
    if peers is None or peers.is_empty():
        peers = pl.DataFrame(schema={"org_code": pl.String, "peer_group_id": pl.String,
                                     "peer_group_label": pl.String})
    peers = (peers.select(pl.col("org_code").cast(pl.String), pl.col("peer_group_id").cast(pl.String),
                          pl.col("peer_group_label").cast(pl.String))
             .unique(subset=["org_code"], keep="first"))
    out = rows.join(peers, on="org_code", how="left").with_columns(
        [pl.when(pl.col("org_level") == "provider").then(pl.col(c)).otherwise(None).alias(c)
         for c in ("peer_group_id", "peer_group_label")])
    valued = out.filter(pl.col("value").is_not_null() & pl.col("value").is_finite())
    peer_stats = (valued.filter(pl.col("peer_group_id").is_not_null())
                  .group_by([*keys, "peer_group_id"])
                  .agg(pl.col("value").median().alias("peer_median"), pl.len().cast(pl.Int64).alias("peer_count")))
    nat_stats = (valued.filter(pl.col("org_level") != "england")
                 .group_by([*keys, "org_level"])
                 .agg(pl.col("value").median().alias("national_median"),
                      pl.len().cast(pl.Int64).alias("national_count")))
    out = out.join(peer_stats, on=[*keys, "peer_group_id"], how="left")
    out = out.join(nat_stats, on=[*keys, "org_level"], how="left")
    return out


def _peers(con: duckdb.DuckDBPyConnection) -> pl.DataFrame | None:
    if not table_exists(con, PEER_GROUPS):
        return None
    return con.sql(f"select org_code, peer_group_id::varchar as peer_group_id, "
                   f"peer_group_label::varchar as peer_group_label from {PEER_GROUPS}").pl()


def build_resource_map(con: duckdb.DuckDBPyConnection, since: str = DEFAULT_SINCE) -> int:
    """Create s3_resources.resource_map (see the module docstring) from step 1's tables and the raw bed, estates,
    catchment and population tables; return its row count. Needs s1_current_state.metric_values and
    organisations; peer medians need s2_triple_aim.peer_groups (NULL without it). `since`: first month kept."""
    for t in (VALUES, ORGS, CATALOGUE):
        if not table_exists(con, t):
            raise RuntimeError(f"{t} is missing: build step 1 (s1_current_state) first")
    parts = [_metric_rows(con, since), _critical_care_rows(con, since), _estates_rows(con),
             _ratio_rows(con, since), _population_rows(con, since)]
    rows = pl.concat(parts, how="vertical")
    names = con.sql(f"select org_code, org_name from {ORGS}").pl().unique(subset=["org_code"], keep="first")
    rows = rows.join(names, on="org_code", how="left")
    out = add_benchmarks(rows, _peers(con)).select(OUTPUT_COLUMNS).sort(
        ["org_level", "org_code", "measure_group", "measure_id", "period_start"])
    replace_table(con, *TABLE.split("."), out)
    for t in ("_s3_cc", "_s3_cc_all", "_s3_eric", "_s3_est", "_s3_parts", "_s3_ratio", "_s3_pop_beds",
              "_s3_icb_pop", "_s3_catch", "_s3_catch_missing"):
        con.sql(f"drop table if exists {t}")
    return con.sql(f"select count(*) from {TABLE}").fetchone()[0]
