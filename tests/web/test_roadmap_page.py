"""The roadmap page: its tree's markup, and the outline it keeps between views."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.requests import Request

from skilltree.progress.rollup import Mark, Sourced, roll_up
from skilltree.roadmaps.service import TopicNode, TopicRef
from skilltree.web.outlines import read_node
from skilltree.web.templating import environment, page
from skilltree.web.tree_html import compile_tree, tree_html
from skilltree.web.views import (
    STATUS_LABELS,
    Bar,
    Row,
    rows_from_progress,
    rows_from_tree,
    statuses_and_bars,
)
from tests.support.accounts import Browser
from tests.support.progress import API, WEB, import_roadmap, mark
from tests.web.test_queries import tree_loads

HTML = {"accept": "text/html"}

# What templates/roadmap.html wrote for the tree before the tree was joined from strings:
# the reference the string writer must match byte for byte.
REFERENCE = """{% from "macros.html" import bar as progress_bar, status_form %}
{% macro rows_of(items, depth) -%}
<ul class="rows depth-{{ depth }}">
{% for row in items %}
{% if row.children %}
<li class="group" id="t-{{ row.slug }}" data-slug="{{ row.slug }}" data-status="{{ row.status or '' }}">
<details open><summary><span class="title">{{ row.title }}</span>{% if row.bar %}{{ progress_bar(row.bar, "Progress on " ~ row.title) }}{% endif %}</summary>
<p class="about"><a href="/roadmaps/{{ roadmap.slug }}/topics/{{ row.slug }}">About {{ row.title }}</a></p>
{{ rows_of(row.children, depth + 1) }}
</details>
</li>
{% else %}
<li class="topic" id="t-{{ row.slug }}" data-slug="{{ row.slug }}" data-status="{{ row.status or '' }}">
{% if current %}{{ status_form(roadmap.slug, row, csrf, labels) }}{% endif %}
<a class="title" href="/roadmaps/{{ roadmap.slug }}/topics/{{ row.slug }}">{{ row.title }}</a>{% if row.estimate_hours %} <span class="est">{{ row.estimate_hours|round(1)|string|replace('.0', '') }} h</span>{% endif %}
</li>
{% endif %}
{% endfor %}
</ul>
{%- endmacro %}
{% for section in rows %}
<section class="section" id="t-{{ section.slug }}" data-slug="{{ section.slug }}" data-status="{{ section.status or '' }}" aria-labelledby="h-{{ section.slug }}">
<details open>
<summary><h2 id="h-{{ section.slug }}">{{ section.title }}</h2>{% if section.bar %}{{ progress_bar(section.bar, "Progress on " ~ section.title) }}{% endif %}</summary>
<p class="summary">{{ section.summary }}</p>
{% if section.children %}{{ rows_of(section.children, 1) }}{% endif %}
</details>
</section>
{% endfor %}
"""  # noqa: E501


def sample_rows(signed_in: bool) -> list[Row]:
    def bar(done: int, counted: int) -> Bar | None:
        return Bar(100 * done / counted, done, counted, 1.5) if signed_in else None

    def status(value: str) -> str | None:
        return value if signed_in else None

    leaves = [
        Row("a-b", 'Quotes " & <tags>', "s", 2.0, status("done")),
        Row("c", "Half", "s", 1.25, status("in_progress")),
        Row("d", "No estimate", "s", None, status("skipped")),
        Row("e", "Ten", "s", 10.0, status("todo")),
    ]
    group = Row("g", "Group & co", "s", None, status("in_progress"), bar=bar(1, 3))
    group.children = [leaves[1], leaves[2], leaves[3]]
    nested = Row("n", "Outer", "s", None, status("in_progress"), bar=bar(1, 3), children=[group])
    return [
        Row(
            "s1",
            "Section <1>",
            "What 'this' is",
            None,
            status("in_progress"),
            bar=bar(2, 3),
            children=[leaves[0], nested],
        ),
        Row("s2", "Empty section", "Nothing yet", None, status("todo")),
    ]


@pytest.mark.parametrize("signed_in", [True, False])
def test_the_tree_is_written_as_the_template_wrote_it(signed_in: bool) -> None:
    rows = sample_rows(signed_in)
    csrf = "tok&en" if signed_in else None
    expected = (
        environment()
        .from_string(REFERENCE)
        .render(
            rows=rows,
            roadmap={"slug": "my-map"},
            current=signed_in,
            csrf=csrf,
            labels=STATUS_LABELS,
        )
    )
    assert str(tree_html("my-map", rows, STATUS_LABELS, csrf)) == expected


def outline_nodes() -> tuple[TopicNode[TopicRef], ...]:
    """Two sections: one with a leaf and a nested group, one without topics."""
    ids = iter(range(1, 100))

    def node(slug: str, title: str, hours: float | None, *children: Any) -> Any:
        ref = TopicRef(next(ids), 1, None, 0, slug, title, "What 'it' is", None, hours)
        return TopicNode(ref, tuple(children))

    group = node("g", "Group & co", None, node("c", "Half", 1.25), node("d", "None", None))
    return (
        node("s1", "Section <1>", None, node("a-b", 'Quotes " & <tags>', 2.0), group),
        node("s2", "Empty section", 3.0),
        node("s3", "Marked by hand", None, node("e", "Ten", 10.0), node("f", "One", 1.0)),
    )


MARKS = {
    "none": {},
    "leaves": {"a-b": "done", "c": "in_progress", "d": "skipped"},
    "parents": {"s1": "skipped", "g": "done", "s3": "done", "e": "todo"},
}


@pytest.mark.parametrize("marks", MARKS)
@pytest.mark.parametrize("csrf", ["tok&en", ""])
def test_the_kept_skeleton_filled_with_a_learners_states_is_the_tree_written_from_rows(
    marks: str, csrf: str
) -> None:
    nodes = outline_nodes()
    slugs = {}
    pending = list(nodes)
    while pending:
        current = pending.pop()
        slugs[current.topic.slug] = current.topic.id
        pending.extend(current.children)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    chosen = {
        slugs[slug]: Sourced(Mark(slugs[slug], status, None, at), "own")
        for slug, status in MARKS[marks].items()
    }
    states = roll_up(nodes, chosen)
    skeleton = compile_tree("my-map", nodes, STATUS_LABELS, read_node, forms=True)
    expected = tree_html("my-map", rows_from_progress(states), STATUS_LABELS, csrf)
    assert skeleton.fill(*statuses_and_bars(states), csrf).decode() == expected


@pytest.mark.parametrize("signed_in", [True, False])
def test_a_tree_spliced_into_the_page_as_bytes_is_the_page_rendered_with_it(
    signed_in: bool,
) -> None:
    tree = tree_html("my-map", sample_rows(signed_in), STATUS_LABELS, "tok" if signed_in else None)
    roadmap = SimpleNamespace(slug="my-map", title="Mine – “quoted” & <b>", description="·")
    context = {
        "current": None,
        "csrf": "tok",
        "labels": STATUS_LABELS,
        "roadmap": roadmap,
        "bar": Bar(50.0, 1, 2, 1.0) if signed_in else None,
        "left": signed_in,
        "can_edit": False,
        "imported": False,
    }
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    rendered = page(request, "roadmap.html", {**context, "tree": tree})
    spliced = page(request, "roadmap.html", context, spliced=("tree", str(tree).encode()))
    assert spliced.body == rendered.body
    assert spliced.headers.items() == rendered.headers.items()


def status_on(page: str, topic: str) -> str:
    found = re.search(f'id="t-{topic}" data-slug="{topic}" data-status="([a-z_]*)"', page)
    assert found is not None, topic
    return found.group(1)


async def test_a_status_change_shows_on_the_next_view_and_only_to_its_learner(
    people: Callable[[str], Awaitable[Browser]],
) -> None:
    ada, bob = await people("Ada"), await people("Bob")
    await import_roadmap(ada, WEB, visibility="public")
    for person in (ada, bob):
        page = await person.client.get("/roadmaps/web", headers=HTML)
        assert status_on(page.text, "etags") == "todo"
    await mark(ada, "etags", "done")
    assert status_on((await ada.client.get("/roadmaps/web", headers=HTML)).text, "etags") == "done"
    assert status_on((await bob.client.get("/roadmaps/web", headers=HTML)).text, "etags") == "todo"


async def test_every_form_on_a_learners_roadmap_page_carries_that_learners_token(
    people: Callable[[str], Awaitable[Browser]],
) -> None:
    ada, bob = await people("Ada"), await people("Bob")
    await import_roadmap(ada, WEB, visibility="public")
    for person in (ada, bob, ada):
        page = (await person.client.get("/roadmaps/web", headers=HTML)).text
        tokens = re.findall(r'name="csrf_token" value="([^"]*)"', page)
        # The sign-out form twice (wide and phone menus), undo, fork, and a form per leaf topic.
        assert len(tokens) == 4 + 4
        assert set(tokens) == {person.csrf_token}


async def test_the_outline_is_loaded_once_per_roadmap_version_and_an_edit_shows_at_once(
    people: Callable[[str], Awaitable[Browser]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = await people("Ada")
    await import_roadmap(ada, WEB)
    calls = tree_loads(monkeypatch)
    for _ in range(3):
        assert (await ada.client.get("/roadmaps/web", headers=HTML)).status_code == 200
    assert calls == ["load_outline"]
    path = "/v1/roadmaps/web/topics/indexes"
    etag = (await ada.client.get(path)).headers["etag"]
    edited = await ada.client.patch(
        path,
        json={"title": "B-tree indexes"},
        headers={**ada.write_headers, "if-match": etag},
    )
    assert edited.status_code == 200, edited.text
    page = await ada.client.get("/roadmaps/web", headers=HTML)
    assert ">B-tree indexes</a>" in page.text
    assert calls.count("load_outline") == 2


async def test_the_anonymous_tree_has_no_status_forms(
    people: Callable[[str], Awaitable[Browser]], client: Any
) -> None:
    ada = await people("Ada")
    await import_roadmap(ada, WEB, visibility="public")
    page = await client.get("/roadmaps/web", headers=HTML)
    assert page.status_code == 200
    assert 'class="status"' not in page.text
    assert status_on(page.text, "etags") == ""


async def test_a_topic_page_shows_an_edit_at_once_and_its_learners_own_status(
    people: Callable[[str], Awaitable[Browser]],
) -> None:
    ada, bob = await people("Ada"), await people("Bob")
    await import_roadmap(ada, WEB, visibility="public")
    topic = "/roadmaps/web/topics/indexes"
    assert "Indexes" in (await ada.client.get(topic, headers=HTML)).text
    await mark(ada, "indexes", "done")
    path = "/v1/roadmaps/web/topics/indexes"
    etag = (await ada.client.get(path)).headers["etag"]
    edited = await ada.client.patch(
        path,
        json={"summary": "How B-trees find rows"},
        headers={**ada.write_headers, "if-match": etag},
    )
    assert edited.status_code == 200, edited.text
    for person, pressed in ((ada, "s-done"), (bob, "s-todo")):
        page = (await person.client.get(topic, headers=HTML)).text
        assert "How B-trees find rows" in page
        assert re.search(f'class="{pressed}" aria-pressed="true"', page), pressed


def topic_status(page: str) -> str:
    found = re.search(r'<header class="topic-head" id="t-[a-z-]+" data-slug="[a-z-]+" '
                      r'data-status="([a-z_]*)"', page)  # fmt: skip
    assert found is not None
    return found.group(1)


async def test_each_topic_page_shows_the_status_the_roadmap_page_rolls_up_for_it(
    people: Callable[[str], Awaitable[Browser]],
) -> None:
    ada = await people("Ada")
    await import_roadmap(ada, WEB)
    await import_roadmap(ada, API)
    # Shared by concept from the other roadmap, a parent marked by hand above an unmarked
    # leaf, a leaf skipped under a parent whose status is derived.
    assert (await mark(ada, "entity-tags", "done", roadmap="api")).status_code == 200
    assert (await mark(ada, "databases", "done")).status_code == 200
    assert (await mark(ada, "status-codes", "skipped")).status_code == 200
    tree = (await ada.client.get("/roadmaps/web", headers=HTML)).text
    slugs = ["http", "status-codes", "caching", "etags", "cache-control", "databases", "indexes"]
    shown = {}
    for slug in slugs:
        page = await ada.client.get(f"/roadmaps/web/topics/{slug}", headers=HTML)
        shown[slug] = topic_status(page.text)
    assert shown == {slug: status_on(tree, slug) for slug in slugs}
    assert (shown["etags"], shown["databases"], shown["indexes"]) == ("done", "done", "todo")


def test_a_visitors_tree_is_filled_once_and_is_the_tree_written_from_rows_without_states() -> None:
    nodes = outline_nodes()
    skeleton = compile_tree("my-map", nodes, STATUS_LABELS, read_node, forms=False)
    expected = tree_html("my-map", rows_from_tree(nodes), STATUS_LABELS, None)

    first = skeleton.blank()

    assert first.decode() == expected
    assert skeleton.blank() is first
