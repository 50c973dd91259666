"""Step 3 estimated cost of activity: activity counts x national average unit costs (National Cost Collection
2024/25, latest.national_cost_collection), for A&E attendances, emergency admissions and DM01 diagnostic tests.

Why: the IBP's cost-and-efficiency aim needs a sense of the money behind the activity; trust-level cost data are
not in the bundle, so activity is priced at the national average unit cost. Every figure is an ESTIMATE
(`is_estimate` is always true): it ignores local casemix, the market forces factor and local prices, and prices
every month at 2024/25 costs.

What the bundled schedule holds, and the choices made (checked on ncc_national_schedule_2024_25.csv):
- A&E: department 'Emergency Care' holds the emergency-medicine HRGs VB01Z-VB11Z and VB99Z (23.57 million
  attendances, GBP 6.60 billion, an activity-weighted average of GBP 280.17). The schedule in the bundle has no
  split by A&E department type (earlier schedules priced type 1 and types 2-4 separately), so the one
  activity-weighted average is applied to all attendances (all types, booked included, as in step 1's
  ae_attendances). This overstates the cost of trusts with many type 3 (UTC / minor injury) attendances: the
  cheapest HRG, VB11Z 'no investigation with no significant treatment', is GBP 126.76.
- Emergency admissions: departments 'Non-Elective Inpatient - Short Stay' and '- Long Stay', all HRGs: an
  activity-weighted average cost per non-elective spell (about GBP 2,712: 11.2 million spells). Applied to step
  1's ae_emergency_admissions (via A&E plus other emergency admissions).
- Elective admissions: departments 'Elective Inpatients' and 'Daycase', all HRGs: an activity-weighted average
  cost of an elective spell (about GBP 1,870: 9.0 million spells), applied to step 1's admitted RTT clock stops
  (rtt_clock_stops_admitted; the RTT extract gives them for its months only). The plan prices its admitted clock
  stops with it.
- Diagnostic tests: each DM01 test is mapped to the HRGs that price it (regular expressions on currency_code
  below), pooled over the departments where tests are done as outpatient, direct-access or day-case activity
  ('Diagnostic Imaging', 'Directly Accessed Diagnostic Services', 'Outpatient Procedures', 'Daycase',
  'Directly Accessed Audiology'), activity-weighted. Activity = DM01 waiting-list + planned + unscheduled tests.
  Unscheduled (inpatient) tests are really priced inside admitted spells, so this double-counts them if added to
  admission costs; barium enema is priced as contrast fluoroscopy (RD30Z-RD32Z), a proxy.

Table s3_resources.activity_costs, one row per organisation x month x activity:
org_code, org_name, org_level ('provider','icb','region','england'), period_start, financial_year ('2024/25'),
activity_type ('ae_attendances', 'emergency_admissions', 'elective_admissions', 'diagnostic_tests'),
activity_detail (the DM01 test, 'All DM01 tests' for the sum of the costed tests, or 'all'), activity,
unit_cost_gbp (for 'All DM01 tests' the implied average), estimated_cost_gbp, currency_codes, currency_desc, department_codes, ncc_activity (the
national activity behind the unit cost), price_base, is_estimate, method, source.
Aggregates: A&E and emergency admissions use step 1's ICB/region/England rows; diagnostics sum providers by ODS
parent ICB and region like step 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from ibp_pipeline.lib.duckdb_tables import replace_table, table_exists

from ibp_pipeline.step3_resources.resource_map import ORGS, SCHEMA, VALUES

TABLE = f"{SCHEMA}.activity_costs"
NCC = "latest.national_cost_collection"
PRICE_BASE = "National Cost Collection 2024/25 national schedule (activity-weighted national average)"
DEFAULT_SINCE = "2024-04-01"  # from the price year on: earlier months at 2024/25 prices would mislead
DIAGNOSTIC_DEPARTMENTS = ("Diagnostic Imaging", "Directly Accessed Diagnostic Services", "Outpatient Procedures",
                          "Daycase", "Directly Accessed Audiology")


@dataclass(frozen=True)
class CostMap:
    """Which NCC rows price an activity: departments and a regular expression on currency_code."""
    activity_type: str
    detail: str
    departments: tuple[str, ...]
    currency_regex: str
    method: str


AE = CostMap("ae_attendances", "all", ("Emergency Care",), r"^VB",
             "all A&E attendances (all department types, booked included) x the activity-weighted average unit "
             "cost of emergency medicine HRGs VB01Z-VB99Z; the schedule has no A&E type split, so type 3 "
             "attendances are overstated")
NEL = CostMap("emergency_admissions", "all",
              ("Non-Elective Inpatient - Short Stay", "Non-Elective Inpatient - Long Stay"), r".*",
              "emergency admissions x the activity-weighted average cost of a non-elective spell (all HRGs, short "
              "and long stay)")
ELECTIVE = CostMap("elective_admissions", "all", ("Elective Inpatients", "Daycase"), r".*",
                   "admitted RTT clock stops x the activity-weighted average cost of an elective spell (all HRGs, "
                   "inpatient and day case); a clock stop ends a pathway, some pathways have more than one spell")
_DX = "DM01 tests (waiting list + planned + unscheduled) x the activity-weighted unit cost of "
DIAGNOSTICS: tuple[CostMap, ...] = tuple(
    CostMap("diagnostic_tests", test, DIAGNOSTIC_DEPARTMENTS, regex, _DX + what) for test, regex, what in (
        ("Magnetic Resonance Imaging", r"^RD(0[1-9]|10)", "MRI HRGs RD01-RD10"),
        ("Computed Tomography", r"^RD(2[0-7]|6[01])", "CT HRGs RD20-RD27, RD60-RD61"),
        ("Non-obstetric Ultrasound", r"^RD4[0-8]", "ultrasound HRGs RD40-RD48"),
        ("Barium Enema", r"^RD3[0-2]", "contrast fluoroscopy HRGs RD30-RD32 (a proxy)"),
        ("DEXA Scan", r"^RD50", "DEXA HRG RD50Z"),
        ("Audiology - Audiology Assessments", r"^CA37", "audiometry or hearing assessment HRGs CA37"),
        ("Cardiology - Echocardiography", r"^(RD51|EY50)", "echocardiogram HRGs RD51 and EY50Z"),
        ("Cardiology - Electrophysiology", r"^EY32", "diagnostic electrophysiology HRGs EY32"),
        ("Neurophysiology - Peripheral Neurophysiology", r"^AA33", "EEG, EMG or nerve conduction HRGs AA33"),
        ("Respiratory physiology - Sleep Studies", r"^DZ50", "respiratory sleep study HRG DZ50Z"),
        ("Urodynamics - Pressures & Flows", r"^LB42", "dynamic studies of urinary tract HRGs LB42"),
        ("Colonoscopy", r"^FE3[0-2]", "colonoscopy HRGs FE30Z-FE32Z"),
        ("Flexi Sigmoidoscopy", r"^FE3[3-5]", "flexible sigmoidoscopy HRGs FE33Z-FE35Z"),
        ("Cystoscopy", r"^LB72", "diagnostic flexible cystoscopy HRGs LB72"),
        ("Gastroscopy", r"^FE2[0-2]", "upper GI endoscopy HRGs FE20Z-FE22Z"),
    ))
ALL_TESTS = "All DM01 tests"

OUTPUT_COLUMNS = ("org_code", "org_name", "org_level", "period_start", "financial_year", "activity_type",
                  "activity_detail", "activity", "unit_cost_gbp", "estimated_cost_gbp", "currency_codes",
                  "currency_desc", "department_codes", "ncc_activity", "price_base", "is_estimate", "method",
                  "source")


def unit_cost(ncc: pl.DataFrame, cost_map: CostMap) -> dict[str, object]:
    """Activity-weighted unit cost of the NCC rows a CostMap selects: sum(cost) / sum(activity) over rows with
    activity > 0 and a cost. Returns unit_cost_gbp (None when nothing matches), ncc_activity, currency_codes,
    currency_desc (a few examples) and department_codes."""
    rows = ncc.filter(pl.col("department_code").is_in(list(cost_map.departments))
                      & pl.col("currency_code").str.contains(cost_map.currency_regex)
                      & (pl.col("activity") > 0) & pl.col("cost").is_not_null())
    if rows.is_empty():
        return {"unit_cost_gbp": None, "ncc_activity": 0.0, "currency_codes": None, "currency_desc": None,
                "department_codes": ", ".join(cost_map.departments)}
    codes = sorted(rows["currency_code"].unique().to_list())
    descs = rows.sort("activity", descending=True)["currency_desc"].unique(maintain_order=True).head(3).to_list()
    return {"unit_cost_gbp": float(rows["cost"].sum() / rows["activity"].sum()),
            "ncc_activity": float(rows["activity"].sum()),
            "currency_codes": ", ".join(codes) if len(codes) <= 30 else
            f"{len(codes)} currency codes, {codes[0]} to {codes[-1]} (all in the departments)",
            "currency_desc": "; ".join(descs) + (f" (and {len(codes) - 3} more)" if len(codes) > 3 else ""),
            "department_codes": ", ".join(sorted(rows["department_code"].unique().to_list()))}


def price_activity(activity: pl.DataFrame, cost_map: CostMap, price: dict[str, object]) -> pl.DataFrame:
    """Activity rows (org_code, org_level, period_start, activity, source) priced at one unit cost."""
    uc = price["unit_cost_gbp"]
    return activity.with_columns(
        pl.lit(cost_map.activity_type).alias("activity_type"), pl.lit(cost_map.detail).alias("activity_detail"),
        pl.lit(uc, dtype=pl.Float64).alias("unit_cost_gbp"),
        (pl.col("activity") * pl.lit(uc, dtype=pl.Float64)).alias("estimated_cost_gbp"),
        pl.lit(price["currency_codes"], dtype=pl.String).alias("currency_codes"),
        pl.lit(price["currency_desc"], dtype=pl.String).alias("currency_desc"),
        pl.lit(price["department_codes"], dtype=pl.String).alias("department_codes"),
        pl.lit(price["ncc_activity"], dtype=pl.Float64).alias("ncc_activity"),
        pl.lit(cost_map.method).alias("method"))


def financial_year(period: pl.Expr) -> pl.Expr:
    """NHS financial year label ('2024/25') of a date: April to March."""
    start = pl.when(period.dt.month() >= 4).then(period.dt.year()).otherwise(period.dt.year() - 1)
    return (start.cast(pl.String) + "/" + ((start + 1) % 100).cast(pl.String).str.zfill(2))


def _metric_activity(con: duckdb.DuckDBPyConnection, metric_id: str, since: str) -> pl.DataFrame:
    return con.sql(f"""select org_code, org_level, period_start, value as activity,
                              '{VALUES}.{metric_id} (' || source || ')' as source
                       from {VALUES}
                       where metric_id = '{metric_id}' and period_grain = 'month' and period_start >= date '{since}'
                         and value is not null""").pl()


def _dm01_activity(con: duckdb.DuckDBPyConnection, since: str) -> pl.DataFrame:
    """Provider x test x month DM01 activity, plus ICB/region/England sums (providers by ODS parent ICB/region)."""
    con.sql(f"""create or replace temp table _s3_dm01 as
                select upper(trim(provider_code)) as org_code, period_start, diagnostic_test,
                       sum(coalesce(activity_waiting_list, 0) + coalesce(activity_planned, 0)
                           + coalesce(activity_unscheduled, 0)) as activity
                from latest.dm01_diagnostics
                where diagnostic_test <> 'Total' and period_start >= date '{since}'
                group by all""")
    return con.sql(f"""
        select org_code, 'provider' as org_level, period_start, diagnostic_test, activity from _s3_dm01
        union all
        select o.parent_icb_code, 'icb', d.period_start, d.diagnostic_test, sum(d.activity)
        from _s3_dm01 d join {ORGS} o using (org_code) where o.parent_icb_code is not null group by all
        union all
        select o.region_code, 'region', d.period_start, d.diagnostic_test, sum(d.activity)
        from _s3_dm01 d join {ORGS} o using (org_code) where o.region_code is not null group by all
        union all
        select 'ENGLAND', 'england', period_start, diagnostic_test, sum(activity) from _s3_dm01 group by all
    """).pl().with_columns(pl.lit("latest.dm01_diagnostics (activity_waiting_list + activity_planned + "
                                  "activity_unscheduled)").alias("source"))


def build_activity_costs(con: duckdb.DuckDBPyConnection, since: str = DEFAULT_SINCE) -> int:
    """Create s3_resources.activity_costs (see the module docstring); return its row count. Needs
    latest.national_cost_collection, s1_current_state.metric_values and organisations; diagnostics need
    latest.dm01_diagnostics. `since`: first month priced."""
    for t in (NCC, VALUES, ORGS):
        if not table_exists(con, t):
            raise RuntimeError(f"{t} is missing: load the raw data and build step 1 first")
    ncc = con.sql(f"select department_code, currency_code, currency_desc, activity, cost from {NCC}").pl()
    frames = []
    for cost_map, metric_id in ((AE, "ae_attendances"), (NEL, "ae_emergency_admissions"),
                                (ELECTIVE, "rtt_clock_stops_admitted")):
        frames.append(price_activity(_metric_activity(con, metric_id, since), cost_map, unit_cost(ncc, cost_map)))
    if table_exists(con, "latest.dm01_diagnostics"):
        dx = _dm01_activity(con, since)
        priced = []
        for cost_map in DIAGNOSTICS:
            part = dx.filter(pl.col("diagnostic_test") == cost_map.detail).drop("diagnostic_test")
            priced.append(price_activity(part, cost_map, unit_cost(ncc, cost_map)))
        tests = pl.concat(priced)
        frames.append(tests)
        costed = tests.filter(pl.col("unit_cost_gbp").is_not_null())
        total = (costed.group_by(["org_code", "org_level", "period_start"])
                 .agg(pl.col("activity").sum(), pl.col("estimated_cost_gbp").sum(),
                      pl.len().alias("tests_costed"), pl.col("source").first())
                 .with_columns(pl.lit("diagnostic_tests").alias("activity_type"),
                               pl.lit(ALL_TESTS).alias("activity_detail"),
                               (pl.col("estimated_cost_gbp") / pl.col("activity")).alias("unit_cost_gbp"),
                               pl.lit(None, dtype=pl.String).alias("currency_codes"),
                               pl.lit(None, dtype=pl.String).alias("currency_desc"),
                               pl.lit(", ".join(DIAGNOSTIC_DEPARTMENTS)).alias("department_codes"),
                               pl.lit(None, dtype=pl.Float64).alias("ncc_activity"),
                               ("sum over the " + pl.col("tests_costed").cast(pl.String) + " DM01 tests priced "
                                "individually (see their rows); unit cost = cost / activity").alias("method"))
                 .drop("tests_costed"))
        frames.append(total.select(frames[-1].columns))
        con.sql("drop table if exists _s3_dm01")
    out = pl.concat([f.select(frames[0].columns) for f in frames], how="vertical")
    names = con.sql(f"select org_code, org_name from {ORGS}").pl().unique(subset=["org_code"], keep="first")
    out = (out.join(names, on="org_code", how="left")
           .with_columns(financial_year(pl.col("period_start")).alias("financial_year"),
                         pl.lit(PRICE_BASE).alias("price_base"), pl.lit(True).alias("is_estimate"))
           .select(OUTPUT_COLUMNS)
           .sort(["org_level", "org_code", "activity_type", "activity_detail", "period_start"]))
    replace_table(con, *TABLE.split("."), out)
    return con.sql(f"select count(*) from {TABLE}").fetchone()[0]
