"""Errors of the cohorts domain."""

from __future__ import annotations

from skilltree.platform.errors import DomainError, NotFound


class AssignmentNotFound(NotFound):
    type_slug = "assignment-not-found"
    title = "Assignment not found"

    def __init__(self, assignment_id: int) -> None:
        super().__init__(f"This organisation has no assignment {assignment_id}.", id=assignment_id)


class InvalidAssignment(DomainError):
    status = 422
    type_slug = "invalid-assignment"
    title = "Invalid assignment"
