"""Every warehouse table an asset's code names is built by that asset or by one upstream of it.

Why: `ibp run` orders the steps and decides what is stale from the Dagster deps (operations/up_to_date.py). A step
that reads a table no upstream asset builds could run before that table is rebuilt, or be skipped as up to date when
the table changed. The reads are found in the code itself, not declared again: the string literals (docstrings
aside) of the asset's function and of every package module it imports inside that function, transitively (lib/
aside), matched against the warehouse catalogue (warehouse_tables.py). Publications' loaders and the publish step
name their tables from lists, so steps 1-6 are checked; the catalogue test covers the rest.
"""
from __future__ import annotations

import ast
import inspect
import re
import textwrap

import dagster as dg

from ibp_pipeline import warehouse_tables
from ibp_pipeline.definitions import defs
from ibp_pipeline.lib.import_graph import PACKAGE, closure, discover, import_graph

CHECKED = ("s1_current_state", "s2_triple_aim", "s3_resources", "s4_gaps", "s5_impact", "s6_scenarios")
# module granularity over-reaches here; each entry says why the read is not real
NOT_READ = {
    ("s3_resources/activity_costs", "s2_triple_aim/peer_groups"):
        "costs.py imports resource_map's table-name constants only; resource_map reads the peer groups",
}

BUILT_BY = {name: dg.AssetKey(list(t.built_by)) for name, t in warehouse_tables.BY_NAME.items() if t.built_by}
TABLE_NAME = re.compile(r"(?<![\w.])(" + "|".join(re.escape(n) for n in sorted(BUILT_BY, key=len, reverse=True))
                        + r")(?!\w)")
MODULES = discover()
IMPORTS = import_graph()


def code_strings(tree: ast.AST) -> list[str]:
    """The string literals of a tree (f-string parts included), docstrings left out."""
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def _names(tree: ast.AST) -> set[str]:
    return {m for s in code_strings(tree) for m in TABLE_NAME.findall(s)}


def _imported_in(fn, tree: ast.AST) -> set[str]:
    """The package modules a function imports in its body (relative imports resolved against its module)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = fn.__module__.rsplit(".", node.level)[0]
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            out |= {m for m in (name, *(f"{name}.{a.name}" for a in node.names)) if m in MODULES}
    return out


def tables_read(node) -> set[str]:
    """The catalogue's tables named by an asset's code (see the module doc)."""
    found: set[str] = set()
    for op in node.assets_def.node_def.iterate_op_defs():
        fn = op.compute_fn.decorated_fn
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
        found |= _names(tree)
        for start in _imported_in(fn, tree):
            for module in closure(IMPORTS, start):
                if module in MODULES and not module.startswith(f"{PACKAGE}.lib"):
                    found |= _names(ast.parse(MODULES[module].read_text()))
    return found


def test_every_table_a_step_reads_is_built_upstream_of_it():
    graph = defs.resolve_asset_graph()
    checked, wrong = 0, []
    for node in graph.asset_nodes:
        if not node.is_materializable or node.key.path[0] not in CHECKED:
            continue
        checked += 1
        upstream = graph.get_ancestor_asset_keys(node.key) | set(node.assets_def.keys)
        for table in sorted(tables_read(node)):
            builder = BUILT_BY[table]
            if builder not in upstream and (node.key.to_user_string(), builder.to_user_string()) not in NOT_READ:
                wrong.append(f"{node.key.to_user_string()} reads {table}, built by {builder.to_user_string()}, "
                             f"which is not upstream of it (add it to the asset's deps)")
    assert checked >= 20 and wrong == [], "\n".join(wrong)


def test_the_reads_finder_sees_a_real_read_and_skips_docstrings():
    """The finder itself: needs reads the RTT extract in SQL; a table named only in a docstring is not a read."""
    graph = defs.resolve_asset_graph()
    assert "latest.rtt_full_extract" in tables_read(graph.get(dg.AssetKey(["s4_gaps", "needs"])))
    tree = ast.parse('def f():\n    """reads s6_scenarios.results"""\n    return "select 1 from s4_gaps.needs"\n')
    assert _names(tree) == {"s4_gaps.needs"}
    for reader, builder in NOT_READ:  # each exception is still needed
        node = graph.get(dg.AssetKey(reader.split("/")))
        assert builder in {BUILT_BY[t].to_user_string() for t in tables_read(node)}
