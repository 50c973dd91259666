"""Dashboards reading the served tables from PostgreSQL (IBP_DASHBOARD_SOURCE=postgres): the DuckDB SQL of the
pages translated, every page rendering the same text as from data/serving.duckdb, against a real PostgreSQL
server holding a real publish (pg_server.py; skips, saying why, without PostgreSQL's binaries)."""
from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from ibp_pipeline.operations.postgres_publish import publish_to_postgres
from ibp_pipeline.dashboards.postgres_serving import PostgresServing, to_postgres
from ibp_pipeline.dashboards.serving import Serving, ServingUnavailable, serving_from_env
from ibp_pipeline_tests.operations.pg_server import PgServer, pg_server  # noqa: F401  (the session fixture)

from .conftest import APP, page_text

PAGES = sorted(p.name for p in (APP.parent / "app_pages").glob("*.py"))


def test_duckdb_sql_becomes_postgresql_with_bound_parameters():
    assert to_postgres("select a / b as r from t where x = ? and y = ?") == \
        "SELECT CAST(a AS DOUBLE PRECISION) / b AS r FROM t WHERE x = %s AND y = %s"
    assert to_postgres("select * from t where org = $org and m between $from and $to") == \
        "SELECT * FROM t WHERE org = %(org)s AND m BETWEEN %(from)s AND %(to)s"
    # a literal % is doubled for psycopg (which turns it back into one), never read as a placeholder
    assert to_postgres("select name || ' as % of ' as n from t where c like '%x' and d = ?") == \
        "SELECT name || ' as %% of ' AS n FROM t WHERE c LIKE '%%x' AND d = %s"
    # any_value (PostgreSQL 16+ only) as the first non-null value of the group, its own filter kept
    assert to_postgres("select any_value(u) as u, any_value(s) filter (where s <> 'ok') as s from t group by k") == (
        "SELECT (ARRAY_AGG(u) FILTER(WHERE NOT u IS NULL))[1] AS u, "
        "(ARRAY_AGG(s) FILTER(WHERE NOT s IS NULL AND (s <> 'ok')))[1] AS s FROM t GROUP BY k")
    assert to_postgres("select * from t where not isnan(v)") == \
        "SELECT * FROM t WHERE NOT (v = CAST('NaN' AS DOUBLE PRECISION))"
    assert "ROW_NUMBER() OVER" in to_postgres("select * from t qualify row_number() over (order by a) = 1")


def test_source_setting_is_checked(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("IBP_DASHBOARD_SOURCE", "postgres")
    monkeypatch.delenv("IBP_SERVING_POSTGRES_URL", raising=False)
    with pytest.raises(ServingUnavailable, match="needs IBP_SERVING_POSTGRES_URL"):
        serving_from_env()
    monkeypatch.setenv("IBP_DASHBOARD_SOURCE", "oracle")
    with pytest.raises(ServingUnavailable, match="use duckdb"):
        serving_from_env()


@pytest.fixture(scope="module")
def published(pg_server: PgServer, served_db: Path) -> str:  # noqa: F811
    """The suite's served file published into a fresh database; its URL."""
    pg_server.create_database("dashboards")
    url = pg_server.url("dashboards")
    publish_to_postgres(served_db, url)
    return url


def _render(page: str, org: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    at.selectbox(key="ibp_org").select(org).run()
    at.switch_page(f"app_pages/{page}").run()
    assert not at.exception, (page, at.exception)
    return at


def test_every_page_reads_the_same_from_postgresql(published: str, served_db: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch, org: str = "QOP"):
    """For an ICB, each page's text (titles, figures, captions, tiles) from PostgreSQL equals the text from the
    DuckDB file the tables were published from (a trust's rows are compared query by query below)."""
    monkeypatch.setenv("IBP_USERS_FILE", str(tmp_path / "no-users.yaml"))
    monkeypatch.setenv("IBP_SERVING", str(served_db))
    monkeypatch.setenv("IBP_SERVING_POSTGRES_URL", published)
    for page in PAGES:
        monkeypatch.setenv("IBP_DASHBOARD_SOURCE", "duckdb")
        expected = page_text(_render(page, org))
        monkeypatch.setenv("IBP_DASHBOARD_SOURCE", "postgres")
        got = page_text(_render(page, org))
        assert len(expected) > 200, page
        assert got == expected, page


def test_queries_and_versions_match_the_published_file(published: str, served_db: Path):
    pg, duck = PostgresServing(published), Serving(served_db)
    sql = ("select metric_id, count(*) as n, avg(value) as mean, any_value(period_grain) as grain "
           "from s1_current_state.metric_values where org_code = $org group by metric_id order by metric_id")
    a, b = duck.query(sql, {"org": "RJ1"}), pg.query(sql, {"org": "RJ1"})
    assert a.height > 5 and a.columns == b.columns
    assert a["metric_id"].equals(b["metric_id"]) and a["n"].equals(b["n"]) and a["grain"].equals(b["grain"])
    assert (a["mean"] - b["mean"]).abs().max() < 1e-9
    assert pg.has_table("s5_impact", "risk") and not pg.has_table("s5_impact", "nothing")
    # the cache key of every page names the latest publish (a new publish: a new id)
    with psycopg.connect(published) as con:
        latest = con.execute("select max(id) from ibp_publish.publishes").fetchone()[0]
    assert latest >= 1 and pg.version().startswith(f"pg-{latest}-")


def test_unreadable_server_is_one_line_without_the_password(pg_server: PgServer):  # noqa: F811
    url = pg_server.url("dashboards", password="wrong-secret-1234")
    with pytest.raises(ServingUnavailable) as err:
        PostgresServing(url).version()
    message = str(err.value)
    assert "\n" not in message and "wrong-secret-1234" not in message
    assert "cannot read the served tables in PostgreSQL" in message
