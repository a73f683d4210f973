"""Alembic environment: runs migrations on a connection handed in by skilltree.platform.migrations.

skilltree never lets Alembic build its own engine, so migrations use exactly the connection
settings the application uses (SQLite pragmas included).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from skilltree.models import (  # every domain's tables, registered
    Base,
    include_in_schema_comparison,
)


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things in place: batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_in_schema_comparison,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `skilltree migrate`, not the alembic command")
run_migrations(connection)
