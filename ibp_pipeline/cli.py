"""`ibp`: the analyst's command line.

    ibp run            load new publications, validate, rebuild every step not up to date, publish data/serving.duckdb
                       (--all: rebuild every step)
    ibp ingest FILE... copy NHS publication files into data/landing/ and load them, naming what happened
    ibp scenario run FILE   run one scenario document beside the others and republish
    ibp ui             the Dagster web UI with the daemon, so the nightly schedule and landing sensor run
    ibp publish-postgres  publish data/serving.duckdb's tables to PostgreSQL (URL in IBP_SERVING_POSTGRES_URL)
    ibp dashboard      the Streamlit dashboards for leaders, reading data/serving.duckdb read-only
    ibp user add NAME  add a dashboard user (role and organisation) to the users file, password hashed
    ibp synth --out DIR     write a SYNTHETIC dataset in the published layouts, for benchmarks and tests
    ibp rebuild RUN --out DIR   rebuild a past run's outputs from its archived inputs, in a new data folder

Errors end in one readable line and a non-zero exit; --debug shows Dagster's full log and tracebacks.
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import settings
from .config import PROJECT_ROOT, Paths, get_paths
from .lib.duckdb_tables import table_exists
from .step1_current_state.sources import SOURCES

DAGSTER_YAML = """\
# Written by `ibp`. Runs queue one at a time: DuckDB allows one writer (../shared/STACK.md).
run_queue:
  max_concurrent_runs: 1
telemetry:
  enabled: false
"""


TEAM_DAGSTER_YAML = Path(__file__).parent / "operations" / "dagster_postgres.yaml"


def _prepare_dagster_home(paths: Paths) -> None:
    """DAGSTER_HOME with our dagster.yaml: local SQLite, or PostgreSQL for a team when IBP_DAGSTER_PG_HOST is set
    (credentials stay in the environment). A dagster.yaml someone edited by hand is left alone."""
    os.environ["DAGSTER_HOME"] = str(paths.dagster_home.resolve())
    cfg = paths.dagster_home / "dagster.yaml"
    team = TEAM_DAGSTER_YAML.read_text()
    if settings.get("IBP_DAGSTER_PG_HOST"):
        os.environ.setdefault("IBP_DAGSTER_PG_PORT", "5432")
        missing = [n for n in ("IBP_DAGSTER_PG_DB", "IBP_DAGSTER_PG_USER", "IBP_DAGSTER_PG_PASSWORD")
                   if not settings.get(n)]
        if missing:
            raise RuntimeError(f"IBP_DAGSTER_PG_HOST is set, so Dagster storage is PostgreSQL: also set "
                               f"{', '.join(missing)}")
    if not cfg.exists() or cfg.read_text() in (DAGSTER_YAML, team):
        cfg.write_text(team if settings.get("IBP_DAGSTER_PG_HOST") else DAGSTER_YAML)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


class _Console(logging.Handler):
    """Turns Dagster's event stream into short progress lines: our own messages, steps, failed checks."""

    def __init__(self, started: float) -> None:
        super().__init__()
        self.started = started
        self.failures: list[str] = []
        self.skipped = 0

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        stamp = f"{time.time() - self.started:6.1f}s"
        if event is None:
            text = meta.get("orig_message", record.getMessage())
            if text.startswith("Dependencies for step"):
                self.skipped += 1  # summarised once at the end: the first failure is what matters
                return
            if record.levelno >= logging.INFO:
                print(f"{stamp}  {meta.get('orig_message', record.getMessage())}", flush=True)
            return
        kind = event.event_type_value
        step = (meta.get("step_key") or "").replace("__", "/")
        if kind == "STEP_START" and "great_expectations_suite" not in step:
            print(f"{stamp}  ▸ {step}", flush=True)
        elif kind == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            if not data.passed and getattr(data.severity, "value", "") == "WARN":
                print(f"{stamp}  ⚠ warning: {(data.description or data.check_name)[:400]}", flush=True)
            elif not data.passed:
                line = f"check failed: {data.asset_key.to_user_string()} {data.check_name}: {data.description or ''}"
                print(f"{stamp}  ✗ {line[:400]}", flush=True)
                self.failures.append(line)
        elif kind == "STEP_FAILURE":
            err = getattr(event.event_specific_data, "error", None)
            cause = err
            while cause is not None and getattr(cause, "cause", None) is not None:
                cause = cause.cause
            msg = (cause.message if cause else str(err)).strip().splitlines()
            line = f"{step} failed: {msg[0] if msg else 'unknown error'}"
            print(f"{stamp}  ✗ {line}", flush=True)
            self.failures.append(line)


def run_pipeline(paths: Paths, debug: bool = False, selection: list[list[str]] | None = None,
                 ops_config: dict | None = None) -> bool:
    """Materialise every asset (or the selection) in-process, one writer, printing progress; True on success."""
    _prepare_dagster_home(paths)
    import dagster as dg

    from .definitions import defs

    started = time.time()
    console = _Console(started)

    @dg.logger
    def ibp_console(_init):
        log = logging.getLogger("ibp.console")
        log.handlers = [console]
        log.setLevel(logging.DEBUG)  # step events arrive at DEBUG; _Console picks what to show
        log.propagate = False
        return log

    job = defs.resolve_job_def("refresh") if selection is None else defs.resolve_implicit_global_asset_job_def()
    loggers = {"ibp_console": ibp_console}
    run_config: dict = {"loggers": {"ibp_console": {}}, **({"ops": ops_config} if ops_config else {})}
    if debug:
        loggers["console"] = dg.colored_console_logger
        run_config["loggers"]["console"] = {"config": {"log_level": "DEBUG"}}
    job = job.with_logger_defs(loggers) if hasattr(job, "with_logger_defs") else job
    instance = dg.DagsterInstance.get()
    keys = [dg.AssetKey(k) for k in selection] if selection else None
    result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=run_config,
                                    **({"asset_selection": keys} if keys else {}))
    built = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    if not result.success and "dq/data_docs" not in built:  # a failed run still gets its data-quality report
        from .step1_current_state.quality.gx_suites import build_data_docs

        try:
            build_data_docs(paths.reports)
        except Exception as exc:  # the report is a courtesy here; the run's failure is what matters
            print(f"{time.time() - started:6.1f}s  data-quality report not rebuilt: {exc}")
    if console.skipped:
        print(f"{time.time() - started:6.1f}s  {console.skipped} steps not run because a step they depend on failed")
    print(f"{time.time() - started:6.1f}s  run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED'}")
    run_pipeline.last_run_id = result.run_id  # type: ignore[attr-defined]
    run_pipeline.failures = console.failures  # type: ignore[attr-defined]
    return result.success


def summary(paths: Paths, run_id: str | None) -> str:
    """What an analyst wants after a run: sources, rows, months, quarantine, checks, where things are."""
    import duckdb

    if not paths.warehouse.exists():
        return "no warehouse yet"
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        rows = []
        for spec in SOURCES:
            files, refused = con.execute(
                "select count(*) filter (where status in ('loaded','partial')), count(*) filter (where status = "
                "'refused') from meta.file_loads where source = ?", [spec.name]).fetchone()
            quarantined = con.execute("select count(distinct (load_id, row_number)) from dq.quarantine "
                                      "where source = ? and row_number is not null", [spec.name]).fetchone()[0]
            period = "min(period_start), max(period_start), count(distinct period_start)" if spec.period_column \
                else "null, null, 0"
            current = con.execute(f"select count(*), {period} from latest.{spec.name}").fetchone() \
                if table_exists(con, "latest", spec.name) else (0, None, None, 0)
            rows.append((spec.name, files, refused, quarantined, *current))
        q_total = con.execute("select count(distinct (load_id, row_number)) from dq.quarantine").fetchone()[0]
        q_run = con.execute("select count(distinct (load_id, row_number)) from dq.quarantine where run_id = ?",
                            [run_id]).fetchone()[0]
        checks = con.execute(
            "select count(*), count(*) filter (where not passed), count(*) filter (where not passed and blocking) "
            "from dq.check_results where run_id = ?", [run_id]).fetchone() \
            if table_exists(con, "dq", "check_results") else (0, 0, 0)
    finally:
        con.close()
    w = max(28, *(len(r[0]) + 1 for r in rows))  # the longest source id, so the columns stay aligned
    lines = ["", f"{'source':<{w}}{'files':>6}{'rows':>10}{'quarantined':>12}{'months':>7}  period"]
    for source, files, refused, quarantined, n, first, last, months in rows:
        span = f"{first:%Y-%m} to {last:%Y-%m}" if first else "-"
        extra = f"  ({refused} file{'s' * (refused > 1)} refused)" if refused else ""
        lines.append(f"{source:<{w}}{files:>6}{n:>10,}{quarantined:>12,}{months or '-':>7}  {span}{extra}")
    built, total = getattr(refresh, "steps", (None, None))
    lines += [
        "",
        *([f"steps: {built} rebuilt, {total - built} up to date and skipped"] if built is not None else []),
        f"rows quarantined: {q_run:,} this run, {q_total:,} in all (table dq.quarantine)",
        f"checks: {checks[0]} run, {checks[1]} failed ({checks[2]} blocking)" if run_id else
        "checks: none run (nothing was rebuilt)",
        f"working database: {paths.warehouse}",
        f"served database:  {paths.serving}" + ("" if paths.serving.exists() else " (not published yet)"),
        f"data-quality report: {paths.reports / 'data_docs' / 'index.html'}",
    ]
    return "\n".join(lines)


def refresh(paths: Paths, debug: bool = False, everything: bool = False) -> bool | None:
    """Build what is not up to date (operations/up_to_date.py), or everything; record the fingerprints of a
    successful run. None when everything was up to date and nothing ran. Call it holding the refresh lock."""
    from .definitions import defs
    from .operations import up_to_date

    started = time.time()
    now, todo, why = up_to_date.to_build(defs, paths, everything)
    if why:
        print(f"{time.time() - started:6.1f}s  {why}")
    run_pipeline.last_run_id = None  # type: ignore[attr-defined]
    refresh.steps = (len(todo), len(now.order))  # type: ignore[attr-defined]
    if not todo:
        print(f"{time.time() - started:6.1f}s  nothing new: all {len(now.order)} steps are up to date (the same "
              f"files, code, documents and settings as their last run), so none was rebuilt; `ibp run --all` "
              f"rebuilds everything")
        return None
    partial = len(todo) < len(now.order)
    if partial:
        print(f"{time.time() - started:6.1f}s  {len(now.order) - len(todo)} of {len(now.order)} steps up to date "
              f"and skipped; rebuilding {len(todo)}: {up_to_date.describe(todo)}")
    ok = run_pipeline(paths, debug, selection=[list(k.path) for k in todo] if partial else None)
    if ok:
        up_to_date.record(paths.warehouse, now, todo, run_pipeline.last_run_id)  # type: ignore[attr-defined]
    return ok


def cmd_run(args: argparse.Namespace) -> int:
    paths = get_paths().ensure()
    print(f"ibp run: refreshing from {paths.sources} and {paths.landing}")
    from .resources import refresh_lock

    with refresh_lock(paths):  # the run and its summary, before a queued run may write
        ok = refresh(paths, args.debug, everything=args.all)
        print(summary(paths, getattr(run_pipeline, "last_run_id", None)))
    if ok is False:
        failures = getattr(run_pipeline, "failures", [])
        print(f"ibp run failed: {failures[0] if failures else 'see the Dagster log (--debug)'}", file=sys.stderr)
        return 1
    return 0


def stage_file(src: Path, landing: Path) -> Path:
    """Copy a file into the landing folder (step1_current_state.ingest.stage_file; imported on use, as the
    loaders' imports are slow for the other commands)."""
    from .step1_current_state.ingest import stage_file as stage

    return stage(src, landing)


def cmd_ingest(args: argparse.Namespace) -> int:
    from .step1_current_state.ingest import safe_name, sha256_of
    from .step1_current_state.reading import FileRefused
    from .step1_current_state.recognise import identify

    paths = get_paths().ensure()
    staged: list[tuple[Path, str]] = []
    problems = 0
    for raw in args.paths:
        src = Path(raw)
        if not src.is_file():
            print(f"refused   {src}: no such file")
            problems += 1
            continue
        try:
            found = identify(src)
        except FileRefused as exc:  # recognised by nothing, or unreadable: kept, never lost
            keep = paths.archive / "unrecognised"
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, keep / f"{sha256_of(src)[:16]}_{safe_name(src.name)}")
            print(f"refused   {src.name}: {exc}; kept in {keep}")
            problems += 1
            continue
        dest = stage_file(src, paths.landing)
        staged.append((dest, sha256_of(dest)))
        print(f"staged    {src.name} -> {dest} ({'; '.join(s.title for s in found)})")
    if not staged:
        return 1
    from .resources import refresh_lock

    with refresh_lock(paths):  # the run and the read-back after it, before a queued run may write
        ok = refresh(paths, args.debug) is not False
        import duckdb

        con = duckdb.connect(str(paths.warehouse), read_only=True)
        try:
            for dest, sha in staged:
                rows = con.execute("select status, message, run_id, source from meta.file_loads where sha256 = ? "
                                   "qualify row_number() over (partition by source order by load_id desc) = 1 "
                                   "order by source", [sha]).fetchall()
                if not rows:
                    print(f"refused   {dest.name}: not loaded (see the run log)")
                    problems += 1
                for status, message, run_id, _source in rows:  # a workbook may hold several publications
                    if run_id != getattr(run_pipeline, "last_run_id", None):
                        status, message = "unchanged", f"same bytes already loaded ({status}): {message}"
                    print(f"{status:<9} {dest.name}: {message}")
                    problems += status in ("refused", "partial")
        finally:
            con.close()
    if not ok:
        failures = getattr(run_pipeline, "failures", [])
        print(f"ibp ingest: the refresh failed: {failures[0] if failures else 'see --debug'}", file=sys.stderr)
        return 1
    return 1 if problems else 0


def cmd_scenario_run(args: argparse.Namespace) -> int:
    """Validate a scenario document, run it beside the others (keyed by scenario and run id), republish."""
    from .simulation.scenarios import ScenarioConfigError, load_scenario

    paths = get_paths().ensure()
    file = Path(args.file).resolve()
    try:
        scenario = load_scenario(file)
    except ScenarioConfigError as exc:
        print(f"ibp scenario run: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError:
        print(f"ibp scenario run: no such file: {args.file}", file=sys.stderr)
        return 1
    if not paths.warehouse.exists():
        print("ibp scenario run: no warehouse yet; run `ibp run` first", file=sys.stderr)
        return 1
    print(f"ibp scenario run: {scenario.name} (version {scenario.version}) from {file}")
    config = {"file": str(file), "run_id": args.run_id or "", "draws": args.draws or 0, "seed": args.seed}
    from .resources import refresh_lock

    with refresh_lock(paths):  # one writer at a time: waits while another refresh runs
        ok = run_pipeline(paths, args.debug, selection=[["s6_scenarios", "results"], ["serving", "published"]],
                          ops_config={"s6_scenarios__results": {"ops": {"plan_scenarios": {"config": config}}}})
    if not ok:
        failures = getattr(run_pipeline, "failures", [])
        print(f"ibp scenario run failed: {failures[0] if failures else 'see --debug'}", file=sys.stderr)
        return 1
    print(f"results in s6_scenarios (results, comparison, drivers, sensitivity) of {paths.serving}")
    return 0


def cmd_plan_draft(args: argparse.Namespace) -> int:
    """Write a prefilled plan workbook for one organisation, or one per NHS trust of an ICB (--trusts)."""
    from .plan.loading import access_problem, draft_file, served
    from .plan.tables import trusts_of
    from .plan.period import Period, PeriodError
    from .plan.prefill import DraftError

    paths = get_paths()
    try:
        period = Period.parse(args.period)
        con = served(paths)
    except (PeriodError, DraftError) as exc:
        print(f"ibp plan draft: {exc}", file=sys.stderr)
        return 1
    org = args.org.strip().upper()
    try:
        refused = access_problem(con, args.user, org)
        if refused:
            print(f"ibp plan draft: {refused}", file=sys.stderr)
            return 1
        out = Path(args.out)
        if args.trusts:
            orgs = trusts_of(con, org)
            if not orgs:
                print(f"ibp plan draft: {org} has no NHS trusts in the served data (--trusts needs an ICB)",
                      file=sys.stderr)
                return 1
            targets = [(o, out / f"plan_{o}_{period.label.replace('/', '-')}.xlsx") for o in orgs]
        else:
            targets = [(org, out)]
        started = time.time()
        for code, file in targets:
            t = time.time()
            draft_file(con, code, period, file)
            print(f"ibp plan draft: {code} {period.label} -> {file} ({time.time() - t:.1f}s)")
    except DraftError as exc:
        print(f"ibp plan draft: {exc}", file=sys.stderr)
        return 1
    finally:
        con.close()
    if len(targets) > 1:
        print(f"ibp plan draft: {len(targets)} plans in {time.time() - started:.1f}s")
    return 0


def refuse(command: str, problems: list[str], outcome: str, after: str = "") -> int:
    """Print each problem in one line, then what was (not) done; exit status 1."""
    for line in problems:
        print(f"{command}: {line}", file=sys.stderr)
    n = len(problems)
    print(f"{command}: {outcome} ({n} problem{'s' if n != 1 else ''}){after}", file=sys.stderr)
    return 1


def cmd_plan_load(args: argparse.Namespace) -> int:
    """Check a plan workbook and store it as a new version; print the triangulation; republish the plan's tables."""
    from .plan.loading import load_file
    from .plan.prefill import DraftError
    from .plan.triangulation import summary

    paths = get_paths().ensure()
    file = Path(args.file)
    if not file.is_file():
        print(f"ibp plan load: no such file: {args.file}", file=sys.stderr)
        return 1
    try:
        result = load_file(paths, file, args.status, args.user)
    except DraftError as exc:
        print(f"ibp plan load: {exc}", file=sys.stderr)
        return 1
    if result.problems:
        return refuse("ibp plan load", result.problems, "nothing loaded", "; the plan of record is unchanged")
    stored = result.stored
    if not stored.new:
        print(f"ibp plan load: {stored.plan_id} version {stored.version} ({stored.status}) is this workbook "
              "already; nothing new stored")
        return 0
    print(f"ibp plan load: {stored.plan_id} stored as version {stored.version} ({stored.status}) in "
          f"{paths.plan_store}")
    if result.previous:
        n = len(result.moved)
        print(f"what moved since version {result.previous}: "
              + (f"{n} line{'' if n == 1 else 's'}" if n else "no numbers"))
        for line in result.moved:
            print(f"  {line}")
        for line in result.verdicts:
            print(f"  {line}")
    print("triangulation (do activity, workforce and money agree?):")
    for line in summary(result.checks):
        print(f"  {line}")
    return republish_plan(paths, args.debug, "ibp plan load")


def republish_plan(paths: Paths, debug: bool, command: str) -> int:
    """Rebuild the plan's tables from the plan store and republish the served copy (after a load or a review)."""
    if not paths.warehouse.exists():
        print(f"{command}: no warehouse yet: `ibp run` serves the plan's tables")
        return 0
    from .plan.assets import plan_assets
    from .resources import refresh_lock

    with refresh_lock(paths):
        ok = run_pipeline(paths, debug, selection=[list(a.key.path) for a in plan_assets] + [["serving", "published"]])
    if not ok:
        failures = getattr(run_pipeline, "failures", [])
        print(f"{command}: stored, but republishing failed: {failures[0] if failures else 'see --debug'}",
              file=sys.stderr)
        return 1
    print(f"plan tables served in schema plan of {paths.serving}")
    return 0


def cmd_plan_review(args: argparse.Namespace) -> int:
    """Check a CSV of reviews of plan exceptions and store each as the next revision of its review."""
    from .plan.loading import access_problem, served
    from .plan.prefill import DraftError
    from .plan.reviews import read_reviews, save_reviews

    paths = get_paths().ensure()
    file = Path(args.file)
    if not file.is_file():
        print(f"ibp plan review: no such file: {args.file}", file=sys.stderr)
        return 1
    reviews, problems = read_reviews(file)
    if not problems:
        try:
            con = served(paths)
        except DraftError as exc:
            print(f"ibp plan review: {exc}", file=sys.stderr)
            return 1
        try:
            for org in sorted({r.org_code for r in reviews}):
                refused = access_problem(con, args.user, org)
                if refused:
                    problems.append(f"{file.name}: {refused}")
        finally:
            con.close()
    if problems:
        return refuse("ibp plan review", problems, "nothing stored")
    revisions = save_reviews(paths.plan_store, reviews, args.user, f"csv: {file.name}")
    print(f"ibp plan review: {len(reviews)} review{'s' if len(reviews) != 1 else ''} stored "
          f"({sum(r > 1 for r in revisions)} of them new revisions of earlier reviews) in {paths.plan_store}")
    return republish_plan(paths, args.debug, "ibp plan review")


def cmd_plan_list(args: argparse.Namespace) -> int:
    from .plan.loading import versions

    frame = versions(get_paths())
    if frame.is_empty():
        print("ibp plan list: no plan loaded yet (`ibp plan draft`, then `ibp plan load`)")
        return 0
    for r in frame.iter_rows(named=True):
        print(f"{r['plan_id']}  v{r['version']}  {r['status']:<9}  {r['loaded_by']}  {r['loaded_at']:%Y-%m-%d %H:%M}"
              f"  {r['file_name']}")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    paths = get_paths().ensure()
    _prepare_dagster_home(paths)
    cmd = [sys.executable, "-m", "dagster", "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"),
           "-h", args.host, "-p", str(args.port)]
    print(f"Dagster UI on http://{args.host}:{args.port} (daemon on: nightly schedule and landing sensor run); "
          f"DAGSTER_HOME={paths.dagster_home}")
    return subprocess.call(cmd, cwd=PROJECT_ROOT)


def cmd_publish_postgres(args: argparse.Namespace) -> int:
    """Publish the existing served file to PostgreSQL (the URL from an environment variable, never an argument)."""
    from .operations.postgres_publish import PostgresPublishError, publish_to_postgres

    paths = get_paths()
    url = os.environ.get(args.url_env, "")
    if not url:
        print(f"ibp publish-postgres: set {args.url_env} to a libpq URL (postgresql://user@host/db; the password "
              "from PGPASSWORD, ~/.pgpass or the URL)", file=sys.stderr)
        return 1
    try:
        result = publish_to_postgres(paths.serving, url, lambda m: print(m, flush=True) if args.debug else None)
    except PostgresPublishError as exc:
        print(f"ibp publish-postgres: {exc}", file=sys.stderr)
        return 1
    t = result.target
    print(f"published {result.tables} tables, {result.rows:,} rows of {paths.serving} to PostgreSQL "
          f"{t['host']}:{t['port']}/{t['database']} in {result.seconds:.1f}s")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Streamlit on dashboards/app.py; it reads only the served database, so a refresh never waits for it."""
    paths = get_paths()
    if not paths.serving.exists():
        print(f"ibp dashboard: {paths.serving} does not exist yet; run `ibp run` first", file=sys.stderr)
        return 1
    from .access import UsersFileError, load_users, users_file_path

    try:
        users = load_users(users_file_path())
    except UsersFileError as exc:
        print(f"ibp dashboard: {exc}", file=sys.stderr)
        return 1
    mode = f"{len(users)} users from {users_file_path()}" if users else "local mode (no users file: no login)"
    print(f"IBP dashboards on http://{args.host}:{args.port} ({mode}); reading {paths.serving}", flush=True)
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    cmd = [sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "dashboards" / "app.py"),
           "--server.port", str(args.port), "--server.address", args.host, "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
           "--server.maxUploadSize", "1", "--client.toolbarMode", "viewer"]
    # Become Streamlit (exec, not a child process): a service manager's or a test's stop signal reaches the
    # server itself and nothing is left running behind the ibp command.
    os.chdir(PROJECT_ROOT / "dashboards")
    os.execve(sys.executable, cmd, env)
    return 0  # not reached


def cmd_board_pack(args: argparse.Namespace) -> int:
    """One organisation's board pack (--org), or every organisation's the reader may see (--all, into a folder),
    from the served database, with the dashboards' access rules: when users are configured, --as names who it is
    for, and an organisation that user may not see is refused."""
    paths = get_paths()
    if not paths.serving.exists():
        print(f"ibp board-pack: {paths.serving} does not exist yet; run `ibp run` first", file=sys.stderr)
        return 1
    from .access import load_users, users_file_path, visible_orgs
    from .dashboards import board_pack
    from .dashboards.organisations import selector_options
    from .dashboards.serving import Serving

    db = Serving(paths.serving)
    users = load_users(users_file_path())
    user = None
    if users:
        if not args.as_user:
            print(f"ibp board-pack: users are configured ({users_file_path()}): say whose pack it is with --as "
                  "USERNAME (the pack shows only what that user may see)", file=sys.stderr)
            return 1
        user = users.get(args.as_user)
        if user is None:
            print(f"ibp board-pack: no user {args.as_user!r} in {users_file_path()}", file=sys.stderr)
            return 1
    orgs = selector_options(db)
    visible = visible_orgs(user, orgs, db.query("select org_code, peer_group_id from s2_triple_aim.peer_groups"))
    codes = orgs["org_code"].to_list()
    if args.all:
        wanted = [c for c in codes if visible is None or c in visible]
    else:
        wanted = [args.org.upper()]
        if wanted[0] not in codes:
            print(f"ibp board-pack: {wanted[0]} is not an organisation with published figures (an ODS code such as "
                  "RXL, an ICB such as QE1, a region such as Y61, or ENGLAND)", file=sys.stderr)
            return 1
    try:
        last = dt.date.fromisoformat(args.to + "-01") if args.to else None
    except ValueError:
        print(f"ibp board-pack: --to {args.to!r} is not a month written YYYY-MM", file=sys.stderr)
        return 1
    try:
        written = board_pack.write_packs(db, wanted, Path(args.out), board_pack.default_period(db, last=last),
                                         None if visible is None
                                         else frozenset(visible), shared_js=args.all)
    except PermissionError as exc:
        print(f"ibp board-pack: refused: {exc}", file=sys.stderr)
        return 1
    print(f"ibp board-pack: {len(written)} pack{'s' if len(written) != 1 else ''} written"
          + (f" to {written[0]}" if len(written) == 1 else f" into {args.out}"))
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    """Add or replace a dashboard user; the password is read without echo (or from IBP_NEW_PASSWORD)."""
    import getpass

    from .access import add_user, org_problem, users_file_path

    if args.role != "admin" and not args.org:
        print("ibp user add: a trust or icb user needs --org (the ODS code, e.g. RXL or QE1)", file=sys.stderr)
        return 1
    problem = org_problem(get_paths().serving, args.org.upper()) if args.org else None
    if problem:
        print(f"ibp user add: {problem}", file=sys.stderr)
        return 1
    password = settings.get("IBP_NEW_PASSWORD") or getpass.getpass(f"Password for {args.username}: ")
    if len(password) < 12:
        print("ibp user add: use a password of at least 12 characters", file=sys.stderr)
        return 1
    path = users_file_path()
    user = add_user(path, args.username, args.role, args.org.upper() if args.org else None, password,
                    name=args.name, email=args.email)
    print(f"{user.display} saved in {path} (password stored as a bcrypt hash)")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    """Write a SYNTHETIC dataset in the published layouts (ibp_pipeline/synthetic); never into the project's data/."""
    from .synthetic import SynthConfig, SynthError, generate

    config = SynthConfig(scale=args.scale, years=args.years, seed=args.seed, bad_rows=args.bad_rows,
                         mergers=args.mergers, end=args.end)
    try:
        result = generate(config, args.out)
    except SynthError as exc:
        print(f"ibp synth: {exc}", file=sys.stderr)
        return 1
    c = result.counts
    print(f"wrote {len(result.files)} files ({result.bytes / 1e6:,.1f} MB, "
          f"{sum(f.rows for f in result.files):,} rows) in {result.seconds:.1f}s: {c['regions']} regions, "
          f"{c['icbs']} ICBs, {c['trusts_current']} trusts, {c['months']} months; {result.bad_rows:,} bad rows "
          f"injected ({result.expected_quarantined_rows:,} rows to be quarantined, listed in "
          f"{result.out / 'synthetic_manifest.json'})")
    print(f"run the pipeline on it:\n  {result.run_command()}")
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    """Rebuild a past run from its archived inputs into a new data folder (ibp_pipeline/operations/rebuild.py)."""
    from .operations.rebuild import RebuildError, prepare_rebuild, rebuild_environment

    out = Path(args.out).resolve()
    try:
        run_id, end, staged = prepare_rebuild(get_paths().warehouse, args.run, out)
    except RebuildError as exc:
        print(f"ibp rebuild: {exc}", file=sys.stderr)
        return 1
    print(f"ibp rebuild: run {run_id[:8]} (ended {end:%Y-%m-%d %H:%M:%S}): {len(staged)} archived inputs, each "
          f"checked against its sha256, staged in {out / 'landing'}; rebuilding with the installed code and "
          "configuration")
    os.environ.clear()
    os.environ.update(rebuild_environment(out))
    return cmd_run(args)


def main(argv: list[str] | None = None) -> int:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="full Dagster log and tracebacks")
    parser = argparse.ArgumentParser(prog="ibp", description=__doc__, formatter_class=argparse.RawTextHelpFormatter,
                                     parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)
    p_refresh = sub.add_parser("run", help="run the pipeline: build every step that is not up to date",
                               parents=[common])
    p_refresh.add_argument("--all", action="store_true",
                           help="rebuild every step, even those whose files, code and documents did not change")
    p_refresh.set_defaults(func=cmd_run)
    p_ingest = sub.add_parser("ingest", help="copy publication files into data/landing/ and load them",
                              parents=[common])
    p_ingest.add_argument("paths", nargs="+")
    p_ingest.set_defaults(func=cmd_ingest)
    p_scn = sub.add_parser("scenario", help="scenario modelling", parents=[common])
    scn_sub = p_scn.add_subparsers(dest="scenario_command", required=True)
    p_run = scn_sub.add_parser("run", help="run one scenario document (YAML) and republish", parents=[common])
    p_run.add_argument("file")
    p_run.add_argument("--run-id", default="", help="key for this run (default: v<document version>)")
    p_run.add_argument("--draws", type=int, default=0, help="Monte Carlo draws (default IBP_DRAWS or 10,000)")
    p_run.add_argument("--seed", type=int, default=20251123)
    p_run.set_defaults(func=cmd_scenario_run)
    p_plan = sub.add_parser("plan", help="the plan: draft a workbook, load a version, list versions",
                            parents=[common])
    plan_sub = p_plan.add_subparsers(dest="plan_command", required=True)
    p_draft = plan_sub.add_parser("draft", help="write a prefilled plan workbook (.xlsx) for an organisation",
                                  parents=[common])
    p_draft.add_argument("--org", required=True, help="ODS code of the trust or ICB")
    p_draft.add_argument("--period", default="2026/27-2028/29", help="financial years (default 2026/27-2028/29)")
    p_draft.add_argument("--out", required=True, help="the workbook to write (with --trusts: a folder)")
    p_draft.add_argument("--trusts", action="store_true", help="one workbook per NHS trust of the ICB --org")
    p_draft.add_argument("--user", default=None, help="who drafts (default: your login); checked against users")
    p_draft.set_defaults(func=cmd_plan_draft)
    p_load = plan_sub.add_parser("load", help="check a plan workbook and store it as a new version",
                                 parents=[common])
    p_load.add_argument("file")
    p_load.add_argument("--status", choices=["draft", "submitted", "approved"], default="draft")
    p_load.add_argument("--user", default=None, help="who loads (default: your login); checked against users")
    p_load.set_defaults(func=cmd_plan_load)
    p_review = plan_sub.add_parser("review", help="store reviews of plan exceptions from a CSV", parents=[common])
    p_review.add_argument("file", help="CSV: org_code, line, month, what_happened, why, action, owner, due_date, "
                                       "status")
    p_review.add_argument("--user", default=None, help="who reviews (default: your login); checked against users")
    p_review.set_defaults(func=cmd_plan_review)
    p_list = plan_sub.add_parser("list", help="every stored plan version", parents=[common])
    p_list.set_defaults(func=cmd_plan_list)
    p_ui = sub.add_parser("ui", help="Dagster web UI with the daemon (schedule and sensor)", parents=[common])
    p_ui.add_argument("--port", type=int, default=3000)
    p_ui.add_argument("--host", default="127.0.0.1")
    p_ui.set_defaults(func=cmd_ui)
    p_pg = sub.add_parser("publish-postgres", help="publish the served tables to PostgreSQL", parents=[common])
    p_pg.add_argument("--url-env", default="IBP_SERVING_POSTGRES_URL",
                      help="environment variable holding the libpq URL (default IBP_SERVING_POSTGRES_URL)")
    p_pg.set_defaults(func=cmd_publish_postgres)
    p_dash = sub.add_parser("dashboard", help="Streamlit dashboards on the served database", parents=[common])
    p_dash.add_argument("--port", type=int, default=8501)
    p_dash.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve other machines (configure users)")
    p_dash.set_defaults(func=cmd_dashboard)
    p_pack = sub.add_parser("board-pack", help="write the board pack (HTML, prints to A4) for an organisation, "
                            "or for every organisation", parents=[common])
    which = p_pack.add_mutually_exclusive_group(required=True)
    which.add_argument("--org", help="the organisation's code: an ODS code (RXL), an ICB (QE1), a region, ENGLAND")
    which.add_argument("--all", action="store_true", help="every organisation the reader may see, into the --out "
                                                          "folder (one shared plotly.min.js beside them)")
    p_pack.add_argument("--out", required=True, help="the HTML file to write (a folder with --all)")
    p_pack.add_argument("--to", help="the last month of the pack, YYYY-MM (default: the latest month published); "
                                     "the pack covers the 36 months to it")
    p_pack.add_argument("--as", dest="as_user", help="the dashboard user the pack is for, when users are "
                                                     "configured: the same access rules as the dashboards")
    p_pack.set_defaults(func=cmd_board_pack)
    p_user = sub.add_parser("user", help="dashboard users", parents=[common])
    user_sub = p_user.add_subparsers(dest="user_command", required=True)
    p_add = user_sub.add_parser("add", help="add or replace a dashboard user", parents=[common])
    p_add.add_argument("username")
    p_add.add_argument("--role", choices=["admin", "icb", "trust"], required=True)
    p_add.add_argument("--org", help="ODS code of the user's trust or ICB")
    p_add.add_argument("--name", default="")
    p_add.add_argument("--email", help="for OIDC logins: the email the identity provider reports")
    p_add.set_defaults(func=cmd_user_add)
    p_synth = sub.add_parser("synth", help="write a SYNTHETIC dataset (published layouts) for tests and benchmarks",
                             parents=[common])
    p_synth.add_argument("--scale", choices=["icb", "region", "england"], default="england",
                         help="icb: 1 ICB, ~5 trusts; region: 6 ICBs, ~30 trusts; england: 42 ICBs, ~210 trusts")
    p_synth.add_argument("--years", type=int, default=10, help="years of months back from --end (default 10)")
    p_synth.add_argument("--out", required=True, help="output folder (never the project's data/)")
    p_synth.add_argument("--seed", type=int, default=20250331)
    p_synth.add_argument("--bad-rows", type=float, default=0.001,
                         help="fraction of data rows made bad (text in numbers, negative counts, unknown "
                              "organisations, duplicates), for the quarantine to catch (default 0.001)")
    p_synth.add_argument("--mergers", type=int, default=None,
                         help="trust mergers mid-series (default: icb 1, region 2, england 4; 0 for none)")
    p_synth.add_argument("--end", default="2025-03", help="last month, YYYY-MM (default 2025-03)")
    p_synth.set_defaults(func=cmd_synth)
    p_rebuild = sub.add_parser("rebuild", help="rebuild a past run's outputs from its archived inputs into a new "
                               "data folder", parents=[common])
    p_rebuild.add_argument("run", help="the run id (or its first 8 characters, as `ibp run` prints it)")
    p_rebuild.add_argument("--out", required=True, help="a new (or empty) folder for the rebuilt data")
    p_rebuild.set_defaults(func=cmd_rebuild)
    args = parser.parse_args(argv)
    args.debug = getattr(args, "debug", False)
    if getattr(args, "user", "") is None:
        from .plan.loading import default_user

        args.user = default_user()
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("ibp: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one readable line unless --debug
        if args.debug:
            raise
        print(f"ibp {args.command} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
