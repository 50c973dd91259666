"""The Dagster code location: every asset, check, job, schedule and sensor of ibp_pipeline."""
import dagster as dg

from .operations.assets import serving_database
from .operations.celery_fanout import simulation_fanout_job
from .operations.schedules import (data_docs_after_failure, fingerprints_after_success, landing_sensor,
                                   nightly_refresh, refresh_job)
from .plan.assets import plan_assets
from .resources import Warehouse
from .step1_current_state.assets import step1_assets
from .step1_current_state.checks import data_docs, freshness_checks, gx_checks
from .step2_triple_aim.assets import step2_assets
from .step3_resources.assets import step3_assets
from .step4_gaps.assets import step4_assets
from .step5_impact.assets import step5_assets
from .step6_scenarios.assets import step6_assets


def build_defs(warehouse: Warehouse | None = None) -> dg.Definitions:
    """All definitions bound to one warehouse (tests pass a temporary one; the default reads IBP_DATA_DIR)."""
    return dg.Definitions(
        assets=[*step1_assets, *step2_assets, *step3_assets, *step4_assets, *step5_assets, *step6_assets, *plan_assets,
                data_docs, serving_database],
        asset_checks=[*gx_checks, freshness_checks],
        jobs=[refresh_job, simulation_fanout_job],
        schedules=[nightly_refresh],
        sensors=[landing_sensor, data_docs_after_failure, fingerprints_after_success],
        resources={"warehouse": warehouse or Warehouse()},
        executor=dg.in_process_executor,
    )


defs = build_defs()
