"""Which assets a refresh must build, and which are up to date, so `ibp run` with nothing new takes seconds.

An asset is up to date when what it is built from is what it was built from at its last successful run. That is
its fingerprint, a sha256 over:
- its code: the source text of every package module its ops (and the checks on it) import, directly or through
  others (lib/import_graph.py), with the documents those modules read (DOCUMENTS: the shipped standards, initiatives
  and scenarios, and the analyst's overrides in data/config);
- for a publication (raw/<source>): the files it would load now, by sha256, in load order (a new, changed or
  removed file changes it);
- what every asset shares: the planning year in force (today's date moves it each April), the Monte Carlo draws,
  and the versions of the libraries that compute (a new numpy may move a figure);
- the fingerprints of the assets it depends on, so a change flows down the graph and nothing downstream of a new
  file, a new document or new code is skipped.

A successful `ibp run` records every fingerprint in the warehouse (meta.asset_fingerprints); a failed run records
none, so the next run builds the same assets again. A new or rebuilt warehouse has none, so everything is built.
The nightly schedule and the landing sensor ask for the same stale steps (operations/schedules.py) and tag the run
with the digest of the fingerprints they saw; when that run succeeds, its fingerprints are recorded only if they
are still the same (nothing landed or changed meanwhile). Runs started by hand in the Dagster UI record nothing:
the next refresh rebuilds what they built, which is safe, only slower.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import duckdb

from ..config import DOCUMENTS, Paths
from ..lib.duckdb_tables import table_exists
from ..lib.import_graph import closure, discover, import_graph

if TYPE_CHECKING:  # the type only: dagster does not export it at its top level
    from dagster._core.definitions.assets.graph.asset_graph import AssetGraph

TABLE = "meta.asset_fingerprints"
SERVING = dg.AssetKey(["serving", "published"])
# Documents read at run time by a module (not imported, so the import graph cannot see them): module -> globs, from
# the package's documents folder ("documents/...") or the data folder ("data/..."); "local ambitions" is the file
# standards.local_ambitions_path names (IBP_LOCAL_AMBITIONS, else config/ of the data folder); "plan store" is the
# database of plan versions (Paths.plan_store), so a plan loaded since the last run rebuilds the plan's tables.
DOCUMENTS_READ_BY: dict[str, tuple[str, ...]] = {
    "ibp_pipeline.step2_triple_aim.standards": ("documents/standards.yaml", "local ambitions"),
    "ibp_pipeline.step5_impact.initiatives": ("documents/initiatives.yaml",),
    "ibp_pipeline.simulation.scenarios": ("documents/scenarios/*.yaml",),
    "ibp_pipeline.step6_scenarios.assets": ("data/config/scenarios/*.yaml",),
    "ibp_pipeline.plan.assumptions": ("documents/plan_assumptions.yaml",),
    "ibp_pipeline.step2_triple_aim.spc_baselines": ("documents/spc_baselines.yaml", "data/config/spc_rebase.yaml"),
    "ibp_pipeline.plan.tables": ("plan store",),
}
LIBRARIES = ("dagster", "duckdb", "polars", "numpy", "scipy", "statsmodels", "scikit-learn", "great-expectations",
             "fastexcel", "openpyxl", "xlrd")


def _sha(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8") if isinstance(p, str) else p)
        h.update(b"\x1f")
    return h.hexdigest()


def documents(module: str, paths: Paths) -> list[Path]:
    """The documents a module reads at run time (DOCUMENTS_READ_BY), that exist now."""
    out = []
    for pattern in DOCUMENTS_READ_BY.get(module, ()):
        if pattern == "local ambitions":
            from ..step2_triple_aim.standards import local_ambitions_path

            path = local_ambitions_path()[0]
            out += [path] if path.is_file() else []
            continue
        if pattern == "plan store":
            from ..plan.store import ensure_store

            ensure_store(paths.plan_store)  # a new data folder's example plan, before its bytes are read
            out += [paths.plan_store] if paths.plan_store.is_file() else []
            continue
        folder, _, rest = pattern.partition("/")
        base = DOCUMENTS if folder == "documents" else paths.data
        out += sorted(p for p in base.glob(rest) if p.is_file())
    return out


def shared_part(paths: Paths, today: dt.date | None = None) -> str:
    """What every asset is built from: the planning year, the draws, the computing libraries' versions."""
    from ..simulation.fanout import default_draws
    from ..step2_triple_aim.standards import planning_year_in_force

    versions = []
    for lib in LIBRARIES:
        try:
            versions.append(f"{lib}={metadata.version(lib)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{lib}=absent")
    return _sha(planning_year_in_force(today), str(default_draws()), *versions)


def _op_modules(node_def) -> set[str]:
    return {op.compute_fn.decorated_fn.__module__ for op in node_def.iterate_op_defs()}


@dataclass
class Fingerprints:
    """Each asset's fingerprint now."""
    by_key: dict[dg.AssetKey, str]
    order: list[dg.AssetKey]  # upstream before downstream

    def digest(self) -> str:
        """One sha256 over every fingerprint: equal digests, equal fingerprints."""
        return _sha(*(f"{'/'.join(k.path)}={self.by_key[k]}" for k in self.order))


def fingerprints(defs: dg.Definitions | AssetGraph, paths: Paths, today: dt.date | None = None) -> Fingerprints:
    """Every asset's fingerprint now (see the module doc), from the definitions or their asset graph (which is what
    a schedule or sensor is given, as its repository's)."""
    from ..step1_current_state.ingest import files_for, sha256_of
    from ..step1_current_state.sources import BY_NAME

    graph = defs.resolve_asset_graph() if isinstance(defs, dg.Definitions) else defs
    imports = import_graph()
    sources = discover()
    module_text: dict[str, str] = {}

    def module_part(module: str) -> str:
        if module not in module_text:
            parts = [sources[module].read_bytes()] if module in sources else [b"(not in the package)"]
            parts += [p.name.encode() + b":" + p.read_bytes() for p in documents(module, paths)]
            module_text[module] = _sha(*parts)
        return module_text[module]

    modules: dict[dg.AssetKey, set[str]] = {}
    for node in graph.asset_nodes:
        if node.is_materializable:
            modules[node.key] = _op_modules(node.assets_def.node_def)
    for checks_def in (a for a in graph.assets_defs if a.check_keys and not a.keys):  # checks defined apart
        for check_key in checks_def.check_keys:
            if check_key.asset_key in modules:
                modules[check_key.asset_key] |= _op_modules(checks_def.node_def)
    shared = shared_part(paths, today)
    order = list(graph.toposorted_asset_keys)
    out: dict[dg.AssetKey, str] = {}
    for key in order:
        if key not in modules:
            continue
        code = sorted(set().union(*(closure(imports, m) for m in modules[key])))
        parts = [shared, *(f"{m}:{module_part(m)}" for m in code)]
        if key.path[0] == "raw" and key.path[-1] in BY_NAME:
            files = files_for(BY_NAME[key.path[-1]], paths)
            parts += [f"file {p.name}:{sha256_of(p) if p.is_file() and not p.is_symlink() else 'link'}"
                      for p in files]
        parts += [f"upstream {'/'.join(u.path)}:{out.get(u, 'external')}"
                  for u in sorted(graph.get(key).parent_keys, key=lambda k: k.path)]
        out[key] = _sha(*parts)
    return Fingerprints(out, [k for k in order if k in out])


def recorded(warehouse: Path) -> dict[dg.AssetKey, str]:
    """The fingerprints of the last successful `ibp run` (none when there is no warehouse yet)."""
    if not warehouse.exists():
        return {}
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        if not table_exists(con, "meta", "asset_fingerprints"):
            return {}
        rows = con.execute(f"select asset_key, fingerprint from {TABLE}").fetchall()
    finally:
        con.close()
    return {dg.AssetKey(k.split("/")): f for k, f in rows}


def stale(now: Fingerprints, before: dict[dg.AssetKey, str]) -> list[dg.AssetKey]:
    """The assets whose fingerprint differs from the recorded one, upstream first."""
    return [k for k in now.order if before.get(k) != now.by_key[k]]


def unfinished(warehouse: Path) -> str | None:
    """The run id of a refresh that began rewriting the warehouse and never published (it was killed), if any."""
    from .publish import unfinished_refresh

    if not warehouse.exists():
        return None
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return unfinished_refresh(con, "")
    finally:
        con.close()


def to_build(defs: dg.Definitions | AssetGraph, paths: Paths, everything: bool = False
             ) -> tuple[Fingerprints, list[dg.AssetKey], str]:
    """The fingerprints now, the assets a refresh must build (upstream first) and why, when it is not the usual
    stale set: everything when asked, or when a refresh was killed part-way (which of its tables it had rewritten
    is not known); the publish step alone when the served copy was deleted."""
    now = fingerprints(defs, paths)
    killed = None if everything else unfinished(paths.warehouse)
    if everything or killed:
        why = f"an earlier refresh (run {killed[:8]}) stopped part-way, so every step is rebuilt" if killed else ""
        return now, now.order, why
    todo = stale(now, recorded(paths.warehouse))
    if not todo and not paths.serving.exists():
        return now, [SERVING], "the served copy is missing, so it is published again"
    return now, todo, ""


def record(warehouse: Path, now: Fingerprints, built: list[dg.AssetKey], run_id: str) -> None:
    """Keep the fingerprints of the assets a successful run built (the others keep theirs)."""
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("create schema if not exists meta")
        con.execute(f"create table if not exists {TABLE} (asset_key varchar primary key, fingerprint varchar, "
                    f"run_id varchar, built_at timestamp)")
        at = dt.datetime.now().replace(microsecond=0)
        con.executemany(f"insert or replace into {TABLE} values (?, ?, ?, ?)",
                        [("/".join(k.path), now.by_key[k], run_id, at) for k in built if k in now.by_key])
    finally:
        con.close()


def describe(keys: list[dg.AssetKey], most: int = 8) -> str:
    """The steps to rebuild, in words for the run's log: the first few, then how many more."""
    names = ["/".join(k.path) for k in keys]
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")
