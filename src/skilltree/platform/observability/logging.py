"""Structured logging: one JSON object per line, on stdout, for every logger in the process.

structlog renders skilltree's own events; the standard-library loggers of uvicorn, SQLAlchemy and
Alembic are routed through the same renderer, so a log pipeline parses a single format. The
request id is merged from a contextvar, so no call site has to pass it.

The access log's line, one per request, is the exception: in the JSON format it is rendered and
written by `AccessLines` here, the same fields in the same order, without structlog and the
standard library's `logging` (decision 0061). Their processors, `LogRecord` and formatter cost
more per request than everything else the cached reads' fast path does.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import threading
import time
from typing import Any

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from skilltree.platform.config import LogSettings
from skilltree.platform.observability.context import current_request_id
from skilltree.platform.observability.tracing import current_ids

ACCESS_LOGGER = "skilltree.access"
# Access-log lines a loop turn may leave waiting before they are written anyway.
MAX_PENDING_LINES = 256


class _StdoutHandler(logging.StreamHandler[Any]):
    """Writes to whatever sys.stdout is at the time of writing (it may be replaced after setup)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def _add_request_id(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    request_id = current_request_id()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


def _add_trace_ids(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    ids = current_ids()
    if ids is not None:
        event.setdefault("trace_id", ids[0])
        event.setdefault("span_id", ids[1])
    return event


def _orjson_dumps(value: Any, **_kwargs: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        _add_trace_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


class AccessLines:
    """Writes the access log's JSON lines: what structlog would write for them, byte for byte
    (the same fields in the same order, the same renderer options), at a fraction of the cost.

    In the event loop, the lines of one loop turn are written together at the start of the
    next turn: one `write` and one flush for all the requests answered in a turn, where a
    flush per line cost a system call (and a wake-up of the reader of the pipe) per request.
    A line waits at most that one turn; `flush` runs at exit too (`atexit`), so a SIGTERM or
    an exception that ends the process loses nothing, and only a SIGKILL can lose the lines
    of the turn it lands in. Outside a loop (a thread, a command) a line is written at once.
    """

    def __init__(self, level: int, lock: threading.RLock) -> None:
        self.level = level
        # The standard library's handler's lock: a line written from another thread cannot
        # land in the middle of these.
        self.lock = lock
        self._pending: list[str] = []
        self._flushing_loop: asyncio.AbstractEventLoop | None = None
        self._second = -1
        self._prefix = ""

    def write(self, fields: dict[str, Any], *, debug: bool) -> None:
        """Complete `fields` (the request's own, in order) as structlog's processors would and
        write the line, unless its level is below the configured one."""
        if (logging.DEBUG if debug else logging.INFO) < self.level:
            return
        fields["event"] = "request"
        request_id = current_request_id()
        if request_id is not None:
            fields["request_id"] = request_id
        ids = current_ids()
        if ids is not None:
            fields["trace_id"], fields["span_id"] = ids
        fields["level"] = "debug" if debug else "info"
        fields["logger"] = ACCESS_LOGGER
        fields["timestamp"] = self._timestamp()
        line = orjson.dumps(fields, default=str, option=orjson.OPT_APPEND_NEWLINE).decode()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write(line)
            return
        with self.lock:  # a server may run a loop per thread
            self._pending.append(line)
            # Once per turn; again if the loop that was to write them stopped first.
            if self._flushing_loop is not loop:
                self._flushing_loop = loop
                loop.call_soon(self.flush)
            elif len(self._pending) >= MAX_PENDING_LINES:
                self.flush()

    def flush(self) -> None:
        """Write the lines waiting for the next loop turn."""
        with self.lock:
            self._flushing_loop = None
            if self._pending:
                lines, self._pending = self._pending, []
                self._write("".join(lines))

    def _write(self, text: str) -> None:
        with self.lock:
            try:
                stream = sys.stdout  # whatever it is now (tests replace it)
                stream.write(text)
                stream.flush()
            except (OSError, ValueError):
                pass  # a closed or broken stdout must not fail the requests that were answered

    def _timestamp(self) -> str:
        """`datetime.now(UTC).isoformat()` with `Z` (structlog's TimeStamper), the date and
        time formatted once a second."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        micro = int((now - second) * 1_000_000)
        # isoformat leaves out a zero fraction; a parser of either sees the same instant.
        return f"{self._prefix}.{micro:06d}Z" if micro else f"{self._prefix}Z"


# Set by `configure_logging` for the JSON format; None leaves the access log to structlog.
_access_lines: AccessLines | None = None


def flush_access_log() -> None:
    """Write the access-log lines still waiting for the event loop's next turn."""
    if _access_lines is not None:
        _access_lines.flush()


atexit.register(flush_access_log)


def log_access(fields: dict[str, Any], *, debug: bool) -> None:
    """Write a request's access-log line: `fields` are its own, in the order they appear (the
    event, request and trace ids, level, logger and timestamp are added after them)."""
    lines = _access_lines
    if lines is not None:
        lines.write(fields, debug=debug)
    elif debug:
        get_logger(ACCESS_LOGGER).debug("request", **fields)
    else:
        get_logger(ACCESS_LOGGER).info("request", **fields)


def configure_logging(settings: LogSettings) -> None:
    """Configure structlog and the standard library once; calling it again replaces the setup."""
    renderer: Processor
    if settings.format == "json":
        renderer = structlog.processors.JSONRenderer(serializer=_orjson_dumps)
    else:
        renderer = structlog.dev.ConsoleRenderer()

    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = _StdoutHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.level)
    # uvicorn installs its own handlers and levels (and a server started in the same process
    # leaves them behind); ours already print everything, once, at the configured level.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(logging.NOTSET)
        uvicorn_logger.disabled = False
    logging.getLogger("uvicorn.access").disabled = True
    global _access_lines
    flush_access_log()
    _access_lines = None
    if settings.format == "json":
        assert handler.lock is not None  # made by the handler's constructor
        level = logging.getLevelNamesMapping()[settings.level]
        _access_lines = AccessLines(level, handler.lock)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
