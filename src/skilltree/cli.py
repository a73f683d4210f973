"""The `skilltree` command: serve, worker, scheduler, dlq, migrate, import, export, roadmaps.

Expected failures (bad settings, bad input) print one clear message and exit with code 2;
tracebacks are for bugs only. Each command imports what it needs when it runs: `--help` and a
command's start-up never pay for the tables, FastAPI or the parsers of another command.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, NoReturn, TypeVar

import orjson
import typer

from skilltree import (
    data_commands,  # light: its commands import what they use
    flag_commands,  # light too
)
from skilltree.identity.viewer import Visibility  # light: no ORM, no framework

if TYPE_CHECKING:
    from skilltree.platform.cache import Cache
    from skilltree.platform.config import Settings
    from skilltree.platform.db import Database
    from skilltree.platform.queue.models import DeadLetter
    from skilltree.platform.state import Resources
    from skilltree.roadmaps import service
    from skilltree.roadmaps.document import TopicDoc
    from skilltree.roadmaps.importing import ImportLimits, ParsedRoadmap


EXIT_USAGE = 2  # bad input or settings: the same code typer uses for bad arguments
T = TypeVar("T")


def _typer(help_text: str) -> typer.Typer:
    # Plain help and error text: rendering them with rich would import it (and its markdown
    # and syntax highlighting) on every `--help`, the slowest part of the command's start-up.
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=None)


app = _typer("skilltree: learning roadmaps for backend engineers.")
migrate_app = _typer("Apply or revert database migrations.")
roadmap_app = _typer("Maintain the built-in roadmap.")
user_app = _typer("Manage accounts as the operator.")
dlq_app = _typer("Inspect and replay the dead-letter queue.")
app.add_typer(dlq_app, name="dlq")
app.add_typer(migrate_app, name="migrate")
app.add_typer(roadmap_app, name="roadmap")
app.add_typer(user_app, name="user")
app.add_typer(data_commands.db_app, name="db")
app.command("backup")(data_commands.backup)
app.command("restore")(data_commands.restore)
search_app = _typer("Maintain the search index.")
app.add_typer(search_app, name="search")
files_app = _typer("Maintain stored files.")
app.add_typer(files_app, name="files")
app.add_typer(flag_commands.flags_app, name="flags")


def main() -> None:
    app()


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings_or_exit() -> Settings:
    from skilltree.platform.config import SettingsError, load_settings
    from skilltree.platform.observability.logging import configure_logging
    from skilltree.platform.observability.tracing import configure_tracing

    try:
        settings = load_settings()
    except SettingsError as error:
        fail(str(error))
    configure_logging(settings.log)
    configure_tracing(settings.tracing)
    return settings


@asynccontextmanager
async def database_and_cache(settings: Settings) -> AsyncIterator[tuple[Database, Cache]]:
    """The database, and the cache its commits invalidate: what a command changes (an import,
    a task's work) stops being served from a shared cache as soon as it is committed."""
    import skilltree.models  # noqa: F401  (every table, so cross-domain foreign keys resolve)
    from skilltree.platform.cache import Cache
    from skilltree.platform.db import Database
    from skilltree.platform.observability.tracing import instrument_database

    database = Database.from_settings(settings.database)
    instrument_database(database, settings.tracing)
    cache = Cache.from_settings(settings.cache, settings.redis)
    database.on_every_unit_of_work(cache.bind)
    try:
        yield database, cache
    finally:
        await cache.close()
        await database.dispose()


def run_with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def runner() -> T:
        async with database_and_cache(settings) as (database, _):
            return await work(database)

    return asyncio.run(runner())


def run_with_engine(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run work that needs a connection and nothing else: no tables, no cache (reading the
    schema's revision must start fast, and the tables' metadata is not needed for it)."""
    from skilltree.platform.db import Database

    async def runner() -> T:
        database = Database.from_settings(settings.database)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(runner())


def run_with_resources(settings: Settings, work: Callable[[Resources], Awaitable[T]]) -> T:
    """Run background work with what tasks are given: database, cache, queue, mailer, clock."""

    async def runner() -> T:
        async with database_and_cache(settings) as (database, cache):
            return await work(_background_resources(settings, database, cache))

    return asyncio.run(runner())


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: SKILLTREE_HTTP_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: SKILLTREE_HTTP_PORT")] = None,
    workers: Annotated[int | None, typer.Option(help="Default: SKILLTREE_HTTP_WORKERS")] = None,
) -> None:
    """Serve the HTTP API with uvicorn (uvloop + httptools)."""
    from skilltree.platform.observability.metrics import prepare_worker_processes

    settings = settings_or_exit()
    worker_count = workers or settings.http.workers
    if worker_count > 1 and settings.redis.url is None:
        # Each worker would keep its own cache (platform/cache.py), rate limits and live
        # fan-out: a write answered by one would be served stale by the others (decision 0076).
        fail(
            f"{worker_count} workers need SKILLTREE_REDIS_URL: without Redis each worker keeps "
            "its own cache, rate limits and live updates, so a change made through one would "
            "not be seen through the others. Set SKILLTREE_REDIS_URL, or run one worker."
        )
    # Several worker processes share a metrics directory, so /metrics counts them all.
    metrics_directory = prepare_worker_processes(worker_count)
    try:
        _run_uvicorn(settings, host=host, port=port, workers=worker_count)
    finally:
        if metrics_directory is not None:
            shutil.rmtree(metrics_directory, ignore_errors=True)


def _run_uvicorn(settings: Settings, *, host: str | None, port: int | None, workers: int) -> None:
    import uvicorn

    from skilltree.platform.http.serving import HTTP_PROTOCOL
    from skilltree.platform.http.serving import serve as serve_draining

    config = uvicorn.Config(
        "skilltree.app:create_app_from_environment",
        factory=True,
        host=host or settings.http.host,
        port=port or settings.http.port,
        workers=workers,
        loop="uvloop",
        http=HTTP_PROTOCOL,  # httptools, a response's head and body in one write
        # skilltree writes its own JSON access log with request ids; uvicorn's would duplicate it.
        access_log=False,
        log_config=None,
        # The app reads X-Forwarded-For itself, from SKILLTREE_HTTP_TRUSTED_PROXIES only.
        proxy_headers=False,
        timeout_graceful_shutdown=settings.http.graceful_shutdown_seconds,
        timeout_keep_alive=settings.http.keep_alive_seconds,
        ws_per_message_deflate=settings.http.ws_per_message_deflate,
    )
    serve_draining(config, settings.http.drain_seconds)


@app.command("grpc")
def grpc_serve(
    host: Annotated[str | None, typer.Option(help="Default: SKILLTREE_GRPC_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: SKILLTREE_GRPC_PORT")] = None,
) -> None:
    """Serve the gRPC API (skilltree.v1 Roadmaps and Progress, health, reflection)."""
    from skilltree.rpc.server import serve as serve_grpc

    settings = settings_or_exit()

    async def runner() -> None:
        from skilltree.platform.redis import create_redis
        from skilltree.wiring import open_resources

        # What the HTTP lifespan gives requests: the same function builds both.
        async with open_resources(settings, redis=create_redis(settings.redis)) as resources:
            await serve_grpc(resources, host or settings.grpc.host, port or settings.grpc.port)

    asyncio.run(runner())


@migrate_app.command("upgrade")
def migrate_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Upgrade the schema (default: to the latest revision)."""
    from skilltree.platform import migrations

    settings = settings_or_exit()
    run_with_database(settings, lambda db: migrations.upgrade(db.engine, revision))
    typer.echo(f"database at revision {revision}")


@migrate_app.command("downgrade")
def migrate_downgrade(revision: Annotated[str, typer.Argument(help="e.g. -1 or base")]) -> None:
    """Revert the schema to an older revision."""
    from skilltree.platform import migrations

    settings = settings_or_exit()
    run_with_database(settings, lambda db: migrations.downgrade(db.engine, revision))
    typer.echo(f"database at revision {revision}")


@migrate_app.command("current")
def migrate_current() -> None:
    """Print the schema revision the database is at."""
    from skilltree.platform import migrations

    settings = settings_or_exit()
    current = run_with_engine(settings, lambda db: migrations.current_revision(db.engine))
    typer.echo(f"current: {current or 'none'} (head: {migrations.head_revision()})")


@migrate_app.command("lint")
def migrate_lint() -> None:
    """Flag migrations that would lock a big table while the service runs; exit 1 if any."""
    from skilltree.platform import migration_lint

    findings = migration_lint.lint_all()
    for finding in findings:
        typer.echo(str(finding))
    if findings:
        raise typer.Exit(1)
    typer.echo("no migration locks a table it did not create")


@app.command("import")
def import_file(
    path: Annotated[Path, typer.Argument(help="A markdown checklist, or a .json/.yaml roadmap")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change")] = False,
    slug: Annotated[str | None, typer.Option(help="Import under this roadmap slug")] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="markdown, json or yaml (default: by extension)")
    ] = None,
    owner: Annotated[
        str | None,
        typer.Option(help="The e-mail of the account that owns the roadmap (default: no owner)"),
    ] = None,
    visibility: Annotated[
        Visibility | None,
        typer.Option(
            help="public or private (default: private with --owner, public without)",
            case_sensitive=False,
        ),
    ] = None,
    apply_progress: Annotated[
        bool,
        typer.Option(
            "--apply-progress", help="Record the file's ticked boxes as the owner's progress"
        ),
    ] = False,
) -> None:
    """Import a roadmap; re-importing keeps topic ids and therefore everyone's progress."""
    from skilltree.accounts import directory
    from skilltree.identity import OPERATOR, Viewer
    from skilltree.orgs import service as orgs
    from skilltree.platform.clock import SystemClock
    from skilltree.platform.errors import DomainError, NotFound
    from skilltree.progress import service as progress
    from skilltree.roadmaps import service
    from skilltree.roadmaps.importing import ImportLimits

    if visibility == Visibility.ORGANISATION:
        fail("--visibility organisation is not available here: import through the API with org=")
    if owner is None and visibility == Visibility.PRIVATE:
        fail("a private roadmap needs --owner (no one else could see it)")
    if apply_progress and owner is None:
        fail("--apply-progress needs --owner: whose progress would it be?")
    settings = settings_or_exit()
    limits = ImportLimits(
        max_bytes=settings.importing.max_bytes,
        max_depth=settings.importing.max_depth,
        max_topics=settings.importing.max_topics,
    )
    parsed = _parse_file(path, fmt, limits)

    async def work(db: Database) -> tuple[service.ImportReport, int | None]:
        async with db.unit_of_work() as session:
            viewer, user_id = OPERATOR, 0
            if owner is not None:
                person = await directory.person_by_email(session, owner)
                if person is None:
                    raise NotFound(f"No account has the e-mail address {owner!r}.")
                user_id = person.user_id
                viewer = Viewer(user_id=user_id, org_roles=await orgs.roles_of(session, user_id))
            report = await service.import_roadmap(
                session, parsed, viewer=viewer, dry_run=dry_run, slug=slug, visibility=visibility
            )
            changed = None
            if apply_progress and not dry_run:
                learner = progress.Learner(user_id=user_id, viewer=viewer, clock=SystemClock())
                marks = service.checklist_marks(parsed)
                changed = (
                    await progress.apply_checklist_marks(session, learner, report.slug, marks)
                ).changed
            return report, changed

    try:
        report, changed = run_with_database(settings, work)
    except DomainError as error:
        fail(error.detail)
    _print_report(report)
    if apply_progress:
        marks = service.checklist_marks(report.parsed)
        for topic_slug, mark in marks:
            typer.echo(f"progress: {topic_slug} -> {mark}")
        if changed is None:
            typer.echo(f"would apply {len(marks)} ticked boxes to {owner}'s progress")
        else:
            typer.echo(
                f"applied {len(marks)} ticked boxes to {owner}'s progress ({changed} changed)"
            )


def _parse_file(path: Path, fmt: str | None, limits: ImportLimits) -> ParsedRoadmap:
    from skilltree.platform.errors import DomainError
    from skilltree.roadmaps.importing import RoadmapImportError, detect_format, parse_roadmap

    if not path.is_file():
        fail(f"{path}: no such file")
    if path.stat().st_size > limits.max_bytes:
        fail(f"{path}: larger than the import limit of {limits.max_bytes} bytes")
    try:
        format_ = detect_format(path.name, None) if fmt is None else _format(fmt)
        return parse_roadmap(path.read_bytes(), format_, limits, source_name=path.name)
    except RoadmapImportError as error:
        fail(f"{path}: {error.detail}")
    except DomainError as error:
        fail(f"{path}: {error.detail}")


def _format(name: str) -> Literal["markdown", "json", "yaml"]:
    if name not in ("markdown", "json", "yaml"):
        fail(f"unknown format {name!r}: use markdown, json or yaml")
    return name  # type: ignore[return-value]


def _print_report(report: service.ImportReport) -> None:
    parsed, plan = report.parsed, report.plan
    if report.dry_run:
        typer.echo(f"{parsed.document.title} ({report.slug})")
        _print_tree(parsed.document.topics, depth=1)
        for line, text in parsed.skipped:
            typer.echo(f"skipped line {line}: {text}")
    for warning in parsed.warnings:
        typer.echo(f"warning: {warning}")
    if parsed.repaired_encoding:
        typer.echo(f"repaired text that had been decoded as {parsed.repaired_encoding}")
    verb = "would import" if report.dry_run else "imported"
    state = "new roadmap" if report.created else "existing roadmap"
    typer.echo(
        f"{verb} {report.slug!r} ({state}): {len(parsed.items)} items; "
        f"{len(plan.added)} added, {len(plan.updated)} updated, {len(plan.removed)} removed, "
        f"{plan.unchanged} unchanged"
    )


def _print_tree(topics: list[TopicDoc], depth: int) -> None:
    for topic in topics:
        box = {"done": "[x] ", "in_progress": "[/] ", "skipped": "[-] "}.get(topic.status or "", "")
        typer.echo(f"{'  ' * depth}{box}{topic.title}  ({topic.slug})")
        _print_tree(topic.children, depth + 1)


@app.command("export")
def export_roadmap(
    slug: Annotated[str, typer.Argument(help="The roadmap slug, e.g. backend")],
    fmt: Annotated[str, typer.Option("--format", help="markdown or json")] = "markdown",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Default: stdout")] = None,
) -> None:
    """Write a roadmap as a markdown checklist or as JSON that re-imports losslessly."""
    from skilltree.platform.errors import DomainError
    from skilltree.roadmaps import service
    from skilltree.roadmaps.exporting import to_markdown
    from skilltree.roadmaps.policies import OPERATOR

    if fmt not in ("markdown", "json"):
        fail(f"unknown format {fmt!r}: use markdown or json")
    settings = settings_or_exit()

    async def work(db: Database) -> str:
        async with db.unit_of_work() as session:
            document = await service.export_document(session, slug, OPERATOR)
        if fmt == "json":
            dumped = document.model_dump(mode="json", exclude_defaults=True)
            return orjson.dumps(dumped, option=orjson.OPT_INDENT_2).decode() + "\n"
        return to_markdown(document)

    try:
        text = run_with_database(settings, work)
    except DomainError as error:
        fail(error.detail)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Argument(help="The account's e-mail address")],
    name: Annotated[str, typer.Option("--name", help="Display name")],
    admin: Annotated[bool, typer.Option("--admin", help="Make a platform administrator")] = False,
    password_file: Annotated[
        Path | None, typer.Option(help="Read the password from this file instead of a prompt")
    ] = None,
) -> None:
    """Create a verified account. The password is prompted for (or read from a file), never
    taken as an argument, where it would end up in the shell history."""
    from skilltree.accounts import service as accounts
    from skilltree.platform.clock import SystemClock
    from skilltree.platform.errors import DomainError

    if password_file is not None:
        if not password_file.is_file():
            fail(f"{password_file}: no such file")
        password = password_file.read_text(encoding="utf-8").strip()
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = settings_or_exit()

    async def work(db: Database) -> None:
        async with db.unit_of_work() as session:
            await accounts.create_user(
                session,
                SystemClock(),
                email=email,
                password=password,
                display_name=name,
                admin=admin,
            )

    try:
        run_with_database(settings, work)
    except DomainError as error:
        fail(error.detail)
    kind = "administrator" if admin else "user"
    typer.echo(f"created {kind} {email.strip().lower()}")


@roadmap_app.command("load-builtin")
def roadmap_load_builtin() -> None:
    """Install or update the built-in Backend Engineering roadmap (idempotent)."""
    from skilltree.roadmaps import service
    from skilltree.roadmaps.builtin import load_builtin
    from skilltree.roadmaps.policies import OPERATOR

    settings = settings_or_exit()
    parsed = load_builtin()

    async def work(db: Database) -> service.ImportReport:
        async with db.unit_of_work() as session:
            return await service.import_roadmap(session, parsed, viewer=OPERATOR, source="builtin")

    _print_report(run_with_database(settings, work))


@roadmap_app.command("coverage")
def roadmap_coverage(
    seeds: Annotated[
        list[Path] | None, typer.Argument(help="Seed checklists (default: the bundled seeds)")
    ] = None,
    unmapped_only: Annotated[
        bool, typer.Option("--unmapped-only", help="List only the items no topic claims")
    ] = False,
) -> None:
    """List every seed item and the topic it landed in (exit 1 if any item is unmapped), then the
    share of each section's leaves that this codebase implements."""
    from skilltree.roadmaps.builtin import seed_files
    from skilltree.roadmaps.coverage import check_coverage

    paths = seeds or seed_files()
    for path in paths:
        if not path.is_file():
            fail(f"{path}: no such file")
    report = check_coverage(paths)
    for row in report.rows:
        if not unmapped_only or row.topic is None:
            target = row.topic or "UNMAPPED"
            typer.echo(f"{row.seed}:{row.line}\t{row.item}\t-> {target}")
    for seed, line, text, reason in report.excluded:
        typer.echo(f"{seed}:{line}\t{text}\t-> EXCLUDED ({reason})")
    for key, slugs in report.ambiguous.items():
        typer.echo(f"AMBIGUOUS\t{key}\t-> {', '.join(slugs)}")
    typer.echo(
        f"{len(report.rows)} items, {len(report.rows) - len(report.unmapped)} mapped, "
        f"{len(report.unmapped)} unmapped, {len(report.ambiguous)} ambiguous, "
        f"{len(report.excluded)} excluded"
    )
    if not seeds:
        _print_implemented_share()
    if not report.ok:
        raise typer.Exit(1)


def _print_implemented_share() -> None:
    """How much of each section this codebase implements: implemented leaves over the leaves
    that can be shown in code (theory leaves left out)."""
    from skilltree.roadmaps.builtin import load_builtin
    from skilltree.roadmaps.builtin.status import coverage_by_section

    rows = coverage_by_section(load_builtin().document.topics)
    typer.echo("")
    typer.echo("implemented (of leaves that are not theory), per section:")
    for row in rows:
        typer.echo(
            f"{row.slug}\t{row.implemented}/{row.implemented + row.planned}\t{row.share:.0%}"
            f"\t({row.theory} theory)"
        )
    implemented = sum(row.implemented for row in rows)
    codeable = sum(row.implemented + row.planned for row in rows)
    theory = sum(row.theory for row in rows)
    share = implemented / codeable if codeable else 1.0
    typer.echo(f"total\t{implemented}/{codeable}\t{share:.0%}\t({theory} theory)")


def _background_resources(settings: Settings, database: Database, cache: Cache) -> Resources:
    from skilltree.wiring import wire_background

    wire_background()  # every task, cron job, consumer, clean-up and hook
    from skilltree.platform.broadcast import build_broadcaster
    from skilltree.platform.clock import SystemClock
    from skilltree.platform.queue.client import build_queue
    from skilltree.platform.state import Resources
    from skilltree.platform.transactional_mail import transactional_mailer

    clock = SystemClock()
    queue = build_queue(settings.queue, database, clock)
    return Resources(
        settings=settings,
        database=database,
        clock=clock,
        mailer=transactional_mailer(settings.mail, database, clock, queue),
        queue=queue,
        cache=cache,
        broadcaster=build_broadcaster(settings.realtime, settings.redis),
    )


@app.command()
def worker(
    relay: Annotated[
        bool, typer.Option(help="Also relay the outbox to the broker (one relay is enough)")
    ] = True,
) -> None:
    """Run background tasks until SIGTERM, then give running ones the grace period."""
    from skilltree.platform.queue.lifecycle import stop_on_signals
    from skilltree.platform.queue.worker import run_worker

    settings = settings_or_exit()

    async def work(resources: Resources) -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await run_worker(resources, resources.queue, stop, relay=relay)

    run_with_resources(settings, work)


@app.command()
def relay() -> None:
    """Only relay the outbox to the broker (when workers run with --no-relay)."""
    from skilltree.platform.queue.lifecycle import stop_on_signals
    from skilltree.platform.queue.worker import relay_for

    settings = settings_or_exit()

    async def work(resources: Resources) -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        try:
            await relay_for(resources, resources.queue).run(stop)
        finally:
            await resources.queue.close()

    run_with_resources(settings, work)


@app.command()
def scheduler() -> None:
    """Queue cron jobs on schedule; any number may run, each tick is queued once."""
    from skilltree.platform.clock import SystemClock
    from skilltree.platform.queue.lifecycle import stop_on_signals
    from skilltree.platform.queue.scheduler import Scheduler

    settings = settings_or_exit()

    async def work(resources: Resources) -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        instance = f"{socket.gethostname()}:{os.getpid()}"
        await Scheduler(
            resources.database,
            SystemClock(),
            instance=instance,
            interval_seconds=settings.queue.scheduler_interval_seconds,
        ).run(stop)

    run_with_resources(settings, work)


@dlq_app.command("list")
def dlq_list(
    task: Annotated[str | None, typer.Option(help="Only letters of this task")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Dead letters, newest first: id, task, attempts, when, error."""
    from skilltree.platform.queue import dead_letters

    settings = settings_or_exit()

    async def work(db: Database) -> list[DeadLetter]:
        async with db.unit_of_work() as session:
            return list(await dead_letters.page(session, limit=limit, task_name=task))

    letters = run_with_database(settings, work)
    for letter in letters:
        error = letter.error.splitlines()[0][:80] if letter.error else ""
        typer.echo(
            f"{letter.id}\t{letter.task_name}\t{letter.attempts} attempts\t"
            f"{letter.failed_at.isoformat()}\t{error}"
        )
    typer.echo(f"{len(letters)} dead letter(s)")


@dlq_app.command("show")
def dlq_show(letter_id: Annotated[int, typer.Argument(help="The dead letter's id")]) -> None:
    """One dead letter in full, as JSON."""
    from skilltree.platform.queue import dead_letters

    settings = settings_or_exit()

    async def work(db: Database) -> DeadLetter | None:
        async with db.unit_of_work() as session:
            return await dead_letters.get(session, letter_id)

    letter = run_with_database(settings, work)
    if letter is None:
        fail(f"no dead letter {letter_id}")
    shown = {
        "id": letter.id,
        "task_id": letter.task_id,
        "task": letter.task_name,
        "attempts": letter.attempts,
        "failed_at": letter.failed_at.isoformat(),
        "error": letter.error,
        "payload": letter.args[0] if letter.args else None,
        "labels": letter.labels,
    }
    typer.echo(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())


@dlq_app.command("replay")
def dlq_replay(letter_id: Annotated[int, typer.Argument(help="The dead letter's id")]) -> None:
    """Queue the task again with a fresh set of attempts, and remove the letter."""
    from skilltree.platform.clock import SystemClock
    from skilltree.platform.queue import dead_letters

    settings = settings_or_exit()

    async def work(db: Database) -> str | None:
        async with db.unit_of_work() as session:
            letter = await dead_letters.get(session, letter_id)
            if letter is None:
                return None
            return await dead_letters.replay(session, letter, now=SystemClock().now())

    message_id = run_with_database(settings, work)
    if message_id is None:
        fail(f"no dead letter {letter_id}")
    typer.echo(f"replayed dead letter {letter_id} as message {message_id}")


@dlq_app.command("purge")
def dlq_purge(
    task: Annotated[str | None, typer.Option(help="Only letters of this task")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Delete dead letters for good."""
    from skilltree.platform.queue import dead_letters

    if not yes:
        typer.confirm("Delete these dead letters for good?", abort=True)
    settings = settings_or_exit()

    async def work(db: Database) -> int:
        async with db.unit_of_work() as session:
            return await dead_letters.purge(session, task_name=task)

    typer.echo(f"purged {run_with_database(settings, work)} dead letter(s)")


@search_app.command("reindex")
def search_reindex() -> None:
    """Rebuild the whole index in one transaction: searches see the old one until it commits."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from skilltree.search import service as search

    settings = settings_or_exit()

    async def work(database: Database) -> int:
        columns = (TextColumn("indexing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        async with database.unit_of_work() as session:
            with Progress(*columns, transient=False) as bar:
                # Topics are counted as they come; notes and resources are known up front.
                task = bar.add_task("indexing", total=await search.documents_to_index(session))

                def advance(count: int) -> None:
                    bar.update(
                        task,
                        advance=count,
                        total=max(bar.tasks[0].total or 0, bar.tasks[0].completed + count),
                    )

                return await search.reindex(session, advance)

    total = run_with_database(settings, work)
    typer.echo(f"indexed {total} documents")


@files_app.command("backfill-variants")
def files_backfill_variants() -> None:
    """Queue the thumbnail/avatar-sizes task for every stored image missing them (images
    uploaded before the task existed, or whose variants were lost); safe to run again."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from skilltree.files import service as files
    from skilltree.platform.clock import SystemClock

    settings = settings_or_exit()

    async def work(database: Database) -> files.Backfill:
        columns = (TextColumn("checking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        async with database.unit_of_work() as session:
            with Progress(*columns, transient=False) as bar:
                task = bar.add_task("checking", total=await files.images_missing_variants(session))

                def advance(count: int) -> None:
                    bar.update(task, advance=count)

                return await files.backfill_variants(session, SystemClock().now(), advance)

    done = run_with_database(settings, work)
    typer.echo(
        f"queued {done.queued} image(s) for their variants ({done.already_queued} already queued)"
    )
