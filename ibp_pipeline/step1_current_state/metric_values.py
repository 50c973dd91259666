"""Step-1 metric values: one long table of every catalogue metric for providers, ICBs, regions and England.

Why long and traceable: the IBP's "where are we now" compares organisations and tracks them over time, and a
planner must be able to follow any figure back to the file it came from. Every row carries its source, source
file and load id; aggregate rows say how many providers they sum.

How it is built
1. Candidates (temp table `_candidates`): each metric family below turns `latest.<source>` rows into
   (org, period, metric, value, numerator, denominator) rows, one block per family with its definition.
2. Precedence: where several sources hold the same (org_code, period_start, metric_id), the first source of the
   metric's catalogue `sources` wins (`precedence` = that source's rank, 1 = the preferred source; a higher
   number means a fallback source filled a gap). `comparison_sources` never win; they exist to be compared.
3. Aggregates: ICB, region and England rows sum the surviving provider numerators and denominators and then
   apply the metric's formula (percentages are never averaged). Region and England take every provider of the
   publication (independent sector too, as NHS England's totals do); an ICB takes the providers whose
   parent_icb_code is that ICB (ODS HQ geography, not patient catchment). ICB-level sources (virtual wards) roll
   up to region and England the same way. A metric not rolled up (cancer by commissioner) takes England from its
   source's own England row: a family row whose org_code is 'ENGLAND' is an England row.
4. `current_org_code` is the organisation's final successor (or itself), so series run across mergers.

What the data showed about overlapping A&E sources (checked on the bundled files, Apr-Dec 2024, 1,349 trust-months
in both): healthyr's `total_attendances` INCLUDES booked appointments. It equals the sum of all six 'A&E
attendances' columns of the official file in 1,348 of 1,349 trust-months, but the sum of the three unbooked
columns in only about 580 (those with no booked appointments); likewise `attendances_over_4hours` equals the
six-column over-4-hour sum and `total_emergency_admissions` the four admission columns. So both files measure
the same thing and healthyr is a valid fallback (it fills Apr 2021-Mar 2024 and Jan-Jul 2025). The differences
that remain are revisions (e.g. RXL Oct 2024 attendances 20,135 official vs 19,719 healthyr; R1K Nov 2024
emergency admissions 6,561 vs 7,245); the official monthly file wins.
"""
from __future__ import annotations

from dataclasses import dataclass

import duckdb

from ibp_pipeline.lib.duckdb_tables import table_exists
from ibp_pipeline.step1_current_state import catalogue
from ibp_pipeline.step1_current_state.catalogue import BY_ID, WORKFORCE_STAFF_GROUPS
from ibp_pipeline.step1_current_state.organisations import ICBS_CHANGED
from ibp_pipeline.step1_current_state.sources import BY_NAME, RTT_BANDS

SCHEMA = catalogue.SCHEMA
VALUES = f"{SCHEMA}.metric_values"
CONFLICTS = f"{SCHEMA}.source_conflicts"
ORGS = f"{SCHEMA}.organisations"
PROVIDER_TYPES = ("nhs_trust", "independent_or_other_provider")

# Disagreement thresholds for source_conflicts: beyond rounding, not beyond reason.
PCT_POINTS = 0.05
COUNT_ABS = 0.5
COUNT_REL = 0.001


def _code(expr: str) -> str:
    return f"nullif(upper(trim({expr})), '')"


def _sum(cols: list[str]) -> str:
    """Row-wise sum that ignores empty cells but is NULL when every cell is empty."""
    return f"list_sum([{', '.join(cols)}])"


def _str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


@dataclass(frozen=True)
class Family:
    """One metric family: a base query with one row per organisation and period (columns org_code,
    period_start, source_file, load_id plus named measures) and the metrics it yields as
    (metric_id, numerator expression, denominator expression or None)."""
    source: str
    base: str
    metrics: tuple[tuple[str, str, str | None], ...]


_PROVENANCE = "_source_file as source_file, _load_id as load_id"
_GROUPED_PROVENANCE = "string_agg(distinct _source_file, '; ') as source_file, max(_load_id) as load_id"

# ---- A&E --------------------------------------------------------------------------------------------------
# ae_attendances = all six 'A&E attendances' columns (types 1, 2, other and the three booked-appointment ones);
# ae_4hr_pct = 100 x (attendances - all six 'Attendances over 4hrs' columns) / attendances, where attendances > 0;
# ae_12hr_dta_waits = 12+ hours from decision to admit; ae_emergency_admissions = 3 via-A&E columns + other.
_AE = BY_NAME["ae_monthly_official"]
_AE_ATT = [c.name for c in _AE.columns if c.header.startswith("A&E attendances")]
_AE_OVER = [c.name for c in _AE.columns if c.header.startswith("Attendances over 4hrs")]
_AE_ADM = [c.name for c in _AE.columns if c.header.startswith(("Emergency admissions via A&E", "Other emergency"))]
_AE_4HR = ("ae_4hr_pct", "case when attendances > 0 then attendances - over_4h end", "attendances")

AE_OFFICIAL = Family("ae_monthly_official", f"""
    select {_code('org_code')} as org_code, period_start, {_PROVENANCE},
           {_sum(_AE_ATT)} as attendances, {_sum(_AE_OVER)} as over_4h, {_sum(_AE_ADM)} as admissions,
           patients_who_have_waited_12plus_hrs_from_dta_to_admission as dta_12h
    from latest.ae_monthly_official where {_code('org_code')} <> 'TOTAL'""",
    (("ae_attendances", "attendances", None), _AE_4HR, ("ae_12hr_dta_waits", "dta_12h", None),
     ("ae_emergency_admissions", "admissions", None)))

# healthyr: same definitions (total_attendances includes booked appointments; see the module docstring).
AE_HEALTHYR = Family("ae_trust_monthly", f"""
    select {_code('org_code')} as org_code, period_start, {_PROVENANCE}, total_attendances as attendances,
           attendances_over_4hours as over_4h, total_emergency_admissions as admissions
    from latest.ae_trust_monthly""",
    (("ae_attendances", "attendances", None), _AE_4HR, ("ae_emergency_admissions", "admissions", None)))

# NHS-R 2016-19: one row per department type; a month counts only when every type row has the figure.
AE_NHSR = Family("ae_attendances_2016_2019", f"""
    select {_code('org_code')} as org_code, period_start, {_GROUPED_PROVENANCE},
           case when count(attendances) = count(*) then sum(attendances) end as attendances,
           case when count(breaches) = count(*) then sum(breaches) end as over_4h
    from latest.ae_attendances_2016_2019 group by all""",
    (("ae_attendances", "attendances", None), _AE_4HR))

# ---- RTT --------------------------------------------------------------------------------------------------
# Trust total row C_999: waiting list = total_incomplete; % within 18 weeks = within / total (total > 0);
# 52-week waiters = total_52plus_wks, an empty cell counting as 0 where the total is present.
RTT = Family("rtt_incomplete", f"""
    select {_code('provider_code')} as org_code, period_start, {_PROVENANCE}, total_incomplete as total,
           coalesce(total_within_18wks, 0) as within_18, coalesce(total_52plus_wks, 0) as over_52
    from latest.rtt_incomplete
    where upper(trim(treatment_function_code)) = 'C_999' and total_incomplete is not null""",
    (("rtt_waiting_list", "total", None), ("rtt_18wk_pct", "case when total > 0 then within_18 end", "total"),
     ("rtt_52wk_waiters", "over_52", None)))

# healthyr 'Total' treatment: summed over all RTT parts (see catalogue), so a comparison for rtt_52wk_waiters and
# a metric of its own.
RTT_HEALTHYR = Family("rtt_long_waits", f"""
    select {_code('org_code')} as org_code, period_start, {_PROVENANCE}, waits_over_52_weeks as over_52
    from latest.rtt_long_waits where treatment = 'Total'""",
    (("rtt_52wk_waiters", "over_52", None), ("rtt_52wk_all_rtt_parts", "over_52", None)))

# ---- Diagnostics (DM01) -----------------------------------------------------------------------------------
# 'Total' test row: waiting list = total_waiting; % waiting 6+ weeks = waiting_6plus_wks / total_waiting (> 0).
DM01 = Family("dm01_diagnostics", f"""
    select {_code('provider_code')} as org_code, period_start, {_PROVENANCE}, total_waiting,
           waiting_6plus_wks as over_6
    from latest.dm01_diagnostics where trim(diagnostic_test) = 'Total'""",
    (("dm01_waiting_list", "total_waiting", None),
     ("dm01_6wk_pct", "case when total_waiting > 0 then over_6 end", "total_waiting")))

# ---- Cancer waiting times -----------------------------------------------------------------------------------
# Per provider-month: every '28-day FDS' row summed; '31-day Combined' / '62-day Combined' rows with modality
# 'ALL MODALITIES' summed; % = within_standard / total_treated where total > 0 (empty cells count as 0).
_CWT = {"fds": ("28-day FDS", None), "d31": ("31-day Combined", "ALL MODALITIES"),
        "d62": ("62-day Combined", "ALL MODALITIES")}


def _cwt_sums() -> str:
    out = []
    for key, (standard, modality) in _CWT.items():
        cond = f"standard = {_str(standard)}" + (f" and upper(trim(treatment_modality)) = {_str(modality)}"
                                                  if modality else "")
        out.append(f"sum(coalesce(within_standard, 0)) filter (where {cond}) as {key}_within, "
                   f"sum(coalesce(total_treated, 0)) filter (where {cond}) as {key}_total")
    return ",\n           ".join(out)


def _cwt_family(source: str) -> Family:
    """The CWT-CRS provider extract, tidy or as published: the same columns and the same sums."""
    return Family(source, f"""
    select {_code('provider_code')} as org_code, period_start, {_GROUPED_PROVENANCE},
           {_cwt_sums()}
    from latest.{source} group by all""",
        tuple((f"cancer_{m}_pct", f"case when {k}_total > 0 then {k}_within end", f"{k}_total")
              for m, k in (("fds", "fds"), ("31d", "d31"), ("62d", "d62"))))


CANCER = _cwt_family("cancer_waiting_times")
CANCER_CRS = _cwt_family("cancer_cwt_crs_extract")

# ---- Beds ---------------------------------------------------------------------------------------------------
# Monthly sitrep averages: beds available; occupancy = occupied / available (> 0). KH03: quarterly, G&A sector.
BEDS_GA = Family("beds_ga_critical_care", f"""
    select {_code('org_code')} as org_code, period_start, {_PROVENANCE},
           general_acute_beds_available as available, general_acute_beds_occupied as occupied
    from latest.beds_ga_critical_care""",
    (("ga_beds_available", "available", None),
     ("ga_bed_occupancy_pct", "case when available > 0 then occupied end", "available")))

KH03 = Family("beds_kh03", f"""
    select {_code('org_code')} as org_code, period_start, {_PROVENANCE},
           available_general_acute as available, occupied_general_acute as occupied
    from latest.beds_kh03""",
    (("kh03_ga_beds_available", "available", None),
     ("kh03_ga_bed_occupancy_pct", "case when available > 0 then occupied end", "available")))

# ---- Discharge ----------------------------------------------------------------------------------------------
# Patients not meeting the criteria to reside: numerator = patient-days over the days reported, denominator =
# days reported, value = daily average (people). Rolled up as a sum of trust averages (catalogue: sum_of_values).
DISCHARGE = Family("discharge_daily", f"""
    select {_code('org_code')} as org_code, period_start, {_GROUPED_PROVENANCE},
           sum(do_not_meet_criteria_to_reside) as patient_days, count(do_not_meet_criteria_to_reside) as days
    from latest.discharge_daily group by all""",
    (("discharge_nctr_avg", "case when days > 0 then patient_days end", "days"),))

# ---- Virtual wards (ICB level) ---------------------------------------------------------------------------------
# capacity; per 100k = capacity x 100,000 / GP-registered population; occupancy = patients / capacity (> 0).
VIRTUAL_WARDS = Family("virtual_wards", f"""
    select {_code('icb_code')} as org_code, period_start, {_PROVENANCE}, vw_capacity as capacity,
           vw_patients as patients, gp_registered_population as population
    from latest.virtual_wards""",
    (("vw_capacity", "capacity", None),
     ("vw_capacity_per_100k", "case when population > 0 then capacity * 100000 end", "population"),
     ("vw_occupancy_pct", "case when capacity > 0 then patients end", "capacity")))

# ---- Workforce ----------------------------------------------------------------------------------------------
# FTE by staff group, one metric per group (never summed across groups), trust and provider employers only:
# ICBs and other core organisations as employers are left out of every row and every roll-up.
_PROVIDERS_ONLY = (f"{_code('org_code')} in (select org_code from {ORGS} "
                   f"where org_type in ({', '.join(map(_str, PROVIDER_TYPES))}))")


def _staff_group_columns() -> str:
    cols = ["max(value) filter (where staff_group = 'Total') as g_total"]
    for spellings, suffix, _parent in WORKFORCE_STAFF_GROUPS:
        picks = ", ".join(f"max(value) filter (where staff_group = {_str(s)})" for s in spellings)
        cols.append(f"coalesce({picks}) as g_{suffix}" if len(spellings) > 1 else f"{picks} as g_{suffix}")
    return ",\n           ".join(cols)


WORKFORCE_GROUPS = Family("workforce_staff_group", f"""
    select {_code('org_code')} as org_code, period_start, {_GROUPED_PROVENANCE},
           {_staff_group_columns()}
    from latest.workforce_staff_group where upper(trim(measure)) = 'FTE' and {_PROVIDERS_ONLY} group by all""",
    (("workforce_fte", "g_total", None),)
    + tuple((f"workforce_fte_{suffix}", f"g_{suffix}", None) for _s, suffix, _p in WORKFORCE_STAFF_GROUPS))

# Total FTE timeseries: the wide workbook fills months outside an organisation's life with 0, so zeros are dropped.
WORKFORCE_TOTAL = Family("workforce_total", f"""
    select {_code('org_code')} as org_code, period_start, {_PROVENANCE}, value as fte
    from latest.workforce_total where upper(trim(measure)) = 'FTE' and value > 0 and {_PROVIDERS_ONLY}""",
    (("workforce_fte", "fte", None),))

# ---- Publications as NHS England publishes them (sources_published.py) ----------------------------------------
# RTT full CSV data file: per provider, the C_999 (all treatment functions) rows summed over commissioners.
# Part_2 incomplete pathways: waiting list = 'Total All'; within 18 weeks = bands 'Gt 00 To 01' .. 'Gt 17 To 18';
# over N weeks = bands from 'Gt N To N+1' up. Part_3 'Total All' = new clock starts; Part_1A / 1B 'Total All' =
# admitted / non-admitted clock stops. A blank cell is an empty count.
def _bands(first: int, last: int | None = None) -> str:
    return _sum(list(RTT_BANDS[first:last]))


def _rtt_part(part: str, expr: str) -> str:
    return f"sum({expr}) filter (where rtt_part_type = {_str(part)})"


RTT_EXTRACT = Family("rtt_full_extract", f"""
    select {_code('provider_org_code')} as org_code, period_start, {_GROUPED_PROVENANCE},
           {_rtt_part('Part_2', 'total_all')} as total,
           coalesce({_rtt_part('Part_2', _bands(0, 18))}, 0) as within_18,
           coalesce({_rtt_part('Part_2', _bands(52))}, 0) as over_52,
           coalesce({_rtt_part('Part_2', _bands(65))}, 0) as over_65,
           coalesce({_rtt_part('Part_2', _bands(78))}, 0) as over_78,
           coalesce({_rtt_part('Part_2', _bands(104))}, 0) as over_104,
           {_rtt_part('Part_3', 'total_all')} as starts,
           {_rtt_part('Part_1A', 'total_all')} as stops_admitted,
           {_rtt_part('Part_1B', 'total_all')} as stops_non_admitted
    from latest.rtt_full_extract where upper(trim(treatment_function_code)) = 'C_999' group by all""",
    (("rtt_waiting_list", "total", None), ("rtt_18wk_pct", "case when total > 0 then within_18 end", "total"),
     ("rtt_52wk_waiters", "case when total is not null then over_52 end", None),
     ("rtt_65wk_waiters", "case when total is not null then over_65 end", None),
     ("rtt_78wk_waiters", "case when total is not null then over_78 end", None),
     ("rtt_104wk_waiters", "case when total is not null then over_104 end", None),
     ("rtt_clock_starts", "starts", None), ("rtt_clock_stops_admitted", "stops_admitted", None),
     ("rtt_clock_stops_non_admitted", "stops_non_admitted", None)))

RTT_LONG_WAITS = Family("rtt_incomplete", f"""
    select {_code('provider_code')} as org_code, period_start, {_PROVENANCE},
           coalesce(total_65plus_wks, 0) as over_65, coalesce(total_78plus_wks, 0) as over_78
    from latest.rtt_incomplete
    where upper(trim(treatment_function_code)) = 'C_999' and total_incomplete is not null""",
    (("rtt_65wk_waiters", "over_65", None), ("rtt_78wk_waiters", "over_78", None)))

# DM01 provider web file: the 'Provider' sheet, one row per provider. A row of zeros in every count is a provider
# that did not submit that month (the file's Notes say so, e.g. RP5 in July 2025): left out, not read as 0.
DM01_WEB = Family("dm01_web_file", f"""
    select {_code('provider_code')} as org_code, period_start, {_PROVENANCE}, total_waiting,
           waiting_6plus_wks as over_6
    from latest.dm01_web_file
    where {_code('provider_code')} <> 'TOTAL'
      and (total_waiting > 0 or coalesce(activity_planned, 0) + coalesce(activity_unscheduled, 0)
                                + coalesce(activity_waiting_list, 0) > 0)""",
    (("dm01_waiting_list", "total_waiting", None),
     ("dm01_6wk_pct", "case when total_waiting > 0 then over_6 end", "total_waiting")))

# KH03 quarterly web file, 'NHS Trust by Sector': available and occupied G&A beds (averages over the quarter).
KH03_WEB = Family("kh03_web_file", f"""
    select {_code('org_code')} as org_code, period_start, {_PROVENANCE},
           available_general_acute as available, occupied_general_acute as occupied
    from latest.kh03_web_file where {_code('org_code')} <> 'TOTAL'""",
    (("kh03_ga_beds_available", "available", None),
     ("kh03_ga_bed_occupancy_pct", "case when available > 0 then occupied end", "available")))

# Cancer combined workbook, 'Provider Level Performance': the all-cancers, all-routes (31D: all stages) rows,
# all modalities, Total and Within; England's 'Total' rows are NHS England's own totals, not read as a provider.
_COMBINED = {"fds": ("FDS", "ALL ROUTES", None), "d31": ("31D", "ALL STAGES", "ALL MODALITIES"),
             "d62": ("62D", "ALL ROUTES", "ALL MODALITIES")}


def _combined_sums() -> str:
    out = []
    for key, (standard, route, modality) in _COMBINED.items():
        cond = (f"upper(trim(standard)) = {_str(standard)} and upper(trim(cancer_type)) = 'ALL CANCERS' "
                f"and upper(trim(route_stage)) = {_str(route)}"
                + (f" and upper(trim(treatment_modality)) = {_str(modality)}" if modality else ""))
        out.append(f"sum(within) filter (where {cond}) as {key}_within, sum(total) filter (where {cond}) as {key}_total")
    return ",\n           ".join(out)


CANCER_COMBINED = Family("cancer_combined_workbook", f"""
    select {_code('org_code')} as org_code, period_start, {_GROUPED_PROVENANCE}, {_combined_sums()}
    from latest.cancer_combined_workbook where {_code('org_code')} <> 'TOTAL' group by all""",
    tuple((f"cancer_{m}_pct", f"case when {k}_total > 0 then {k}_within end", f"{k}_total")
          for m, k in (("fds", "fds"), ("31d", "d31"), ("62d", "d62"))))

# The same workbook, 'System Level Performance' (by commissioner): the same rows and sums, metrics of their own
# (catalogue: cancer_*_pct_icb_patients) so an ICB's own patients never meet the sum of the providers based in it.
# The ICB rows are the 2022 ICBs as published; England is the sheet's 'Total' row (it counts NHS England's
# commissioning hubs and 'UNKNOWN' too, which are no ICB and so have no row here).
CANCER_SYSTEM = Family("cancer_combined_workbook_system", f"""
    select case when {_code('org_code')} = 'TOTAL' then 'ENGLAND' else {_code('org_code')} end as org_code,
           period_start, {_GROUPED_PROVENANCE}, {_combined_sums()}
    from latest.cancer_combined_workbook_system
    where {_code('org_code')} = 'TOTAL' or {_code('org_code')} in (select org_code from {ORGS} where org_type = 'icb')
    group by all""",
    tuple((f"cancer_{m}_pct_icb_patients", f"case when {k}_total > 0 then {k}_within end", f"{k}_total")
          for m, k in (("fds", "fds"), ("31d", "d31"), ("62d", "d62"))))

FAMILIES: tuple[Family, ...] = (AE_OFFICIAL, AE_HEALTHYR, AE_NHSR, RTT_EXTRACT, RTT, RTT_LONG_WAITS, RTT_HEALTHYR,
                                DM01_WEB, DM01, CANCER_COMBINED, CANCER_SYSTEM, CANCER_CRS, CANCER, BEDS_GA,
                                KH03_WEB, KH03, DISCHARGE, VIRTUAL_WARDS, WORKFORCE_GROUPS, WORKFORCE_TOTAL)


# ---- building ---------------------------------------------------------------------------------------------------
def source_rank(metric_id: str, source: str) -> int | None:
    """1-based precedence of a source for a metric; None for comparison-only sources."""
    m = BY_ID[metric_id]
    if source in m.sources:
        return m.sources.index(source) + 1
    if source in m.comparison_sources:
        return None
    raise ValueError(f"{source} is not a source of {metric_id} in the catalogue")


def _value_expr(formula: str, num: str, den: str) -> str:
    return {"count": num, "percent": f"100.0 * {num} / {den}", "ratio": f"{num} / {den}"}[formula]


def candidate_sql(family: Family, metric_ids: frozenset[str] | None = None) -> str | None:
    """All candidate rows of one family (optionally only some metrics) as one UNION ALL query."""
    selects = []
    for metric_id, num, den in family.metrics:
        if metric_ids is not None and metric_id not in metric_ids:
            continue
        m = BY_ID[metric_id]
        rank = source_rank(metric_id, family.source)
        den_sql = den or "null"
        where = f"({num}) is not null" + (f" and ({den}) > 0" if den else "")
        selects.append(f"""
            select org_code, case org_code when 'ENGLAND' then 'england' else '{m.level}' end as org_level,
                   period_start, '{m.grain}' as period_grain,
                   '{metric_id}' as metric_id, ({_value_expr(m.formula, f'({num})', f'({den_sql})')})::double as value,
                   ({num})::double as numerator, ({den_sql})::double as denominator, '{family.source}' as source,
                   source_file, load_id::bigint as load_id, {rank if rank else 'null'}::integer as source_rank
            from base where {where} and org_code is not null and period_start is not null""")
    if not selects:
        return None
    return f"with base as ({family.base})\n" + "\nunion all\n".join(selects)


def build_candidates(con: duckdb.DuckDBPyConnection, metric_ids: frozenset[str] | None = None) -> int:
    """Temp table _candidates: every source's value for every (org, period, metric), before precedence."""
    queries = [q for f in FAMILIES if (q := candidate_sql(f, metric_ids))]
    con.execute("create or replace temp table _candidates as "
                + "\nunion all\n".join(f"select * from ({q})" for q in queries))
    return con.execute("select count(*) from _candidates").fetchone()[0]


def _catalogue_frame(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table _cat with each metric's formula and aggregation, for the SQL below."""
    rows = ", ".join(f"({_str(m.metric_id)}, {_str(m.formula)}, {_str(m.aggregation)})" for m in catalogue.METRICS)
    con.execute(f"create or replace temp table _cat as select * from (values {rows}) "
                "t(metric_id, formula, aggregation)")


_OUT_COLUMNS = ("org_code, org_level, period_start, period_grain, metric_id, value, numerator, denominator, "
                "source, source_file, load_id, precedence")


def _survivors_sql() -> str:
    """Values from the files: per (org, period, metric) the candidate of the lowest precedence number."""
    return """
        select org_code, org_level, period_start, period_grain, metric_id, value, numerator, denominator, source,
               source_file, load_id, source_rank as precedence
        from _candidates where source_rank is not null
        qualify row_number() over (partition by org_code, period_start, metric_id
                                   order by source_rank, load_id desc, source_file) = 1"""


def _aggregate_sql(level: str, group_expr: str, members: str) -> str:
    """Roll surviving rows up to `level`: sum numerators and denominators, then apply the formula."""
    value = """case c.aggregation when 'sum_of_values' then sum(s.value)
                    else case c.formula when 'count' then sum(s.numerator)
                                        when 'percent' then 100.0 * sum(s.numerator) / nullif(sum(s.denominator), 0)
                                        else sum(s.numerator) / nullif(sum(s.denominator), 0) end end"""
    return f"""
        select {group_expr} as org_code, '{level}' as org_level, s.period_start, s.period_grain, s.metric_id,
               {value} as value, sum(s.numerator) as numerator,
               case when c.aggregation = 'sum_of_values' or c.formula = 'count' then null
                    else sum(s.denominator) end as denominator,
               array_to_string(list_sort(list_distinct(list(s.source))), ', ') as source,
               'aggregate of ' || count(*) || ' ' || any_value(s.org_level) || 's' as source_file,
               max(s.load_id) as load_id, max(s.precedence) as precedence
        from _survivors s join _cat c using (metric_id) left join {ORGS} o using (org_code)
        join _period_source p using (metric_id, period_start)
        where c.aggregation <> 'none' and ({members}) and {group_expr} is not null and s.precedence = p.precedence
        group by {group_expr}, s.period_start, s.period_grain, s.metric_id, c.aggregation, c.formula"""


def _coverage_frame(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table _coverage: per source, the providers its totals cover, in plain English (SourceSpec.coverage)."""
    rows = ", ".join(f"({_str(s.name)}, {_str(f'{s.title}: ' + (s.coverage or 'the organisations in the file'))})"
                     for s in BY_NAME.values())
    con.execute(f"create or replace temp table _coverage as select * from (values {rows}) t(source, coverage)")


def _require_organisations(con: duckdb.DuckDBPyConnection) -> None:
    if not table_exists(con, SCHEMA, "organisations"):
        raise RuntimeError(f"{ORGS} is missing: run organisations.build_organisations(con) first")


def build_metric_values(con: duckdb.DuckDBPyConnection) -> int:
    """Create s1_current_state.metric_values (provider rows from the files, ICB/region/England rolled up from
    the surviving provider rows); return its row count. Needs s1_current_state.organisations."""
    _require_organisations(con)
    build_candidates(con)
    _catalogue_frame(con)
    con.execute(f"create or replace temp table _survivors as {_survivors_sql()}")
    # A month's ICB, region and England figures come from ONE source: the first in precedence that has the
    # month. Mixing in a fallback source's providers would step the totals silently where a source changes (and
    # England would no longer equal NHS England's published total).
    con.execute("""create or replace temp table _period_source as
                   select metric_id, period_start, min(precedence) as precedence, arg_min(source, precedence) as source
                   from _survivors group by all""")
    _coverage_frame(con)
    providers = "s.org_level = 'provider'"
    icbs = "s.org_level = 'icb'"
    parts = [
        f"select {_OUT_COLUMNS} from _survivors",
        _aggregate_sql("icb", "o.parent_icb_code", providers),
        _aggregate_sql("region", "o.region_code", f"{providers} or {icbs}"),
        _aggregate_sql("england", "'ENGLAND'", f"{providers} or {icbs}"),
    ]
    con.execute(f"""
        create or replace table {VALUES} as
        select v.*, coalesce(o.successor_code, v.org_code) as current_org_code,
               case when v.org_level = 'icb' and o.org_type = 'icb' and v.period_start < DATE '{ICBS_CHANGED}'
                         and v.source_file like 'aggregate of %'
                    then cov.coverage || ' Restated: the ICB of today (April 2026 boundaries) summed over its '
                         || 'providers as they map now, also for months before the April 2026 mergers.'
                    when v.org_level <> 'provider' then cov.coverage end as coverage
        from ({' union all '.join(f'({p})' for p in parts)}) v left join {ORGS} o using (org_code)
        left join _period_source ps on ps.metric_id = v.metric_id and ps.period_start = v.period_start
        left join _coverage cov on cov.source = ps.source
        where v.value is not null
        order by v.metric_id, v.org_level, v.org_code, v.period_start""")
    for t in ("_survivors", "_cat", "_candidates", "_period_source", "_coverage"):
        con.execute(f"drop table if exists {t}")
    return con.execute(f"select count(*) from {VALUES}").fetchone()[0]


def _rules(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table _rules: per (metric, source) the precedence rule in words."""
    rows = []
    for m in catalogue.METRICS:
        order = " > ".join(f"{s} ({i})" for i, s in enumerate(m.sources, 1))
        for i, s in enumerate(m.sources, 1):
            rows.append((m.metric_id, s, f"precedence {order}; the lowest number wins, {s} is {i}"))
        for s in m.comparison_sources:
            rows.append((m.metric_id, s, f"{s} is comparison only, never used: it measures something different "
                                         f"(see the catalogue definition); precedence {order}"))
    values = ", ".join(f"({_str(a)}, {_str(b)}, {_str(c)})" for a, b, c in rows)
    con.execute(f"create or replace temp table _rules as select * from (values {values}) t(metric_id, source, rule)")


def multi_source_metrics() -> frozenset[str]:
    """Metrics that more than one source can fill or be compared on: the only ones that can conflict."""
    return frozenset(m.metric_id for m in catalogue.METRICS if len(m.sources) + len(m.comparison_sources) > 1)


def build_source_conflicts(con: duckdb.DuckDBPyConnection) -> int:
    """Create s1_current_state.source_conflicts: every (org, period, metric) where a losing source disagrees with
    the winner beyond rounding (percent: more than 0.05 points; otherwise more than 0.5 and more than 0.1% of the
    winner); return its row count. Winners follow the same precedence as build_metric_values; only metrics with
    more than one source are read, so this does not need build_metric_values to have run."""
    _require_organisations(con)  # the workforce families keep provider employers only
    build_candidates(con, multi_source_metrics())
    _rules(con)
    pct = ", ".join(_str(m.metric_id) for m in catalogue.METRICS if m.formula == "percent")
    con.execute(f"""
        create or replace table {CONFLICTS} as
        with w as ({_survivors_sql()}),
        c as (select * from _candidates)
        select w.org_code, w.period_start, w.metric_id, w.source as winning_source, w.value as winning_value,
               c.source as other_source, c.value as other_value, c.value - w.value as difference,
               w.source_file as winning_source_file, c.source_file as other_source_file, r.rule
        from w join c using (org_code, period_start, metric_id)
        join _rules r on r.metric_id = w.metric_id and r.source = c.source
        where c.source <> w.source
          and case when w.metric_id in ({pct}) then abs(c.value - w.value) > {PCT_POINTS}
                   else abs(c.value - w.value) > {COUNT_ABS} and abs(c.value - w.value) > {COUNT_REL} * abs(w.value)
              end
        order by w.metric_id, w.org_code, w.period_start, c.source""")
    for t in ("_rules", "_candidates"):
        con.execute(f"drop table if exists {t}")
    return con.execute(f"select count(*) from {CONFLICTS}").fetchone()[0]
