"""Step 5 "Modelling impacts" as Dagster assets: forecasts with intervals and their backtests, effects learned
from the data, the initiatives catalogue, the waiting-list stock-and-flow projection and the risk of missing
each standard. Thin wrappers: the methods live in the modules beside this file."""
import os
import shutil
import socket
from pathlib import Path

import dagster as dg
import polars as pl

from ..resources import Warehouse

S1 = lambda t: dg.AssetKey(["s1_current_state", t])  # noqa: E731
S2 = lambda t: dg.AssetKey(["s2_triple_aim", t])  # noqa: E731
S5 = lambda t: dg.AssetKey(["s5_impact", t])  # noqa: E731
STEP5 = dict(group_name="step5_impact", kinds={"duckdb"})
# Few chunks: in `ibp run` (one process) every chunk repeats the per-form set-up, and the steps pass their
# data through Dagster's storage (measured: about 2-3 s more CPU than one batch, on ~15 s). A Celery run
# (operations/celery_fanout.py) on more workers can ask for more.
FORECAST_CHUNKS = 4


class ForecastConfig(dg.Config):
    horizon: int = 24  # months ahead
    chunks: int = FORECAST_CHUNKS  # independent forecast steps the series are split into (the fan-out)


class RiskConfig(dg.Config):
    draws: int = 0  # 0 = IBP_DRAWS or 10,000
    seed: int = 20251123


@dg.op(out=dg.DynamicOut(), ins={"upstream": dg.In(dg.Nothing)})
def plan_forecasts(context: dg.OpExecutionContext, config: ForecastConfig, warehouse: Warehouse):
    """Read every eligible series once (DuckDB has one writer; the chunk steps never open the warehouse) and hand
    each chunk on as its own output, so each chunk can run in another process or on another machine."""
    from .forecast_tables import load_series, split_series

    with warehouse.connect() as con:
        series = load_series(con)
    parts = split_series(series, config.chunks)
    context.log.info(f"{len(series)} series in {len(parts)} chunks of {[len(p) for p in parts]}")
    for i, part in enumerate(parts):
        yield dg.DynamicOutput((part, config.horizon), mapping_key=f"chunk_{i}")


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
def write_forecasts(context: dg.OpExecutionContext, frames: list[pl.DataFrame], warehouse: Warehouse) -> None:
    """One table from the chunks, in one order whatever ran where (forecast_tables.combine_forecasts)."""
    from .forecast_tables import combine_forecasts, write_forecasts as write

    frame = combine_forecasts(frames)
    with warehouse.connect() as con:
        n = write(con, frame)
    models = (frame.unique(["org_code", "metric_id"]).group_by(pl.col("model").str.split("(").list.first())
              .len().rows())
    horizon = int(frame["horizon"].max() or 0)
    _drop_scratch(context)
    context.add_output_metadata({"rows": n, "chunks": len(frames), "horizon": horizon,
                                 **{f"series_{k}": v for k, v in sorted(models)}})


def _drop_scratch(context: dg.OpExecutionContext) -> None:
    """Delete this run's chunk files from Dagster's storage once the table holds them (about 125 MB a full run;
    a nightly refresh would otherwise keep every night's copy). The warehouse table is the asset."""
    scratch = Path(context.instance.storage_directory()) / context.run_id
    for path in scratch.glob("s5_impact__forecasts.*"):
        shutil.rmtree(path, ignore_errors=True)


@dg.graph_asset(key=["s5_impact", "forecasts"], group_name="step5_impact", kinds={"duckdb"},
                ins={"metric_values": dg.AssetIn(S1("metric_values"), dagster_type=dg.Nothing),
                     "organisations": dg.AssetIn(S1("organisations"), dagster_type=dg.Nothing)})
def forecasts(metric_values, organisations):
    """Every organisation x monthly metric forecast from its latest month, with 80% and 95% intervals.

    A fan-out: plan (reads the series) -> forecast_chunk per chunk of organisations -> write. The same steps
    run in one process in `ibp run` and across Celery workers in the forecast_fanout job."""
    parts = plan_forecasts(upstream=[metric_values, organisations])
    return write_forecasts(parts.map(forecast_chunk).collect())


@dg.asset(key=["s5_impact", "forecast_accuracy"], deps=[S1("metric_values"), S1("organisations")], **STEP5)
def forecast_accuracy(warehouse: Warehouse) -> dg.MaterializeResult:
    """Rolling-origin backtests per series: MAE, MASE and interval coverage, so readers know how far to trust it."""
    from .forecast_tables import build_forecast_accuracy

    with warehouse.connect() as con:
        n = build_forecast_accuracy(con)
        mase, c80, c95 = con.execute("select median(mase), avg(coverage80), avg(coverage95) "
                                     "from s5_impact.forecast_accuracy").fetchone()
    return dg.MaterializeResult(metadata={"series": n, "median_mase": round(mase or 0, 3),
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
                                                               dg.AssetKey(["raw", "rtt_incomplete"])], **STEP5)
def waiting_list_projection(warehouse: Warehouse) -> dg.MaterializeResult:
    """Stock and flow: list next month = list + clock starts - clock stops - removals, with and without +5% stops."""
    from .waiting_list_flow import build_waiting_list_projection

    with warehouse.connect() as con:
        n = build_waiting_list_projection(con, capacity_change=[0.0, 0.05])
    return dg.MaterializeResult(metadata={"rows": n})


@dg.asset(key=["s5_impact", "risk"], deps=[S5("forecasts"), S5("initiatives"), S5("effects"), S2("targets"),
                                          S2("standards")], **STEP5)
def risk(config: RiskConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    """p10/p50/p90 and the probability of meeting each standard by month (Monte Carlo), and the risk register."""
    from ..step6_scenarios.assets import default_draws
    from .risk import build_risk

    draws = config.draws or default_draws()
    with warehouse.connect() as con:
        n = build_risk(con, draws=draws, seed=config.seed)
        register = con.execute("select count(*) from s5_impact.risk_register").fetchone()[0]
    return dg.MaterializeResult(metadata={"rows": n, "register_rows": register, "draws": draws,
                                          "seed": config.seed})


step5_assets = [forecasts, forecast_accuracy, effects, initiatives, waiting_list_projection, risk]
