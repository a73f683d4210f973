"""`skilltree search reindex`: rebuild the search index from the roadmaps and every learner's
notes and resources, with a progress bar."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from skilltree.platform.db import Database

search_app = typer.Typer(help="Maintain the search index.", no_args_is_help=True)


@search_app.command("reindex")
def reindex() -> None:
    """Rebuild the whole index in one transaction: searches see the old one until it commits."""
    # Imported when the command runs: the CLI imports this module for every command.
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from skilltree.cli import run_with_database, settings_or_exit
    from skilltree.search import service

    settings = settings_or_exit()

    async def work(database: Database) -> int:
        columns = (
            TextColumn("indexing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        async with database.unit_of_work() as session:
            with Progress(*columns, transient=False) as bar:
                # Topics are counted as they come; notes and resources are known up front.
                task = bar.add_task("indexing", total=await service.documents_to_index(session))

                def advance(count: int) -> None:
                    bar.update(
                        task,
                        advance=count,
                        total=max(bar.tasks[0].total or 0, bar.tasks[0].completed + count),
                    )

                return await service.reindex(session, advance)

    total = run_with_database(settings, work)
    typer.echo(f"indexed {total} documents")
