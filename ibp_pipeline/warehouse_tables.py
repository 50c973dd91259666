"""The warehouse's tables, in one list: each table's schema and name, the asset that builds it and whether the
dashboards are served it.

Why one list: table names were written by hand in many places, and what was served was listed in four. Publishing
(operations/publish.py) copies exactly the served tables below; the publish step's Dagster deps are the assets that
build them (operations/assets.py). ibp_pipeline_tests/test_warehouse_tables.py checks the list against the
warehouse a real run leaves (no table missing, none unlisted), against the asset graph (every builder is an
asset) and against docs/data-dictionary.md (every served table is explained there).

Publications have a table and a view each, named by their source (raw.<source>: every row of every load;
latest.<source>: the current rows), built by the asset raw/<source>; they are listed from step 1's SOURCES.
"""
from __future__ import annotations

from dataclasses import dataclass

from .step1_current_state.sources import SOURCES


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    built_by: tuple[str, ...] | None  # the asset key that writes it; None: written by every run (records)
    served: bool  # copied into the served database the dashboards read
    about: str = ""
    view: bool = False  # a view over another table, not a table of its own
    sometimes: bool = False  # exists only at times (while a run rebuilds; once `ibp run` succeeded), so may be absent

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


def _step(schema: str, name: str, asset: str, about: str) -> Table:
    return Table(schema, name, (schema, asset), True, about)


STEP_TABLES: tuple[Table, ...] = (
    _step("s1_current_state", "organisations", "organisations", "every trust, ICB and region, today's and past"),
    _step("s1_current_state", "metric_catalogue", "metric_catalogue", "each measure: definition, source, coverage"),
    _step("s1_current_state", "metric_values", "metric_values", "every measure by organisation and month"),
    _step("s1_current_state", "source_conflicts", "source_conflicts", "where two publications disagree"),
    _step("s2_triple_aim", "standards", "standards", "the standards in force and their rules"),
    _step("s2_triple_aim", "targets", "targets", "each organisation's target by month"),
    _step("s2_triple_aim", "peer_groups", "peer_groups", "each trust's peers"),
    _step("s2_triple_aim", "benchmarks", "benchmarks", "ranks and quartiles among peers"),
    _step("s2_triple_aim", "scores", "scores", "Triple Aim scores by measure"),
    _step("s2_triple_aim", "aim_scores", "scores", "Triple Aim scores by aim"),
    _step("s2_triple_aim", "spc", "spc", "SPC limits and signals by month"),
    _step("s2_triple_aim", "spc_summary", "spc", "SPC variation and assurance, latest"),
    _step("s3_resources", "resource_map", "resource_map", "beds, staff and capacity by organisation"),
    _step("s3_resources", "activity_costs", "activity_costs", "activity at national unit costs"),
    _step("s4_gaps", "metric_gaps", "metric_gaps", "the gap to each standard"),
    _step("s4_gaps", "milestone_outcomes", "milestone_outcomes", "each planning milestone judged"),
    _step("s4_gaps", "needs", "needs", "capacity needed: beds, staff, clearances"),
    _step("s5_impact", "forecasts", "forecasts", "forecasts with intervals"),
    _step("s5_impact", "forecast_accuracy", "forecast_accuracy", "how the forecasts did on months they never saw"),
    _step("s5_impact", "effects", "effects", "learned relations between measures"),
    _step("s5_impact", "initiatives", "initiatives", "the initiatives catalogue with effects and costs"),
    _step("s5_impact", "waiting_list_projection", "waiting_list_projection", "the RTT flow model's projection"),
    _step("s5_impact", "risk", "risk", "the chance of meeting each standard, by month"),
    _step("s5_impact", "risk_register", "risk", "the risk register at each standard's next milestone"),
    _step("s6_scenarios", "results", "results", "each scenario's distribution by month"),
    _step("s6_scenarios", "comparison", "results", "each scenario against the baseline"),
    _step("s6_scenarios", "drivers", "results", "what drives each scenario's change (waterfall)"),
    _step("s6_scenarios", "sensitivity", "results", "which uncertainty matters most (tornado)"),
    _step("s6_scenarios", "runs", "results", "every scenario run: document, draws, seed, time"),
    _step("plan", "versions", "versions", "every version of every plan: status, who, when, sha256"),
    _step("plan", "lines", "versions", "each plan version's lines by month, with where they came from"),
    _step("plan", "assumptions", "versions", "the assumptions each plan version was built on"),
    _step("plan", "capital", "versions", "each plan version's capital schemes by financial year"),
    _step("plan", "reviews", "versions", "every revision of every review of a plan exception"),
    _step("plan", "triangulation", "triangulation", "whether each plan's activity, workforce and money agree"),
    _step("plan", "plan_vs_actual", "plan_vs_actual", "each plan against its actuals, month by month"),
    _step("plan", "workforce_six_steps", "workforce_six_steps", "each plan's Six Steps workforce plan by staff group"),
    _step("plan", "budget", "budget", "each plan's surplus as headroom, against the cost of needs and scenarios"),
)

RECORD_TABLES: tuple[Table, ...] = (
    Table("meta", "file_loads", None, True, "every file loaded or refused, by sha256"),
    Table("dq", "quarantine", None, True, "every row or file kept aside, with file, row, column and why"),
    Table("dq", "check_results", None, True, "every data-quality check of every run"),
    Table("dq", "suite_fingerprints", None, False, "which data each source's GX suite last validated"),
    Table("meta", "series_fingerprints", None, False,
          "the input of each forecast series, so unchanged series keep their forecasts"),
    Table("meta", "asset_fingerprints", None, False, "what each step was last built from (ibp run)",
          sometimes=True),  # written by `ibp run`, not by a run started in Dagster
    Table("meta", "refresh_in_progress", None, False, "a run rewriting the warehouse that has not published",
          sometimes=True),
)

# written into the served copy only, by the publish step
SERVING_ONLY: tuple[Table, ...] = (
    Table("meta", "publication", ("serving", "published"), True, "the run and time of the served copy"),
)

SOURCE_TABLES: tuple[Table, ...] = tuple(
    t for s in SOURCES for t in (
        Table("raw", s.name, ("raw", s.name), False, f"{s.title}: every row of every load"),
        Table("latest", s.name, ("raw", s.name), False, f"{s.title}: the current rows", view=True)))

TABLES: tuple[Table, ...] = STEP_TABLES + RECORD_TABLES + SOURCE_TABLES
BY_NAME = {t.qualified: t for t in TABLES + SERVING_ONLY}


def served() -> list[Table]:
    """The warehouse tables copied into the served database."""
    return [t for t in TABLES if t.served]


def served_builders() -> list[tuple[str, ...]]:
    """The assets whose tables are served, in step order (the publish step depends on them)."""
    return list(dict.fromkeys(t.built_by for t in STEP_TABLES if t.served and t.built_by))
