"""Which steps a refresh rebuilds (operations/up_to_date.py): exactly those downstream of what changed.

The expected sets are walked here from Dagster's own asset graph (child keys), not from the module under test."""
from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from ibp_pipeline.config import PROJECT_ROOT, get_paths
from ibp_pipeline.definitions import defs
from ibp_pipeline.operations import up_to_date

DECEMBER = PROJECT_ROOT / "data/sources/ae_monthly_provider_official/Monthly-AE-December-2024.csv"
SCENARIO = PROJECT_ROOT / "ibp_pipeline/documents/scenarios/demand_surge.yaml"


def downstream(*keys: dg.AssetKey) -> set[dg.AssetKey]:
    """The keys and every asset below them in the definitions' graph."""
    graph = defs.resolve_asset_graph()
    seen, todo = set(keys), list(keys)
    while todo:
        for child in graph.get(todo.pop()).child_keys:
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def changed(a: up_to_date.Fingerprints, b: up_to_date.Fingerprints) -> set[dg.AssetKey]:
    return {k for k in a.by_key if a.by_key[k] != b.by_key.get(k)}


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("IBP_DATA_DIR", str(folder))
    monkeypatch.delenv("IBP_LOCAL_AMBITIONS", raising=False)
    get_paths().ensure()
    return folder


@pytest.fixture
def before(data: Path) -> up_to_date.Fingerprints:
    return up_to_date.fingerprints(defs, get_paths())


def test_nothing_changed_nothing_to_rebuild(data: Path, before: up_to_date.Fingerprints) -> None:
    again = up_to_date.fingerprints(defs, get_paths())
    assert again.by_key == before.by_key
    every = {n.key for n in defs.resolve_asset_graph().asset_nodes if n.is_materializable}
    assert set(before.by_key) == every
    assert up_to_date.stale(again, before.by_key) == []
    assert set(up_to_date.stale(again, {})) == every  # a warehouse with no record builds everything


def test_a_new_file_rebuilds_its_publication_and_everything_below(data: Path,
                                                                  before: up_to_date.Fingerprints) -> None:
    landed = data / "landing" / "Monthly-AE-January-2026.csv"
    landed.write_text(DECEMBER.read_text().replace("MSitAE-DECEMBER-2024", "MSitAE-JANUARY-2026"))
    after = up_to_date.fingerprints(defs, get_paths())
    assert changed(after, before) == downstream(dg.AssetKey(["raw", "ae_monthly_official"]))
    stale = up_to_date.stale(after, before.by_key)
    assert stale[0] == dg.AssetKey(["raw", "ae_monthly_official"])  # upstream first
    assert stale[-1] == up_to_date.SERVING


def test_an_analysts_scenario_rebuilds_only_the_scenarios_and_publishing(data: Path,
                                                                          before: up_to_date.Fingerprints) -> None:
    (data / "config" / "scenarios").mkdir(parents=True)
    shutil.copy(SCENARIO, data / "config" / "scenarios" / "my_surge.yaml")
    after = up_to_date.fingerprints(defs, get_paths())
    # the scenarios, the plan's budget (it sets each scenario's cost against the plan's surplus) and publishing
    assert changed(after, before) == {dg.AssetKey(["s6_scenarios", "results"]), dg.AssetKey(["plan", "budget"]),
                                      up_to_date.SERVING}


def test_local_ambitions_rebuild_the_standards_and_what_uses_them(data: Path,
                                                                   before: up_to_date.Fingerprints) -> None:
    (data / "config").mkdir(exist_ok=True)
    (data / "config" / "local_ambitions.yaml").write_text("ambitions: []\n")
    after = up_to_date.fingerprints(defs, get_paths())
    hit = changed(after, before)
    # everything below the standards rebuilds (and any step whose code imports the module that reads the file)
    assert downstream(dg.AssetKey(["s2_triple_aim", "standards"])) <= hit
    assert not any(k.path[0] in ("raw", "s1_current_state") for k in hit)


def test_a_code_change_rebuilds_what_imports_it(data: Path, before: up_to_date.Fingerprints, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Step 4's needs module edited: the assets that import it (step 4's, and the plan's, whose triangulation runs
    step 4's queueing on the plan's flows), and all below them, rebuild; nothing of steps 1-3 does. (The edit is
    made to a copy the module lookup is pointed at; the package is not touched.)"""
    real = up_to_date.discover()
    module = "ibp_pipeline.step4_gaps.needs"
    edited = tmp_path / "needs.py"
    edited.write_text(real[module].read_text() + "\n# an edit\n")
    monkeypatch.setattr(up_to_date, "discover", lambda: {**real, module: edited})
    after = up_to_date.fingerprints(defs, get_paths())
    hit = changed(after, before)
    assert dg.AssetKey(["s4_gaps", "needs"]) in hit and up_to_date.SERVING in hit
    assert dg.AssetKey(["plan", "triangulation"]) in hit
    assert hit == downstream(*(k for k in hit if k.path[0] in ("s4_gaps", "plan")))
    assert not any(k.path[0] in ("raw", "s1_current_state", "s2_triple_aim", "s3_resources") for k in hit)


def test_a_refresh_killed_part_way_makes_every_step_stale_until_one_publishes(
        data: Path, before: up_to_date.Fingerprints) -> None:
    """Fingerprints recorded, nothing changed: nothing to build. A killed run's marker (what the warehouse resource
    writes when a run starts rewriting tables, meta.refresh_in_progress): everything, saying why. A deleted served
    copy with nothing else new: the publish step alone."""
    import duckdb

    paths = get_paths()
    up_to_date.record(paths.warehouse, before, before.order, "earlier")
    paths.serving.write_bytes(b"")
    assert up_to_date.to_build(defs, paths)[1:] == ([], "")
    con = duckdb.connect(str(paths.warehouse))
    con.execute("create table meta.refresh_in_progress as select 'deadbeef-run'::varchar as run_id, "
                "now()::timestamp as started_at")
    con.close()
    _, todo, why = up_to_date.to_build(defs, paths)
    assert todo == before.order and "run deadbeef" in why and "stopped part-way" in why
    con = duckdb.connect(str(paths.warehouse))
    con.execute("delete from meta.refresh_in_progress")  # what a successful publish does
    con.close()
    paths.serving.unlink()
    assert up_to_date.to_build(defs, paths)[1] == [up_to_date.SERVING]
