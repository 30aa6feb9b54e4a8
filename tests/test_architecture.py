"""The house rules, checked on the source: no import circle, the core free of Flask and
Celery, worker/ and web/ apart, and both reaching the core only through its faces."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: Repository folder -> the installed package it becomes.
PACKAGES = {"notifier": "notifier", "worker": "notifier.worker", "web": "notifier.web"}
#: What worker/ and web/ may import of the core: its faces, the tables, the input rules, the
#: counting hooks and the command group their CLI plugins join.
FACES = {
    "notifier",
    "notifier.accounts",
    "notifier.actions",
    "notifier.delivery",
    "notifier.escalation",
    "notifier.health",
    "notifier.live",
    "notifier.preferences",
    "notifier.models",
    "notifier.validation",
    "notifier.cli",
    "notifier.metrics",
    "notifier.retry",
}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder, package in PACKAGES.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if "versions" in parts or "__pycache__" in parts:
                continue  # Alembic migrations: loaded by Alembic, never imported
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join([package, *parts])
            if folder == "notifier" and name.split(".")[1:2] in (["worker"], ["web"]):
                continue
            found[name] = path
    return found


MODULES = _modules()


def _targets(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports, anywhere in it, with the packages that import runs."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            # "from pkg import mod" imports the module pkg.mod; "from mod import name", mod.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            # Importing a.b.c runs a, a.b and a.b.c; the packages that hold ``name`` itself
            # have begun before it, so of those only an import of the package itself counts.
            for end in range(1, len(parts) + 1):
                prefix = ".".join(parts[:end])
                held = name.startswith(f"{prefix}.") and prefix != target
                if prefix in MODULES and prefix != name and not held:
                    found.add(prefix)
    return found


def _external(path: Path) -> set[str]:
    tops: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            tops.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            tops.add(node.module.split(".")[0])
    return tops


GRAPH = {name: _targets(name, path) for name, path in MODULES.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle in ``graph``, as the list of modules around it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def _layer(name: str) -> str:
    if name.startswith("notifier.worker"):
        return "worker"
    if name.startswith("notifier.web"):
        return "web"
    return "core"


def test_the_checker_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_covers_the_three_packages() -> None:
    layers = {_layer(name) for name in GRAPH}
    assert layers == {"core", "worker", "web"}
    assert "notifier.outbox" in GRAPH["notifier.alerts"]


@pytest.mark.parametrize("layer", ["core", "worker", "web"])
def test_no_import_circle(layer: str) -> None:
    graph = {
        name: {target for target in targets if _layer(target) == layer}
        for name, targets in GRAPH.items()
        if _layer(name) == layer
    }
    assert _cycle(graph) is None


def test_no_circle_across_the_whole_tree() -> None:
    assert _cycle(GRAPH) is None


def test_the_core_imports_neither_flask_nor_celery_nor_its_callers() -> None:
    for name, path in MODULES.items():
        if _layer(name) != "core":
            continue
        assert not _external(path) & {"flask", "flask_login", "celery", "kombu", "billiard"}, name
        assert all(_layer(target) == "core" for target in GRAPH[name]), name


def test_worker_and_web_never_import_each_other() -> None:
    for name, targets in GRAPH.items():
        layer = _layer(name)
        if layer != "core":
            other = "web" if layer == "worker" else "worker"
            assert not any(_layer(target) == other for target in targets), name


def test_worker_and_web_reach_the_core_only_through_its_faces() -> None:
    offenders = {
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        if _layer(name) != "core"
        for target in targets
        if _layer(target) == "core" and target not in FACES
    }
    assert offenders == set()


def test_no_private_name_is_imported_across_modules() -> None:
    offenders = set()
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                offenders.update(
                    f"{name}: {alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                )
    assert offenders == set()


def _web(name: str) -> set[str]:
    return {target for target in GRAPH[name] if _layer(target) == "web"}


def test_web_state_is_at_the_bottom() -> None:
    """``web/state.py`` imports nothing of web/ at run time (throttle only in an annotation)."""
    assert _web("notifier.web.state") <= {"notifier.web.throttle"}
    tree = ast.parse(MODULES["notifier.web.state"].read_text())
    runtime = [node for node in tree.body if isinstance(node, ast.ImportFrom) and node.level]
    assert runtime == []


def test_web_layers_read_state_then_blueprints_then_extension_then_app() -> None:
    web = "notifier.web"
    for name in (f"{web}.auth", f"{web}.pages", f"{web}.api"):
        assert f"{web}.extension" not in _web(name)
        assert f"{web}.app" not in _web(name)
    # No route module imports the API package back; they share only its blueprint module.
    for route in ("alerts", "notifications", "openapi", "blueprint", "errors", "operations"):
        assert f"{web}.api" not in _web(f"{web}.api.{route}"), route
    assert f"{web}.state" in _web(f"{web}.extension")
    assert f"{web}.extension" in _web(f"{web}.app")


def test_the_core_command_knows_no_celery() -> None:
    """Its -A option loads the app through the notifier.app_loaders plugin, as Flask's does."""
    source = (REPO / "notifier" / "cli.py").read_text()
    assert "celery" not in source.lower()


def test_the_wheel_lists_every_package() -> None:
    """setuptools builds only the packages pyproject.toml names: a new one left out is
    missing from the wheel (and its import fails only in an installed host)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = set()
    for folder, dotted in PACKAGES.items():
        for init in (REPO / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(REPO / folder).parts
            if "__pycache__" not in parts:
                found.add(".".join((dotted, *parts)))
    assert found - listed == set(), "add these to [tool.setuptools] packages"
