"""The layering rules of docs/architecture.md, read from the imports themselves.

`.importlinter` (run by `make lint`) holds the rules that name fixed packages; these find the
domains on their own, so a new domain is checked from its first commit.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cache

import grimp
import pytest

# Not domains: the shared mechanisms, the identity types, the schema history.
FOUNDATIONS = frozenset({"platform", "identity", "migrations"})
# Where the pieces are put together: they may import anything, and nothing imports them.
COMPOSITION = frozenset({"app", "cli", "models", "wiring"})
# What a domain keeps to itself.
PRIVATE = ("models", "repository", "router", "editing_router", "admin_router")
WEB_FRAMEWORKS = ("fastapi", "starlette")


@cache
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("skilltree", include_external_packages=True, cache_dir=None)


def package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "skilltree" and len(parts) > 1 else None


def domains() -> set[str]:
    found = {package(module) for module in graph().modules if module.count(".") >= 2}
    return {name for name in found if name} - FOUNDATIONS - COMPOSITION


def imports() -> list[tuple[str, str]]:
    pairs = []
    for module in graph().modules:
        if module.startswith("skilltree."):
            pairs.extend(
                (module, imported) for imported in graph().find_modules_directly_imported_by(module)
            )
    return pairs


def test_the_domains_are_found() -> None:
    assert {"accounts", "orgs", "roadmaps", "progress"} <= domains()


def test_no_two_packages_import_each_other_even_through_others() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for importer, imported in imports():
        a, b = package(importer), package(imported)
        if a and b and a != b:
            edges[a].add(b)

    def reachable(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for following in edges[todo.pop()]:
                if following not in seen:
                    seen.add(following)
                    todo.append(following)
        return seen

    in_cycles = sorted(name for name in list(edges) if name in reachable(name))
    assert in_cycles == []


def test_no_domain_imports_another_domains_tables_queries_or_routes() -> None:
    own = domains()
    crossing = sorted(
        f"{importer} -> {imported}"
        for importer, imported in imports()
        if package(importer) in own
        and package(imported) in own
        and package(importer) != package(imported)
        and imported.split(".")[2:3] in ([name] for name in PRIVATE)
    )
    assert crossing == []


def test_no_router_imports_another_router_or_writes_sql() -> None:
    wrong = sorted(
        f"{importer} -> {imported}"
        for importer, imported in imports()
        if importer.rsplit(".", 1)[-1].endswith("router")
        and (
            (imported.rsplit(".", 1)[-1].endswith("router") and package(imported) != "platform")
            or imported == "sqlalchemy"
            or imported.startswith("sqlalchemy.")
        )
    )
    assert wrong == []


def test_no_router_presents_its_own_domains_tables() -> None:
    # Routes present the read models their service hands out; a table imported into a router
    # means an ORM row is shaped into a response there, past the service.
    wrong = sorted(
        f"{importer} -> {imported}"
        for importer, imported in imports()
        if package(importer) in domains()
        and importer.rsplit(".", 1)[-1].endswith("router")
        and package(imported) == package(importer)
        and imported.split(".")[2:3] == ["models"]
    )
    assert wrong == []


@pytest.mark.parametrize("layer", ["service", "repository", "models"])
def test_services_repositories_and_tables_know_no_web_framework(layer: str) -> None:
    wrong = sorted(
        f"{importer} -> {imported}"
        for importer, imported in imports()
        if package(importer) in domains()
        and importer.rsplit(".", 1)[-1] == layer
        and imported.split(".")[0] in WEB_FRAMEWORKS
    )
    assert wrong == []


def test_the_platform_and_identity_know_no_domain() -> None:
    wrong = sorted(
        f"{importer} -> {imported}"
        for importer, imported in imports()
        if package(importer) in {"platform", "identity"}
        and (package(imported) in domains() or package(imported) in COMPOSITION)
    )
    assert wrong == []
