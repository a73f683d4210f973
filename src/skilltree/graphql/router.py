"""`/graphql`: strawberry's FastAPI integration, serving the schema over HTTP (GET for queries,
POST for queries and mutations). The caller, the unit of work and the errors are those of the
REST API (`context.py`, `extensions.py`); the middleware (rate limits, body size, request ids,
access log) applies as to every route.

The GraphiQL IDE strawberry offers loads its scripts from a CDN; skilltree serves no page that
does, so the IDE is off and introspection (for locally installed tools) is the way to explore
the schema outside production.
"""

from __future__ import annotations

from strawberry.fastapi import GraphQLRouter

from skilltree.graphql.context import GraphQLContext, graphql_context
from skilltree.graphql.schema import build_schema
from skilltree.platform.config import Settings

GRAPHQL_PATH = "/graphql"


def graphql_router(settings: Settings) -> GraphQLRouter[GraphQLContext, None]:
    return GraphQLRouter(
        build_schema(settings),
        path=GRAPHQL_PATH,
        graphql_ide=None,
        context_getter=graphql_context,
        tags=["graphql"],
    )
