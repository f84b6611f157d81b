"""The layering rule, read from the code (every import, function-level ones included).

`bot/` is the foundation plus the composition root (bot/app.py, bot/wsgi.py, bot/worker.py,
bot/cli/); only the composition root may import a feature package (handlers, push) or the
WeChat API simulator (wechatsim). push never imports handlers; wechatsim imports nothing of
the project; and no two modules import each other, directly or around a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "handlers", "push", "editorial", "cases", "wechatsim", "console")
FEATURES = ("handlers", "push", "editorial", "cases", "wechatsim", "console")
COMPOSITION_ROOT = ("bot.app", "bot.wsgi", "bot.worker", "bot.cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(target: str) -> str | None:
    """The project module an import names (longest known prefix), or None if not ours."""
    parts = target.split(".")
    while parts:
        name = ".".join(parts)
        if name in MODULES:
            return name
        parts.pop()
    return None


def _imports(module: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported project module, line, only under TYPE_CHECKING) for every import in a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if (name := _resolve(alias.name)) is not None:
                        found.append((name, child.lineno, typing_only))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = module.split(".")
                    anchor = anchor[:len(anchor) - child.level + (1 if is_package else 0)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in child.names:  # `from push import jobs` names the module push.jobs
                    name = _resolve(f"{base}.{alias.name}") or _resolve(base)
                    if name is not None:
                        found.append((name, child.lineno, typing_only))
            elif isinstance(child, ast.If) and _is_type_checking(child):
                visit(ast.Module(body=child.body, type_ignores=[]), True)
                visit(ast.Module(body=child.orelse, type_ignores=[]), typing_only)
            else:  # function bodies too: an import that runs later is still a dependency
                visit(child, typing_only)

    visit(tree, False)
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _top(module: str) -> str:
    return module.split(".")[0]


def _in_root(module: str) -> bool:
    return any(module == root or module.startswith(root + ".") for root in COMPOSITION_ROOT)


def _where(module: str, line: int) -> str:
    return f"{MODULES[module].relative_to(ROOT)}:{line}"


def _violations(allowed) -> list[str]:
    return sorted({f"{_where(module, line)} {module} imports {target}"
                   for module, edges in GRAPH.items() for target, line, _ in edges
                   if _top(target) != _top(module) and not allowed(module, target)})


def test_the_scan_sees_the_project():
    """Guard against a vacuous pass: the walk finds the packages and their imports."""
    assert {"bot.runtime", "bot.webhook", "push.jobs", "handlers"} <= set(MODULES)
    assert any(target == "bot.runtime" for target, _, _ in GRAPH["push.jobs"])


def test_only_the_composition_root_imports_feature_packages():
    """bot/ (outside app, wsgi, worker, cli) imports no handlers, push or wechatsim."""
    bad = _violations(lambda module, target: not (
        _top(module) == "bot" and _top(target) in FEATURES and not _in_root(module)))
    assert not bad, "foundation imports a feature package:\n" + "\n".join(bad)


def test_features_keep_their_direction():
    """push and editorial never import handlers; no feature imports the simulator; the console
    (an adapter, like the CLI) is imported by no feature."""
    bad = _violations(lambda module, target: not (
        (_top(module) in ("push", "editorial", "cases") and _top(target) == "handlers")
        or (_top(module) in ("push", "handlers", "editorial", "cases", "console")
            and _top(target) == "wechatsim")
        or (_top(module) in ("push", "handlers", "editorial", "cases")
            and _top(target) == "console")
        or (_top(module) == "push" and _top(target) == "cases")))
    assert not bad, "feature imports against the layering:\n" + "\n".join(bad)


def test_the_simulator_imports_nothing_of_the_project():
    """wechatsim stands alone: it is the other side of the WeChat API."""
    bad = _violations(lambda module, target: _top(module) != "wechatsim")
    assert not bad, "wechatsim imports the project:\n" + "\n".join(bad)


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each as a cycle.

    Imports under TYPE_CHECKING never run, so they cannot form a cycle; all others count.
    """
    edges = {m: sorted({t for t, _, typing in GRAPH[m] if t != m and not typing})
             for m in GRAPH}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def strongconnect(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                strongconnect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            strongconnect(node)
    return [_one_cycle(component, edges) for component in components]


def _one_cycle(component: list[str], edges: dict[str, list[str]]) -> list[str]:
    """A concrete cycle through the component's first module (breadth-first, shortest)."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in edges[node]:
            if nxt == start:
                return [*paths[node], start]
            if nxt in members and nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    return component


def test_no_import_cycles():
    """No module reaches itself through imports (function-level ones included)."""
    cycles = _cycles()
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("source, expected", [
    ("from push import jobs\n", ["push.jobs"]),
    ("def f():\n    from handlers.consent import apply\n", ["handlers.consent"]),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import push.jobs\n",
     ["push.jobs"]),
])
def test_the_walk_sees_every_kind_of_import(tmp_path, source, expected):
    """Top-level, function-level and TYPE_CHECKING imports are all found."""
    path = tmp_path / "probe.py"
    path.write_text(source, encoding="utf-8")
    assert [target for target, _, _ in _imports("bot.probe", path)] == expected


def _logger_names() -> list[tuple[str, int, str]]:
    """(module, line, name or the expression) of every logging.getLogger(...) with arguments."""
    found = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "getLogger" and node.args):
                arg = node.args[0]
                name = arg.value if isinstance(arg, ast.Constant) else ast.unparse(arg)
                found.append((module, node.lineno, str(name)))
    return found


def test_every_logger_is_under_qzbot():
    """Module loggers are named "qzbot.<something>", so `[log] level` governs them all."""
    names = _logger_names()
    assert len(names) > 10
    bad = [f"{_where(module, line)} getLogger({name})" for module, line, name in names
           if name != "qzbot" and not name.startswith("qzbot.")]
    assert not bad, "loggers outside the qzbot hierarchy:\n" + "\n".join(bad)
