"""Dashboard fixtures: the real Streamlit app (AppTest) over the served database of the suite's end-to-end run."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import duckdb
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from ibp_pipeline.config import PROJECT_ROOT
from ibp_pipeline.dashboards.serving import Serving

APP = PROJECT_ROOT / "dashboards" / "app.py"


@pytest.fixture(scope="session")
def served_db(request: pytest.FixtureRequest) -> Path:
    """data/serving.duckdb published by the suite's one end-to-end run (IBP_TEST_SERVING overrides it, so a
    developer can iterate on pages against an existing publish without the 3-minute run)."""
    override = os.environ.get("IBP_TEST_SERVING")
    if override:
        return Path(override)
    bundled_run = request.getfixturevalue("bundled_run")
    assert bundled_run.result.success
    return bundled_run.paths.serving


@pytest.fixture
def app(served_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., AppTest]:
    """make(page=None, org=None, users_file=None) -> an AppTest that has run once, in local mode unless a users
    file is given; page is a file under dashboards/app_pages/ ('performance.py'), org an ODS code."""
    monkeypatch.setenv("IBP_SERVING", str(served_db))

    def make(page: str | None = None, org: str | None = None, users_file: Path | None = None,
             query: dict[str, str] | None = None) -> AppTest:
        monkeypatch.setenv("IBP_USERS_FILE", str(users_file or tmp_path / "no-users.yaml"))
        at = AppTest.from_file(str(APP), default_timeout=120)
        for k, v in (query or {}).items():
            at.query_params[k] = v
        at.run()
        assert not at.exception, at.exception
        if org is not None:
            at.selectbox(key="ibp_org").select(org).run()
            assert not at.exception, at.exception
        if page is not None:
            at.switch_page(f"app_pages/{page}").run()
            assert not at.exception, at.exception
        return at

    return make


def page_text(at: AppTest) -> str:
    """Everything a reader sees as text: titles, markdown, captions, metrics, errors, info boxes."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "error", "warning", "info", "success"):
        parts += [str(el.value) for el in getattr(at, kind)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    return "\n".join(parts)


def rows_frame(rows: list[dict], columns: dict) -> pl.DataFrame:
    """Rows given as dicts (missing columns null) typed by a column -> dtype mapping."""
    return pl.DataFrame([{c: r.get(c) for c in columns} for r in rows], schema=columns)


def make_serving(path: Path, tables: dict[str, pl.DataFrame]) -> Serving:
    """A hand-made served database at path (for known-answer tests): each frame becomes schema.table."""
    con = duckdb.connect(str(path))
    try:
        for name, frame in tables.items():
            con.execute(f"create schema if not exists {name.split('.')[0]}")
            con.register("frame", frame)
            con.execute(f"create table {name} as select * from frame")
            con.unregister("frame")
    finally:
        con.close()
    return Serving(path)
