"""The operator's feature-flag commands: `skilltree flags list | set | rule | delete`.

The same rules as the admin API (`/v1/admin/flags`) without If-Match: the operator at the
command line is the last word. A change is announced to running instances once committed
(through Redis when SKILLTREE_REDIS_URL is set; with the embedded default a running server
sees it within 30 seconds). Refusals print one line and exit with code 2.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Literal, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from skilltree.flags.service import FlagChanges, FlagView

EXIT_REFUSED = 2
KEY_PATTERN = re.compile(r"^[a-z0-9]+(?:[-.][a-z0-9]+)*$")
T = TypeVar("T")

flags_app = typer.Typer(
    help="Feature flags: list them, set their default and rollout, target users and organisations.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_REFUSED)


def _checked_key(key: str) -> str:
    if len(key) > 64 or not KEY_PATTERN.match(key):
        _fail(f"{key!r} is not a flag key: lower-case letters, digits, '-' and '.', at most 64")
    return key


def _run(work: Callable[[AsyncSession, FlagChanges], Awaitable[T]]) -> T:
    """Run `work` in one unit of work; announce a committed change; turn refusals into exit 2."""
    import skilltree.models  # noqa: F401  (every table, so cross-domain foreign keys resolve)
    from skilltree.flags.provider import CHANNEL
    from skilltree.flags.service import FlagChanges
    from skilltree.platform.broadcast import build_broadcaster
    from skilltree.platform.cache import Cache
    from skilltree.platform.clock import SystemClock
    from skilltree.platform.config import SettingsError, load_settings
    from skilltree.platform.db import Database
    from skilltree.platform.errors import DomainError
    from skilltree.platform.observability.logging import configure_logging

    try:
        settings = load_settings()
    except SettingsError as error:
        _fail(str(error))
    configure_logging(settings.log)

    async def runner() -> T:
        database = Database.from_settings(settings.database)
        # The shared cache's copy of the rule sets goes stale when this commits.
        cache = Cache.from_settings(settings.cache, settings.redis)
        database.on_every_unit_of_work(cache.bind)
        broadcaster = build_broadcaster(settings.realtime, settings.redis)

        async def announce() -> None:
            await broadcaster.publish(CHANNEL, {"origin": "command-line"}, keep=False)

        try:
            async with database.unit_of_work() as session:
                return await work(session, FlagChanges(SystemClock(), None, announce))
        finally:
            await broadcaster.close()
            await cache.close()
            await database.dispose()

    try:
        return asyncio.run(runner())
    except DomainError as error:
        _fail(error.detail)


def _describe(view: FlagView) -> str:
    rollout = "-" if view.rollout_percentage is None else f"{view.rollout_percentage}%"
    default = "on" if view.enabled else "off"
    overrides = f"{len(view.users)} user(s), {len(view.organisations)} organisation(s)"
    return f"{view.key}\tdefault {default}\trollout {rollout}\t{overrides}\t{view.description}"


@flags_app.command("list")
def list_flags() -> None:
    """Every flag: key, default, rollout, overrides, description."""
    from skilltree.flags import service

    async def work(session: AsyncSession, _changes: FlagChanges) -> list[FlagView]:
        return await service.list_flags(session)

    views = _run(work)
    for view in views:
        typer.echo(_describe(view))
    typer.echo(f"{len(views)} flag(s)")


@flags_app.command("set")
def set_flag(
    key: Annotated[str, typer.Argument(help="The flag's key, e.g. search-typo-tolerance")],
    state: Annotated[Literal["on", "off"], typer.Argument(help="The default: on or off")],
    rollout: Annotated[
        int | None,
        typer.Option(min=0, max=100, help="On for this share of signed-in users (0-100)"),
    ] = None,
    no_rollout: Annotated[bool, typer.Option("--no-rollout", help="Remove the rollout")] = False,
    description: Annotated[str | None, typer.Option(help="What the flag switches")] = None,
) -> None:
    """Create a flag, or change its default (and rollout, description); overrides stay."""
    from skilltree.flags import service

    _checked_key(key)
    if rollout is not None and no_rollout:
        _fail("--rollout and --no-rollout contradict each other")
    if description is not None and len(description) > 500:
        _fail("the description is longer than 500 characters")
    enabled = state == "on"

    async def work(session: AsyncSession, changes: FlagChanges) -> tuple[FlagView, bool]:
        stored = await service.find_flag(session, key)
        if stored is None:
            return await service.put_flag(
                session,
                changes,
                key,
                description=description or "",
                enabled=enabled,
                rollout_percentage=rollout,
            )
        rule_changes = service.RuleChanges(
            description=description,
            enabled=enabled,
            rollout_percentage=rollout,
            clear_rollout=no_rollout,
        )
        return await service.change_rules(session, changes, key, rule_changes), False

    view, created = _run(work)
    typer.echo(("created " if created else "updated ") + _describe(view))


@flags_app.command("rule")
def set_rule(
    key: Annotated[str, typer.Argument(help="The flag's key")],
    state: Annotated[
        Literal["on", "off", "clear"], typer.Argument(help="on, off, or clear (remove it)")
    ],
    user: Annotated[int | None, typer.Option(min=1, help="A user's id")] = None,
    org: Annotated[int | None, typer.Option(min=1, help="An organisation's id")] = None,
) -> None:
    """Override a flag for one user (--user) or one organisation (--org)."""
    from skilltree.flags import service

    _checked_key(key)
    if (user is None) == (org is None):
        _fail("name exactly one of --user and --org")
    value = None if state == "clear" else state == "on"
    subject = {user: value} if user is not None else {}
    organisation = {org: value} if org is not None else {}
    rule_changes = service.RuleChanges(users=subject, organisations=organisation)

    async def work(session: AsyncSession, changes: FlagChanges) -> FlagView:
        return await service.change_rules(session, changes, key, rule_changes)

    view = _run(work)
    typer.echo("updated " + _describe(view))


@flags_app.command("delete")
def delete_flag(key: Annotated[str, typer.Argument(help="The flag's key")]) -> None:
    """Delete a flag and its overrides: the code's own default answers from then on."""
    from skilltree.flags import service

    _checked_key(key)

    async def work(session: AsyncSession, changes: FlagChanges) -> None:
        await service.delete_flag(session, changes, key)

    _run(work)
    typer.echo(f"deleted {key}")
