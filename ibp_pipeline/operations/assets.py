"""The final step of every refresh: publish the served database."""


import dagster as dg

from .. import settings
from ..resources import Warehouse
from ..warehouse_tables import served_builders
from .postgres_publish import URL_ENV, publish_to_postgres
from .publish import publish

# the assets that build the served tables (warehouse_tables.py): publishing waits for every one of them
STEP_OUTPUTS = [dg.AssetKey(list(key)) for key in served_builders()]


@dg.asset(key=["serving", "published"], group_name="serving", kinds={"duckdb"},
          deps=[*STEP_OUTPUTS, dg.AssetKey(["dq", "data_docs"])])
def serving_database(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """data/serving.duckdb: the complete, checked copy that dashboards read, replaced atomically."""
    paths = warehouse.paths()
    with warehouse.connect() as con:
        counts = publish(con, paths.serving, context.run_id)
    context.log.info(f"published {len(counts)} tables to {paths.serving}")
    metadata = {"path": dg.MetadataValue.path(str(paths.serving)), "tables": len(counts), **counts}
    url = settings.get(URL_ENV)
    if url:  # and to PostgreSQL for a team's dashboards; host and database only, never secrets
        pg = publish_to_postgres(paths.serving, url, context.log.info)
        metadata |= {"postgres_target": f"{pg.target['host']}:{pg.target['port']}/{pg.target['database']}",
                     "postgres_tables": pg.tables, "postgres_rows": pg.rows, "postgres_seconds": pg.seconds}
    return dg.MaterializeResult(metadata=metadata)
