"""Walking a roadmap's tree: every topic once, depth first, in the order the roadmap lists them."""

from __future__ import annotations

from skilltree.roadmaps.service import TopicNode, TopicRef, count_nodes, nest, walk


def topic(id_: int, slug: str, parent_id: int | None, position: int) -> TopicRef:
    return TopicRef(id_, 1, parent_id, position, slug, slug.title(), "", None, None)


def roadmap() -> tuple[TopicNode[TopicRef], ...]:
    """Two sections: the first with a leaf, a group of two and a group nested two deep; the
    second without topics."""
    return nest(
        [
            topic(1, "http", None, 0),
            topic(2, "queues", None, 1),
            topic(3, "methods", 1, 0),
            topic(4, "caching", 1, 1),
            topic(5, "status-codes", 1, 2),
            topic(6, "etags", 4, 0),
            topic(7, "cache-control", 4, 1),
            topic(8, "problem-details", 5, 0),
            topic(9, "error-types", 8, 0),
        ]
    )


def slugs(nodes: tuple[TopicNode[TopicRef], ...]) -> list[str]:
    return [node.topic.slug for node in walk(nodes)]


def test_every_topic_comes_once_after_its_parent_and_before_its_next_sibling() -> None:
    assert slugs(roadmap()) == [
        "http",
        "methods",
        "caching",
        "etags",
        "cache-control",
        "status-codes",
        "problem-details",
        "error-types",
        "queues",
    ]


def test_walking_one_node_gives_it_and_its_subtree_alone() -> None:
    http = roadmap()[0]
    caching = http.children[1]
    assert slugs((caching,)) == ["caching", "etags", "cache-control"]
    assert count_nodes((caching,)) == 3
    assert count_nodes((http,)) == 8


def test_a_leaf_is_walked_as_itself() -> None:
    leaf = roadmap()[1]
    assert slugs((leaf,)) == ["queues"]
    assert count_nodes((leaf,)) == 1


def test_every_topic_of_the_roadmap_is_counted() -> None:
    assert count_nodes(roadmap()) == 9


def test_an_empty_tree_has_no_topics() -> None:
    assert slugs(()) == []
    assert count_nodes(()) == 0
    assert slugs(nest([])) == []
