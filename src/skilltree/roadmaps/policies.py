"""Who may see and change a roadmap: the one place that decides, in Python and in SQL.

    public        everyone, signed in or not
    organisation  members of the roadmap's organisation
    private       its owner

Editing (re-importing) is for the owner, or an organisation's owners and mentors for its
roadmaps; the built-in roadmap is changed only by the operator. Every query that reads roadmaps
filters with `visible_to`, so no list or lookup can forget the rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, or_, true

from skilltree.roadmaps.models import Roadmap

EDITOR_ROLES = frozenset({"owner", "mentor"})


class Visibility(StrEnum):
    PUBLIC = "public"
    ORGANISATION = "organisation"
    PRIVATE = "private"


@dataclass(frozen=True)
class Viewer:
    """Who is asking: a user (with their organisation roles), an anonymous visitor, or the
    operator at the command line."""

    user_id: int | None = None
    org_roles: Mapping[int, str] = field(default_factory=dict)
    operator: bool = False

    def can_see(self, roadmap: Roadmap) -> bool:
        return (
            self.operator
            or roadmap.visibility == Visibility.PUBLIC
            or (self.user_id is not None and roadmap.owner_id == self.user_id)
            or (roadmap.visibility == Visibility.ORGANISATION and roadmap.org_id in self.org_roles)
        )

    def can_edit(self, roadmap: Roadmap) -> bool:
        if self.operator:
            return True
        if roadmap.source == "builtin":
            return False
        if self.user_id is not None and roadmap.owner_id == self.user_id:
            return True
        return roadmap.org_id is not None and self.org_roles.get(roadmap.org_id) in EDITOR_ROLES


OPERATOR = Viewer(operator=True)
ANONYMOUS = Viewer()


def visible_to(viewer: Viewer) -> ColumnElement[bool]:
    """The SQL form of `Viewer.can_see`, for every query that reads roadmaps."""
    if viewer.operator:
        return true()
    allowed: list[ColumnElement[bool]] = [Roadmap.visibility == Visibility.PUBLIC]
    if viewer.user_id is not None:
        allowed.append(Roadmap.owner_id == viewer.user_id)
    if viewer.org_roles:
        allowed.append(
            and_(
                Roadmap.visibility == Visibility.ORGANISATION,
                Roadmap.org_id.in_(list(viewer.org_roles)),
            )
        )
    return or_(*allowed)
