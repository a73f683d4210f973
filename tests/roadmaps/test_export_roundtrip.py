"""The markdown export re-imports as the same tree with the same links, for any tree."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skilltree.roadmaps.document import ResourceDoc, RoadmapDoc, TopicDoc
from skilltree.roadmaps.exporting import to_markdown
from skilltree.roadmaps.importing import parse_roadmap

# Words as people write them, in more than one script; titles are one to five of them.
word = st.builds(
    str.__add__,
    st.sampled_from("AbcdeFghÉüßøЖж中"),
    st.text(alphabet="abcxyz0189éü&/'+#", max_size=8),
)
phrase = st.lists(word, min_size=1, max_size=5).map(" ".join)
resource = st.builds(
    ResourceDoc,
    title=phrase,
    url=st.text(alphabet="abz09_/()-", max_size=20).map("https://example.org/".__add__),
    type=st.sampled_from(["link", "docs", "spec", "book", "video"]),
)


def topics(depth: int) -> st.SearchStrategy[list[TopicDoc]]:
    children = topics(depth - 1) if depth > 1 else st.just([])
    topic = st.builds(
        TopicDoc,
        title=phrase,
        summary=st.one_of(st.just(""), phrase),
        resources=st.lists(resource, max_size=2, unique_by=lambda r: r.url),
        checkbox=st.booleans(),
        children=children,
    )
    return st.lists(topic, min_size=1, max_size=3, unique_by=lambda t: t.title.casefold())


def sections() -> st.SearchStrategy[list[TopicDoc]]:
    section = st.builds(
        TopicDoc,
        title=phrase,
        resources=st.lists(resource, max_size=1),
        children=topics(3),
    )
    return st.lists(section, min_size=1, max_size=3, unique_by=lambda t: t.title.casefold())


def shape(nodes: list[TopicDoc]) -> list[Any]:
    return [
        (
            node.title,
            node.summary,
            [(r.title, r.url, r.type) for r in node.resources],
            node.checkbox,
            shape(node.children),
        )
        for node in nodes
    ]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=phrase, tree=sections())
def test_a_markdown_export_reimports_with_its_tree_and_links(
    title: str, tree: list[TopicDoc]
) -> None:
    document = RoadmapDoc(title=title, topics=tree)

    reimported = parse_roadmap(to_markdown(document).encode(), "markdown").document

    assert reimported.title == title
    assert shape(reimported.topics) == shape(tree)
    assert reimported.model_dump()["topics"] is not None


def test_leaves_are_tasks_and_parents_plain_bullets() -> None:
    document = RoadmapDoc(
        title="T",
        topics=[
            TopicDoc(
                title="S",
                children=[
                    TopicDoc(title="Caching", children=[TopicDoc(title="ETags", status="done")]),
                    TopicDoc(title="Queues"),
                ],
            )
        ],
    )

    assert to_markdown(document) == ("# T\n\n## S\n\n- Caching\n  - [x] ETags\n- [ ] Queues\n")


def test_tasks_and_plain_bullets_are_written_as_their_source_wrote_them() -> None:
    source = (
        "# T\n\n## S\n\n"
        "- Reading list\n  - Chapter one\n  - [ ] Exercise one\n"
        "- [ ] Project\n  - [x] Set up\n"
    )

    document = parse_roadmap(source.encode(), "markdown").document

    assert to_markdown(document) == source


def test_resources_are_exported_as_links() -> None:
    document = RoadmapDoc(
        title="T",
        topics=[
            TopicDoc(
                title="HTTP",
                children=[
                    TopicDoc(
                        title="Semantics",
                        resources=[
                            ResourceDoc(
                                title="RFC 9110",
                                url="https://www.rfc-editor.org/rfc/rfc9110",
                                type="spec",
                            )
                        ],
                    )
                ],
            )
        ],
    )

    assert "- [ ] Semantics [@spec@RFC 9110](<https://www.rfc-editor.org/rfc/rfc9110>)" in (
        to_markdown(document)
    )
