"""Every environment variable the pipeline reads, in one place, with its default and what it does.

Why one place: settings were read in thirteen files, so nobody could say what could be configured. Code reads a
setting with `get(name)` (or `get_path`), never os.environ directly (ibp_pipeline_tests/test_settings.py checks
it), and docs/configuration.md is written from SETTINGS (`python -m ibp_pipeline.settings > docs/configuration.md`;
the same test checks that the document is current). A variable set to an empty string counts as not set.

Variables named here but read by another program (Dagster reads IBP_DAGSTER_PG_* from dagster_postgres.yaml) are
listed so the document is whole; `reader` says who reads them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    name: str
    group: str
    default: str  # in words when it depends on another setting
    meaning: str
    reader: str = "ibp"


SETTINGS: tuple[Setting, ...] = (
    # ---- where things are ---------------------------------------------------------------------------------------
    Setting("IBP_DATA_DIR", "Folders and files", "data/ in the project",
            "The data folder: landing, archive, warehouse, serving copy, reports, users file and local config."),
    Setting("IBP_SOURCES_DIR", "Folders and files", "the project's data/sources",
            "The bundled publications loaded on every run."),
    Setting("IBP_REFERENCE_DIR", "Folders and files", "the project's data/reference",
            "The bundled reference files (organisation lookups and supplements)."),
    Setting("IBP_LANDING_DIR", "Folders and files", "landing in the data folder",
            "Where new publication files are dropped for the next run (watched by the landing sensor)."),
    Setting("IBP_ARCHIVE_DIR", "Folders and files", "archive in the data folder",
            "Every file ever loaded, kept by its sha256 (what `ibp rebuild` restores from)."),
    Setting("IBP_WAREHOUSE", "Folders and files", "warehouse.duckdb in the data folder",
            "The working DuckDB database (history of every load, quarantine, checks, every step's tables)."),
    Setting("IBP_SERVING", "Folders and files", "serving.duckdb in the data folder",
            "The checked copy the dashboards read, replaced atomically by each run."),
    Setting("IBP_REPORTS_DIR", "Folders and files", "reports in the data folder",
            "Data-quality reports (Great Expectations data docs) and board packs."),
    Setting("DAGSTER_HOME", "Folders and files", "dagster_home in the data folder",
            "Dagster's instance folder (runs, schedules); `ibp` sets it to the data folder's own."),
    Setting("IBP_USERS_FILE", "Folders and files", "config/users.yaml in the data folder",
            "Dashboard users and their bcrypt password hashes (`ibp user add`)."),
    Setting("IBP_PLAN_STORE", "Folders and files", "plans.duckdb in the data folder",
            "Every version of every plan loaded with `ibp plan load`, kept apart from the warehouse so no refresh "
            "or rebuild drops one; back it up with the data folder."),
    Setting("IBP_RECORDS_STORE", "Folders and files", "records.duckdb in the data folder",
            "What people enter for the board: exception reports and the risk register. No refresh or rebuild "
            "touches it; back it up with the data folder."),
    Setting("IBP_LOCAL_AMBITIONS", "Planning", "config/local_ambitions.yaml in the data folder",
            "The ICB's or trust's own ambitions, replacing national standards for the organisations they name."),
    # ---- planning ----------------------------------------------------------------------------------------------
    Setting("IBP_PLANNING_YEAR", "Planning", "the financial year of today's date",
            "The planning year whose targets are in force, e.g. 2027/28 to look at another year."),
    Setting("IBP_DRAWS", "Planning", "10000",
            "Monte Carlo draws of the risk model and the scenarios; fewer trade precision for time."),
    # ---- limits -----------------------------------------------------------------------------------------------
    Setting("IBP_MAX_FILE_MB", "Limits", "200",
            "The largest input file accepted, in megabytes once decompressed (refuses zip bombs and runaway files)."),
    Setting("IBP_LOCK_TIMEOUT", "Limits", "21600 (six hours)",
            "Seconds a run waits for another run's lock on the warehouse before giving up."),
    Setting("IBP_THREADS", "Limits", "the machine's cores, at most 4",
            "Threads of the numerical steps (forecast fitting, Monte Carlo); results do not depend on it."),
    # ---- dashboards and PostgreSQL --------------------------------------------------------------------------
    Setting("IBP_DASHBOARD_SOURCE", "Dashboards and PostgreSQL", "duckdb",
            "Where the dashboards read: duckdb (the serving file) or postgres (IBP_SERVING_POSTGRES_URL)."),
    Setting("IBP_SERVING_POSTGRES_URL", "Dashboards and PostgreSQL", "not set",
            "A PostgreSQL URL: each run also publishes the served tables there, and the dashboards can read it. "
            "Keep it in a secret store or the service environment, never in the repository."),
    Setting("IBP_DAGSTER_PG_HOST", "Dashboards and PostgreSQL", "not set (local SQLite)",
            "Dagster's run and schedule storage in PostgreSQL for a team; with it set, the four below are needed.",
            reader="ibp and Dagster (dagster_postgres.yaml)"),
    Setting("IBP_DAGSTER_PG_PORT", "Dashboards and PostgreSQL", "5432", "Port of that server.",
            reader="Dagster (dagster_postgres.yaml)"),
    Setting("IBP_DAGSTER_PG_DB", "Dashboards and PostgreSQL", "not set", "Database for Dagster's tables.",
            reader="Dagster (dagster_postgres.yaml)"),
    Setting("IBP_DAGSTER_PG_USER", "Dashboards and PostgreSQL", "not set", "Role that owns that database.",
            reader="Dagster (dagster_postgres.yaml)"),
    Setting("IBP_DAGSTER_PG_PASSWORD", "Dashboards and PostgreSQL", "not set",
            "That role's password, from a secret store or the service environment.",
            reader="Dagster (dagster_postgres.yaml)"),
    # ---- one command ----------------------------------------------------------------------------------------
    Setting("IBP_NEW_PASSWORD", "Commands", "not set (asked for)",
            "`ibp user add` takes the new user's password from here instead of asking (for scripted set-up)."),
)
BY_NAME = {s.name: s for s in SETTINGS}


def get(name: str, default: str | None = None) -> str | None:
    """The setting's value from the environment, else `default` (None: not set). A name not in SETTINGS is a
    KeyError, so every setting the code reads is documented."""
    if name not in BY_NAME:
        raise KeyError(f"{name} is not a registered setting (ibp_pipeline/settings.py)")
    value = os.environ.get(name, "").strip()
    return value or default


def get_path(name: str, default: Path) -> Path:
    """A folder or file setting as a Path, else `default`."""
    value = get(name)
    return Path(value) if value else default


def compute_threads() -> int:
    """Threads for the numerical steps: IBP_THREADS, else the machine's cores up to 4 (beyond that the steps are
    bound by memory bandwidth, and a shared server keeps cores for others)."""
    value = get("IBP_THREADS")
    return max(1, int(value)) if value else max(1, min(4, os.cpu_count() or 1))


def markdown() -> str:
    """docs/configuration.md: every setting by group, with its default and what it does."""
    out = ["# Configuration", "",
           "Everything below is an environment variable; none is needed for the bundled run. This page is written "
           "from `ibp_pipeline/settings.py` (`python -m ibp_pipeline.settings > docs/configuration.md`), so it "
           "lists every variable the code reads. A variable set to an empty string counts as not set.", ""]
    for group in dict.fromkeys(s.group for s in SETTINGS):
        out += [f"## {group}", "", "| variable | default | what it does |", "|---|---|---|"]
        for s in (s for s in SETTINGS if s.group == group):
            who = "" if s.reader == "ibp" else f" Read by {s.reader}."
            out.append(f"| `{s.name}` | {s.default} | {s.meaning}{who} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(markdown(), end="")
