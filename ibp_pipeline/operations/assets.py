"""The final step of every refresh: publish the served database."""

import dagster as dg

from ..resources import Warehouse
from .publish import publish

SERVED = {
    "s1_current_state": ("organisations", "metric_catalogue", "metric_values", "source_conflicts"),
    "s2_triple_aim": ("standards", "targets", "peer_groups", "benchmarks", "scores", "spc"),
    "s3_resources": ("resource_map", "activity_costs"),
    "s4_gaps": ("metric_gaps", "needs"),
    "s5_impact": ("forecasts", "forecast_accuracy", "effects", "initiatives", "waiting_list_projection", "risk"),
    "s6_scenarios": ("results",),
}
STEP_OUTPUTS = [dg.AssetKey([schema, t]) for schema, tables in SERVED.items() for t in tables]


@dg.asset(key=["serving", "published"], group_name="step7_data_quality", kinds={"duckdb"},
          deps=[*STEP_OUTPUTS, dg.AssetKey(["dq", "data_docs"])])
def serving_database(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """data/serving.duckdb: the complete, checked copy that dashboards read, replaced atomically."""
    paths = warehouse.paths()
    with warehouse.connect() as con:
        counts = publish(con, paths.serving, context.run_id)
    context.log.info(f"published {len(counts)} tables to {paths.serving}")
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(paths.serving)), "tables": len(counts),
                                          **{k: v for k, v in counts.items()}})
