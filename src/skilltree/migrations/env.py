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


def _mysql_database_defaults(connection: Connection) -> None:
    # Tables take the database's character set and collation when created. utf8mb4 holds every
    # Unicode character (MySQL's "utf8" stops at three bytes), and the binary collation compares
    # as PostgreSQL and SQLite do: "Ada" and "ada" are two values, "a" and "a " too.
    name = connection.exec_driver_sql("SELECT DATABASE()").scalar_one()
    connection.exec_driver_sql(f"ALTER DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")


def run_migrations(connection: Connection) -> None:
    if connection.dialect.name in {"mysql", "mariadb"}:
        _mysql_database_defaults(connection)
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
