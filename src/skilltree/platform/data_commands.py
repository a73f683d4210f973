"""The operator's data commands: `skilltree db copy`, `skilltree backup`, `skilltree restore`.

Thin wrappers: parse, call platform/dbcopy.py or platform/backup.py, print. A refusal prints one
line and exits with code 2, like every other expected failure of the command line.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, NoReturn

import typer

# Each command imports its machinery when it runs: `skilltree --help` stays fast.

EXIT_REFUSED = 2

db_app = typer.Typer(help="Move a whole installation between databases.", no_args_is_help=True)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_REFUSED)


def _checked_url(url: str) -> str:
    from pydantic import ValidationError

    from skilltree.platform.config import DatabaseSettings

    try:
        return DatabaseSettings(url=url).url
    except ValidationError as error:
        _fail(f"{url}: {error.errors()[0]['msg']}")


@db_app.command("copy")
def copy(
    source: Annotated[str, typer.Option("--from", help="The database to copy (a URL)")],
    target: Annotated[str, typer.Option("--to", help="The database to fill (a URL)")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite a target that already holds data")
    ] = False,
    batch_rows: Annotated[int, typer.Option(min=1, max=100_000, help="Rows per batch")] = 1_000,
) -> None:
    """Copy every table from one database to another (SQLite, PostgreSQL, MariaDB/MySQL)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    from skilltree.platform import dbcopy

    source_url, target_url = _checked_url(source), _checked_url(target)
    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def advance(table: str, done: int, total: int) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(table, total=max(total, 1))
            bar.update(tasks[table], completed=done if total else 1)

        try:
            report = asyncio.run(
                dbcopy.copy_database(
                    source_url, target_url, replace=replace, batch_rows=batch_rows, progress=advance
                )
            )
        except dbcopy.CopyRefused as error:
            _fail(str(error))
    typer.echo(f"copied {report.rows} rows in {len(report.tables)} tables; verified")


def backup(
    directory: Annotated[Path, typer.Argument(help="Where to write the backup (a new directory)")],
) -> None:
    """Back up the database (and uploaded files) into a directory with a manifest."""
    from skilltree.platform import backup as backups
    from skilltree.platform.config import load_settings

    settings = load_settings()
    try:
        manifest = asyncio.run(backups.create_backup(settings, directory))
    except backups.BackupRefused as error:
        _fail(str(error))
    typer.echo(
        f"backed up {sum(t.rows for t in manifest.tables.values())} rows "
        f"({manifest.backend}, revision {manifest.revision}) to {directory}"
    )


def restore(
    directory: Annotated[Path, typer.Argument(help="A directory written by `skilltree backup`")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Replace the database's contents with a backup, then verify them against its manifest."""
    if not yes:
        typer.confirm("Replace everything in the configured database with this backup?", abort=True)
    from skilltree.platform import backup as backups
    from skilltree.platform.config import load_settings

    settings = load_settings()
    try:
        manifest = asyncio.run(backups.restore_backup(settings, directory))
    except backups.BackupRefused as error:
        _fail(str(error))
    typer.echo(f"restored {directory} (revision {manifest.revision}); checksums verified")
