"""The built-in roadmap's YAML files, read with a loader that refuses a key given twice.

A module of its own so that PyYAML loads with the first of those files read (loading the
roadmap, a page that shows a topic's references), not in every worker (decision 0062).
"""

from __future__ import annotations

from typing import Any

import yaml


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (plain YAML keeps the last
    one silently, which would drop a topic's first list of references)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ValueError(f"{key_node.start_mark}: {key!r} twice; merge the two entries")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load(text: str) -> Any:
    return yaml.load(text, Loader=_UniqueKeyLoader) or {}  # noqa: S506
