"""The package's own import graph, read from its source with `ast` (nothing is imported or run).

Why here: the architecture test checks the layering from it, and `ibp run` uses it to know which code an asset is
built by (operations/up_to_date.py): an asset's code is the modules its ops import, transitively.

Every `import` and `from ... import` counts, at module level or inside a function, relative imports resolved
against the importing module's package, and `from package import name` counts as an import of the submodule
package.name when there is one.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "ibp_pipeline"
ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def discover(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    return {module_name(p, root): p for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is a module of the package (None outside it)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _import_nodes(tree: ast.AST) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement with whether it runs at module level (True) or inside a function (False)."""
    out: list[tuple[ast.Import | ast.ImportFrom, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                out.append((child, not in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return out


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> dict[str, bool]:
    """The package modules `module` imports (anywhere in its file), each with whether any of those imports runs at
    module level."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: dict[str, bool] = {}
    for node, at_module_level in _import_nodes(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[:len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # `from pkg import sub` imports the submodule pkg.sub; `from mod import name` imports mod
            targets = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in modules else origin
                       for alias in node.names]
        for target in targets:
            resolved = _resolve(target, modules) if target.split(".")[0] == PACKAGE else None
            if resolved is not None and resolved != module:
                found[resolved] = found.get(resolved, False) or at_module_level
    return found


def import_graph(root: Path = ROOT) -> dict[str, dict[str, bool]]:
    """module -> {imported module: imported at module level}, for every module of the package."""
    modules = discover(root)
    return {m: imports_of(m, p, modules) for m, p in modules.items()}


def closure(graph: dict[str, dict[str, bool]] | dict[str, set[str]], start: str) -> set[str]:
    """Every module `start` imports, directly or through others, and itself."""
    seen, todo = {start}, [start]
    while todo:
        for w in graph.get(todo.pop(), ()):
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen
