"""Every "in this codebase" reference of the built-in roadmap resolves.

A module reference must import (and its :symbol exist), an endpoint must be in the OpenAPI
document, and a test reference must be a node id that pytest collects (tests/support/collection.py).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from skilltree.app import create_app
from skilltree.platform.config import Settings
from skilltree.platform.http.api_docs import DOCS_URL, REDOC_URL
from skilltree.roadmaps.builtin import load_references
from skilltree.roadmaps.document import ReferenceDoc
from tests.support.collection import collected_node_ids

ROOT = Path(__file__).resolve().parents[2]
REFERENCES = load_references()
ALL = [(slug, ref) for slug, refs in REFERENCES.items() for ref in refs]


def by_kind(kind: str) -> list[tuple[str, ReferenceDoc]]:
    return [(slug, ref) for slug, ref in ALL if ref.kind == kind]


def test_every_implemented_topic_names_a_module_and_a_test() -> None:
    # An endpoint is named where one shows the topic; some topics (migrations, the CLI) have none.
    assert len(REFERENCES) >= 10
    for slug, refs in REFERENCES.items():
        kinds = {ref.kind for ref in refs}
        # A topic shown by a file that is not Python (the CI script) names that file instead.
        assert "test" in kinds, slug
        assert kinds & {"module", "file"}, slug


def test_every_referenced_topic_exists_in_the_builtin_roadmap(builtin_roadmap: object) -> None:
    # load_builtin (behind the fixture) raises on a reference to an unknown topic.
    assert builtin_roadmap is not None


@pytest.mark.parametrize(("slug", "ref"), by_kind("module"), ids=lambda v: getattr(v, "target", v))
def test_module_reference_imports(slug: str, ref: ReferenceDoc) -> None:
    module_name, _, symbol = ref.target.partition(":")
    module = importlib.import_module(module_name)
    if symbol:
        target: object = module
        for part in symbol.split("."):
            target = getattr(target, part)


@pytest.mark.parametrize(("slug", "ref"), by_kind("file"), ids=lambda v: getattr(v, "target", v))
def test_file_reference_exists(slug: str, ref: ReferenceDoc) -> None:
    assert (ROOT / ref.target).is_file()


@pytest.fixture(scope="module")
def openapi_operations() -> set[str]:
    app = create_app(Settings())
    operations = {
        f"{method.upper()} {path}"
        for path, methods in app.openapi()["paths"].items()
        for method in methods
    }
    # The API's own documentation is served outside the document it serves.
    operations |= {f"GET {app.openapi_url}", f"GET {DOCS_URL}", f"GET {REDOC_URL}"}
    return operations


@pytest.mark.parametrize(
    ("slug", "ref"), by_kind("endpoint"), ids=lambda v: getattr(v, "target", v)
)
def test_endpoint_reference_is_in_the_openapi_document(
    slug: str, ref: ReferenceDoc, openapi_operations: set[str]
) -> None:
    assert ref.target in openapi_operations


@pytest.fixture(scope="module")
def collected_test_ids(request: pytest.FixtureRequest) -> set[str]:
    named = {ref.target.split("::")[0] for _, ref in by_kind("test")}
    return collected_node_ids(request.session, named)


@pytest.mark.parametrize(("slug", "ref"), by_kind("test"), ids=lambda v: getattr(v, "target", v))
def test_test_reference_is_collected_by_pytest(
    slug: str, ref: ReferenceDoc, collected_test_ids: set[str]
) -> None:
    # A parametrised test is collected as node[param]; the bare node id names all of them.
    assert any(
        node == ref.target or node.startswith(ref.target + "[") for node in collected_test_ids
    )


def test_a_topic_named_twice_in_the_concept_map_is_an_error(tmp_path: Path) -> None:
    # YAML keeps the last of two equal keys without a word; half the references would vanish.
    mapping = tmp_path / "implemented_in.yaml"
    mapping.write_text(
        'pagination:\n  - {kind: endpoint, target: "GET /v1/roadmaps"}\n'
        'pagination:\n  - {kind: endpoint, target: "GET /v1/me/reviews/due"}\n'
    )

    with pytest.raises(ValueError, match="'pagination' twice"):
        load_references(mapping)
