"""Great Expectations suites as blocking Dagster asset checks, one per source, with results kept in dq.

Why blocking: a check that means wrong numbers (types, negative counts, a part larger than its whole,
duplicate keys, unknown organisations, a TOTAL row that does not add up) stops everything downstream, so
wrong figures never reach the served database. Each outcome is also written to dq.check_results (one row per
check per run) for the data-quality page, and to the GX stores behind the Data Docs report.
"""

import dataclasses
import hashlib
import json
from datetime import date, datetime

import dagster as dg
import duckdb
import polars as pl

from ..resources import Warehouse
from .ingest import known_org_codes, refresh_latest
from .quality.gx_suites import CheckOutcome, SuiteResult, SuiteSpec, SumCheck, build_data_docs, run_suite
from . import freshness
from .sources import DATA_SOURCES, SOURCES, SourceSpec
from .validation import EARLIEST_PERIOD

KIND = {"text": "text", "code": "text", "ae_period": "text", "month_text": "text", "number": "number", "count": "number",
        "fraction": "number", "date": "date"}
CHECK_RESULTS_DDL = """
create schema if not exists dq;
create table if not exists dq.check_results (
    run_id varchar, checked_at timestamp, source varchar, check_name varchar, expectation varchar,
    passed boolean, blocking boolean, failing_rows bigint, details varchar, rows_validated bigint)
"""


def suite_spec(spec: SourceSpec, known_orgs: frozenset[str], today: date | None = None) -> SuiteSpec:
    """The GX suite for a source, derived from its registry entry so the two never drift apart."""
    today = today or date.today()
    columns = {c.name: KIND[c.kind] for c in spec.columns}
    non_negative = tuple(spec.count_columns)
    if _wide(spec):  # one expectation over the smallest count of each row, not one per column (see frame_sql)
        columns = {n: k for n, k in columns.items() if n not in _folded(spec)} | {LEAST_COUNT: "number"}
        non_negative = tuple(c for c in non_negative if c not in _folded(spec)) + (LEAST_COUNT,)
    key = spec.key
    sums: tuple[SumCheck, ...] = ()
    if spec.period_column:
        columns["period_start"] = "date"
    if spec.total_code and spec.count_columns:
        # Checked per load over history: every completely loaded file's TOTAL row equals its providers.
        key = (*spec.key, "_load_id")
        sums = (SumCheck("total_row_equals_sum_of_providers", ("_load_id",), "_is_total",
                         tuple(spec.count_columns)),)
    org_ok = known_orgs | {c for c in (spec.total_code, spec.unassigned_code) if c}
    return SuiteSpec(
        source=spec.name, columns=columns, key_columns=key, non_negative=non_negative,
        ratio_pairs=spec.ratio_pairs, org_column=spec.org_column if not spec.reference else None,
        known_orgs=frozenset(org_ok), period_column="period_start" if spec.period_column else None,
        period_min=EARLIEST_PERIOD if spec.period_column else None,
        period_max=date(today.year + (today.month == 12), today.month % 12 + 1, 1) if spec.period_column else None,
        sum_checks=sums)


WIDE_COUNTS = 24  # a source with more count columns than this (the RTT extract's 105 week bands) is folded
LEAST_COUNT = "smallest_count_of_the_row"


def _wide(spec: SourceSpec) -> bool:
    return len(spec.count_columns) > WIDE_COUNTS and not spec.total_code


def _folded(spec: SourceSpec) -> set[str]:
    """Count columns the suite reads through their row minimum: all but those of a ratio pair."""
    paired = {c for pair in spec.ratio_pairs for c in pair}
    return {c for c in spec.count_columns if c not in paired}


def frame_sql(spec: SourceSpec) -> str:
    """What the suite validates: the current rows (history per load for sources with a TOTAL row). A wide source's
    count columns are validated through one column, the smallest count of the row (NULLs ignored): the same
    verdict on 'no count below zero' with one expectation instead of a hundred (the RTT extract: 27 s to 2 s)."""
    if spec.total_code:
        return f"select *, {spec.org_column} = '{spec.total_code}' as _is_total from {spec.table}"
    if _wide(spec):
        folded = _folded(spec)
        keep = ", ".join(f'"{c}"' for c in [c.name for c in spec.columns if c.name not in folded]
                         + (["period_start"] if spec.period_column else []) + ["_load_id", "_row_number"])
        least = ", ".join(f'"{c}"' for c in spec.count_columns if c in folded)
        return f"select {keep}, least({least}) as {LEAST_COUNT} from latest.{spec.name}"
    return f"select * from latest.{spec.name}"


def frame_for(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> pl.DataFrame:
    refresh_latest(con, spec)
    return con.sql(frame_sql(spec)).pl()


FINGERPRINTS_DDL = """
create schema if not exists dq;
create table if not exists dq.suite_fingerprints (source varchar, fingerprint varchar, run_id varchar,
                                                  checked_at timestamp)
"""


def fingerprint(con: duckdb.DuckDBPyConnection, spec: SourceSpec, suite: SuiteSpec) -> str:
    """sha256 of the suite's parameters and of every row it would validate (an order-free sum of row hashes,
    computed inside DuckDB): equal fingerprints mean the suite would see exactly what it saw before."""
    rows, row_hash = con.sql(f"select count(*), coalesce(sum(hash(t)::hugeint), 0)::varchar "
                             f"from ({frame_sql(spec)}) t").fetchone()
    params = json.dumps(dataclasses.asdict(suite), sort_keys=True,
                        default=lambda o: sorted(o) if isinstance(o, (set, frozenset)) else str(o))
    return hashlib.sha256(f"{params}|{rows}|{row_hash}".encode()).hexdigest()


def record(con: duckdb.DuckDBPyConnection, result: SuiteResult, run_id: str, fp: str | None = None) -> None:
    con.execute(CHECK_RESULTS_DDL)
    now = datetime.now()
    con.executemany(
        "insert into dq.check_results values (?,?,?,?,?,?,?,?,?,?)",
        [[run_id, now, o.source, o.check, o.expectation, o.passed, o.blocking, o.failing_rows, o.details,
          result.rows_validated] for o in result.outcomes])
    if fp and result.outcomes and all(o.passed for o in result.outcomes):
        con.execute(FINGERPRINTS_DDL)
        con.execute("insert into dq.suite_fingerprints values (?,?,?,?)", [result.source, fp, run_id, now])


def passed_before(con: duckdb.DuckDBPyConnection, source: str, fp: str) -> tuple[str, SuiteResult] | None:
    """The newest run whose suite for this source passed on exactly these rows and parameters, with its outcomes."""
    con.execute(FINGERPRINTS_DDL)
    row = con.execute("select run_id from dq.suite_fingerprints where source = ? and fingerprint = ? "
                      "order by checked_at desc limit 1", [source, fp]).fetchone()
    if row is None:
        return None
    got = con.execute("select check_name, expectation, passed, blocking, failing_rows, details, rows_validated "
                      "from dq.check_results where run_id = ? and source = ? order by check_name",
                      [row[0], source]).fetchall()
    if not got or not all(r[2] for r in got):
        return None
    outcomes = [CheckOutcome(source, c, e, p, b, f, d) for c, e, p, b, f, d, _ in got]
    return row[0], SuiteResult(source, True, outcomes, got[0][6], 0.0)


def validate_source(con: duckdb.DuckDBPyConnection, spec: SourceSpec, run_id: str, docs_dir,
                    reuse: bool = True) -> SuiteResult:
    """Run the source's GX suite, or, when the rows and the suite are exactly those of an earlier passing run
    (same fingerprint), record that run's verdict again without re-validating: a new month then re-checks only
    the sources it changed (GX over all history was a quarter of a new-month refresh at England scale)."""
    refresh_latest(con, spec)
    known = known_org_codes(con)
    if spec.org_column and spec.org_column in [c[0] for c in con.sql(frame_sql(spec)).description]:
        # Same verdict, far smaller suite: only the reference codes this frame could match (GX serialises the set).
        codes = con.sql(f"select distinct {spec.org_column} from ({frame_sql(spec)}) t "
                        f"where {spec.org_column} is not null").fetchall()
        known = known & frozenset(c[0] for c in codes)
        if spec.org_name_column:  # provisional organisations: new codes the official publication names
            named = con.sql(f"select distinct {spec.org_column} from ({frame_sql(spec)}) t "
                            f"where {spec.org_column} is not null and nullif(trim({spec.org_name_column}), '') "
                            "is not null").fetchall()
            known = known | frozenset(c[0] for c in named)
    suite = suite_spec(spec, known)
    fp = fingerprint(con, spec, suite)
    earlier = passed_before(con, spec.name, fp) if reuse else None
    if earlier is not None:
        result = dataclasses.replace(earlier[1], reused_from=earlier[0])
        record(con, result, run_id, fp)
        return result
    result = run_suite(suite, con.sql(frame_sql(spec)).pl(), docs_dir=docs_dir)
    record(con, result, run_id, fp)
    return result


def gx_check(spec: SourceSpec) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=dg.AssetKey(["raw", spec.name]), name="great_expectations_suite", blocking=True,
                    description=f"GX suite for {spec.title}: columns and types, non-negative counts, "
                                "numerator <= denominator, known organisation codes, periods in range, "
                                "unique keys" + (", TOTAL row = sum of providers" if spec.total_code else ""))
    def _check(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
        paths = warehouse.paths()
        with warehouse.connect() as con:
            result = validate_source(con, spec, context.run.run_id, paths.reports)
        failed = [o for o in result.outcomes if not o.passed]
        blocking_failed = [o for o in failed if o.blocking]
        return dg.AssetCheckResult(
            passed=not failed,
            severity=dg.AssetCheckSeverity.ERROR if blocking_failed else dg.AssetCheckSeverity.WARN,
            description="; ".join(f"{o.check}: {o.details}" for o in failed)[:2000] or "all checks passed",
            metadata={"rows_validated": result.rows_validated, "checks": len(result.outcomes),
                      "failed": len(failed), "blocking_failed": len(blocking_failed),
                      "seconds": round(result.seconds, 2),
                      "reused_from_run": result.reused_from or "",  # same rows and suite as that passing run
                      })

    return _check


gx_checks = [gx_check(s) for s in SOURCES]


@dg.asset(key=["dq", "data_docs"], group_name="dq", kinds={"html"},
          deps=[dg.AssetKey(["raw", s.name]) for s in SOURCES])
def data_docs(warehouse: Warehouse) -> dg.MaterializeResult:
    """The Great Expectations Data Docs report (HTML) for the latest validation of every source."""
    index = build_data_docs(warehouse.paths().reports)
    return dg.MaterializeResult(metadata={"index": dg.MetadataValue.path(str(index))})


FRESHNESS_SOURCES = [spec for spec in DATA_SOURCES if freshness.allowance(spec) is not None]


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec("freshness", asset=dg.AssetKey(["raw", spec.name]), blocking=False,
                             description="the file for the month after the latest one loaded is not yet overdue "
                                         "(NHS England's publication calendar, or an allowance by grain)")
           for spec in FRESHNESS_SOURCES],
    name="source_freshness", can_subset=True)
def freshness_checks(context: dg.AssetCheckExecutionContext, warehouse: Warehouse):
    """Warn (never block) when a source's next file is overdue by NHS England's publication calendar: visible on
    each source in the Dagster UI, in the same words as the dashboards' Data quality page."""
    today = date.today()
    with warehouse.connect() as con:
        latest = dict(con.execute("select source, max(period_max) from meta.file_loads "
                                  "where status in ('loaded', 'partial') group by source").fetchall())
    selected = {key.asset_key for key in context.selected_asset_check_keys}
    for spec in FRESHNESS_SOURCES:
        key = dg.AssetKey(["raw", spec.name])
        if key not in selected:
            continue
        period = latest.get(spec.name)
        pub = freshness.publication_status(spec.name, period, today)
        text = (f"{spec.title}: no period loaded yet" if period is None else
                f"{spec.title}: latest {'month' if spec.period_grain == 'month' else 'period'} "
                f"{freshness.period_label(period, spec.period_grain)}. {pub.sentence}"
                + (" Look for the newer publication and load it (ibp ingest FILE)." if pub.status == "Stale" else ""))
        yield dg.AssetCheckResult(asset_key=key, check_name="freshness", passed=pub.status == "Up to date",
                                  severity=dg.AssetCheckSeverity.WARN, description=text,
                                  metadata={"latest_period": str(period) if period else "",
                                            "next_file_due": str(pub.due_date) if pub.due_date else "",
                                            "files_overdue": pub.overdue})
