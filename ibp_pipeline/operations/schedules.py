"""When the pipeline runs by itself: nightly at 02:00 UK time, and whenever a file lands in data/landing/."""

import hashlib
import json

import dagster as dg
import duckdb

from ..resources import Warehouse

refresh_job = dg.define_asset_job(
    "refresh", selection=dg.AssetSelection.all(), executor_def=dg.in_process_executor,
    description="Load new publications, validate, rebuild every step and publish the served database.")

FINGERPRINTS_TAG = "ibp/fingerprints"  # the digest of the fingerprints a run was requested for
BUSY = "a refresh is running and holds the warehouse: looked again at the next tick"


def stale_request(context: dg.ScheduleEvaluationContext | dg.SensorEvaluationContext, warehouse: Warehouse,
                  tags: dict[str, str], run_key: str | None = None) -> dg.RunRequest | dg.SkipReason:
    """A run of the steps that are not up to date (operations/up_to_date.py), as `ibp run` would build, or a skip
    that says nothing is new. Tagged with the digest of the fingerprints seen, so its success can record them."""
    from .up_to_date import describe, to_build

    try:
        now, todo, why = to_build(context.repository_def.asset_graph, warehouse.paths())
    except duckdb.IOException:  # a run holds the warehouse (DuckDB's one writer): nothing can be read until it ends
        return dg.SkipReason(BUSY)
    if not todo:
        return dg.SkipReason(f"nothing new: all {len(now.order)} steps are up to date (the same files, code, "
                             f"documents and settings as their last run)")
    return dg.RunRequest(run_key=run_key, asset_selection=todo, tags={
        **tags, FINGERPRINTS_TAG: now.digest(),
        "ibp/rebuilding": (why or f"{len(todo)} of {len(now.order)} steps: {describe(todo, most=4)}")[:250]})


@dg.schedule(job=refresh_job, cron_schedule="0 2 * * *", execution_timezone="Europe/London",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Every night at 02:00 Europe/London (BST or GMT as the season has it): rebuilds the steps "
                         "whose files, code, documents or settings changed, and skips the night when none did.")
def nightly_refresh(context: dg.ScheduleEvaluationContext, warehouse: Warehouse):
    return stale_request(context, warehouse, {"ibp/trigger": "nightly"})


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
    if not new:
        return dg.SkipReason("no new files in the landing folder")
    run_key = hashlib.sha256(json.dumps(current, sort_keys=True).encode()).hexdigest()[:16]
    request = stale_request(context, warehouse, {"ibp/trigger": "landing", "ibp/files": ", ".join(new)[:250]},
                            run_key)
    if not (isinstance(request, dg.SkipReason) and request.skip_message == BUSY):
        context.update_cursor(json.dumps(current))  # a busy warehouse: the same files count as new next tick
    return request


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, monitored_jobs=[refresh_job],
                      default_status=dg.DefaultSensorStatus.RUNNING,
                      description="Records what a scheduled or landing refresh built, so the next one skips it.")
def fingerprints_after_success(context: dg.RunStatusSensorContext, warehouse: Warehouse) -> dg.SkipReason | None:
    """Record the fingerprints of the assets a successful run built, when they are still the ones it was
    requested for (its tag); otherwise record nothing, so the next refresh builds them again."""
    from .up_to_date import fingerprints, record

    run = context.dagster_run
    asked = run.tags.get(FINGERPRINTS_TAG)
    if not asked:
        return dg.SkipReason("a run started by hand: nothing recorded (the next refresh rebuilds what it built)")
    now = fingerprints(context.repository_def.asset_graph, warehouse.paths())
    if now.digest() != asked:
        return dg.SkipReason("files, code or settings changed while it ran: nothing recorded")
    built = list(run.asset_selection) if run.asset_selection is not None else now.order
    try:
        record(warehouse.paths().warehouse, now, built, run.run_id)
    except duckdb.IOException:  # the next queued run already holds the warehouse; rebuilding is safe, only slower
        return dg.SkipReason("the next run already holds the warehouse: nothing recorded")
    return None


@dg.run_failure_sensor(monitored_jobs=[refresh_job], default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Rebuilds the data-quality report after a failed refresh, so it shows why.")
def data_docs_after_failure(context: dg.RunFailureSensorContext, warehouse: Warehouse) -> None:
    from ..step1_current_state.quality.gx_suites import build_data_docs

    build_data_docs(warehouse.paths().reports)
