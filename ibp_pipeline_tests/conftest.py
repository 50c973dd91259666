"""Shared fixtures: one real end-to-end run of the refresh job on the bundled data, in a temporary folder."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from ibp_pipeline.config import PROJECT_ROOT, Paths
from ibp_pipeline.definitions import build_defs
from ibp_pipeline.resources import Warehouse

SHARED_NHS = PROJECT_ROOT.parent / "shared" / "data" / "nhs"
ETR_2026 = PROJECT_ROOT / "data" / "sources" / "ods_published" / "etr.csv"


def icbs_of_today() -> set[str]:
    """The ICBs of April 2026: the ICB codes of the bundled ODS trusts file (column 4), read here with csv."""
    import csv

    with ETR_2026.open(encoding="utf-8", newline="") as fh:
        return {r[3] for r in csv.reader(fh) if r[3]}
SHARED_CHECKS = PROJECT_ROOT.parent / "shared" / "checks"


@dataclass
class PipelineRun:
    result: dg.ExecuteInProcessResult | RecordedResult
    paths: Paths
    warehouse: Warehouse


def run_refresh(data_dir: Path, instance: dg.DagsterInstance | None = None) -> PipelineRun:
    """Materialise every asset and check of the refresh job into data_dir, in-process, and record the fingerprints
    of a successful run, as `ibp run` does (so a later `ibp run` or `ibp ingest` on a copy rebuilds only what
    changed, as it would for a user)."""
    from ibp_pipeline.operations import up_to_date

    warehouse = Warehouse(data_dir=str(data_dir))
    defs = build_defs(warehouse)
    now = up_to_date.fingerprints(defs, warehouse.paths())
    result = defs.resolve_job_def("refresh").execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=False)
    if result.success:
        up_to_date.record(warehouse.paths().warehouse, now, now.order, result.run_id)
    return PipelineRun(result, warehouse.paths(), warehouse)


class RecordedResult:
    """What tests read of the shared run's Dagster result (success, run id, check evaluations, materialisations),
    from its instance's event log: the run may have been made by the other xdist worker."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str) -> None:
        self.run_id = run_id
        self.success = instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
        self._events = [e.dagster_event for e in instance.all_logs(run_id) if e.dagster_event is not None]

    def get_asset_check_evaluations(self) -> list:
        return [e.event_specific_data for e in self._events
                if e.event_type_value == dg.DagsterEventType.ASSET_CHECK_EVALUATION.value]

    def get_asset_materialization_events(self) -> list:
        return [e for e in self._events if e.event_type_value == dg.DagsterEventType.ASSET_MATERIALIZATION.value]


@pytest.fixture(scope="session")
def bundled_run(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> PipelineRun:
    """The whole pipeline on the bundled data (the one end-to-end run the suite shares; read-only for tests).

    Made once per session, not once per xdist worker: the first worker to need it builds it under a file lock in
    the session's shared temporary folder, with a Dagster instance on disk; the other waits for it (meanwhile it
    runs the tests that need no run: pytest_collection_modifyitems below) and reads the same folder and event log.
    With 2,000 Monte Carlo draws, as the CLI tests use, instead of the product's 10,000: no test depends on the draw
    count (the 10,000-draw default is what `ibp run` and the fresh-clone check exercise)."""
    from filelock import FileLock

    worker = hasattr(request.config, "workerinput")  # an xdist worker: its temp folder is inside the session's
    shared = tmp_path_factory.getbasetemp().parent if worker else tmp_path_factory.getbasetemp()
    folder, done = shared / "bundled_run", shared / "bundled_run.id"
    (folder / "dagster_home").mkdir(parents=True, exist_ok=True)
    with FileLock(str(shared / "bundled_run.lock")):
        if not done.exists():
            saved = os.environ.get("IBP_DRAWS")
            os.environ["IBP_DRAWS"] = "2000"
            try:
                made = run_refresh(folder / "data", dg.DagsterInstance.local_temp(str(folder / "dagster_home")))
            finally:
                if saved is None:
                    os.environ.pop("IBP_DRAWS", None)
                else:
                    os.environ["IBP_DRAWS"] = saved
            done.write_text(made.result.run_id)
    warehouse = Warehouse(data_dir=str(folder / "data"))
    instance = dg.DagsterInstance.local_temp(str(folder / "dagster_home"))
    return PipelineRun(RecordedResult(instance, done.read_text()), warehouse.paths(), warehouse)


@pytest.fixture
def copied_run(bundled_run: PipelineRun, tmp_path: Path) -> Path:
    """A private copy of the end-to-end run's data folder, for tests that change it."""
    dest = tmp_path / "data"
    shutil.copytree(bundled_run.paths.data, dest)
    return dest


@pytest.fixture(scope="session")
def real_warehouse(bundled_run: PipelineRun) -> Path:
    """The warehouse the end-to-end run built from the bundled data; tests copy it before writing to it (or open
    it read-only)."""
    assert bundled_run.result.success
    return bundled_run.paths.warehouse


SHARED_RUN_FIXTURES = {"bundled_run", "copied_run", "real_warehouse", "served_db"}
# The two longest tests (4 to 5 minutes each on 2 busy cores), placed so that each worker gets one: the first test
# of the collection and the last.
FIRST, LAST = "test_killed_runs_concurrent_readers_a_queued_writer_and_idempotent_tables", \
    "test_ingest_a_new_month_and_a_bad_file_with_no_code_change"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need the shared run first, the others after: xdist's worksteal gives each worker a contiguous
    half, so one worker starts the run at once while the other works through tests that need none, then takes
    over queued tests (the run is made once: bundled_run). The two longest tests go first and last."""
    def order(item: pytest.Item) -> int:
        name = getattr(item, "originalname", item.name)
        if name in (FIRST, LAST):
            return 0 if name == FIRST else 3
        return 1 if SHARED_RUN_FIXTURES & set(getattr(item, "fixturenames", ())) else 2

    items.sort(key=order)
