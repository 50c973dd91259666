"""The step-5/6 fan-out on Dagster's Celery executor (dagster-celery), for more cores or machines.

`ibp run` runs everything in one process. The forecasts, the risk model and the scenarios are each a graph of
steps (plan -> one step per chunk of organisations -> write; step5_impact/assets.py, simulation/fanout.py,
step6_scenarios/assets.py), so the job here runs the very same steps, with each chunk a Celery task that any
worker listening on the broker may take. Only the plan and write steps open the warehouse (one writer, DuckDB's
rule), one after the other; the chunk steps are pure computation and get their inputs from the plan step through
Dagster's filesystem IO manager, so every worker must see the same DAGSTER_HOME storage folder and the same
IBP_DATA_DIR (a shared disk when the workers are on other machines).

Workers: `dagster-celery worker start -A dagster_celery.app -y celery.yaml -n w1 -- --concurrency 1`, with
DAGSTER_HOME and IBP_DATA_DIR set as for the run; celery.yaml holds the `execution: config:` block that
`celery_run_config` writes (the broker, the result backend, and late acknowledgement so an idle worker takes
the next chunk rather than a busy one). See docs/scaling.md.
"""
from __future__ import annotations

import uuid
from typing import Any

import dagster as dg
from dagster_celery import celery_executor

from ..warehouse_tables import BY_NAME

FANOUT_JOB = "simulation_fanout"
# each fan-out by the table it writes; its asset key comes from the warehouse catalogue
FANOUT_ASSETS = {name: dg.AssetKey(list(BY_NAME[table].built_by or ())) for name, table in (
    ("forecasts", "s5_impact.forecasts"), ("risk", "s5_impact.risk"), ("scenarios", "s6_scenarios.results"))}
# the plan step of each fan-out graph (node: the asset key joined by "__", as Dagster names it; op: plan_<name>),
# which holds its config (chunks, and horizon or draws)
PLAN_STEPS = {name: ("__".join(key.path), f"plan_{name}") for name, key in FANOUT_ASSETS.items()}
# a worker takes one task at a time and acknowledges it when done, so queued chunks go to whichever is idle
WORKER_SETTINGS = {"task_acks_late": True, "worker_prefetch_multiplier": 1}

simulation_fanout_job = dg.define_asset_job(
    FANOUT_JOB, selection=dg.AssetSelection.assets(*FANOUT_ASSETS.values()), executor_def=celery_executor,
    description="s5_impact.forecasts, s5_impact.risk and s6_scenarios.results with each chunk of organisations a "
                "Celery task (needs a broker and workers: docs/scaling.md). Same steps and results as in `ibp run`.")


def celery_config(broker: str, backend: str | None = None) -> dict[str, Any]:
    """The celery_executor config block: the same for the run and for its workers (`-y` file)."""
    return {"broker": broker, "backend": backend or broker, "config_source": dict(WORKER_SETTINGS)}


def fanout_ops_config(chunks: int | None = None, horizon: int | None = None,
                      draws: int | None = None) -> dict[str, Any]:
    """Run config for the plan steps of the three fan-outs: chunks for all, horizon for the forecasts, draws
    for the risk model and the scenarios (empty: their defaults)."""
    wanted = {"forecasts": {"chunks": chunks, "horizon": horizon}, "risk": {"chunks": chunks, "draws": draws},
              "scenarios": {"chunks": chunks, "draws": draws}}
    out: dict[str, Any] = {}
    for name, values in wanted.items():
        config = {k: v for k, v in values.items() if v is not None}
        if config:
            node, op = PLAN_STEPS[name]
            out[node] = {"ops": {op: {"config": config}}}
    return out


def celery_run_config(broker: str, backend: str | None = None, chunks: int | None = None,
                      horizon: int | None = None, draws: int | None = None) -> dict[str, Any]:
    return {"execution": {"config": celery_config(broker, backend)},
            "ops": fanout_ops_config(chunks, horizon, draws)}


def fanout_job() -> dg.JobDefinition:
    """The job as workers rebuild it (dg.reconstructable needs a module-level function): the warehouse comes
    from the worker's IBP_DATA_DIR."""
    from ..definitions import build_defs

    return build_defs().resolve_job_def(FANOUT_JOB)


def run_on_celery(instance: dg.DagsterInstance, broker: str, backend: str | None = None,
                  chunks: int | None = None, horizon: int | None = None,
                  draws: int | None = None) -> dg.ExecutionResult:
    """Materialise the forecasts, the risk model and the scenarios through the broker's workers; needs a
    persistent instance (the workers read the run and the chunks' inputs from its storage).

    This process holds the warehouse's run lock for the whole run, as `ibp run` does (a nightly refresh waits
    for it, and it waits for one); the run carries the lock's token (resources.LOCK_OWNER_TAG), so its steps,
    in the workers, go ahead under it rather than each taking the lock in turn."""
    from ..config import get_paths
    from ..resources import LOCK_OWNER_TAG, refresh_lock

    token = uuid.uuid4().hex[:16]
    with refresh_lock(get_paths(), what=f"celery fan-out {FANOUT_JOB}, launcher {token}"):
        return dg.execute_job(dg.reconstructable(fanout_job), instance=instance,
                              run_config=celery_run_config(broker, backend, chunks, horizon, draws),
                              tags={LOCK_OWNER_TAG: token}, raise_on_error=False)


def workers_by_step(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """Which Celery worker (its -n name@host) executed each step of a run, from the run's engine events."""
    out: dict[str, str] = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        metadata = getattr(event.event_specific_data, "metadata", None) or {}
        worker = metadata.get("Celery worker")
        if worker is not None and event.step_key:
            out[event.step_key] = str(getattr(worker, "value", worker))
    return out
