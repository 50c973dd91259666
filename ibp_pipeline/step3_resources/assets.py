"""Step 3 "Aligning resources and capacity" as Dagster assets."""
import dagster as dg

from ..resources import Warehouse

STEP3 = dict(group_name="s3_resources", kinds={"duckdb"})


@dg.asset(key=["s3_resources", "resource_map"], deps=[
    dg.AssetKey(["s1_current_state", "metric_values"]), dg.AssetKey(["s2_triple_aim", "peer_groups"]),
    dg.AssetKey(["raw", "estates_eric_site"]), dg.AssetKey(["raw", "beds_ga_critical_care"]),
    dg.AssetKey(["raw", "population_icb_2020"]), dg.AssetKey(["raw", "trust_icb_catchment"])], **STEP3)
def resource_map(warehouse: Warehouse) -> dg.MaterializeResult:
    """Workforce, beds, discharge delays, virtual wards and estates against the demand they serve, with ratios."""
    from .resource_map import build_resource_map

    with warehouse.connect() as con:
        n = build_resource_map(con)
    return dg.MaterializeResult(metadata={"rows": n})


@dg.asset(key=["s3_resources", "activity_costs"], deps=[
    dg.AssetKey(["s1_current_state", "metric_values"]), dg.AssetKey(["raw", "national_cost_collection"]),
    dg.AssetKey(["raw", "dm01_diagnostics"])], **STEP3)
def activity_costs(warehouse: Warehouse) -> dg.MaterializeResult:
    """Estimated cost of activity in pounds at national unit costs (an estimate, documented per row)."""
    from .costs import build_activity_costs

    with warehouse.connect() as con:
        n = build_activity_costs(con)
    return dg.MaterializeResult(metadata={"rows": n})


step3_assets = [resource_map, activity_costs]
