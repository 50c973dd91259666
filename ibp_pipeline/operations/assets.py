"""The final step of every refresh: publish the served database."""

import dagster as dg

from ..resources import Warehouse
from .publish import publish

STEP1_OUTPUTS = [dg.AssetKey(["s1_current_state", t]) for t in
                 ("organisations", "metric_catalogue", "metric_values", "source_conflicts")]


@dg.asset(key=["serving", "published"], group_name="step7_data_quality", kinds={"duckdb"},
          deps=[*STEP1_OUTPUTS, dg.AssetKey(["dq", "data_docs"])])
def serving_database(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """data/serving.duckdb: the complete, checked copy that dashboards read, replaced atomically."""
    paths = warehouse.paths()
    with warehouse.connect() as con:
        counts = publish(con, paths.serving, context.run_id)
    context.log.info(f"published {len(counts)} tables to {paths.serving}")
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(paths.serving)), "tables": len(counts),
                                          **{k: v for k, v in counts.items()}})
