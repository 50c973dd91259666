"""The catalogue of warehouse tables (ibp_pipeline/warehouse_tables.py) against what a real run leaves, the asset
graph and the data dictionary. What the run left is read here with DuckDB's own catalogue, not through the module."""
from __future__ import annotations

import re

import duckdb

from ibp_pipeline.config import PROJECT_ROOT
from ibp_pipeline.definitions import defs
from ibp_pipeline.warehouse_tables import SERVING_ONLY, TABLES, served

DICTIONARY = PROJECT_ROOT / "docs" / "data-dictionary.md"


def objects(path) -> dict[str, str]:
    """schema.name -> 'table' or 'view', for every table and view of a database file."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("select schema_name || '.' || table_name, 'table' from duckdb_tables() "
                           "union all select schema_name || '.' || view_name, 'view' from duckdb_views() "
                           "where not internal").fetchall()
    finally:
        con.close()
    return dict(rows)


def test_the_catalogue_lists_every_table_a_run_leaves_and_nothing_else(bundled_run) -> None:
    assert bundled_run.result.success
    found = objects(bundled_run.paths.warehouse)
    listed = {t.qualified: "view" if t.view else "table" for t in TABLES}
    unlisted = sorted(set(found) - set(listed))
    missing = sorted(n for n in set(listed) - set(found) if not next(t for t in TABLES if t.qualified == n).sometimes)
    assert not unlisted, f"tables in the warehouse that warehouse_tables.py does not list: {unlisted}"
    assert not missing, f"tables warehouse_tables.py lists that the run did not build: {missing}"
    assert found == {n: listed[n] for n in found}  # a view is listed as a view, a table as a table


def test_the_served_copy_holds_exactly_the_served_tables(bundled_run) -> None:
    found = objects(bundled_run.paths.serving)
    assert set(found) == {t.qualified for t in served()} | {t.qualified for t in SERVING_ONLY}
    assert set(found.values()) == {"table"}


def test_every_builder_is_an_asset() -> None:
    keys = {tuple(n.key.path) for n in defs.resolve_asset_graph().asset_nodes}
    wrong = [(t.qualified, t.built_by) for t in TABLES + SERVING_ONLY if t.built_by and t.built_by not in keys]
    assert not wrong, wrong


def test_the_publish_step_waits_for_every_served_tables_builder() -> None:
    graph = defs.resolve_asset_graph()
    parents = {tuple(k.path) for k in graph.get(next(n.key for n in graph.asset_nodes
                                                     if n.key.path == ["serving", "published"])).parent_keys}
    builders = {t.built_by for t in served() if t.built_by}
    assert builders <= parents, sorted(builders - parents)


def test_every_served_table_is_in_the_data_dictionary() -> None:
    """The dictionary names tables in table rows as `schema.table`, then `other`, `more` of the same schema, and in
    bullets "- `table`: ..." under a heading that names the schema, "## Step 1: ... (`s1_current_state`)"."""
    documented = set()
    section = None
    for line in DICTIONARY.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            found = re.search(r"\(`([a-z0-9_]+)`\)", line)
            section = found.group(1) if found else None
        elif line.startswith("- `") and section:
            documented.add(f"{section}.{re.match(r'- `([a-z0-9_]+)`', line).group(1)}")
        elif line.startswith("| `"):
            schema = None
            for name in re.findall(r"`([a-z0-9_.]+)`", line.split("|")[1]):
                if "." in name:
                    schema, name = name.split(".", 1)
                if schema:
                    documented.add(f"{schema}.{name}")
    missing = sorted(({t.qualified for t in served()} | {t.qualified for t in SERVING_ONLY}) - documented)
    assert not missing, f"served tables not explained in docs/data-dictionary.md: {missing}"


def test_every_table_name_written_in_the_code_is_in_the_catalogue() -> None:
    """Table names are still written by hand in SQL (it reads better than constants); each one must be a table
    the catalogue lists, so a renamed or dropped table cannot linger in a query. Read from the package's string
    literals (docstrings aside) with `ast`; dashboards and operations included."""
    import ast

    from ibp_pipeline.lib.import_graph import discover
    from ibp_pipeline.warehouse_tables import BY_NAME

    from .test_asset_reads import code_strings

    qualified = re.compile(r"(?<![\w.])(s[1-7]_[a-z_]+|raw|latest|meta|dq)\.([a-z_][a-z0-9_]*)\b")
    not_tables = {"meta.load_id_seq": "the sequence that numbers loads (ingest.py)"}
    unknown: dict[str, set[str]] = {}
    seen = 0
    for module, path in discover().items():
        for text in code_strings(ast.parse(path.read_text())):
            for schema, name in qualified.findall(text):
                seen += 1
                if f"{schema}.{name}" not in BY_NAME and f"{schema}.{name}" not in not_tables:
                    unknown.setdefault(f"{schema}.{name}", set()).add(module)
    assert seen > 100  # the scan sees the code's queries
    assert not unknown, "table names the catalogue does not list: " + "; ".join(
        f"{t} in {', '.join(sorted(m))}" for t, m in sorted(unknown.items()))
