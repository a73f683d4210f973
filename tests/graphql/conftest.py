"""The signed-in learner with a small public roadmap (tests/support/progress.py)."""

from tests.support.progress import ada

__all__ = ["ada"]
