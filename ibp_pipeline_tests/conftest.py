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
    result: dg.ExecuteInProcessResult
    paths: Paths
    warehouse: Warehouse


def run_refresh(data_dir: Path) -> PipelineRun:
    """Materialise every asset and check of the refresh job into data_dir, in-process, and record the fingerprints
    of a successful run, as `ibp run` does (so a later `ibp run` or `ibp ingest` on a copy rebuilds only what
    changed, as it would for a user)."""
    from ibp_pipeline.operations import up_to_date

    warehouse = Warehouse(data_dir=str(data_dir))
    defs = build_defs(warehouse)
    now = up_to_date.fingerprints(defs, warehouse.paths())
    result = defs.resolve_job_def("refresh").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    if result.success:
        up_to_date.record(warehouse.paths().warehouse, now, now.order, result.run_id)
    return PipelineRun(result, warehouse.paths(), warehouse)


@pytest.fixture(scope="session")
def bundled_run(tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    """The whole pipeline on the bundled data (the one end-to-end run the suite shares; read-only for tests).

    With 2,000 Monte Carlo draws, as the CLI tests use, instead of the product's 10,000: it saves about 75 s of a
    suite that should stay near 15 minutes, and no test depends on the draw count (the 10,000-draw default is
    what `ibp run` and the fresh-clone check exercise)."""
    saved = os.environ.get("IBP_DRAWS")
    os.environ["IBP_DRAWS"] = "2000"
    try:
        return run_refresh(tmp_path_factory.mktemp("bundled_run"))
    finally:
        if saved is None:
            os.environ.pop("IBP_DRAWS", None)
        else:
            os.environ["IBP_DRAWS"] = saved


@pytest.fixture
def copied_run(bundled_run: PipelineRun, tmp_path: Path) -> Path:
    """A private copy of the end-to-end run's data folder, for tests that change it."""
    dest = tmp_path / "data"
    shutil.copytree(bundled_run.paths.data, dest)
    return dest


@pytest.fixture(scope="session")
def real_warehouse(bundled_run: PipelineRun) -> Path:
    """The warehouse the end-to-end run built from the bundled data; tests copy it before writing to it."""
    assert bundled_run.result.success
    return bundled_run.paths.warehouse
