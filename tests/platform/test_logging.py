"""Logs are JSON lines carrying the request id, for skilltree's loggers and everyone else's."""

from __future__ import annotations

import json
import logging

import pytest

from skilltree.platform.config import LogSettings
from skilltree.platform.observability.context import request_id_var
from skilltree.platform.observability.logging import configure_logging, get_logger


def last_json_line(out: str) -> dict[str, object]:
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def test_events_are_json_with_timestamp_level_logger_and_request_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(LogSettings(level="INFO", format="json"))
    token = request_id_var.set("req-42")
    try:
        get_logger("skilltree.test").info("imported", topics=3)
    finally:
        request_id_var.reset(token)

    line = last_json_line(capsys.readouterr().out)
    assert line["event"] == "imported"
    assert line["topics"] == 3
    assert line["request_id"] == "req-42"
    assert line["level"] == "info"
    assert line["logger"] == "skilltree.test"
    assert str(line["timestamp"]).endswith("Z")


def test_standard_library_loggers_are_rendered_as_json_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(LogSettings(level="INFO", format="json"))

    logging.getLogger("uvicorn.error").warning("worker %s stopped", 3)

    line = last_json_line(capsys.readouterr().out)
    assert line["event"] == "worker 3 stopped"
    assert line["logger"] == "uvicorn.error"
    assert line["level"] == "warning"


def test_configuring_replaces_levels_uvicorn_set_on_its_loggers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # What uvicorn.Config(log_level="critical") leaves behind, as a server started in the
    # same process does.
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
    logging.getLogger("uvicorn").disabled = True

    configure_logging(LogSettings(level="INFO", format="json"))
    logging.getLogger("uvicorn.error").warning("worker %s stopped", 4)

    assert last_json_line(capsys.readouterr().out)["event"] == "worker 4 stopped"


def test_exceptions_are_logged_with_their_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings(level="INFO", format="json"))

    try:
        raise ValueError("boom")
    except ValueError:
        get_logger("skilltree.test").exception("failed")

    line = last_json_line(capsys.readouterr().out)
    assert "ValueError: boom" in str(line["exception"])


def test_events_below_the_level_are_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings(level="WARNING", format="json"))

    get_logger("skilltree.test").info("chatty")

    assert "chatty" not in capsys.readouterr().out


def test_configuring_twice_does_not_duplicate_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings(level="INFO", format="json"))
    configure_logging(LogSettings(level="INFO", format="json"))

    get_logger("skilltree.test").info("once")

    assert capsys.readouterr().out.count('"once"') == 1
