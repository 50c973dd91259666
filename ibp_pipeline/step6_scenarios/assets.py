"""Step 6 "Scenario modelling" as a Dagster asset. By default the nightly refresh runs the shipped scenarios and
any the ICB keeps in data/config/scenarios/; an analyst runs one document from the Dagster UI by giving its
path as run config (`file`), or with `ibp scenario run FILE`. Results are keyed by scenario and run id, so one
scenario's run never overwrites another's."""
import time
from dataclasses import replace
from pathlib import Path

import dagster as dg

from ..resources import Warehouse
from ..simulation.fanout import SIMULATION_CHUNKS, default_draws, drop_scratch, simulate_chunk


class ScenarioRunConfig(dg.Config):
    file: str = ""  # one scenario document to run; empty = shipped + data/config/scenarios/*.yaml
    run_id: str = ""  # empty = v<document version>
    draws: int = 0  # 0 = IBP_DRAWS or 10,000
    seed: int = 20251123
    chunks: int = SIMULATION_CHUNKS  # independent simulation steps the organisations are split into (the fan-out)


def scenario_files(data_dir: Path) -> list[Path]:
    from ..simulation.scenarios import shipped_scenarios

    own = sorted((data_dir / "config" / "scenarios").glob("*.yaml")) if (data_dir / "config").is_dir() else []
    return [*shipped_scenarios(), *own]


@dg.op(out={"chunks": dg.DynamicOut(), "plan": dg.Out()}, ins={"upstream": dg.In(dg.Nothing)})
def plan_scenarios(context: dg.OpExecutionContext, config: ScenarioRunConfig, warehouse: Warehouse):
    """Validate the scenario documents, build every setting they need from the warehouse once, and cut the
    Monte Carlo run into chunks of organisations (tables.plan_scenario_run); chunks run as fanout.simulate_chunk."""
    from .tables import plan_scenario_run

    started = time.time()
    files = [Path(config.file)] if config.file else scenario_files(warehouse.paths().data)
    draws = config.draws or default_draws()
    with warehouse.connect() as con:
        plan = plan_scenario_run(con, files, draws=draws, seed=config.seed)
    parts = plan.chunks(config.chunks)
    context.log.info(f"{len(plan.scenarios)} scenarios, {len(plan.settings)} settings, "
                     f"{plan.prep.inputs.shape[0]} series, {draws:,} draws, in {len(parts)} chunks of "
                     f"{[len(p.rows) for p in parts]}")
    # the write step needs the labels, not the settings (each chunk carries its own cut of them)
    yield dg.Output({"plan": replace(plan, settings=[]), "run_id": config.run_id or None, "started": started,
                     "files": [f.name for f in files]}, "plan")
    for i, part in enumerate(parts):
        yield dg.DynamicOutput(part, output_name="chunks", mapping_key=f"chunk_{i}")


@dg.op(out=dg.Out(dg.Nothing))
def write_scenarios(context: dg.OpExecutionContext, plan: dict, results: list, warehouse: Warehouse) -> None:
    """Each scenario's rows, keyed by scenario and run id, from every chunk's summaries."""
    from ..simulation.engine import merge_summaries
    from .tables import write_scenario_runs

    p = plan["plan"]
    summaries = merge_summaries(p.prep.inputs.shape, results)
    with warehouse.connect() as con:
        written = write_scenario_runs(con, p, summaries, plan["run_id"], plan["started"])
    for s in written:
        context.log.info(s.line())
    drop_scratch(context, "s6_scenarios__results")
    context.add_output_metadata({"scenarios": ", ".join(s.scenario for s in written), "draws": p.draws,
                                 "files": ", ".join(plan["files"]), "chunks": len(results)})


@dg.graph_asset(key=["s6_scenarios", "results"], group_name="s6_scenarios", kinds={"duckdb"},
                ins={name: dg.AssetIn(key, dagster_type=dg.Nothing) for name, key in (
                    ("forecasts", dg.AssetKey(["s5_impact", "forecasts"])),
                    ("initiatives", dg.AssetKey(["s5_impact", "initiatives"])),
                    ("effects", dg.AssetKey(["s5_impact", "effects"])),
                    ("risk", dg.AssetKey(["s5_impact", "risk"])),
                    ("targets", dg.AssetKey(["s2_triple_aim", "targets"])),
                    ("standards", dg.AssetKey(["s2_triple_aim", "standards"])))})
def scenario_results(forecasts, initiatives, effects, risk, targets, standards):
    """Per scenario, organisation, metric and month: p10/p50/p90, probability of meeting the target and cost;
    with the comparison against the baseline, the driver decomposition (waterfall) and sensitivities (tornado).

    A fan-out: plan -> simulate_chunk per chunk of organisations -> write (same numbers whatever the split)."""
    chunks, plan = plan_scenarios(upstream=[forecasts, initiatives, effects, risk, targets, standards])
    return write_scenarios(plan, chunks.map(simulate_chunk).collect())


step6_assets = [scenario_results]
