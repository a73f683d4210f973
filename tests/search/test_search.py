"""GET /v1/search: ranking, highlighting, modes, filters and pages, the same cases on SQLite
(FTS5) and PostgreSQL (tsvector, pg_trgm)."""

from __future__ import annotations

import httpx

from tests.search.conftest import (
    Indexer,
    People,
    add_resource,
    import_roadmap,
    search,
    topics_of,
    write_note,
)
from tests.support.accounts import Browser


async def test_a_title_match_outranks_a_match_in_the_summary(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    body = await search(client, "idempotency")

    assert topics_of(body) == ["idempotency-keys", "retries"]
    assert body["items"][0]["score"] > body["items"][1]["score"]


async def test_matches_are_highlighted_in_the_title_and_the_snippet(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    hit = (await search(client, "unsafe"))["items"][0]
    title = (await search(client, "keys"))["items"][0]

    assert hit["topic"] == "idempotency-keys"
    assert hit["title_html"] == "Idempotency keys"
    assert "Retrying an <mark>unsafe</mark> request" in hit["snippet_html"]
    assert title["title_html"] == "Idempotency <mark>keys</mark>"
    assert hit["url"] == "/v1/roadmaps/web/topics/idempotency-keys"


async def test_every_word_must_match(ada: Browser, client: httpx.AsyncClient) -> None:
    found = topics_of(await search(client, "dead letter queue retry"))

    assert sorted(found) == ["dead-letter-queues", "queues"]  # "retry" and "retries" meet
    assert topics_of(await search(client, "dead letter coffee")) == []


async def test_a_quoted_phrase_matches_in_order_and_a_minus_excludes(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    assert topics_of(await search(client, '"conditional requests"')) == ["http-caching"]
    assert topics_of(await search(client, '"requests conditional"')) == []
    assert topics_of(await search(client, "idempotency -jitter")) == ["idempotency-keys"]


async def test_or_accepts_either_word(ada: Browser, client: httpx.AsyncClient) -> None:
    found = topics_of(await search(client, "coffee OR bandwidth"))

    assert sorted(found) == ["cafe-protocol", "http-caching"]


async def test_prefix_mode_finds_words_as_they_are_typed(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    assert topics_of(await search(client, "idemp", mode="prefix"))[0] == "idempotency-keys"
    assert topics_of(await search(client, "dead-let", mode="prefix"))[0] == "dead-letter-queues"


async def test_a_misspelt_title_word_still_finds_the_topic(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    assert topics_of(await search(client, "idempotncy"))[0] == "idempotency-keys"


async def test_accents_do_not_matter(ada: Browser, client: httpx.AsyncClient) -> None:
    assert topics_of(await search(client, "cafe")) == ["cafe-protocol"]
    assert topics_of(await search(client, "CAFÉ")) == ["cafe-protocol"]


async def test_your_notes_and_resources_are_found_with_their_topic(
    ada: Browser, index_pending: Indexer
) -> None:
    await write_note(ada, "web", "http-caching", "Remember: **stale-while-revalidate** rocks")
    resource_id = await add_resource(
        ada, "web", "retries", "Backoff explained by AWS", "https://example.org/backoff"
    )
    await index_pending()

    note = (await search(ada.client, "revalidate", kind="note"))["items"]
    link = (await search(ada.client, "aws"))["items"]

    assert [(h["kind"], h["topic"], h["topic_title"]) for h in note] == [
        ("note", "http-caching", "HTTP caching")
    ]
    assert "stale-while-<mark>revalidate</mark>" in note[0]["snippet_html"]
    assert note[0]["url"] == "/v1/me/progress/web/http-caching/note"
    assert [(h["kind"], h["resource_id"]) for h in link] == [("resource", resource_id)]
    assert link[0]["title_html"] == "Backoff explained by <mark>AWS</mark>"


async def test_what_a_learner_wrote_is_escaped_around_the_highlights(
    ada: Browser, index_pending: Indexer
) -> None:
    await write_note(ada, "web", "retries", "jitter if a < b & c \x02trick\x03 <script>x</script>")
    await index_pending()

    snippet = (await search(ada.client, "jitter", kind="note"))["items"][0]["snippet_html"]

    assert "<mark>jitter</mark> if a &lt; b &amp; c" in snippet
    assert "<script>" not in snippet
    assert snippet.count("<mark>") == 1


async def test_filters_narrow_by_roadmap_kind_and_status(
    ada: Browser, index_pending: Indexer
) -> None:
    await import_roadmap(
        ada,
        {
            "slug": "ops",
            "title": "Ops",
            "topics": [
                {"slug": "retry-budgets", "title": "Retry budgets", "summary": "Limit retries."}
            ],
        },
    )
    await write_note(ada, "web", "retries", "retries need a budget")
    marked = await ada.client.put(
        "/v1/me/progress/web/retries", json={"status": "done"}, headers=ada.write_headers
    )
    assert marked.status_code == 200, marked.text
    await index_pending()

    everything = await search(ada.client, "retries")
    assert sorted((h["roadmap"], h["topic"], h["kind"]) for h in everything["items"]) == [
        ("ops", "retry-budgets", "topic"),
        ("web", "dead-letter-queues", "topic"),
        ("web", "idempotency-keys", "topic"),  # "Retrying an unsafe request"
        ("web", "queues", "topic"),
        ("web", "retries", "note"),
        ("web", "retries", "topic"),
    ]
    assert everything["counts"] == {"topic": 5, "note": 1, "resource": 0}
    assert topics_of(await search(ada.client, "retries", roadmap="ops")) == ["retry-budgets"]
    topics_only = await search(ada.client, "retries", kind="topic")
    assert [h["kind"] for h in topics_only["items"]] == ["topic"] * 5
    assert topics_only["counts"] == {"topic": 5}
    done = await search(ada.client, "retries", status="done")
    assert sorted((h["topic"], h["kind"]) for h in done["items"]) == [
        ("retries", "note"),
        ("retries", "topic"),
    ]
    todo = await search(ada.client, "retries", status="todo")
    assert sorted(topics_of(todo)) == [
        "dead-letter-queues",
        "idempotency-keys",
        "queues",
        "retry-budgets",
    ]


async def test_pages_follow_the_ranking_without_gaps_or_repeats(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    everything = topics_of(await search(client, "protocol OR retries OR queue", limit=50))
    seen: list[str] = []
    url: str | None = "/v1/search?q=protocol+OR+retries+OR+queue&limit=2"
    while url:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        seen.extend(topics_of(page))
        url = page["links"]["next"]
        if url:
            assert response.headers["link"] == f'<{url}>; rel="next"'

    assert len(everything) >= 4
    assert seen == everything


async def test_a_cursor_only_continues_the_search_that_made_it(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    first = await search(client, "protocol OR retries OR queue", limit=1)
    cursor = first["links"]["next"].split("cursor=")[1]

    other = await client.get("/v1/search", params={"q": "http", "cursor": cursor})
    forged = await client.get("/v1/search", params={"q": "http", "cursor": "e30.abc"})

    assert other.status_code == 400
    assert other.json()["type"].endswith("/invalid-cursor")
    assert forged.status_code == 400


async def test_a_query_with_nothing_to_look_for_is_a_422(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    for q in ["!!!", "-idempotency", '""']:
        response = await client.get("/v1/search", params={"q": q})
        assert response.status_code == 422, q
        assert response.headers["content-type"] == "application/problem+json"
    too_long = await client.get("/v1/search", params={"q": "a" * 201})
    assert too_long.status_code == 422
    bad_kind = await client.get("/v1/search", params={"q": "http", "kind": "users"})
    assert bad_kind.status_code == 422


async def test_fts_operators_typed_by_a_user_are_plain_words(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    for q in ["NEAR(http caching)", "title:http", "http AND caching", "http* ^caching", "'ok"]:
        response = await client.get("/v1/search", params={"q": q})
        assert response.status_code == 200, (q, response.text)


async def test_anonymous_callers_search_public_topics_without_personal_filters(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    body = await search(client, "caching")

    assert topics_of(body) == ["http-caching"]
    assert body["counts"] == {"topic": 1}
    refused = await client.get("/v1/search", params={"q": "caching", "status": "done"})
    assert refused.status_code == 422
    assert refused.json()["type"].endswith("/status-needs-learner")


async def test_changes_reach_the_index_through_events(
    ada: Browser, people: People, index_pending: Indexer, client: httpx.AsyncClient
) -> None:
    renamed = {**PUBLIC_ROADMAP_RENAMED}
    await import_roadmap(ada, renamed)
    await write_note(ada, "web", "retries", "jitter spreads retries")

    assert topics_of(await search(client, "flamingo")) == []
    assert await index_pending() == 2

    assert topics_of(await search(client, "flamingo")) == ["idempotency-keys"]
    assert topics_of(await search(client, "queues")) == []  # the removed topics left the index
    assert len((await search(ada.client, "jitter", kind="note"))["items"]) == 1

    await write_note(ada, "web", "retries", "")
    await index_pending()
    assert (await search(ada.client, "jitter", kind="note"))["items"] == []


PUBLIC_ROADMAP_RENAMED = {
    "slug": "web",
    "title": "Web",
    "topics": [
        {
            "slug": "http",
            "title": "HTTP",
            "children": [
                {"slug": "idempotency-keys", "title": "Flamingo keys"},
                {"slug": "retries", "title": "Retries"},
            ],
        }
    ],
}
