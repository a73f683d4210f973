"""compose.yaml against the Compose specification (the compose-spec library), without Docker."""

from __future__ import annotations

import json

import pytest
from compose_spec import PyCompose

from tests.deploy.support import compose_file


def _validated(document: dict[str, object]) -> PyCompose:
    # PyYAML resolves the anchors and merge keys first, as Compose does before validating.
    compose = PyCompose.from_json(json.dumps(document))
    compose.validate()
    return compose


def test_the_compose_file_follows_the_compose_specification() -> None:
    compose = _validated(compose_file())

    assert set(compose.service_names()) == {
        "migrate", "api-1", "api-2", "worker", "scheduler",
        "nginx", "postgres", "redis", "rabbitmq", "prometheus",
    }  # fmt: skip


def test_the_check_refuses_a_misspelt_key() -> None:
    document = compose_file()
    document["services"]["worker"]["comand"] = document["services"]["worker"].pop("command")

    with pytest.raises(ValueError, match="comand"):
        _validated(document)


def test_the_instances_wait_for_the_migrations_to_finish() -> None:
    services = compose_file()["services"]

    for name in ("api-1", "api-2", "worker", "scheduler"):
        waits_for = services[name]["depends_on"]["migrate"]["condition"]
        assert waits_for == "service_completed_successfully"
