"""Step-1 organisation register: every trust, ICB, region and England, plus every other provider the
publications report on (independent sector, walk-in centres, urgent treatment centres).

Why one register: metric rows are only as useful as the hierarchy they roll up through. ICB figures need each
provider's parent ICB, regional and England figures need every provider (independent sector included, as NHS
England's own totals do), and long series need merged trusts mapped to their final successor.

Rules (in order of preference)
- NHS trusts: the ODS etr extracts (2025, then 2020, then 2026 for trusts closed before 2020 or opened later).
  Parent ICB = the 2025 extract's icb_code (where the trust HQ sits), else the 2020 stp_code, else the
  supplement, else the ICS code the workforce publication files the organisation under, else the 2026
  extract's code when it is still one of the 42 ICBs. Welsh trusts (ICB 'Q99', region 'W00') keep no English ICB
  or region.
- ICBs and regions: latest.subicb_icb_region (42 ICBs, 7 regions, with their ONS E54/E40 codes). England: 'ENGLAND'.
- Other providers: every code seen in an activity publication (A&E, RTT, DM01, cancer, beds, discharge) that is
  not an ODS trust, plus trust-named employers of the workforce files. Name, region and ICB come from
  latest.organisations_supplement where it knows them, else from the publications: the A&E 'Parent Org'
  ('NHS ENGLAND MIDLANDS' -> Y60), the RTT / DM01 / KH03 / workforce region codes, the workforce ICS code.
  Workforce-only employers that are not trusts (ICBs as employers, CSUs, NHS England, PCTs) are not providers.
- successor_code: the last code of the chain old -> new through latest.trust_mergers (preferred) and
  latest.ods_successors; where ODS lists several successors the latest-dated wins, then an open organisation
  in this register, then the lower code. A chain that loops has no successor (NULL).
"""
from __future__ import annotations

import duckdb
import polars as pl

from .ingest import refresh_latest
from .sources import SOURCES

SCHEMA = "s1_current_state"
TABLE = f"{SCHEMA}.organisations"
ORG_TYPES = ("nhs_trust", "independent_or_other_provider", "icb", "region", "country")
MAX_CHAIN = 50

# Activity publications whose organisations are providers: (raw source, code column, name column or NULL,
# region expression or NULL, ICB expression or NULL, priority for names and regions: lower wins).
_PUBLICATIONS: tuple[tuple[str, str, str, str, str, int], ...] = (
    ("ae_monthly_official", "org_code", "org_name", "_region_from_parent(parent_org)", "null", 1),
    ("rtt_full_extract", "provider_org_code", "provider_org_name", "_region_of_icb26(provider_parent_org_code)",
     "provider_parent_org_code", 1),
    ("dm01_web_file", "provider_code", "provider_name", "region_code", "null", 1),
    ("kh03_web_file", "org_code", "org_name", "region_code", "null", 1),
    ("cancer_combined_workbook", "org_code", "org_name", "_region_from_name(region_name)", "null", 2),
    ("rtt_incomplete", "provider_code", "provider_name", "region_code", "null", 2),
    ("dm01_diagnostics", "provider_code", "provider_name", "region_code", "null", 2),
    ("beds_kh03", "org_code", "org_name", "region_code", "null", 2),
    ("cancer_cwt_crs_extract", "provider_code", "null", "null", "null", 4),
    ("rtt_long_waits", "org_code", "org_name", "null", "null", 3),
    ("ae_trust_monthly", "org_code", "null", "null", "null", 4),
    ("ae_attendances_2016_2019", "org_code", "null", "null", "null", 4),
    ("cancer_waiting_times", "provider_code", "null", "null", "null", 4),
    ("beds_ga_critical_care", "org_code", "null", "null", "null", 4),
    ("discharge_daily", "org_code", "null", "null", "null", 4),
)
# Workforce files describe employers: they lend names, regions and ICS codes, but only trust-named employers
# become providers from them alone.
_WORKFORCE: tuple[tuple[str, int], ...] = (("workforce_staff_group", 5), ("workforce_total", 6))
_TRUST_NAME = r"(?i)\b(nhs (foundation )?trust|care trust)\b"


def _code(expr: str) -> str:
    return f"nullif(upper(trim({expr})), '')"


ICBS_CHANGED = "2026-04-01"  # the ICB mergers of April 2026: the ICBs of today date from then
ICBS_2022 = "2022-07-01"  # ICBs replaced clinical commissioning groups


def _create_geography(con: duckdb.DuckDBPyConnection) -> None:
    """Temp tables _icb (the ICBs of today, April 2026, and the 42 of July 2022 to March 2026 as historical),
    _icb_today (each 2022 ICB's ICB of today) and _region (7 regions)."""
    # Today's ICBs: the 2026 ODS trusts file's ICB codes, named there or by the RTT extract's provider parents.
    con.execute(f"""
        create or replace temp table _icb26 as
        with t as (
            select {_code('icb_code_2026')} as c, icb_name_2026 as n, {_code('nhs_region_code')} as r
            from latest.ods_trusts_2026
            union all select {_code('high_level_health_geography')}, null, {_code('national_grouping')}
            from latest.ods_etr
            union all select {_code('provider_parent_org_code')}, provider_parent_name, null
            from latest.rtt_full_extract)
        select c as icb_code, any_value(n) filter (where n is not null) as icb_name,
               mode(r) filter (where r is not null) as region_code
        from t where c is not null group by c having any_value(n) filter (where n is not null) is not null""")
    con.execute(f"""
        create or replace temp table _icb22 as
        select {_code('icb_code')} as icb_code, any_value(icb_code) as published, any_value(icb_name) as icb_name,
               any_value(icb_ons_code) as icb_ons_code, any_value({_code('nhs_region_code')}) as region_code
        from latest.subicb_icb_region where icb_code is not null group by 1""")
    # A 2022 ICB's ICB of today: itself where its code lives on, else where most of its trusts sit now.
    con.execute(f"""
        create or replace temp table _icb_today as
        with moves as (
            select {_code('t25.icb_code')} as old, {_code('t26.icb_code_2026')} as new, count(*) as trusts
            from latest.ods_trusts_2025 t25 join latest.ods_trusts_2026 t26
              on {_code('t25.org_code')} = {_code('t26.org_code')}
            where {_code('t26.icb_code_2026')} in (select icb_code from _icb26) group by all)
        select i.icb_code as old,
               case when i.icb_code in (select icb_code from _icb26) then i.icb_code
                    else (select new from moves m where m.old = i.icb_code order by trusts desc, new limit 1)
               end as new
        from _icb22 i""")
    con.execute(f"""
        create or replace temp table _icb as
        select coalesce(n.icb_code, o.icb_code) as icb_code, coalesce(o.published, n.icb_code) as published,
               coalesce(n.icb_name, o.icb_name) as icb_name, o.icb_ons_code,
               coalesce(n.region_code, o.region_code) as region_code,
               case when o.icb_code is not null then DATE '{ICBS_2022}' else DATE '{ICBS_CHANGED}' end as valid_from,
               case when n.icb_code is null then DATE '{ICBS_CHANGED}' - 1 end as valid_to,
               case when n.icb_code is null then (select new from _icb_today t where t.old = o.icb_code) end
                   as replaced_by
        from _icb26 n full join _icb22 o using (icb_code)""")
    con.execute(f"""
        create or replace temp table _region as
        select {_code('nhs_region_code')} as region_code, any_value(nhs_region_code) as published,
               any_value(nhs_region_name) as region_name, any_value(nhs_region_ons_code) as region_ons_code
        from latest.subicb_icb_region where nhs_region_code is not null group by 1""")
    # 'NHS ENGLAND NORTH EAST AND YORKSHIRE' -> Y63: the A&E file names its regions, it does not code them.
    con.execute("""
        create or replace temp macro _region_from_parent(p) as
            (select region_code from _region where upper(trim(p)) = 'NHS ENGLAND ' || upper(region_name))""")
    # 'South East' -> Y59 (the cancer workbook names regions); an ICB of April 2026 (D7T5G) -> its trusts' region
    # in the ODS etr file of 2026.
    con.execute("""
        create or replace temp macro _region_from_name(p) as
            (select region_code from _region where upper(trim(p)) = upper(region_name))""")
    con.execute(f"""
        create or replace temp macro _region_of_icb26(c) as
            (select any_value({_code('national_grouping')}) from latest.ods_etr
             where {_code('high_level_health_geography')} = upper(trim(c)))""")


def _create_trusts(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table _trust: one row per ODS trust across the three etr snapshots."""
    icb = lambda e: f"case when {_code(e)} in (select icb_code from _icb) then {_code(e)} end"  # noqa: E731
    reg = lambda e: f"case when {_code(e)} in (select region_code from _region) then {_code(e)} end"  # noqa: E731
    con.execute(f"""
        create or replace temp table _trust as
        with t25 as (select {_code('org_code')} c, * from latest.ods_trusts_2025),
             t20 as (select {_code('org_code')} c, * from latest.ods_trusts_2020),
             t26 as (select {_code('org_code')} c, * from latest.ods_trusts_2026),
             etr as (select {_code('org_code')} c, * from latest.ods_etr),
             r21 as (select {_code('nhs_trust22_code')} c, * from latest.trust_region_2021),
             codes as (select c from t25 union select c from t20 union select c from t26 union select c from etr)
        select codes.c as org_code,
               coalesce(t25.org_code, t20.org_code, t26.org_code, etr.org_code) as org_code_published,
               coalesce(t25.org_name, t20.org_name, t26.org_name, etr.org_name) as org_name,
               coalesce({icb('t25.icb_code')}, {icb('t20.stp_code')}) as ods_icb,
               coalesce({icb('t26.icb_code_2026')}, {icb('etr.high_level_health_geography')}) as ods_icb_2026,
               coalesce({reg('t25.nhs_region_code')}, {reg('t20.nhs_region_code')}, {reg('t26.nhs_region_code')},
                        {reg('etr.national_grouping')}, {reg('r21.nhs_region21_nhs_code')}) as region_code,
               coalesce(t25.open_date, t20.open_date, t26.open_date, etr.open_date) as open_date,
               coalesce(t25.close_date, t26.close_date, etr.close_date, t20.close_date) as close_date,
               case when t25.c is not null then 'ods_trusts_2025' when t20.c is not null then 'ods_trusts_2020'
                    when t26.c is not null then 'ods_trusts_2026' else 'ods_etr' end as source
        from codes left join t25 using (c) left join t20 using (c) left join t26 using (c) left join etr using (c)
        left join r21 using (c)""")


def _create_sightings(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table _seen: each (code, source) sighting with the name, region and ICB that source gives it."""
    latest = lambda e: f"arg_max({e}, period_start) filter (where ({e}) is not null)"  # noqa: E731
    parts = []
    for src, code, name, region, icb, prio in _PUBLICATIONS:
        parts.append(f"""
            select {_code(code)} as org_code, '{src}' as seen_in, {prio} as prio, false as employer_only,
                   any_value({code}) as published, {latest(name)} as org_name, {latest(region)} as region_code,
                   {latest(icb)} as icb_code, max(period_start) as last_seen
            from latest.{src} where {_code(code)} is not null and {_code(code)} <> 'TOTAL' group by 1""")
    for src, prio in _WORKFORCE:
        parts.append(f"""
            select {_code('org_code')}, '{src}', {prio}, true, any_value(org_code), {latest('org_name')},
                   {latest(_code('region_code'))}, {latest(_code('ics_code'))}, max(period_start)
            from latest.{src} where {_code('org_code')} is not null group by 1""")
    parts.append(f"""
        select {_code('org_code')}, 'organisations_supplement', 0, false, any_value(org_code), any_value(org_name),
               any_value({_code('nhs_region_code')}), any_value({_code('icb_code')}), null::date
        from latest.organisations_supplement where {_code('org_code')} is not null group by 1""")
    con.execute("create or replace temp table _seen as " + " union all ".join(parts))


def _create_providers(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table _provider: codes seen in publications that are not ODS trusts, ICBs or regions."""
    con.execute(f"""
        create or replace temp table _provider as
        with s as (
            select * from _seen
            where org_code not in (select org_code from _trust) and org_code not in (select icb_code from _icb)
              and org_code not in (select region_code from _region) and org_code <> 'ENGLAND'),
        supp as (select {_code('org_code')} as org_code, any_value(org_type) as org_type
                 from latest.organisations_supplement group by 1)
        select s.org_code,
               first(published order by prio) as org_code_published,
               first(org_name order by prio, last_seen desc nulls last) filter (where org_name is not null) as org_name,
               first(region_code order by prio, last_seen desc nulls last)
                   filter (where region_code in (select region_code from _region)) as region_code,
               first(icb_code order by prio, last_seen desc nulls last)
                   filter (where icb_code in (select icb_code from _icb)) as icb_code,
               any_value(supp.org_type) as supplement_type,
               bool_and(employer_only) as employer_only,
               first(seen_in order by prio) as source
        from s left join supp using (org_code)
        group by s.org_code""")
    # Workforce-only employers are kept only when they are trusts (care trusts included).
    con.execute(f"""
        delete from _provider where employer_only and supplement_type is null
            and not regexp_matches(coalesce(org_name, ''), '{_TRUST_NAME}')""")


def _seen_in(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""
        create or replace temp table _seen_list as
        select org_code, string_agg(seen_in, ', ' order by seen_in) as seen_in from _seen group by 1""")


def _create_register(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table _org: the register without successors. A provider's parent ICB is its ICB of today (a 2022
    code is carried to the ICB that replaced it), so ICB figures are restated to today's boundaries all the way
    back; its 2022 ICB is kept beside it."""
    con.execute("""create or replace temp macro _today(c) as
                   coalesce((select max(new) from _icb_today where old = c), c)""")
    con.execute("""create or replace temp macro _past(c) as
                   case when c in (select icb_code from _icb22) then c end""")
    con.execute(f"""
        create or replace temp table _org as
        select t.org_code, t.org_code_published, t.org_name, 'nhs_trust' as org_type,
               coalesce(t.ods_icb_2026, _today(t.ods_icb), _today(p_icb.icb_code)) as parent_icb_code,
               t.region_code, t.open_date, t.close_date, null::varchar as ons_code, t.source, false as provisional,
               coalesce(_past(t.ods_icb), _past(p_icb.icb_code)) as parent_icb_code_2022,
               t.open_date as valid_from, t.close_date as valid_to, null::varchar as replaced_by
        from _trust t
        left join (select org_code, first(icb_code order by prio, last_seen desc nulls last) as icb_code
                   from _seen where icb_code in (select icb_code from _icb) group by 1) p_icb using (org_code)
        union all
        select org_code, org_code_published, org_name,
               case when lower(coalesce(supplement_type, '')) similar to '.*(nhs.?trust|care.?trust).*'
                         or (supplement_type is null and regexp_matches(coalesce(org_name, ''), '{_TRUST_NAME}'))
                    then 'nhs_trust' else 'independent_or_other_provider' end,
               _today(icb_code), region_code, null::date, null::date, null, source, supplement_type is null,
               _past(icb_code), null::date, null::date, null
        from _provider
        union all
        select icb_code, published, icb_name, 'icb', null, region_code, null, null, icb_ons_code,
               case when valid_to is null and valid_from = DATE '{ICBS_CHANGED}' then 'ods_trusts_2026'
                    else 'subicb_icb_region' end, false, null, valid_from, valid_to, replaced_by
        from _icb
        union all
        select region_code, published, region_name, 'region', null, region_code, null, null, region_ons_code,
               'subicb_icb_region', false, null, null, null, null
        from _region
        union all
        select 'ENGLAND', 'TOTAL', 'England', 'country', null, null, null, null, 'E92000001', 'derived', false,
               null, null, null, null""")


def successor_edges(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One chosen successor per old code: trust_mergers first, then the latest ODS successor, preferring an open
    organisation of the register, then the lower code. Self-references are dropped."""
    return con.sql(f"""
        with e as (
            select {_code('trust_code_old')} as old_code, {_code('trust_code_new')} as new_code, from_date as d,
                   0 as src
            from latest.trust_mergers
            union all
            select {_code('old_code')}, {_code('new_code')}, date, 1 from latest.ods_successors)
        select old_code, new_code
        from e left join _org o on o.org_code = e.new_code
        where old_code is not null and new_code is not null and old_code <> new_code
        qualify row_number() over (
            partition by old_code
            order by src, d desc nulls last, (o.org_code is not null and o.close_date is null) desc, new_code) = 1
        """).pl()


def resolve_chains(edges: dict[str, str], codes: list[str], max_steps: int = MAX_CHAIN) -> dict[str, str | None]:
    """Final successor of each code by following edges; None when a code has no successor or its chain loops."""
    out: dict[str, str | None] = {}
    for code in codes:
        seen = {code}
        cur = code
        final: str | None = None
        for _ in range(max_steps):
            nxt = edges.get(cur)
            if nxt is None:
                final = cur if cur != code else None
                break
            if nxt in seen:  # a loop: no unambiguous successor
                final = None
                break
            seen.add(nxt)
            cur = nxt
        out[code] = final
    return out


def build_organisations(con: duckdb.DuckDBPyConnection) -> int:
    """Create or replace s1_current_state.organisations; return its row count."""
    con.execute(f"create schema if not exists {SCHEMA}")
    for spec in SOURCES:  # a source with no file yet still has its (empty) latest view
        refresh_latest(con, spec)
    _create_geography(con)
    _create_trusts(con)
    _create_sightings(con)
    _create_providers(con)
    _seen_in(con)
    _create_register(con)
    edges = successor_edges(con)
    edge_map = dict(zip(edges["old_code"].to_list(), edges["new_code"].to_list()))
    codes = [r[0] for r in con.execute("select org_code from _org").fetchall()]
    finals = resolve_chains(edge_map, codes)
    succ = pl.DataFrame({"org_code": list(finals), "successor_code": list(finals.values())},
                        schema={"org_code": pl.String, "successor_code": pl.String})
    con.register("_succ_frame", succ)
    con.execute(f"""
        create or replace table {TABLE} as
        select o.org_code, o.org_code_published, o.org_name, o.org_type, o.parent_icb_code, o.region_code,
               o.open_date, o.close_date, s.successor_code, o.ons_code, o.source, l.seen_in, o.provisional,
               o.parent_icb_code_2022, o.valid_from, o.valid_to, o.replaced_by
        from _org o left join _succ_frame s using (org_code) left join _seen_list l using (org_code)
        order by case o.org_type when 'country' then 0 when 'region' then 1 when 'icb' then 2 else 3 end, o.org_code""")
    con.unregister("_succ_frame")
    for t in ("_icb", "_icb22", "_icb26", "_icb_today", "_region", "_trust", "_seen", "_provider", "_seen_list",
              "_org"):
        con.execute(f"drop table if exists {t}")
    con.execute("drop macro if exists _today")
    con.execute("drop macro if exists _past")
    con.execute("drop macro if exists _region_from_parent")
    return con.execute(f"select count(*) from {TABLE}").fetchone()[0]
