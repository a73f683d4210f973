"""Whitelisted filtering and sorting from a request's query string (the rules are
`platform/filtering.py`, usable without a request)."""

from __future__ import annotations

from starlette.datastructures import QueryParams

from skilltree.platform import filtering
from skilltree.platform.filtering import ListQuery, ListSpec


def parse_list_query(params: QueryParams, spec: ListSpec) -> ListQuery:
    """Filters and sort from the query string, checked against the whitelist."""
    return filtering.parse_list_query(params.multi_items(), spec)
