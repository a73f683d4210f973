"""Reading the deployment files: what each one runs and with which settings."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
import yaml
from typer.core import TyperGroup

from skilltree.cli import app as cli_app
from skilltree.platform.config import _GROUPS

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
KUBERNETES = ROOT / "deploy" / "kubernetes"
PROMETHEUS = ROOT / "deploy" / "prometheus"
NGINX = ROOT / "deploy" / "nginx"


def compose_file() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def kubernetes_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield path, document


def kubernetes_containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for _path, document in kubernetes_documents():
        spec = document.get("spec", {})
        pod = spec.get("template", {}).get("spec", {})
        for container in pod.get("containers", []):
            yield f"{document['kind']}/{document['metadata']['name']}", container


def dockerfile_instruction(name: str) -> list[str]:
    """The JSON-array form of the last ENTRYPOINT or CMD (the one that counts)."""
    lines = [
        line.split(None, 1)[1]
        for line in DOCKERFILE.read_text().splitlines()
        if line.startswith(f"{name} ")
    ]
    value: list[str] = json.loads(lines[-1])
    return value


def skilltree_invocations() -> Iterator[tuple[str, list[str]]]:
    """Every `skilltree ...` command line the deployment files run, with where it comes from."""
    entrypoint = dockerfile_instruction("ENTRYPOINT")
    image_default = dockerfile_instruction("CMD")
    yield "Dockerfile", [*entrypoint, *image_default]
    for name, service in compose_file()["services"].items():
        if str(service.get("image", "")).startswith("skilltree:"):
            command = service.get("command", image_default)
            if isinstance(command, str):
                command = shlex.split(command)
            yield f"compose.yaml:{name}", [*entrypoint, *command]
    for where, container in kubernetes_containers():
        if str(container.get("image", "")).startswith("skilltree:"):
            command = container.get("command", entrypoint)
            yield f"kubernetes:{where}", [*command, *container.get("args", image_default)]


def resolve_skilltree_command(argv: list[str]) -> Any:
    """Parse a command line as `skilltree` would (subcommands, options, their types) without
    running it. Raises typer's UsageError for anything `skilltree` would refuse."""
    assert argv[0] == "skilltree", f"not a skilltree command: {argv}"
    command: Any = typer.main.get_command(cli_app)
    context = command.make_context("skilltree", argv[1:])
    while isinstance(command, TyperGroup):
        remaining = [*context._protected_args, *context.args]
        name, sub, rest = command.resolve_command(context, remaining)
        assert sub is not None
        assert name is not None
        context = sub.make_context(name, rest, parent=context)
        command = sub
    return context


def setting_variables() -> set[str]:
    """Every environment variable skilltree reads a setting from (and its *_FILE twin)."""
    names = set()
    for group in _GROUPS.values():
        prefix = str(group.model_config.get("env_prefix", ""))
        for field in group.model_fields:
            names.add(f"{prefix}{field}".upper())
            names.add(f"{prefix}{field}_FILE".upper())
    return names
