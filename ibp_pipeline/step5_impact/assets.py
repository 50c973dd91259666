"""Step 5 "Modelling impacts" as Dagster assets: forecasts with intervals and their backtests, effects learned
from the data, the initiatives catalogue, the waiting-list stock-and-flow projection and the risk of missing
each standard. Thin wrappers: the methods live in the modules beside this file."""
import dagster as dg

from ..resources import Warehouse

S1 = lambda t: dg.AssetKey(["s1_current_state", t])  # noqa: E731
S2 = lambda t: dg.AssetKey(["s2_triple_aim", t])  # noqa: E731
S5 = lambda t: dg.AssetKey(["s5_impact", t])  # noqa: E731
STEP5 = dict(group_name="step5_impact", kinds={"duckdb"})


class ForecastConfig(dg.Config):
    horizon: int = 24  # months ahead


class RiskConfig(dg.Config):
    draws: int = 0  # 0 = IBP_DRAWS or 10,000
    seed: int = 20251123


@dg.asset(key=["s5_impact", "forecasts"], deps=[S1("metric_values"), S1("organisations")], **STEP5)
def forecasts(config: ForecastConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    """Every organisation x monthly metric forecast from its latest month, with 80% and 95% intervals."""
    from .forecast_tables import build_forecasts

    with warehouse.connect() as con:
        n = build_forecasts(con, horizon=config.horizon)
        models = dict(con.execute("select split_part(model, '(', 1), count(distinct (org_code, metric_id)) "
                                  "from s5_impact.forecasts group by 1").fetchall())
    return dg.MaterializeResult(metadata={"rows": n, "horizon": config.horizon,
                                          **{f"series_{k}": v for k, v in models.items()}})


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
