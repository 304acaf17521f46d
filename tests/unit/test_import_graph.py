"""The house is one-way: config <- models_registry <- evaluation <- arena <- pipeline <- workers.

Every import is read from the source (module-level and inside functions), so a lazy import
cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

LAYERS = ["config", "models_registry", "evaluation", "arena", "pipeline", "workers"]
PURE_CORES = [
    "arena.ratings",
    "evaluation.metrics",
    "evaluation.features",
    "evaluation.judges",
    "evaluation.provenance",
    "models_registry.generators",
]
# The URL root composes every app's routes; it is the one module allowed to look up.
COMPOSITION_ROOTS = {"config.urls"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_imports(path: Path) -> set[str]:
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    return imports_in(path.read_text(), package=package)


def imports_in(text: str, *, package: str) -> set[str]:
    """Absolute names of the project modules `text` imports (relative imports resolved)."""
    tree = ast.parse(text)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] in LAYERS}


def sources() -> dict[str, Path]:
    files = {}
    for app in LAYERS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                files[module_name(path)] = path
    return files


SOURCES = sources()
IMPORTS = {name: project_imports(path) for name, path in SOURCES.items()}


def resolve(name: str) -> str | None:
    """The project module an imported name refers to (a module, or the module defining it)."""
    while name and name not in SOURCES:
        name = name.rpartition(".")[0]
    return name or None


def test_the_graph_covers_the_apps():
    assert {"pipeline.services", "workers.tasks.pipeline", "arena.judging"} <= set(SOURCES)
    assert len(SOURCES) > 100


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_no_module_imports_a_higher_layer(module):
    if module in COMPOSITION_ROOTS:
        return
    layer = LAYERS.index(module.split(".")[0])
    upward = sorted(name for name in IMPORTS[module] if LAYERS.index(name.split(".")[0]) > layer)
    assert not upward, f"{module} imports {upward}, above its layer {LAYERS[layer]}"


@pytest.mark.parametrize("core", PURE_CORES)
def test_pure_cores_import_no_django_and_no_app_code(core):
    offenders = {}
    for module, path in SOURCES.items():
        if module != core and not module.startswith(core + "."):
            continue
        tree = ast.parse(path.read_text())
        django = [
            alias.name if isinstance(node, ast.Import) else node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
            if (alias.name if isinstance(node, ast.Import) else node.module or "").startswith(
                ("django", "rest_framework", "celery")
            )
        ]
        # A pure core may use other pure cores (e.g. the synthetic domain), never app modules.
        apps = [
            name
            for name in IMPORTS[module]
            if not any(name == c or name.startswith(c + ".") for c in PURE_CORES)
        ]
        if django or apps:
            offenders[module] = sorted(set(django) | set(apps))
    assert not offenders, offenders


def test_no_import_cycle_between_modules():
    graph = {
        module: {target for name in names if (target := resolve(name)) and target != module}
        for module, names in IMPORTS.items()
    }
    # A package importing its own submodules (re-exports) is not a cycle between files.
    for module in graph:
        graph[module] = {t for t in graph[module] if not t.startswith(module + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycle = stack[stack.index(target) :] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_the_checker_sees_lazy_and_relative_upward_imports():
    """The checks above can fail: imports inside functions and relative ones are found."""
    text = (
        "def f():\n"
        "    from workers.pipeline import pipeline_chain\n"
        "    from ..selectors import x\n"
        "    from . import y\n"
    )
    found = imports_in(text, package="arena.management")
    assert {"workers.pipeline", "arena.selectors", "arena.management.y"} <= found
    assert any(LAYERS.index(name.split(".")[0]) > LAYERS.index("arena") for name in found)
