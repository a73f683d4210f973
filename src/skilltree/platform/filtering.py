"""Whitelisted filtering and sorting for list endpoints.

    GET /v1/roadmaps?visibility=public&updated_at[gte]=2026-01-01T00:00:00Z&sort=-updated_at,title

A domain declares what may be filtered (field -> column, value parser, operators) and sorted in
one `ListSpec`; anything else is a 400 problem naming the parameter, never silently ignored (a
typo'd filter that returns everything is worse than an error) and never passed to SQL as a name.
Values are bound parameters, and `contains` escapes LIKE wildcards.

Framework-free: `platform/http/filtering.py` hands it a request's query string.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func
from sqlalchemy.orm import QueryableAttribute

from skilltree.platform.errors import DomainError

COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
OPERATORS = frozenset({*COMPARISONS, "contains"})
SORT_PARAMETER = "sort"


class InvalidQuery(DomainError):
    type_slug = "invalid-query"
    title = "Invalid filter or sort"


# A mapped attribute (Roadmap.title) or any SQL expression.
Column = QueryableAttribute[Any] | ColumnElement[Any]


@dataclass(frozen=True)
class Filterable:
    column: Column
    parse: Callable[[str], Any] = str
    operators: frozenset[str] = frozenset({"eq"})


@dataclass(frozen=True)
class ListSpec:
    filters: Mapping[str, Filterable]
    sortable: Mapping[str, Column]
    default_sort: str
    # Appended to every sort so equal keys still have one order and offset pages never overlap.
    tiebreaker: Column
    # Query parameters that are not filters (pagination, sort).
    reserved: frozenset[str] = field(default_factory=lambda: frozenset({SORT_PARAMETER}))


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str
    value: Any


@dataclass(frozen=True)
class SortKey:
    field: str
    descending: bool


@dataclass(frozen=True)
class ListQuery:
    conditions: list[Condition]
    sort: list[SortKey]


def parse_list_query(params: Iterable[tuple[str, str]], spec: ListSpec) -> ListQuery:
    """Filters and sort from the query string's (name, value) pairs, checked against the
    whitelist. A repeated `sort` counts once, the last one given."""
    conditions = []
    sort: str | None = None
    for name, value in params:
        if name == SORT_PARAMETER:
            sort = value
        if name not in spec.reserved:
            conditions.append(_condition(name, value, spec))
    return ListQuery(conditions, parse_sort(sort or spec.default_sort, spec))


def _condition(parameter: str, raw: str, spec: ListSpec) -> Condition:
    name, op = parameter, "eq"
    if parameter.endswith("]") and "[" in parameter:
        name, _, op = parameter[:-1].partition("[")
    filterable = spec.filters.get(name)
    if filterable is None:
        raise InvalidQuery(
            f"Unknown filter {name!r}; filterable fields: {', '.join(sorted(spec.filters))}.",
            parameter=parameter,
        )
    if op not in filterable.operators:
        raise InvalidQuery(
            f"Unknown operator {op!r} for {name!r}; allowed: "
            f"{', '.join(sorted(filterable.operators))}.",
            parameter=parameter,
        )
    try:
        value = filterable.parse(raw)
    except ValueError as error:
        raise InvalidQuery(
            f"Invalid value for {parameter!r}: {error}", parameter=parameter
        ) from None
    return Condition(name, op, value)


def parse_sort(value: str, spec: ListSpec) -> list[SortKey]:
    """'-updated_at,title' -> updated_at descending, then title ascending."""
    keys = []
    for item in value.split(","):
        name = item.strip()
        descending = name.startswith("-")
        name = name.removeprefix("-")
        if name not in spec.sortable:
            raise InvalidQuery(
                f"Cannot sort by {name!r}; sortable fields: {', '.join(sorted(spec.sortable))}.",
                parameter=SORT_PARAMETER,
            )
        keys.append(SortKey(name, descending))
    return keys


def where_clauses(query: ListQuery, spec: ListSpec) -> list[ColumnElement[bool]]:
    clauses = []
    for condition in query.conditions:
        column = spec.filters[condition.field].column
        if condition.operator == "contains":
            clauses.append(
                func.lower(column).contains(str(condition.value).lower(), autoescape=True)
            )
        else:
            clauses.append(COMPARISONS[condition.operator](column, condition.value))
    return clauses


def order_by_clauses(query: ListQuery, spec: ListSpec) -> list[ColumnElement[Any]]:
    order = [
        spec.sortable[key.field].desc() if key.descending else spec.sortable[key.field].asc()
        for key in query.sort
    ]
    return [*order, spec.tiebreaker.asc()]


def parse_timestamp(value: str) -> datetime:
    """An ISO 8601 timestamp with a time zone ('Z' or an offset); naive ones are ambiguous.
    RFC 3339 (§5.6) lets "T" and "Z" be lower case, which `fromisoformat` refuses."""
    parsed = datetime.fromisoformat(value.upper())
    if parsed.tzinfo is None:
        raise ValueError("a timestamp needs a time zone, e.g. 2026-01-01T00:00:00Z")
    return parsed
