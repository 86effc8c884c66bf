"""DESIGN.md's shape holds: one-way dependencies, no import cycles, small modules, and
services that never commit nor read the request."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The kernel (core) and the accounts every domain imports; the domains; and config, the
# composition root that imports them all and that nothing imports.
PACKAGES = (
    "config",
    "core",
    "accounts",
    "audit",
    "ledger",
    "member_cards",
    "inventory",
    "pos",
    "printing",
    "county",
    "declarations",
    "nodes",
)
# What every domain may use (DESIGN.md, "Shape").
KERNEL = {"core", "accounts", "audit"}
# What each package may import of the others; config may import everything.
ALLOWED = {
    "core": set(),
    "accounts": {"core"},
    "audit": {"core", "accounts"},
    "ledger": KERNEL,
    "inventory": KERNEL,
    "member_cards": KERNEL | {"ledger"},
    "pos": KERNEL | {"ledger", "inventory", "member_cards"},
    # Printing follows the counter (a sale recorded -> a receipt job); never the reverse.
    "printing": KERNEL | {"pos", "ledger", "inventory", "member_cards"},
    # The county office's view reads everything and is read by nothing.
    "county": KERNEL | {"ledger", "inventory", "member_cards", "pos"},
    # Declarations post their awards through the ledger and find households by card.
    "declarations": KERNEL | {"ledger", "member_cards"},
    # The county's side of the shop nodes: offline sales go through the counter's selling.
    "nodes": KERNEL | {"ledger", "inventory", "member_cards", "pos"},
}
# The shop node process on the counter PC (nodes.local) puts the county's parts together
# there, its printing too: like config, it may use every domain, and no domain uses it.
NODE_PROCESS = "nodes.local"
MAX_MODULE_LINES = 800


def _modules() -> dict[str, Path]:
    """Every application module by dotted name (a package by its __init__)."""
    found = {}
    for package in PACKAGES:
        base = ROOT / package
        if not base.is_dir():
            continue
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _imports(name: str, path: Path) -> set[str]:
    """The application modules this one imports, at module level or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(name, path).split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from a.b import c` names module a.b.c when there is one, else a name in a.b.
            subs = {f"{module}.{alias.name}" for alias in node.names}
            hits = subs & MODULES.keys()
            targets.update(hits)
            if len(hits) < len(subs):
                targets.add(module)
    resolved = set()
    for target in targets:
        # `import a.b.c` loads a, a.b and a.b.c; the deepest known module is the edge.
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_dependencies_point_one_way(package):
    for name, targets in GRAPH.items():
        if name.split(".")[0] != package or _in_node_process(name):
            continue
        forbidden = {t.split(".")[0] for t in targets} - ALLOWED[package] - {package}
        assert not forbidden, f"{name} imports {sorted(forbidden)}"


def _in_node_process(name: str) -> bool:
    return name == NODE_PROCESS or name.startswith(NODE_PROCESS + ".")


def test_nothing_but_the_node_process_imports_it():
    for name, targets in GRAPH.items():
        if _in_node_process(name):
            continue
        found = [t for t in targets if _in_node_process(t)]
        # The one `integrity-pos` command line names every command, shop-node's too.
        if name == "config.cli":
            found = [t for t in found if t != NODE_PROCESS + ".cli"]
        assert not found, name


def test_nothing_imports_the_composition_root():
    # The node process is a composition root of its own: its local app is the county's
    # app factory over the node's file.
    for name, targets in GRAPH.items():
        if name.split(".")[0] != "config" and not _in_node_process(name):
            assert not [t for t in targets if t.split(".")[0] == "config"], name


def test_no_import_cycles_lazy_imports_included():
    """A cycle held together by an import inside a function is still a cycle."""
    # Tarjan's strongly connected components, iteratively: any component of two or more
    # modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0
    for root in sorted(GRAPH):
        if root in index:
            continue
        work = [(root, iter(sorted(GRAPH[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(GRAPH[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))
    assert not cycles, f"import cycles: {cycles}"


def test_no_application_module_over_800_lines():
    long = {
        name: lines
        for name, path in MODULES.items()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, long


def test_only_the_composition_root_imports_blueprints():
    for name, targets in GRAPH.items():
        package = name.split(".")[0]
        if package == "config" or _in_node_process(name):
            continue
        for target in targets:
            if target.split(".")[0] in (package, "core", "config"):
                continue
            assert not target.endswith((".api", ".views")), f"{name} imports {target}"


def _service_modules() -> list[str]:
    return sorted(
        name
        for name in MODULES
        if name.split(".")[0] in ALLOWED
        and (".services" in name or name.endswith((".models", ".signing")))
    )


@pytest.mark.parametrize("module", _service_modules())
def test_services_neither_commit_nor_read_the_request(module):
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "flask":
            names = {alias.name for alias in node.names}
            assert not names & {"request", "g", "current_app", "session"}, names
        if isinstance(node, ast.Attribute) and node.attr == "commit":
            pytest.fail(f"{module}:{node.lineno} commits; the edge commits")
