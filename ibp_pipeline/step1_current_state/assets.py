"""Step 1 "Where are we now" as Dagster assets: thin wrappers around the loaders and SQL builders.

One asset per published source (raw.<source>, with its GX suite as a blocking asset check), then the
step-1 tables leaders see: organisations, metric_catalogue, metric_values and source_conflicts.
"""

import dagster as dg

from ..resources import Warehouse
from .ingest import known_org_codes, load_source
from .sources import DATA_SOURCES, REFERENCE_SOURCES, SOURCES, SourceSpec

REFERENCE_KEYS = [dg.AssetKey(["raw", s.name]) for s in REFERENCE_SOURCES]
# Publications that name their organisations: a new code they name is a provisional organisation, known to the
# publications that give codes only (loaded after them).
NAMING_KEYS = [dg.AssetKey(["raw", s.name]) for s in DATA_SOURCES if s.org_name_column]
SOURCE_KEYS = [dg.AssetKey(["raw", s.name]) for s in SOURCES]
METRIC_SOURCES = ("ae_monthly_official", "ae_trust_monthly", "ae_attendances_2016_2019", "rtt_incomplete",
                  "rtt_long_waits", "dm01_diagnostics", "cancer_waiting_times", "workforce_staff_group",
                  "workforce_total", "beds_ga_critical_care", "beds_kh03", "discharge_daily", "virtual_wards")


def source_asset(spec: SourceSpec) -> dg.AssetsDefinition:
    """raw.<source>: every new file of the source archived, validated and appended; latest.<source> refreshed."""

    @dg.asset(
        key=["raw", spec.name],
        group_name="raw",  # groups are named as their key prefixes (the warehouse schema)
        kinds={"duckdb"},
        tags={"ibp/role": "reference" if spec.reference else "publication"},
        deps=[] if spec.reference else REFERENCE_KEYS + (
            NAMING_KEYS if spec.org_column and not spec.org_name_column else []),
        description=f"{spec.title}. Publisher: {spec.publisher}. Files: {', '.join(spec.patterns)}",
        metadata={"publisher": spec.publisher, "patterns": ", ".join(spec.patterns), "key": ", ".join(spec.key)},
    )
    def _load(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        paths = warehouse.paths()
        with warehouse.connect() as con:
            known = None if spec.reference else known_org_codes(con)
            summary = load_source(con, spec, paths, run_id=context.run_id, known_orgs=known, log=context.log.info)
            period = "min(period_start), max(period_start), count(distinct period_start)" if spec.period_column \
                else "null, null, 0"
            rows, pmin, pmax, periods = con.execute(
                f"select count(*), {period} from latest.{spec.name}").fetchone()
        return dg.MaterializeResult(metadata={
            "current_rows": rows,
            "periods": periods,
            "first_period": str(pmin) if pmin else "",
            "last_period": str(pmax) if pmax else "",
            "files_new": sum(f.status != "unchanged" for f in summary.files),
            "rows_loaded_this_run": summary.rows_loaded,
            "rows_quarantined_this_run": summary.rows_quarantined,
            "files_refused_this_run": sum(f.status == "refused" for f in summary.files),
        })

    return _load


source_assets = [source_asset(s) for s in SOURCES]


@dg.asset(key=["s1_current_state", "organisations"], group_name="s1_current_state", kinds={"duckdb"},
          deps=SOURCE_KEYS)
def organisations(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Every trust, other provider, ICB, region and England, with parents and merger successors."""
    from .organisations import build_organisations

    with warehouse.connect() as con:
        n = build_organisations(con)
        by_type = dict(con.execute(
            "select org_type, count(*) from s1_current_state.organisations group by 1 order by 1").fetchall())
    return dg.MaterializeResult(metadata={"rows": n, **{f"n_{k}": v for k, v in by_type.items()}})


@dg.asset(key=["s1_current_state", "metric_catalogue"], group_name="s1_current_state", kinds={"duckdb"})
def metric_catalogue(warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per metric: definition, unit, Triple Aim domain, direction, grain, source."""
    from .catalogue import build_metric_catalogue

    with warehouse.connect() as con:
        n = build_metric_catalogue(con)
    return dg.MaterializeResult(metadata={"rows": n})


@dg.asset(key=["s1_current_state", "metric_values"], group_name="s1_current_state", kinds={"duckdb"},
          deps=[dg.AssetKey(["s1_current_state", "organisations"]), dg.AssetKey(["s1_current_state", "metric_catalogue"])]
          + [dg.AssetKey(["raw", s]) for s in METRIC_SOURCES])
def metric_values(warehouse: Warehouse) -> dg.MaterializeResult:
    """Monthly (and quarterly) metrics for providers, aggregated to ICB, region and England."""
    from .metric_values import build_metric_values

    with warehouse.connect() as con:
        n = build_metric_values(con)
        levels = dict(con.execute(
            "select org_level, count(*) from s1_current_state.metric_values group by 1").fetchall())
        latest = con.execute("select max(period_start) from s1_current_state.metric_values").fetchone()[0]
    return dg.MaterializeResult(metadata={"rows": n, "latest_period": str(latest),
                                          **{f"rows_{k}": v for k, v in levels.items()}})


@dg.asset(key=["s1_current_state", "source_conflicts"], group_name="s1_current_state", kinds={"duckdb"},
          deps=[dg.AssetKey(["s1_current_state", "metric_values"])])
def source_conflicts(warehouse: Warehouse) -> dg.MaterializeResult:
    """Where two publications disagree beyond rounding for one organisation, month and metric."""
    from .metric_values import build_source_conflicts

    with warehouse.connect() as con:
        n = build_source_conflicts(con)
    return dg.MaterializeResult(metadata={"rows": n})


step1_assets = [*source_assets, organisations, metric_catalogue, metric_values, source_conflicts]
__all__ = ["step1_assets", "DATA_SOURCES"]
