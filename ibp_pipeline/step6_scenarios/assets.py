"""Step 6 "Scenario modelling" as a Dagster asset. By default the nightly refresh runs the shipped scenarios and
any the ICB keeps in data/config/scenarios/; an analyst runs one document from the Dagster UI by giving its
path as run config (`file`), or with `ibp scenario run FILE`. Results are keyed by scenario and run id, so one
scenario's run never overwrites another's."""
import os
from pathlib import Path

import dagster as dg

from ..resources import Warehouse

DEFAULT_DRAWS = 10_000


def default_draws() -> int:
    """IBP_DRAWS lets a laptop or a quick check trade precision for time; 10,000 draws otherwise."""
    return int(os.environ.get("IBP_DRAWS", DEFAULT_DRAWS))


class ScenarioRunConfig(dg.Config):
    file: str = ""  # one scenario document to run; empty = shipped + data/config/scenarios/*.yaml
    run_id: str = ""  # empty = v<document version>
    draws: int = 0  # 0 = IBP_DRAWS or 10,000
    seed: int = 20251123


def scenario_files(data_dir: Path) -> list[Path]:
    from .config import shipped_scenarios

    own = sorted((data_dir / "config" / "scenarios").glob("*.yaml")) if (data_dir / "config").is_dir() else []
    return [*shipped_scenarios(), *own]


@dg.asset(key=["s6_scenarios", "results"], group_name="step6_scenarios", kinds={"duckdb"},
          deps=[dg.AssetKey(["s5_impact", t]) for t in ("forecasts", "initiatives", "effects", "risk")]
          + [dg.AssetKey(["s2_triple_aim", "targets"]), dg.AssetKey(["s2_triple_aim", "standards"])])
def scenario_results(context: dg.AssetExecutionContext, config: ScenarioRunConfig,
                     warehouse: Warehouse) -> dg.MaterializeResult:
    """Per scenario, organisation, metric and month: p10/p50/p90, probability of meeting the target and cost;
    with the comparison against the baseline, the driver decomposition (waterfall) and sensitivities (tornado)."""
    from .tables import run_scenarios

    paths = warehouse.paths()
    files = [Path(config.file)] if config.file else scenario_files(paths.data)
    draws = config.draws or default_draws()
    with warehouse.connect() as con:
        summaries = run_scenarios(con, files, run_id=config.run_id or None, draws=draws, seed=config.seed)
    for s in summaries:
        context.log.info(s.line())
    return dg.MaterializeResult(metadata={"scenarios": ", ".join(s.scenario for s in summaries), "draws": draws,
                                          "files": ", ".join(f.name for f in files)})


step6_assets = [scenario_results]
