"""The plan's tables in the warehouse (schema `plan`, served): every version of every plan copied from the plan
store, the triangulation of each version, each plan against its actuals, its Six Steps workforce plan, and the
headroom its budget leaves."""
import dagster as dg

from ..resources import Warehouse

PLAN = dict(group_name="plan", kinds={"duckdb"})


@dg.asset(key=["plan", "versions"], **PLAN)
def versions(warehouse: Warehouse) -> dg.MaterializeResult:
    """Every version of every plan (versions, lines, assumptions, capital) from the plan store, which no refresh
    rebuilds, with the plan of record (the latest approved version) marked."""
    from .tables import copy_store

    paths = warehouse.paths()
    with warehouse.connect() as con:
        counts = copy_store(con, paths.plan_store)
    return dg.MaterializeResult(metadata={"store": str(paths.plan_store), **counts})


@dg.asset(key=["plan", "triangulation"], deps=[dg.AssetKey(["plan", "versions"]),
                                               dg.AssetKey(["s2_triple_aim", "targets"])], **PLAN)
def triangulation(warehouse: Warehouse) -> dg.MaterializeResult:
    """Whether each plan version's activity, workforce and money agree, check by check, with its numbers."""
    from .tables import build_triangulation

    with warehouse.connect() as con:
        n, failed = build_triangulation(con)
    return dg.MaterializeResult(metadata={"rows": n, "failed": failed})


@dg.asset(key=["plan", "plan_vs_actual"], deps=[
    dg.AssetKey(["plan", "versions"]), dg.AssetKey(["s1_current_state", "metric_values"]),
    dg.AssetKey(["raw", "finance_ledger"]), dg.AssetKey(["s5_impact", "forecasts"])], **PLAN)
def plan_vs_actual(warehouse: Warehouse) -> dg.MaterializeResult:
    """Each plan's tracked version against the published actuals and the finance ledger: variance, year to date,
    forecast outturn, exceptions in plain English."""
    from .actuals import build_plan_vs_actual

    with warehouse.connect() as con:
        n, exceptions = build_plan_vs_actual(con)
    return dg.MaterializeResult(metadata={"rows": n, "exceptions": exceptions})


@dg.asset(key=["plan", "workforce_six_steps"], deps=[
    dg.AssetKey(["plan", "versions"]), dg.AssetKey(["s1_current_state", "metric_values"]),
    dg.AssetKey(["s2_triple_aim", "peer_groups"]), dg.AssetKey(["s3_resources", "activity_costs"])], **PLAN)
def workforce_six_steps(warehouse: Warehouse) -> dg.MaterializeResult:
    """Six Steps workforce planning for each plan's tracked version: service change, required workforce (own ratio
    and peers' range), availability, the gap and how the plan bridges it, and staff in post against plan."""
    from .workforce import build_workforce_six_steps

    with warehouse.connect() as con:
        n = build_workforce_six_steps(con)
    return dg.MaterializeResult(metadata={"rows": n})


@dg.asset(key=["plan", "budget"], deps=[
    dg.AssetKey(["plan", "versions"]), dg.AssetKey(["s4_gaps", "needs"]), dg.AssetKey(["s6_scenarios", "results"])],
    **PLAN)
def budget(warehouse: Warehouse) -> dg.MaterializeResult:
    """The plan's surplus each year as the headroom its budget leaves, against the cost of step 4's needs and of
    each scenario's initiatives."""
    from .budget import build_budget

    with warehouse.connect() as con:
        n = build_budget(con)
    return dg.MaterializeResult(metadata={"rows": n})


plan_assets = [versions, triangulation, plan_vs_actual, workforce_six_steps, budget]
