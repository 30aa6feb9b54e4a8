"""The web package's modules import each other in one direction: no circle, state at the bottom."""

from __future__ import annotations

import ast
from pathlib import Path

import notifier.web

PACKAGE = "notifier.web"
ROOT = Path(notifier.web.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The web modules ``name`` imports (including under TYPE_CHECKING and inside functions)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name.replace("web.", f"{PACKAGE}.", 1) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            # "from .pkg import mod" imports the module pkg.mod; "from .mod import name" the module.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        found.update(target for target in targets if target in known and target != name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


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


def test_the_checker_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_web_modules_import_each_other_without_a_circle() -> None:
    graph = _graph()
    assert f"{PACKAGE}.state" in graph and f"{PACKAGE}.api.blueprint" in graph
    assert _cycle(graph) is None


def test_state_imports_nothing_of_web() -> None:
    assert _graph()[f"{PACKAGE}.state"] <= {f"{PACKAGE}.throttle"}  # an annotation only
    tree = ast.parse((ROOT / "state.py").read_text())
    runtime = [
        node
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.level  # a relative import at module level
    ]
    assert runtime == []


def test_layers_read_state_then_blueprints_then_extension_then_app() -> None:
    graph = _graph()
    web = PACKAGE
    below_extension = {f"{web}.auth", f"{web}.pages", f"{web}.api"}
    for name in below_extension:
        assert f"{web}.extension" not in graph[name]
        assert f"{web}.app" not in graph[name]
    # No route module imports the API package back; they share only its blueprint module.
    for route in ("alerts", "notifications", "openapi", "blueprint", "errors", "operations"):
        assert f"{web}.api" not in graph[f"{web}.api.{route}"], route
    assert f"{web}.state" in graph[f"{web}.extension"]
    assert f"{web}.extension" in graph[f"{web}.app"]
