"""A lint for migrations that would lock a big table while production serves (docs/migrations.md).

It reads each migration's source (nothing is run) and flags, on tables the migration did not
create itself:

- an index built without `postgresql_concurrently=True`: PostgreSQL's plain CREATE INDEX blocks
  every write to the table until the index is built;
- a column added with a volatile default (`now()`, `random()`, a UUID function): PostgreSQL fills
  a constant default instantly but rewrites the whole table, locked, for a volatile one;
- a column added NOT NULL without a default: it fails on a table with rows, or needs a rewrite;
- a column's type changed (`alter_column(type_=...)`): most type changes rewrite the table.

A call that is safe anyway (a table known to stay small) says so with a comment within the
call: `# online: <why>`. `skilltree migrate lint` prints the findings; a test keeps the list empty.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

VERSIONS = Path(__file__).resolve().parent.parent / "migrations" / "versions"
VOLATILE = ("now", "current_timestamp", "clock_timestamp", "random", "uuid", "gen_random")
ALLOW_MARK = "# online:"


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def lint_all(directory: Path = VERSIONS) -> list[Finding]:
    findings: list[Finding] = []
    for path in sorted(directory.glob("[0-9]*.py")):
        findings.extend(lint_source(path.read_text(encoding="utf-8"), path.name))
    return findings


def lint_source(source: str, name: str = "<migration>") -> list[Finding]:
    tree = ast.parse(source)
    lines = source.splitlines()
    upgrade = next(
        (
            node
            for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name == "upgrade"
        ),
        None,
    )
    if upgrade is None:
        return []
    created = _created_tables(upgrade)
    batches = _batch_tables(upgrade)
    findings = []
    for call in ast.walk(upgrade):
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Attribute):
            continue
        if any(ALLOW_MARK in line for line in lines[call.lineno - 1 : call.end_lineno]):
            continue
        table = _table_of(call, batches)
        if table is None or table in created:
            continue
        message = _problem(call, call.func.attr)
        if message:
            findings.append(Finding(name, call.lineno, f"{table}: {message}"))
    return findings


def _problem(call: ast.Call, operation: str) -> str | None:
    keywords = {keyword.arg: keyword.value for keyword in call.keywords}
    if operation == "create_index":
        concurrently = keywords.get("postgresql_concurrently")
        if not (isinstance(concurrently, ast.Constant) and concurrently.value is True):
            return (
                "CREATE INDEX blocks writes to the table until it is built; pass "
                "postgresql_concurrently=True inside op.get_context().autocommit_block()"
            )
    if operation == "add_column":
        column = next((arg for arg in call.args if isinstance(arg, ast.Call)), None)
        if column is None:
            return None
        options = {keyword.arg: keyword.value for keyword in column.keywords}
        default = options.get("server_default")
        if default is not None and any(word in ast.unparse(default).lower() for word in VOLATILE):
            return (
                "a volatile default rewrites the whole table under a lock; add the column "
                "nullable, backfill in batches, then set the default"
            )
        nullable = options.get("nullable")
        if isinstance(nullable, ast.Constant) and nullable.value is False and default is None:
            return (
                "NOT NULL without a default fails on a table with rows; add it nullable, "
                "backfill, then make it NOT NULL"
            )
    if operation == "alter_column" and "type_" in keywords:
        return "changing a column's type rewrites the table; add a new column and backfill it"
    return None


def _created_tables(function: ast.FunctionDef) -> set[str]:
    return {
        call.args[0].value
        for call in ast.walk(function)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "create_table"
        and call.args
        and isinstance(call.args[0], ast.Constant)
        and isinstance(call.args[0].value, str)
    }


def _batch_tables(function: ast.FunctionDef) -> dict[str, str]:
    """`with op.batch_alter_table("t") as name:` -> {"name": "t"}."""
    found = {}
    for node in ast.walk(function):
        if not isinstance(node, ast.With):
            continue
        for item in node.items:
            call, target = item.context_expr, item.optional_vars
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "batch_alter_table"
                and call.args
                and isinstance(call.args[0], ast.Constant)
                and isinstance(target, ast.Name)
            ):
                found[target.id] = str(call.args[0].value)
    return found


def _table_of(call: ast.Call, batches: dict[str, str]) -> str | None:
    assert isinstance(call.func, ast.Attribute)
    receiver = call.func.value
    if isinstance(receiver, ast.Name) and receiver.id in batches:
        return batches[receiver.id]
    if isinstance(receiver, ast.Name) and receiver.id == "op":
        # op.create_index(name, table, ...); op.add_column(table, ...); op.alter_column(table, ...)
        position = 1 if call.func.attr == "create_index" else 0
        argument = call.args[position] if len(call.args) > position else None
        if isinstance(argument, ast.Constant):
            return str(argument.value)
        table = next((k.value for k in call.keywords if k.arg == "table_name"), None)
        if isinstance(table, ast.Constant):
            return str(table.value)
    return None
