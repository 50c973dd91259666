"""When the pipeline runs by itself: nightly at 02:00 UK time, and whenever a file lands in data/landing/."""

import hashlib
import json

import dagster as dg

from ..resources import Warehouse

refresh_job = dg.define_asset_job(
    "refresh", selection=dg.AssetSelection.all(), executor_def=dg.in_process_executor,
    description="Load new publications, validate, rebuild every step and publish the served database.")

nightly_refresh = dg.ScheduleDefinition(
    name="nightly_refresh", job=refresh_job, cron_schedule="0 2 * * *", execution_timezone="Europe/London",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every night at 02:00 Europe/London (BST or GMT as the season has it).")


def landing_state(warehouse: Warehouse) -> dict[str, str]:
    """name -> size:mtime of every finished file in the landing folder (dot-files are copies in progress)."""
    landing = warehouse.paths().landing
    return {p.name: f"{p.lstat().st_size}:{p.lstat().st_mtime_ns}" for p in sorted(landing.iterdir())
            if (p.is_file() or p.is_symlink()) and not p.name.startswith(".")}  # a link is refused by the run


@dg.sensor(job=refresh_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Starts a refresh when a new or changed file appears in data/landing/.")
def landing_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse):
    current = landing_state(warehouse)
    seen = json.loads(context.cursor) if context.cursor else {}
    new = sorted(n for n, sig in current.items() if seen.get(n) != sig)
    context.update_cursor(json.dumps(current))
    if not new:
        return dg.SkipReason("no new files in the landing folder")
    run_key = hashlib.sha256(json.dumps(current, sort_keys=True).encode()).hexdigest()[:16]
    return dg.RunRequest(run_key=run_key, tags={"ibp/trigger": "landing", "ibp/files": ", ".join(new)[:250]})


@dg.run_failure_sensor(monitored_jobs=[refresh_job], default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Rebuilds the data-quality report after a failed refresh, so it shows why.")
def data_docs_after_failure(context: dg.RunFailureSensorContext, warehouse: Warehouse) -> None:
    from ..step1_current_state.quality.gx_suites import build_data_docs

    build_data_docs(warehouse.paths().reports)
