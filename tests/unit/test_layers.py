"""The layers of the code, as imports: a package only imports those below it."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: broker's packages, lowest first; each may import those before it (`auth` sits beside
#: `delivery`, so neither imports the other).
BROKER_LAYERS = [("core",), ("bots",), ("delivery", "auth"), ("channels",), ("conversations",)]


def imports(folder: str) -> Iterator[tuple[Path, str]]:
    """Every (file, imported module) under a top-level folder of the repository."""
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, alias.name
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                yield path, node.module
                if node.module == "broker":
                    for alias in node.names:
                        yield path, f"broker.{alias.name}"


def test_the_core_has_no_web_framework_no_task_queue_and_no_outer_layer() -> None:
    outside = ("flask", "celery", "kombu", "gunicorn", "web", "workers", "switchboard")
    found = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path, module in imports("broker")
        if module.split(".")[0] in outside
    ]
    assert found == []


def test_the_web_app_never_imports_the_workers() -> None:
    found = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path, module in imports("web")
        if module.split(".")[0] == "workers"
    ]
    assert found == []


def test_broker_packages_import_only_the_layers_below_them() -> None:
    rank = {package: level for level, group in enumerate(BROKER_LAYERS) for package in group}
    found = []
    for path, module in imports("broker"):
        parts = path.relative_to(ROOT / "broker").parts
        if len(parts) < 2 or parts[0] not in rank:
            continue  # modules at broker/'s top (e.g. bot_removal) sit above every package
        importer, imported = parts[0], module.split(".")
        if imported[0] != "broker" or len(imported) < 2 or imported[1] not in rank:
            continue
        target = imported[1]
        if target != importer and rank[target] >= rank[importer]:
            found.append(f"{path.relative_to(ROOT)} ({importer}) imports {module}")
    assert found == []
