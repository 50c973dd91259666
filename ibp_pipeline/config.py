"""Where things live. Every path has a default under data/ and an environment variable to override it,
so tests, the nightly schedule and an analyst's machine can point the same code at different folders."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .settings import get_path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The configuration documents shipped with the code (standards.yaml, initiatives.yaml, scenarios/), in one place;
# an analyst's own (local ambitions, scenarios) go in data/config of the data folder.
DOCUMENTS = Path(__file__).resolve().parent / "documents"


@dataclass(frozen=True)
class Paths:
    data: Path
    sources: Path  # bundled publications (committed)
    landing: Path  # new drops from analysts
    reference: Path  # committed reference supplements
    archive: Path  # every loaded or refused file, by sha256
    warehouse: Path  # the pipeline's working database
    serving: Path  # the copy the dashboards read, replaced atomically
    reports: Path  # data-quality reports (GX Data Docs)
    dagster_home: Path

    @property
    def plan_store(self) -> Path:
        """Every version of every plan (`ibp plan load`): its own database, which no refresh or rebuild drops."""
        return get_path("IBP_PLAN_STORE", self.data / "plans.duckdb")

    @property
    def records_store(self) -> Path:
        """What people enter for the board (exception reports, risks): its own database, never rebuilt."""
        return get_path("IBP_RECORDS_STORE", self.data / "records.duckdb")

    def ensure(self) -> "Paths":
        for p in (self.landing, self.archive, self.reports, self.dagster_home, self.warehouse.parent):
            p.mkdir(parents=True, exist_ok=True)
        return self


def get_paths(data_dir: str | Path | None = None) -> Paths:
    """Read paths from the environment (IBP_DATA_DIR and friends) with defaults under the project's data/.

    An explicit data_dir wins over IBP_DATA_DIR; bundled sources and reference files stay the project's own
    unless IBP_SOURCES_DIR / IBP_REFERENCE_DIR say otherwise."""
    data = Path(data_dir) if data_dir else get_path("IBP_DATA_DIR", PROJECT_ROOT / "data")
    bundled = PROJECT_ROOT / "data"
    env = get_path
    return Paths(
        data=data,
        sources=env("IBP_SOURCES_DIR", bundled / "sources"),
        landing=env("IBP_LANDING_DIR", data / "landing"),
        reference=env("IBP_REFERENCE_DIR", bundled / "reference"),
        archive=env("IBP_ARCHIVE_DIR", data / "archive"),
        warehouse=env("IBP_WAREHOUSE", data / "warehouse.duckdb"),
        serving=env("IBP_SERVING", data / "serving.duckdb"),
        reports=env("IBP_REPORTS_DIR", data / "reports"),
        dagster_home=env("DAGSTER_HOME", data / "dagster_home"),
    )
