"""No table row leaves the roadmaps domain: what its routes and other domains are handed is a
frozen read model (docs/architecture.md, "read models").

Read from the code itself: every module of the domain that a router or another package imports
is a door out, and no public function or class defined there may name a table in its types —
not in what it returns, not in what it takes, not in a field of what it returns.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import typing
from collections.abc import Iterator
from functools import cache
from types import ModuleType
from typing import Any

import grimp

from skilltree.platform.models import Base
from skilltree.roadmaps import read_models
from skilltree.roadmaps.models import Topic

DOMAIN = "skilltree.roadmaps"
# The tables themselves, and the one module that reads and writes them for the services.
INSIDE = frozenset({f"{DOMAIN}.models", f"{DOMAIN}.repository", f"{DOMAIN}.storing"})


@cache
def doors() -> frozenset[str]:
    """The domain's modules imported by a router of it, or from outside it."""
    graph = grimp.build_graph("skilltree", cache_dir=None)
    found = set()
    for module in graph.modules:
        outside = not module.startswith(f"{DOMAIN}.")
        router = module.startswith(f"{DOMAIN}.") and module.endswith("router")
        if outside or router:
            found.update(
                imported
                for imported in graph.find_modules_directly_imported_by(module)
                if imported.startswith(f"{DOMAIN}.") and not imported.endswith("router")
            )
    return frozenset(found - INSIDE)


def public_members(module: ModuleType) -> Iterator[tuple[str, Any]]:
    for name, member in vars(module).items():
        defined_here = getattr(member, "__module__", None) == module.__name__
        is_code = inspect.isfunction(member) or inspect.isclass(member)
        if not name.startswith("_") and defined_here and is_code:
            yield name, member


def tables_named_by(annotation: Any, seen: set[type]) -> set[str]:
    """The tables an annotation mentions, looking into generics (and Callable's argument
    lists) and into the fields of dataclasses (the read models); `seen` holds the dataclasses
    already looked into, so a tree's node, which holds nodes, is read once."""
    if isinstance(annotation, list):
        return set().union(*(tables_named_by(item, seen) for item in annotation))
    if isinstance(annotation, typing.TypeVar):
        return tables_named_by(annotation.__bound__, seen) if annotation.__bound__ else set()
    if inspect.isclass(annotation) and issubclass(annotation, Base):
        return {annotation.__name__}
    found: set[str] = set()
    for argument in typing.get_args(annotation):
        found |= tables_named_by(argument, seen)
    origin = typing.get_origin(annotation) or annotation
    if inspect.isclass(origin) and dataclasses.is_dataclass(origin) and origin not in seen:
        seen.add(origin)
        for hint in typing.get_type_hints(origin).values():
            found |= tables_named_by(hint, seen)
    return found


def rows_handed_out() -> list[str]:
    leaks = []
    for module_name in sorted(doors()):
        for name, member in public_members(importlib.import_module(module_name)):
            # A function's parameters and result; a class's annotated attributes.
            hints = typing.get_type_hints(member)
            tables = set().union(*(tables_named_by(hint, set()) for hint in hints.values()))
            if tables:
                leaks.append(f"{module_name}.{name}: {', '.join(sorted(tables))}")
    return leaks


def test_the_services_routers_and_other_domains_use_are_found() -> None:
    assert {f"{DOMAIN}.service", f"{DOMAIN}.editing", f"{DOMAIN}.revisions"} <= doors()


def test_no_function_or_class_the_domain_hands_out_names_a_table() -> None:
    assert rows_handed_out() == []


@dataclasses.dataclass(frozen=True)
class Leaky:
    """What the check must catch: a read model carrying a row, deep in a generic."""

    listing: read_models.RoadmapListing
    rows: dict[int, tuple[Topic, ...]]


def test_a_table_inside_a_read_model_is_seen() -> None:
    assert tables_named_by(Leaky, set()) == {"Topic"}
    assert tables_named_by(read_models.RoadmapTree[read_models.TopicDetail], set()) == set()
