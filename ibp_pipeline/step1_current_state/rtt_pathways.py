"""RTT pathways as later steps read them: trusts' weekly wait bands and real clock starts and stops, whichever
publication holds the month.

Why one place: the step-4 needs and the step-5 waiting-list flow model both need each trust's weekly wait bands
and, where NHS England published them, real clock starts and stops. The bands of a month come from the RTT
provider file (latest.rtt_incomplete, trusts only, to March 2025) or, for a month it lacks, from the RTT full
CSV extract (latest.rtt_full_extract, every provider: Part_2 incomplete pathways, treatment function C_999,
summed over commissioners). Clock starts (Part_3) and stops (Part_1A admitted + Part_1B non-admitted) exist only
in the extract and are read from s1_current_state.metric_values, where they are already summed per provider and
to today's ICBs, regions and England.
"""
from __future__ import annotations

import duckdb
import polars as pl

from ibp_pipeline.lib.duckdb_tables import table_exists

WEEK_COLUMNS: tuple[str, ...] = tuple(f"wk_gt_{i}_to_{i + 1}" for i in range(104)) + ("wk_104_plus",)
S1 = "s1_current_state"
STARTS = "rtt_clock_starts"
STOPS = ("rtt_clock_stops_admitted", "rtt_clock_stops_non_admitted")
LIST = "rtt_waiting_list"


def provider_bands_sql(con: duckdb.DuckDBPyConnection) -> str | None:
    """A SELECT of one row per provider and month: provider_code, period_start, total_incomplete, source and the
    105 weekly bands; the provider file's months first, the extract's for months the provider file lacks. None
    when neither table is there."""
    bands = ", ".join(WEEK_COLUMNS)
    parts = []
    if table_exists(con, "latest", "rtt_incomplete"):
        parts.append(f"""select upper(trim(provider_code)) as provider_code, period_start, total_incomplete,
                                'RTT provider file' as source, {bands}
                         from latest.rtt_incomplete where treatment_function_code = 'C_999'""")
    if table_exists(con, "latest", "rtt_full_extract"):
        sums = ", ".join(f"sum(coalesce({c}, 0)) as {c}" for c in WEEK_COLUMNS)
        older = ("and period_start not in (select distinct period_start from latest.rtt_incomplete)"
                 if parts else "")
        parts.append(f"""select upper(trim(provider_org_code)) as provider_code, period_start,
                                sum(total_all) as total_incomplete, 'RTT full CSV extract' as source, {sums}
                         from latest.rtt_full_extract
                         where rtt_part_type = 'Part_2' and treatment_function_code = 'C_999' {older}
                         group by all""")
    return " union all ".join(f"({p})" for p in parts) if parts else None


def real_flows(con: duckdb.DuckDBPyConnection, level: str | None = None) -> pl.DataFrame:
    """Months with published clock starts, clock stops and the waiting list for the same organisation:
    org_code, org_level, period_start, starts, stops (admitted + non-admitted: a provider with no admitted
    pathways has no admitted row), list_size. Empty without them."""
    schema = {"org_code": pl.String, "org_level": pl.String, "period_start": pl.Date, "starts": pl.Float64,
              "stops": pl.Float64, "list_size": pl.Float64}
    if not table_exists(con, S1, "metric_values"):
        return pl.DataFrame(schema=schema)
    where = f"and org_level = '{level}'" if level else ""
    frame = con.sql(f"""
        select org_code, org_level, period_start,
               sum(value) filter (where metric_id = '{STARTS}') as starts,
               sum(value) filter (where metric_id in {STOPS}) as stops,
               count(*) filter (where metric_id in {STOPS}) as stop_parts,
               sum(value) filter (where metric_id = '{LIST}') as list_size
        from {S1}.metric_values
        where metric_id in ('{STARTS}', '{LIST}', {', '.join(f"'{m}'" for m in STOPS)}) and value is not null
          {where}
        group by all""").pl()
    return (frame.filter(pl.col("starts").is_not_null() & pl.col("list_size").is_not_null()
                         & (pl.col("stop_parts") > 0))
            .drop("stop_parts").cast(schema).sort("org_level", "org_code", "period_start"))  # type: ignore[arg-type]
