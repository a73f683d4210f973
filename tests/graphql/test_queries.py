"""GraphQL reads: the same data as the REST API, and no query per item (no N+1)."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.accounts import Browser
from tests.support.graphql import as_learner, graphql, problem_types
from tests.support.progress import People, import_roadmap, mark
from tests.support.queries import count_statements

DEEP = """
query Deep($roadmap: String!) {
  roadmaps(limit: 100) {
    total
    items {
      slug title topicCount
      tree { slug implementedIn { kind target } children { slug title children { slug } } }
    }
  }
  me {
    progress(roadmap: $roadmap) { summary { total done percentDone } topics { slug status } }
    reviewsDue { id topic }
    organisations { slug role members { displayName role } }
  }
}
"""


def roadmap(slug: str, sections: int, per_section: int) -> dict[str, Any]:
    return {
        "slug": slug,
        "title": slug.title(),
        "topics": [
            {
                "slug": f"s{s}",
                "title": f"Section {s}",
                "children": [
                    {
                        "slug": f"s{s}-t{t}",
                        "title": f"Topic {s}.{t}",
                        "children": [{"slug": f"s{s}-t{t}-sub", "title": f"Sub {s}.{t}"}],
                    }
                    for t in range(per_section)
                ],
            }
            for s in range(sections)
        ],
    }


async def create_org(person: Browser, slug: str) -> None:
    response = await person.client.post(
        "/v1/orgs", json={"slug": slug, "name": slug.title()}, headers=person.write_headers
    )
    assert response.status_code == 201, response.text


async def test_the_tree_is_the_rest_apis_tree(ada: Browser) -> None:
    body = await as_learner(
        ada, '{ roadmap(slug: "web") { slug topicCount tree { slug children { slug } } } }'
    )
    rest = (await ada.client.get("/v1/roadmaps/web/tree")).json()

    assert "errors" not in body
    found = body["data"]["roadmap"]
    assert found["topicCount"] == rest["roadmap"]["topic_count"] == 7
    assert [node["slug"] for node in found["tree"]] == [t["slug"] for t in rest["topics"]]
    assert [c["slug"] for c in found["tree"][0]["children"]] == ["status-codes", "caching"]


async def test_anonymous_visitors_read_public_roadmaps_only(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    await import_roadmap(ada, roadmap("secret", 1, 1), visibility="private")

    listed = await graphql(client, "{ roadmaps { items { slug } total } }")
    hidden = await graphql(client, '{ roadmap(slug: "secret") { slug } }')

    assert [r["slug"] for r in listed["data"]["roadmaps"]["items"]] == ["web"]
    assert listed["data"]["roadmaps"]["total"] == 1
    assert hidden["data"] is None
    assert problem_types(hidden) == ["/problems/roadmap-not-found"]
    assert hidden["errors"][0]["extensions"]["problem"]["status"] == 404


async def test_a_topic_shows_its_place_and_where_the_code_implements_it(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    query = """{ topic(roadmap: "web", slug: "etags") {
        slug concept path { slug } children { slug } implementedIn { kind target } } }"""

    body = await graphql(client, query)

    assert body["data"]["topic"] == {
        "slug": "etags",
        "concept": "etags",
        "path": [{"slug": "http"}, {"slug": "caching"}],
        "children": [],
        "implementedIn": [],
    }


async def test_the_callers_progress_note_and_organisations(ada: Browser, people: People) -> None:
    await mark(ada, "etags", "done")
    await create_org(ada, "guild")
    grace = await people("Grace")
    await create_org(grace, "other")  # not Ada's: never listed for her
    put = await ada.client.put(
        "/v1/me/progress/web/etags/note",
        json={"markdown": "*weak* tags"},
        headers=ada.write_headers,
    )
    assert put.status_code == 201, put.text

    body = await as_learner(
        ada,
        """{ me {
            progress(roadmap: "web") { summary { done total } }
            note(roadmap: "web", topic: "etags") { markdown html }
            reviewsDue { topic roadmap }
            organisations { slug role members { displayName role } }
        } }""",
    )

    assert "errors" not in body, body
    me = body["data"]["me"]
    assert me["progress"]["summary"] == {"done": 1, "total": 4}
    assert me["note"] == {"markdown": "*weak* tags", "html": "<p><em>weak</em> tags</p>\n"}
    assert me["reviewsDue"] == [{"topic": "etags", "roadmap": "web"}]
    assert me["organisations"] == [
        {"slug": "guild", "role": "owner", "members": [{"displayName": "Ada", "role": "owner"}]}
    ]


async def test_a_deep_querys_statements_do_not_grow_with_the_data(
    ada: Browser, people: People, engine: AsyncEngine
) -> None:
    counts = []
    for size in (1, 4):
        # More roadmaps, bigger trees, more organisations with more members each round.
        for n in range(size):
            await import_roadmap(ada, roadmap(f"r{size}-{n}", size, size), visibility="public")
            await create_org(ada, f"org{size}-{n}")
        await mark(ada, "etags", "done")
        # The caller's organisation roles, forgotten when an organisation is created, are
        # read again by the first request after it and then kept (decision 0067).
        await as_learner(ada, DEEP, {"roadmap": "web"})
        with count_statements(engine) as log:
            body = await as_learner(ada, DEEP, {"roadmap": "web"})
        assert "errors" not in body, body
        counts.append(log.count)

    assert len(body["data"]["roadmaps"]["items"]) == 1 + 1 + 4
    assert len(body["data"]["me"]["organisations"]) == 5
    assert counts[0] == counts[1]
