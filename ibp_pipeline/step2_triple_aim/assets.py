"""Step 2 "Where do we want to be" as Dagster assets: standards and targets, peer groups and benchmarks, Triple
Aim scores and Making Data Count SPC. Thin wrappers: the maths lives in the modules beside this file."""
import dagster as dg

from ..resources import Warehouse

S1 = lambda t: dg.AssetKey(["s1_current_state", t])  # noqa: E731
S2 = lambda t: dg.AssetKey(["s2_triple_aim", t])  # noqa: E731
RAW = lambda t: dg.AssetKey(["raw", t])  # noqa: E731
STEP2 = dict(group_name="s2_triple_aim", kinds={"duckdb"})


def assurance_targets(con):
    """One target per series for SPC assurance: the primary target (the planning trajectory where one exists,
    else the standard) at the series' latest month, the same target metric_gaps measures the gap against."""
    return con.sql("""
        select t.org_code, t.metric_id, any_value(t.target_value) as target_value
        from s2_triple_aim.targets t
        join (select org_code, metric_id, max(period_start) as last_period from s1_current_state.metric_values
              where period_grain = 'month' group by all) l
          on t.org_code = l.org_code and t.metric_id = l.metric_id and t.period_start = l.last_period
        where t.is_primary
        group by all""").pl()


@dg.asset(key=["s2_triple_aim", "standards"], deps=[S1("metric_catalogue")], **STEP2)
def standards(warehouse: Warehouse) -> dg.MaterializeResult:
    """National standards and planning targets (standards.yaml: the 2025/26 targets as history and the Medium
    Term Planning Framework 2026/27 to 2028/29), plus any local ambitions file."""
    from .standards import load_local_ambitions, load_registry, build_standards

    registry = load_registry()
    local = load_local_ambitions(None, registry)
    with warehouse.connect() as con:
        n = build_standards(con, registry, local)
    return dg.MaterializeResult(metadata={"rows": n, "registry_version": str(registry.version),
                                          "local_ambitions": "yes" if local else "none"})


@dg.asset(key=["s2_triple_aim", "targets"], deps=[S2("standards"), S1("metric_values")], **STEP2)
def targets(warehouse: Warehouse) -> dg.MaterializeResult:
    """The target (flat standard or month-by-month trajectory) that applies to each organisation and month."""
    from .standards import load_local_ambitions, load_registry, build_targets

    registry = load_registry()
    with warehouse.connect() as con:
        n = build_targets(con, registry, load_local_ambitions(None, registry))
    return dg.MaterializeResult(metadata={"rows": n})


@dg.asset(key=["s2_triple_aim", "peer_groups"], deps=[S1("metric_values"), S1("organisations"),
                                                      RAW("trust_peer_finder"), RAW("staff_survey_2024"),
                                                      RAW("estates_eric_site")], **STEP2)
def peer_groups(warehouse: Warehouse) -> dg.MaterializeResult:
    """Trusts typed (acute band, specialist, children's, community, mental health, ambulance), then clustered on
    size and case mix within type, so each is compared only with trusts a leader would accept as peers."""
    from .peers import build_peer_groups

    with warehouse.connect() as con:
        n = build_peer_groups(con)
        groups = con.execute("select count(distinct peer_group_id) from s2_triple_aim.peer_groups").fetchone()[0]
    return dg.MaterializeResult(metadata={"rows": n, "groups": groups})


@dg.asset(key=["s2_triple_aim", "benchmarks"], deps=[S2("peer_groups"), S1("metric_values")], **STEP2)
def benchmarks(warehouse: Warehouse) -> dg.MaterializeResult:
    """Peer and national median and top quartile for every metric and period."""
    from .benchmarks import build_benchmarks

    with warehouse.connect() as con:
        n = build_benchmarks(con)
    return dg.MaterializeResult(metadata={"rows": n})


@dg.asset(key=["s2_triple_aim", "scores"], deps=[S2("benchmarks"), S2("peer_groups"), S1("metric_values"),
                                                 RAW("health_index_icb"), RAW("imd_icb"), RAW("trust_icb_catchment"),
                                                 RAW("national_cost_collection"), RAW("staff_survey_2024")], **STEP2)
def scores(warehouse: Warehouse) -> dg.MaterializeResult:
    """Triple Aim evaluation: measure scores 1-4 within comparison type, aim scores, ranks and the peer quartile."""
    from .scoring import build_scores

    with warehouse.connect() as con:
        n = build_scores(con)
    return dg.MaterializeResult(metadata={"rows": n})


@dg.asset(key=["s2_triple_aim", "spc"], deps=[S1("metric_values"), S2("targets")], **STEP2)
def spc(warehouse: Warehouse) -> dg.MaterializeResult:
    """Making Data Count XmR charts for every organisation x monthly metric, with variation and assurance; limits
    from each series' stated baseline periods (documents/spc_baselines.yaml, data/config/spc_rebase.yaml)."""
    from .spc import build_spc, load_baselines

    with warehouse.connect() as con:
        n = build_spc(con, assurance_targets(con), baselines=load_baselines(con))
        summary = dict(con.execute(
            "select variation_type, count(*) from s2_triple_aim.spc_summary group by 1").fetchall())
    return dg.MaterializeResult(metadata={"rows": n, **{f"series_{k}": v for k, v in summary.items() if k}})


step2_assets = [standards, targets, peer_groups, benchmarks, scores, spc]
