"""PostgreSQL, for real: the serving tables published to a server and Dagster's own storage kept there.

A throwaway server (pg_server.py) runs for the module; without PostgreSQL's binaries these tests skip, saying so.
"""
from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import shutil
import sys
import time
import types
from pathlib import Path

import dagster as dg
import duckdb
import psycopg
import pytest
from dagster._core.events import DagsterEventType
from psycopg import sql

from ibp_pipeline.config import get_paths
from ibp_pipeline.operations.assets import serving_database
from ibp_pipeline.operations.postgres_publish import (
    URL_ENV, PostgresPublishError, building_name, copy_expression, pg_type, publish_to_postgres, redact_url, scrub,
    target_of, url_password)
from ibp_pipeline.resources import Warehouse

from .pg_server import PgServer, consistency_reader, pg_server  # noqa: F401  (the session fixture)

# ----- pure functions ---------------------------------------------------------------------------------------------


def test_redact_url_hides_the_password_in_every_form():
    assert redact_url("postgresql://ana:s3cr%40t@db.example:5433/ibp?sslmode=require") == \
        "postgresql://ana:***@db.example:5433/ibp?sslmode=require"
    assert redact_url("postgresql://ana@db/ibp?password=hunter2&sslmode=require") == \
        "postgresql://ana@db/ibp?password=***&sslmode=require"
    assert redact_url("host=db user=ana password='a b c' dbname=ibp") == "host=db user=ana password=*** dbname=ibp"
    assert redact_url("postgresql://ana@db/ibp") == "postgresql://ana@db/ibp"
    assert url_password("postgresql://ana:s3cr%40t@db/ibp") == "s3cr@t"
    assert url_password("host=db password=abc") == "abc"
    assert url_password("postgresql://ana@db/ibp") is None


def test_scrub_removes_raw_and_encoded_passwords_from_any_text():
    url = "postgresql://ana:p%40ss%20word@db/ibp"
    text = f"failed for {url}; tried p@ss word and p%40ss%20word"
    out = scrub(text, url)
    assert "p@ss word" not in out and "p%40ss%20word" not in out and "postgresql://ana:***@db/ibp" in out
    assert target_of(url) == {"host": "db", "port": "5432", "database": "ibp", "user": "ana"}


def test_duckdb_types_map_to_postgresql_types():
    assert [pg_type(t) for t in ("VARCHAR", "BIGINT", "DOUBLE", "DATE", "TIMESTAMP", "BOOLEAN", "INTEGER", "TINYINT",
                                 "UINTEGER", "DECIMAL(18,3)", "VARCHAR[]", "INTEGER[3]", "STRUCT(a INTEGER)",
                                 "MAP(VARCHAR, INTEGER)", "TIMESTAMP WITH TIME ZONE", "UUID", "BLOB", "HUGEINT",
                                 "ENUM('a', 'b')")] == \
        ["text", "bigint", "double precision", "date", "timestamp", "boolean", "integer", "smallint", "bigint",
         "numeric(18,3)", "jsonb", "jsonb", "jsonb", "jsonb", "timestamptz", "uuid", "bytea", "numeric(39,0)", "text"]
    assert copy_expression("a", "DOUBLE") == '"a"'
    assert copy_expression('we"ird', "VARCHAR[]") == 'to_json("we""ird")::varchar'
    assert copy_expression("u", "UUID") == '"u"::varchar'
    assert building_name("s1_current_state") == "s1_current_state__building"
    with pytest.raises(PostgresPublishError, match="too long"):
        building_name("x" * 60)


# ----- helpers ------------------------------------------------------------------------------------------------------

def _served_source(request: pytest.FixtureRequest) -> Path:
    override = os.environ.get("IBP_TEST_SERVING")  # as in step7/conftest.py: iterate without the 3-minute run
    if override:
        return Path(override)
    run = request.getfixturevalue("bundled_run")
    assert run.result.success
    return run.paths.serving


def _fresh_db(server: PgServer, name: str) -> str:
    server.create_database(name)
    return server.url(name)


NUMBERS = ("BIGINT", "DOUBLE", "INTEGER", "TINYINT", "UINTEGER", "SMALLINT")


def _profile_sql(cols: list[tuple[str, str]], quote) -> str:
    """Per column an order-independent summary: non-null count, and sum (numbers) or min/max/total text length."""
    parts = ["count(*)"]
    for name, duck_type in cols:
        c = quote(name)
        parts.append(f"count({c})")
        if duck_type in NUMBERS:
            parts.append(f"sum({c})::double precision")
        else:
            parts += [f"min({c}::text)", f"max({c}::text)", f"sum(length({c}::text))"]
    return "select " + ", ".join(parts)


def _same_profile(a: tuple, b: tuple) -> bool:
    """Equal, sums to 1e-9 (summation order differs between engines), NaN equal to NaN (both keep NaN)."""
    def same(x, y) -> bool:
        if isinstance(x, float) and y is not None:
            return (math.isnan(x) and math.isnan(float(y))) or x == pytest.approx(float(y), rel=1e-9)
        return x == y
    return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))


def _sort_key(row: tuple) -> tuple:
    return tuple((v is None, str(v)) for v in row)


# ----- publishing the real served file ----------------------------------------------------------------------------

def test_publish_of_the_real_served_file_matches_duckdb_table_for_table(pg_server, request, tmp_path):
    served = tmp_path / "serving.duckdb"
    shutil.copyfile(_served_source(request), served)  # never the shared run's own file
    url = _fresh_db(pg_server, "full")
    messages: list[str] = []
    result = publish_to_postgres(served, url, messages.append)
    print(f"published {result.tables} tables, {result.rows:,} rows in {result.seconds:.1f}s")
    duck = duckdb.connect(str(served), read_only=True)
    tables = duck.execute("select schema_name, table_name from duckdb_tables() order by 1, 2").fetchall()
    assert result.tables == len(tables) > 20 and result.rows > 100_000
    full = {("s1_current_state", "organisations"), ("s2_triple_aim", "standards"), ("s5_impact", "initiatives"),
            ("s4_gaps", "needs"), ("meta", "publication"), ("s6_scenarios", "runs"), ("s5_impact", "effects")}
    with psycopg.connect(url) as pg:
        for schema, table in tables:
            cols = duck.execute("select column_name, data_type from duckdb_columns() where schema_name = ? and "
                                "table_name = ? order by column_index", [schema, table]).fetchall()
            names = [c for c, _ in cols]
            q = lambda n: '"' + n.replace('"', '""') + '"'  # noqa: E731
            d_prof = duck.execute(_profile_sql(cols, q) + f" from {q(schema)}.{q(table)}").fetchone()
            p_prof = pg.execute(_profile_sql(cols, q) + f" from {q(schema)}.{q(table)}").fetchone()
            assert d_prof[0] == p_prof[0] == result.counts[f"{schema}.{table}"], (schema, table)
            assert _same_profile(d_prof, p_prof), (schema, table, d_prof, p_prof)
            if (schema, table) in full:
                select = sql.SQL("select {} from {}").format(sql.SQL(", ").join(map(sql.Identifier, names)),
                                                             sql.Identifier(schema, table))
                d_rows = duck.execute(select.as_string()).fetchall()
                p_rows = pg.execute(select).fetchall()
                assert sorted(p_rows, key=_sort_key) == sorted(d_rows, key=_sort_key), (schema, table)
        run_id = duck.execute("select run_id from meta.publication").fetchone()[0]
        rec = pg.execute("select source_run_id, tables, rows, table_rows from ibp_publish.publishes "
                         "order by id desc limit 1").fetchone()
        assert rec[:3] == (run_id, result.tables, result.rows) and rec[3] == result.counts
        leftovers = pg.execute("select nspname from pg_namespace where nspname like %s", ["%\\_\\_building"]).fetchall()
        assert leftovers == []
    duck.close()
    assert any(m.startswith("published ") for m in messages)


# ----- readers during a republish ---------------------------------------------------------------------------------

def _small_served(path: Path, run_id: str, n: int, offset: float) -> tuple[int, float, int]:
    """A served file shaped like ours (the tables the reader queries), with content that differs per run_id."""
    con = duckdb.connect(str(path))
    con.execute("create schema s1_current_state; create schema s2_triple_aim; create schema meta")
    con.execute("create table s1_current_state.metric_values as select 'RXL' as org_code, i::bigint as k, "
                "(i * 0.5 + ?)::double as value from range(?) t(i)", [offset, n])
    con.execute("create table s2_triple_aim.scores as select i::integer as k, 'score ' || i as label "
                "from range(?) t(i)", [n // 2 + 7])
    con.execute("create table meta.publication as select ?::varchar as run_id, now()::timestamp as published_at",
                [run_id])
    total = con.execute("select sum(value) from s1_current_state.metric_values").fetchone()[0]
    con.close()
    return n, total, n // 2 + 7


def test_readers_see_the_whole_old_or_the_whole_new_publish_and_never_fail(pg_server, tmp_path, monkeypatch):
    # A spawned child re-runs the parent's __main__ file; after a Streamlit AppTest in the same
    # worker that is dashboards/app.py, which cannot run bare. Give the children a neutral one.
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    url = _fresh_db(pg_server, "concurrent")
    expected = {}
    files = {}
    for run_id, n, offset in (("run-A", 40_000, 1.0), ("run-B", 65_000, 2.0)):
        files[run_id] = tmp_path / f"{run_id}.duckdb"
        expected[run_id] = _small_served(files[run_id], run_id, n, offset)
    publish_to_postgres(files["run-A"], url)
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    outs = [tmp_path / f"reader{i}.json" for i in range(2)]
    readers = [ctx.Process(target=consistency_reader, args=(url, stop, str(o))) for o in outs]
    for r in readers:
        r.start()
    try:
        time.sleep(1.5)  # readers connected and reading the first publish
        for run_id in ("run-B", "run-A", "run-B"):
            publish_to_postgres(files[run_id], url)
            time.sleep(0.3)
    finally:
        stop.set()
        for r in readers:
            r.join(30)
    assert [r.exitcode for r in readers] == [0, 0], "a reader process failed to start or crashed"
    results = [x for o in outs for x in json.loads(o.read_text())]
    errors = [x["error"] for x in results if "error" in x]
    assert errors == [], errors[:3]
    seen = set()
    for x in results:
        run_id, n, total, scores, record = x["ok"]
        assert (n, pytest.approx(total), scores) == expected[run_id] and record == run_id, x  # never mixed
        seen.add(run_id)
    assert seen == {"run-A", "run-B"} and len(results) > 20  # the readers really read across the swaps


# ----- names and values that look like SQL ------------------------------------------------------------------------

def test_injection_like_names_and_values_arrive_as_data(pg_server, tmp_path):
    url = _fresh_db(pg_server, "injection")
    served = tmp_path / "odd.duckdb"
    schema, table, column = 'x"; drop schema ibp_publish cascade; --', "t'); drop table y; --", 'c" text); --'
    values = ["'); drop table ibp_publish.publishes; --", '\\N', 'a "quoted", comma', "line\nbreak", "", None,
              "$$ select 1 $$", "Robert'); DROP TABLE students;--"]
    con = duckdb.connect(str(served))
    con.execute(f'create schema "{schema.replace(chr(34), chr(34) * 2)}"')
    q = '"' + schema.replace('"', '""') + '"."' + table.replace('"', '""') + '"'
    con.execute(f'create table {q} ("{column.replace(chr(34), chr(34) * 2)}" varchar, n integer, l varchar[], '
                f's struct(a integer, b varchar), d decimal(10,2), ts timestamp, flag boolean)')
    for i, v in enumerate(values):
        con.execute(f"insert into {q} values (?, ?, ?, {{'a': ?, 'b': ?}}, ?, ?, ?)",
                    [v, i, [v, "x"] if v is not None else None, i, v, i + 0.25, f"2025-01-0{i % 9 + 1} 10:00:00",
                     i % 2 == 0])
    con.close()
    result = publish_to_postgres(served, url)
    assert result.tables == 1 and result.rows == len(values)
    with psycopg.connect(url) as pg:
        got = pg.execute(sql.SQL("select {}, n, l, s, d, flag from {} order by n").format(
            sql.Identifier(column), sql.Identifier(schema, table))).fetchall()
        assert [r[0] for r in got] == values
        assert got[0][2] == [values[0], "x"] and got[0][3] == {"a": 0, "b": values[0]}
        assert str(got[1][4]) == "1.25" and got[0][5] is True and got[1][5] is False
        assert pg.execute("select count(*) from ibp_publish.publishes").fetchone()[0] == 1  # still there


# ----- secrets ------------------------------------------------------------------------------------------------------

def _tiny_warehouse(data: Path) -> Warehouse:
    """A warehouse holding two served tables: enough for the real serving asset to publish."""
    warehouse = Warehouse(data_dir=str(data))
    paths = warehouse.paths()
    con = duckdb.connect(str(paths.warehouse))
    con.execute("create schema s1_current_state; create schema s4_gaps")
    con.execute("create table s1_current_state.organisations as select 'R' || i as org_code, 'Trust ' || i as "
                "org_name from range(25) t(i)")
    con.execute("create table s4_gaps.needs as select 'R' || i as org_code, i * 1.5 as need from range(40) t(i)")
    con.close()
    return warehouse


def _everything_logged(instance: dg.DagsterInstance, run_id: str) -> str:
    return "\n".join(dg.serialize_value(e) for e in instance.all_logs(run_id))


def test_the_password_never_reaches_logs_metadata_or_errors(pg_server, tmp_path, monkeypatch, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    url = _fresh_db(pg_server, "secrets")
    assert pg_server.password in url
    monkeypatch.setenv(URL_ENV, url)
    warehouse = _tiny_warehouse(tmp_path / "data")
    instance = dg.DagsterInstance.ephemeral()
    ok = dg.materialize([serving_database], resources={"warehouse": warehouse}, instance=instance)
    assert ok.success
    meta = ok.asset_materializations_for_node(ok.get_asset_materialization_events()[0].node_name)[0].metadata
    assert meta["postgres_rows"].value == 66 and meta["postgres_tables"].value == 3
    assert meta["postgres_target"].value == f"127.0.0.1:{pg_server.port}/secrets"
    logged = _everything_logged(instance, ok.run_id)
    assert "published 3 tables, 66 rows to PostgreSQL 127.0.0.1/secrets" in logged

    wrong = pg_server.url("secrets", password="Wr0ng-" + pg_server.password[::-1])
    monkeypatch.setenv(URL_ENV, wrong)
    failed = dg.materialize([serving_database], resources={"warehouse": warehouse}, instance=instance,
                            raise_on_error=False)
    assert not failed.success
    error = failed.get_step_failure_events()[0].event_specific_data.error
    while error.cause is not None:
        error = error.cause
    message = error.message.strip()
    assert len(message.splitlines()) == 1 and "password authentication failed" in message, message
    assert message.startswith("ibp_pipeline.operations.postgres_publish.PostgresPublishError: cannot connect")
    everything = "\n".join([logged, _everything_logged(instance, failed.run_id), caplog.text,
                            *capsys.readouterr(), str(meta)])
    for secret in (pg_server.password, "Wr0ng-" + pg_server.password[::-1]):
        assert secret not in everything
    with pytest.raises(PostgresPublishError) as info:  # the function itself, outside Dagster
        publish_to_postgres(warehouse.paths().serving, wrong)
    assert "Wr0ng-" not in str(info.value) and "password authentication failed" in str(info.value)


# ----- Dagster's own storage --------------------------------------------------------------------------------------

def test_dagster_runs_and_events_live_in_postgresql(pg_server, tmp_path, monkeypatch):
    from ibp_pipeline import cli

    pg_server.create_database("dagster")
    for name, value in {"IBP_DAGSTER_PG_HOST": "127.0.0.1", "IBP_DAGSTER_PG_PORT": str(pg_server.port),
                        "IBP_DAGSTER_PG_DB": "dagster", "IBP_DAGSTER_PG_USER": pg_server.user,
                        "IBP_DAGSTER_PG_PASSWORD": pg_server.password}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(URL_ENV, raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    paths = get_paths(tmp_path / "data").ensure()
    monkeypatch.setenv("DAGSTER_HOME", str(paths.dagster_home))  # restored after; _prepare_dagster_home sets it
    cli._prepare_dagster_home(paths)  # what `ibp ui` and `ibp run` do
    written = (paths.dagster_home / "dagster.yaml").read_text()
    assert written == cli.TEAM_DAGSTER_YAML.read_text() and pg_server.password not in written
    instance = dg.DagsterInstance.get()
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        warehouse = _tiny_warehouse(tmp_path / "data")
        result = dg.materialize([serving_database], resources={"warehouse": warehouse}, instance=instance)
        assert result.success
        assert result.run_id in [r.run_id for r in instance.get_runs()]
        mats = instance.fetch_materializations(dg.AssetKey(["serving", "published"]), limit=5).records
        assert [m.run_id for m in mats] == [result.run_id]
    finally:
        instance.dispose()
    with psycopg.connect(pg_server.url("dagster")) as pg:  # the rows are in PostgreSQL itself
        status = pg.execute("select status from runs where run_id = %s", [result.run_id]).fetchone()
        kinds = {k for (k,) in pg.execute("select dagster_event_type from event_logs where run_id = %s",
                                          [result.run_id]).fetchall()}
    assert status == ("SUCCESS",)
    run_events = {DagsterEventType.RUN_START.value, DagsterEventType.RUN_SUCCESS.value}  # stored as PIPELINE_*
    assert run_events | {"ASSET_MATERIALIZATION"} <= kinds
    monkeypatch.delenv("IBP_DAGSTER_PG_HOST")
    cli._prepare_dagster_home(paths)  # without the team settings, back to the local instance file
    assert (paths.dagster_home / "dagster.yaml").read_text() == cli.DAGSTER_YAML


def test_cli_publishes_the_served_file_and_fails_in_one_line(pg_server, tmp_path):
    import subprocess
    import sys

    url = _fresh_db(pg_server, "cli")
    served = tmp_path / "serving.duckdb"
    _small_served(served, "run-cli", 500, 0.0)
    env = {**os.environ, "IBP_SERVING": str(served), "IBP_DATA_DIR": str(tmp_path / "data"), "TEAM_PG_URL": url}
    cmd = [sys.executable, "-m", "ibp_pipeline.cli", "publish-postgres", "--url-env", "TEAM_PG_URL"]
    ok = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert f"published 3 tables, 758 rows of {served} to PostgreSQL 127.0.0.1:{pg_server.port}/cli" in ok.stdout
    env["TEAM_PG_URL"] = pg_server.url("cli", password="Wr0ng-cli-" + pg_server.password)
    bad = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "password authentication failed" in bad.stderr and "Wr0ng-cli-" not in bad.stdout + bad.stderr
