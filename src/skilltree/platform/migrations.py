"""Programmatic Alembic: upgrade, downgrade and inspect the schema on a given database.

Alembic (with Mako and every dialect's DDL module) is imported by the commands that migrate,
not by the questions a serving process asks: which revisions this code ships and which one the
database is at (`/startupz`, backups, copies). Those are answered from the scripts' own
`revision = ...` lines and from the version table, without running the scripts or loading
Alembic; `tests/test_lazy_imports.py` checks the answers against Alembic's.
"""

from __future__ import annotations

import ast
from importlib.resources import files
from typing import TYPE_CHECKING

from sqlalchemy import column, inspect, select, table
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic's defaults, which env.py keeps: `script_location` below, the version table's name.
SCRIPT_LOCATION = "skilltree:migrations"
VERSION_TABLE = table("alembic_version", column("version_num"))


class RevisionError(RuntimeError):
    """The migration scripts or the version table are not a single line of revisions."""


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config  # only the commands that migrate need Alembic

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision the scripts define (None when there are none)."""
    revisions = _script_revisions()
    parents = {parent for parents in revisions.values() for parent in parents}
    heads = sorted(set(revisions) - parents)
    if len(heads) > 1:
        raise RevisionError(f"the migration scripts have several heads: {', '.join(heads)}")
    return heads[0] if heads else None


def known_revisions() -> set[str]:
    """Every revision this version of skilltree ships (an unknown one is from a newer version)."""
    return set(_script_revisions())


def _script_revisions() -> dict[str, tuple[str, ...]]:
    """Each script's revision and the revisions it follows, read from its module-level
    assignments as Alembic reads them, but without importing the script."""
    package, _, folder = SCRIPT_LOCATION.partition(":")
    revisions: dict[str, tuple[str, ...]] = {}
    for script in (files(package) / folder / "versions").iterdir():
        if not script.name.endswith(".py") or script.name.startswith("_"):
            continue
        names = _assigned_literals(script.read_text(encoding="utf-8"))
        revision, parents = names.get("revision"), names.get("down_revision")
        if not isinstance(revision, str):
            continue  # not a migration script
        if isinstance(parents, str):
            revisions[revision] = (parents,)
        elif isinstance(parents, tuple | list):  # a merge revision follows several
            revisions[revision] = tuple(str(parent) for parent in parents)
        else:
            revisions[revision] = ()  # the first revision
    return revisions


def _assigned_literals(source: str) -> dict[str, object]:
    values: dict[str, object] = {}
    for statement in ast.parse(source).body:
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    values[target.id] = ast.literal_eval(value)
                except ValueError:
                    continue  # not a literal: no revision id is computed
    return values


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    from alembic import command

    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    from alembic import command

    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None before the first migration)."""
    async with engine.connect() as connection:
        return await connection.run_sync(_stamped_revision)


def _stamped_revision(connection: Connection) -> str | None:
    # What Alembic's MigrationContext.get_current_revision reads, the same way.
    if not inspect(connection).has_table(VERSION_TABLE.name):
        return None
    stamped = list(connection.scalars(select(VERSION_TABLE.c.version_num)))
    if len(stamped) > 1:
        raise RevisionError(f"the database is stamped with several heads: {', '.join(stamped)}")
    return str(stamped[0]) if stamped else None
