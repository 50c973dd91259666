"""Dagster steps shared by the step-5/6 fan-outs (forecasts, risk, scenarios): plan -> one step per chunk of
organisations -> write. The chunk steps are pure computation and never open the warehouse (DuckDB has one
writer), so under the Celery executor any worker on any machine can take them (operations/celery_fanout.py).
Also the run defaults the fan-outs share: chunks, and the Monte Carlo draws (default_draws).

No `from __future__ import annotations` here: Dagster reads the context annotations of the ops at definition time.
"""
import os
import shutil
import socket
from pathlib import Path

import dagster as dg

from ibp_pipeline import settings

# Chunks by default. In `ibp run` (one process) chunks run one after another, so they only cost: forecasts in 4
# chunks cost about 2-3 s more CPU than one batch (the chunks pass through Dagster's storage); a Monte Carlo chunk
# repeats the driver draws of every setting (measured on the bundled data at 10,000 draws: scenarios 85 s of CPU
# in one pass, 103 s in 4 chunks), so those run as one chunk unless a Celery run on more workers asks for more
# (config `chunks` of the plan step; operations/celery_fanout.py). Within a chunk, blocks of series run on the
# machine's cores in threads (engine.run_settings, settings.compute_threads).
FANOUT_CHUNKS = 4  # forecasts
SIMULATION_CHUNKS = 1  # the risk model and the scenarios
DEFAULT_DRAWS = 10_000


def default_draws() -> int:
    """IBP_DRAWS lets a laptop or a quick check trade precision for time; 10,000 draws otherwise."""
    return int(settings.get("IBP_DRAWS") or DEFAULT_DRAWS)


@dg.op
def simulate_chunk(context: dg.OpExecutionContext, chunk) -> tuple:
    """One chunk of a Monte Carlo run (engine.SimulationChunk): its rows and one Summary per setting, on this
    machine's threads (settings.compute_threads)."""
    summaries = chunk.run(threads=settings.compute_threads())
    context.add_output_metadata({"series": len(chunk.rows), "settings": len(chunk.settings),
                                 "draws": chunk.draws, "threads": settings.compute_threads(), "pid": os.getpid(),
                                 "host": socket.gethostname()})
    return chunk.rows, summaries


def drop_scratch(context: dg.OpExecutionContext, asset_node: str) -> None:
    """Delete this run's chunk files of one fan-out from Dagster's storage once the warehouse holds the table
    (about 125 MB for the forecasts of a full run; a nightly refresh would otherwise keep every night's copy)."""
    scratch = Path(context.instance.storage_directory()) / context.run_id
    for path in scratch.glob(f"{asset_node}.*"):
        shutil.rmtree(path, ignore_errors=True)
