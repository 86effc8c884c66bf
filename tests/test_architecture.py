"""DESIGN.md's shape holds: one-way dependencies; services never commit nor read the request."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The kernel (core) and the accounts every domain imports; the domains; and config, the
# composition root that imports them all and that nothing imports.
DOMAINS = (
    "config",
    "core",
    "accounts",
    "audit",
    "ledger",
    "member_cards",
    "inventory",
    "pos",
    "county",
)
KERNEL = {"core", "accounts"}
# What each package may import of the others.
ALLOWED = {
    "core": set(),
    "accounts": {"core"},
    "audit": KERNEL,
    "ledger": KERNEL,
    "inventory": KERNEL,
    "member_cards": KERNEL | {"ledger"},
    "pos": KERNEL | {"ledger", "inventory", "member_cards"},
    # The county office's view reads everything and is read by nothing.
    "county": KERNEL | {"ledger", "inventory", "member_cards", "pos"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & set(DOMAINS)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_dependencies_point_one_way(package):
    for path in (ROOT / package).rglob("*.py"):
        forbidden = _imports(path) - ALLOWED[package] - {package}
        assert not forbidden, f"{path.relative_to(ROOT)} imports {sorted(forbidden)}"


def test_only_the_composition_root_imports_blueprints():
    for package in ALLOWED:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for other in set(DOMAINS) - {package, "config", "core"}:
                assert f"from {other}.api" not in text and f"from {other}.views" not in text, path


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_services_neither_commit_nor_read_the_request(package):
    path = ROOT / package / "services.py"
    if not path.exists():
        pytest.skip(f"{package} has no services yet")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "flask":
            names = {alias.name for alias in node.names}
            assert not names & {"request", "g", "current_app", "session"}, names
        if isinstance(node, ast.Attribute) and node.attr == "commit":
            pytest.fail(f"{path.name}:{node.lineno} commits; the edge commits")
