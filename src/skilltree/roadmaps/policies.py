"""Who may see and change a roadmap: the one place that decides, in Python and in SQL.

    public        everyone, signed in or not
    organisation  members of the roadmap's organisation
    private       its owner

Editing (re-importing) is for the owner, or an organisation's owners and mentors for its
roadmaps; the built-in roadmap is changed only by the operator. Every query that reads roadmaps
filters with `visible_to`, so no list or lookup can forget the rule.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, or_, true

from skilltree.identity.viewer import ANONYMOUS, EDITOR_ROLES, OPERATOR, Viewer, Visibility
from skilltree.roadmaps.models import Roadmap

__all__ = ["ANONYMOUS", "EDITOR_ROLES", "OPERATOR", "Viewer", "Visibility", "visible_to"]


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
