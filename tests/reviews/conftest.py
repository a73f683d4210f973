"""Fixtures shared by the progress and reviews tests (tests/support/progress.py)."""

from tests.support.progress import ada

__all__ = ["ada"]
