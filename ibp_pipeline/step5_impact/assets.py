"""Step 5 "Modelling impacts" as Dagster assets: forecasts with intervals and their backtests, effects learned
from the data, the initiatives catalogue, the waiting-list stock-and-flow projection and the risk of missing
each standard. Thin wrappers: the methods live in the modules beside this file."""
import os
import socket

import dagster as dg
import polars as pl

from ..resources import Warehouse
from ..simulation.fanout import FANOUT_CHUNKS, SIMULATION_CHUNKS, default_draws, drop_scratch, simulate_chunk

S1 = lambda t: dg.AssetKey(["s1_current_state", t])  # noqa: E731
S2 = lambda t: dg.AssetKey(["s2_triple_aim", t])  # noqa: E731
S5 = lambda t: dg.AssetKey(["s5_impact", t])  # noqa: E731
STEP5 = dict(group_name="s5_impact", kinds={"duckdb"})


class ReuseConfig(dg.Config):
    reuse: bool = True  # keep the rows of series unchanged since the last run (series_reuse.py); False refits all


class ForecastConfig(ReuseConfig):
    horizon: int = 24  # months ahead
    chunks: int = FANOUT_CHUNKS  # independent forecast steps the series are split into (the fan-out)


class RiskConfig(dg.Config):
    draws: int = 0  # 0 = IBP_DRAWS or 10,000
    seed: int = 20251123
    chunks: int = SIMULATION_CHUNKS  # independent simulation steps the organisations are split into (the fan-out)


@dg.op(out={"chunks": dg.DynamicOut(), "plan": dg.Out()}, ins={"upstream": dg.In(dg.Nothing)})
def plan_forecasts(context: dg.OpExecutionContext, config: ForecastConfig, warehouse: Warehouse):
    """Read every eligible series once (DuckDB has one writer; the chunk steps never open the warehouse), keep
    the series unchanged since the last run (series_reuse.py), and hand each chunk of the others on as its own
    output, so each chunk can run in another process or on another machine."""
    from .forecast_tables import forecast_params, forecast_reuse, load_series, split_series, subset_series

    with warehouse.connect() as con:
        series = load_series(con)
        plan = forecast_reuse(con, series, "forecasts", forecast_params(config.horizon), config.reuse)
    parts = split_series(subset_series(series, plan.changed_rows), config.chunks)
    context.log.info(f"{plan.summary()}; {len(plan.changed_rows)} to fit in {len(parts)} chunks of "
                     f"{[len(p) for p in parts]}")
    yield dg.Output(plan, "plan")
    for i, part in enumerate(parts):
        yield dg.DynamicOutput((part, config.horizon), output_name="chunks", mapping_key=f"chunk_{i}")


@dg.op
def forecast_chunk(context: dg.OpExecutionContext, chunk: tuple) -> pl.DataFrame:
    """Forecast one chunk of series: pure computation, no warehouse (forecast_tables.forecast_frame)."""
    from .forecast_tables import forecast_frame

    series, horizon = chunk
    frame = forecast_frame(series, horizon)
    context.add_output_metadata({"series": len(series), "rows": frame.height, "pid": os.getpid(),
                                 "host": socket.gethostname()})
    return frame


@dg.op(out=dg.Out(dg.Nothing))
def write_forecasts(context: dg.OpExecutionContext, plan, frames: list[pl.DataFrame],
                    warehouse: Warehouse) -> None:
    """One table from the chunks and the reused series, in one order whatever ran where
    (forecast_tables.write_forecasts)."""
    from .forecast_tables import write_forecasts as write

    with warehouse.connect() as con:
        n = write(con, plan, frames)
        models = con.execute("select split_part(model, '(', 1), count(distinct org_code || '|' || metric_id) "
                             "from s5_impact.forecasts group by 1 order by 1").fetchall()
        horizon = con.execute("select coalesce(max(horizon), 0) from s5_impact.forecasts").fetchone()[0]
    drop_scratch(context, "s5_impact__forecasts")
    context.add_output_metadata({"rows": n, "chunks": len(frames), "horizon": int(horizon),
                                 "series_reused": int(plan.reused.sum()),
                                 "series_fitted": len(plan.changed_rows),
                                 **{f"series_{k}": v for k, v in models}})


@dg.graph_asset(key=["s5_impact", "forecasts"], group_name="s5_impact", kinds={"duckdb"},
                ins={"metric_values": dg.AssetIn(S1("metric_values"), dagster_type=dg.Nothing),
                     "organisations": dg.AssetIn(S1("organisations"), dagster_type=dg.Nothing)})
def forecasts(metric_values, organisations):
    """Every organisation x monthly metric forecast from its latest month, with 80% and 95% intervals.

    A fan-out: plan (reads the series) -> forecast_chunk per chunk of organisations -> write. The same steps
    run in one process in `ibp run` and across Celery workers in the simulation_fanout job."""
    parts, plan = plan_forecasts(upstream=[metric_values, organisations])
    return write_forecasts(plan, parts.map(forecast_chunk).collect())


@dg.asset(key=["s5_impact", "forecast_accuracy"], deps=[S1("metric_values"), S1("organisations")], **STEP5)
def forecast_accuracy(config: ReuseConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    """Rolling-origin backtests per series: MAE, MASE and interval coverage, so readers know how far to trust it.
    Series unchanged since the last run keep their scores (series_reuse.py)."""
    from .forecast_tables import update_forecast_accuracy

    with warehouse.connect() as con:
        n, plan = update_forecast_accuracy(con, reuse=config.reuse)
        mase, c80, c95 = con.execute("select median(mase), avg(coverage80), avg(coverage95) "
                                     "from s5_impact.forecast_accuracy").fetchone()
    return dg.MaterializeResult(metadata={"series": n, "series_reused": int(plan.reused.sum()),
                                          "median_mase": round(mase or 0, 3),
                                          "coverage80": round(c80 or 0, 3), "coverage95": round(c95 or 0, 3)})


@dg.asset(key=["s5_impact", "effects"], deps=[S1("metric_values")], **STEP5)
def effects(warehouse: Warehouse) -> dg.MaterializeResult:
    """Relations learned from the data: occupancy vs A&E 4-hour (panel, trust and month effects) and driver
    importance (gradient boosting), with their uncertainty and fit."""
    from .effects import build_effects

    with warehouse.connect() as con:
        n = build_effects(con)
    return dg.MaterializeResult(metadata={"rows": n})


@dg.asset(key=["s5_impact", "initiatives"], deps=[S5("effects")], **STEP5)
def initiatives(warehouse: Warehouse) -> dg.MaterializeResult:
    """The initiatives catalogue (initiatives.yaml): cost, ramp-up and effect as an 80% interval."""
    from .initiatives import build_initiatives

    with warehouse.connect() as con:
        n = build_initiatives(con)
    return dg.MaterializeResult(metadata={"rows": n})


@dg.asset(key=["s5_impact", "waiting_list_projection"], deps=[S1("metric_values"), S1("organisations"),
                                                               dg.AssetKey(["raw", "rtt_icb_flows"]),
                                                               dg.AssetKey(["raw", "rtt_incomplete"]),
                                                               dg.AssetKey(["raw", "rtt_full_extract"])], **STEP5)
def waiting_list_projection(warehouse: Warehouse) -> dg.MaterializeResult:
    """Stock and flow: list next month = list + clock starts - clock stops - removals, with and without +5% stops."""
    from .waiting_list_flow import build_waiting_list_projection

    with warehouse.connect() as con:
        n = build_waiting_list_projection(con, capacity_change=[0.0, 0.05])
    return dg.MaterializeResult(metadata={"rows": n})


@dg.op(out={"chunks": dg.DynamicOut(), "plan": dg.Out()}, ins={"upstream": dg.In(dg.Nothing)})
def plan_risk(context: dg.OpExecutionContext, config: RiskConfig, warehouse: Warehouse):
    """Read forecasts, targets and the learned relation once and cut the Monte Carlo run into chunks of
    organisations (risk.plan_risk); the chunks run as their own steps (simulation.fanout.simulate_chunk)."""
    from .risk import plan_risk as make_plan

    draws = config.draws or default_draws()
    with warehouse.connect() as con:
        plan = make_plan(con, draws=draws, seed=config.seed)
    parts = plan.chunks(config.chunks)
    context.log.info(f"{plan.prep.inputs.shape[0]} series, {draws:,} draws, in {len(parts)} chunks of "
                     f"{[len(p.rows) for p in parts]}")
    yield dg.Output(plan, "plan")
    for i, part in enumerate(parts):
        yield dg.DynamicOutput(part, output_name="chunks", mapping_key=f"chunk_{i}")


@dg.op(out=dg.Out(dg.Nothing))
def write_risk(context: dg.OpExecutionContext, plan, results: list, warehouse: Warehouse) -> None:
    """s5_impact.risk and risk_register from every chunk's summary (the same tables whatever ran where)."""
    from ..simulation.engine import merge_summaries
    from .risk import write_risk as write

    [summary] = merge_summaries(plan.prep.inputs.shape, results)
    risk_rows, register = plan.tables(summary)
    with warehouse.connect() as con:
        n = write(con, risk_rows, register)
    drop_scratch(context, "s5_impact__risk")
    context.add_output_metadata({"rows": n, "register_rows": register.height, "draws": plan.draws,
                                 "seed": plan.seed, "chunks": len(results)})


@dg.graph_asset(key=["s5_impact", "risk"], group_name="s5_impact", kinds={"duckdb"},
                ins={"forecasts": dg.AssetIn(S5("forecasts"), dagster_type=dg.Nothing),
                     "initiatives": dg.AssetIn(S5("initiatives"), dagster_type=dg.Nothing),
                     "effects": dg.AssetIn(S5("effects"), dagster_type=dg.Nothing),
                     "targets": dg.AssetIn(S2("targets"), dagster_type=dg.Nothing),
                     "standards": dg.AssetIn(S2("standards"), dagster_type=dg.Nothing)})
def risk(forecasts, initiatives, effects, targets, standards):
    """p10/p50/p90 and the probability of meeting each standard by month (Monte Carlo), and the risk register.

    A fan-out like the forecasts: plan -> simulate_chunk per chunk of organisations -> write; every series has
    its own random stream, so the split never changes a number."""
    chunks, plan = plan_risk(upstream=[forecasts, initiatives, effects, targets, standards])
    return write_risk(plan, chunks.map(simulate_chunk).collect())


step5_assets = [forecasts, forecast_accuracy, effects, initiatives, waiting_list_projection, risk]
