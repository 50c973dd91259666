"""The plan's tables in the warehouse (schema `plan`, served): every version of every plan copied from the plan
store, and the triangulation of each version."""
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


plan_assets = [versions, triangulation]
