"""The asset graph as the definitions load it, against a committed snapshot: every asset key's group, upstream
keys and checks, one line each. A change to the graph (a renamed key, a dropped dependency, a lost check) fails
here and shows in review as a diff of ibp_pipeline_tests/snapshots/asset_graph.txt.

After an intended change, rewrite the snapshot and commit it with the change:
    IBP_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest ibp_pipeline_tests/test_asset_graph.py
"""
from __future__ import annotations

import os
from pathlib import Path

from ibp_pipeline.definitions import defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.txt"


def graph_text() -> str:
    """One line per fact, sorted: '<key>  group <group>', '<key>  <- <upstream key>', '<key>  check <name>'."""
    graph = defs.resolve_asset_graph()
    lines = [f"{c.asset_key.to_user_string()}  check {c.name}" for c in graph.asset_check_keys]
    for key in graph.get_all_asset_keys():
        node, name = graph.get(key), key.to_user_string()
        lines.append(f"{name}  group {node.group_name}")
        lines += [f"{name}  <- {p.to_user_string()}" for p in node.parent_keys]
    return "\n".join(sorted(lines)) + "\n"


def test_the_asset_graph_matches_its_snapshot():
    now = graph_text()
    if os.environ.get("IBP_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(now)
    was = SNAPSHOT.read_text()
    if now != was:
        old, new = set(was.splitlines()), set(now.splitlines())
        raise AssertionError("the asset graph changed (IBP_UPDATE_SNAPSHOT=1 rewrites the snapshot if intended):\n"
                             + "\n".join([f"- {x}" for x in sorted(old - new)] + [f"+ {x}" for x in sorted(new - old)]))


def test_every_group_is_named_as_its_key_prefix():
    """raw/..., s1_current_state/..., dq/... : a group is the warehouse schema its assets write."""
    graph = defs.resolve_asset_graph()
    wrong = [f"{k.to_user_string()} in group {graph.get(k).group_name}" for k in graph.get_all_asset_keys()
             if graph.get(k).group_name != k.path[0]]
    assert wrong == []
