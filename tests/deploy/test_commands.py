"""The Dockerfile, compose.yaml and the Kubernetes manifests run real `skilltree` commands with
real settings: a renamed command or setting breaks this test, not a deployment."""

from __future__ import annotations

import pytest
import yaml

from skilltree.app import create_app
from skilltree.platform.config import Settings
from tests.deploy.support import (
    KUBERNETES,
    compose_file,
    kubernetes_containers,
    resolve_skilltree_command,
    setting_variables,
    skilltree_invocations,
)

INVOCATIONS = list(skilltree_invocations())


@pytest.mark.parametrize(("where", "argv"), INVOCATIONS, ids=[where for where, _ in INVOCATIONS])
def test_every_command_in_the_deployment_files_is_a_skilltree_command(
    where: str, argv: list[str]
) -> None:
    context = resolve_skilltree_command(argv)

    assert context.command.callback is not None, f"{where}: {argv} names a group, not a command"


def test_the_files_run_every_process_skilltree_needs() -> None:
    commands = {(where.split(":")[0], " ".join(argv[1:])) for where, argv in INVOCATIONS}

    for source in ("compose.yaml", "kubernetes"):
        for command in ("serve", "worker", "scheduler", "migrate upgrade"):
            assert (source, command) in commands


def test_a_misspelt_command_is_refused_by_the_check() -> None:
    with pytest.raises(Exception, match="No such command 'wrker'"):
        resolve_skilltree_command(["skilltree", "wrker"])


def _configured_variables() -> set[str]:
    names: set[str] = set()
    for service in compose_file()["services"].values():
        names.update(service.get("environment") or {})
    configmap = yaml.safe_load((KUBERNETES / "configmap.yaml").read_text())
    names.update(configmap["data"])
    for _where, container in kubernetes_containers():
        names.update(variable["name"] for variable in container.get("env", []))
    return {name for name in names if name.startswith("SKILLTREE_")}


def test_every_setting_the_deployment_files_set_is_one_skilltree_reads() -> None:
    unknown = _configured_variables() - setting_variables()

    assert unknown == set()


def test_the_kubernetes_probes_call_the_health_endpoints_of_the_app() -> None:
    paths = set(create_app(Settings()).openapi()["paths"])
    probes = {
        kind: container[kind]["httpGet"]["path"]
        for _where, container in kubernetes_containers()
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
        if kind in container
    }

    assert probes == {
        "startupProbe": "/startupz",
        "livenessProbe": "/livez",
        "readinessProbe": "/readyz",
    }
    assert set(probes.values()) <= paths
