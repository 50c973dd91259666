"""Step 4 "Identifying gaps and needs" as Dagster assets."""
import dagster as dg

from ..resources import Warehouse

STEP4 = dict(group_name="s4_gaps", kinds={"duckdb"})


@dg.asset(key=["s4_gaps", "metric_gaps"], deps=[
    dg.AssetKey(["s2_triple_aim", "standards"]), dg.AssetKey(["s2_triple_aim", "targets"]),
    dg.AssetKey(["s2_triple_aim", "benchmarks"]), dg.AssetKey(["s2_triple_aim", "peer_groups"]),
    dg.AssetKey(["s1_current_state", "metric_values"]), dg.AssetKey(["s1_current_state", "organisations"])],
    **STEP4)
def metric_gaps(warehouse: Warehouse) -> dg.MaterializeResult:
    """The gap to each standard and trajectory, months to reach it at the current trend, and the peer gap."""
    from .metric_gaps import build_metric_gaps

    with warehouse.connect() as con:
        n = build_metric_gaps(con)
    return dg.MaterializeResult(metadata={"rows": n})


@dg.asset(key=["s4_gaps", "milestone_outcomes"], deps=[
    dg.AssetKey(["s2_triple_aim", "standards"]), dg.AssetKey(["s2_triple_aim", "targets"]),
    dg.AssetKey(["s1_current_state", "metric_values"]),
    dg.AssetKey(["s1_current_state", "organisations"])], **STEP4)
def milestone_outcomes(warehouse: Warehouse) -> dg.MaterializeResult:
    """Each organisation's milestones judged: did it meet March 2026, what is due in March 2027 (year-average
    milestones judged on the year's mean)."""
    from .milestones import build_milestone_outcomes

    with warehouse.connect() as con:
        n = build_milestone_outcomes(con)
        by_status = dict(con.execute("select status, count(*) from s4_gaps.milestone_outcomes group by 1").fetchall())
    return dg.MaterializeResult(metadata={"rows": n, **{f"n_{k.replace(' ', '_')}": v for k, v in by_status.items()}})


@dg.asset(key=["s4_gaps", "needs"], deps=[
    dg.AssetKey(["s3_resources", "resource_map"]), dg.AssetKey(["s2_triple_aim", "targets"]),
    dg.AssetKey(["s1_current_state", "metric_values"]), dg.AssetKey(["s1_current_state", "organisations"]),
    dg.AssetKey(["raw", "rtt_incomplete"]), dg.AssetKey(["raw", "rtt_full_extract"]),
    dg.AssetKey(["raw", "rtt_icb_flows"]), dg.AssetKey(["raw", "dm01_diagnostics"])], **STEP4)
def needs(warehouse: Warehouse) -> dg.MaterializeResult:
    """What closing each gap would take: waiting-list capacity, beds, A&E, tests, FTE and cost, with formulas."""
    from .needs import build_needs

    with warehouse.connect() as con:
        n = build_needs(con)
        by_type = dict(con.execute("select need_type, count(*) from s4_gaps.needs group by 1").fetchall())
    return dg.MaterializeResult(metadata={"rows": n, **{f"n_{k}": v for k, v in by_type.items()}})


step4_assets = [metric_gaps, milestone_outcomes, needs]
