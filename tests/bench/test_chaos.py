"""The chaos script's kill -9 scenario, run small enough for CI: one kill of a loaded server on
SQLite, and every acknowledged create must be stored, once. Its other scenarios need servers of
their own (PostgreSQL, Redis, RabbitMQ) and minutes; they run from the command line
(docs/reliability.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import kill_api, parse


async def test_a_killed_server_loses_no_acknowledged_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = parse(["--kill-api", "--kills", "1", "--connections", "2", "--database", "sqlite"])

    as_expected = await kill_api(options, tmp_path, f"sqlite+aiosqlite:///{tmp_path}/chaos.db")

    report = capsys.readouterr().out
    assert as_expected, report
    assert "acknowledged but missing: 0" in report


def test_a_scenario_must_be_named_and_stays_bounded() -> None:
    with pytest.raises(SystemExit):
        parse([])
    with pytest.raises(SystemExit):
        parse(["--kill-api", "--kills", "1000"])
    with pytest.raises(SystemExit):
        parse(["--stop-redis", "--outage", "3600"])

    everything = parse(["--all"])

    assert [everything.kill_api, everything.restart_postgres] == [True, True]
    assert [everything.stop_redis, everything.stop_rabbitmq] == [True, True]
