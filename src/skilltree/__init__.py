"""skilltree: learning roadmaps for backend engineers, implemented by the service itself."""

import sys
from importlib.metadata import PackageNotFoundError, version


def _import_structlog_without_rich() -> None:
    """Import structlog before anything else does, without letting it import rich.

    structlog's console renderer imports rich (and rich's tracebacks import Pygments) whenever
    rich is installed, which it always is: the CLI draws its progress bars with it. A server
    worker logs JSON and never formats with rich, yet would keep its ~5 MiB resident for life
    (docs/performance.md, "What a worker loads"). Hiding rich for this one import makes
    structlog fall back to plain tracebacks in the console format; rich itself stays
    importable, and the CLI imports it where it draws.
    """
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["rich"] = None  # type: ignore[assignment]  # "not installed", to this import
    try:
        import structlog  # noqa: F401
    finally:
        del sys.modules["rich"]


_import_structlog_without_rich()

try:
    __version__ = version("skilltree")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
