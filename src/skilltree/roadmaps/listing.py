"""What `GET /v1/roadmaps` may be filtered and sorted by: the whitelist, in one place."""

from __future__ import annotations

from skilltree.platform.filtering import SORT_PARAMETER, Filterable, ListSpec, parse_timestamp
from skilltree.platform.http.offsets import PAGINATION_PARAMETERS
from skilltree.roadmaps.models import Roadmap
from skilltree.roadmaps.policies import Visibility

SOURCES = frozenset({"builtin", "import", "custom", "fork"})
RANGE = frozenset({"eq", "gt", "gte", "lt", "lte"})


def _source(value: str) -> str:
    if value not in SOURCES:
        raise ValueError(f"expected one of {', '.join(sorted(SOURCES))}")
    return value


ROADMAP_LIST = ListSpec(
    filters={
        "visibility": Filterable(Roadmap.visibility, Visibility, frozenset({"eq", "ne"})),
        "source": Filterable(Roadmap.source, _source, frozenset({"eq", "ne"})),
        "title": Filterable(Roadmap.title, str, frozenset({"eq", "contains"})),
        "updated_at": Filterable(Roadmap.updated_at, parse_timestamp, RANGE),
        "created_at": Filterable(Roadmap.created_at, parse_timestamp, RANGE),
    },
    sortable={
        "title": Roadmap.title,
        "slug": Roadmap.slug,
        "updated_at": Roadmap.updated_at,
        "created_at": Roadmap.created_at,
    },
    default_sort="title",
    tiebreaker=Roadmap.id,
    reserved=frozenset({SORT_PARAMETER, *PAGINATION_PARAMETERS}),
)
