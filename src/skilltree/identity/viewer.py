"""Who may see and change a shared thing (a roadmap today), decided in one place.

    public        everyone, signed in or not
    organisation  members of its organisation
    private       its owner

Editing is for the owner, or an organisation's owners and mentors for its things; built-in
content is changed only by the operator. The SQL form of `can_see` lives with the tables it
filters (`roadmaps.policies.visible_to`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Visibility(StrEnum):
    PUBLIC = "public"
    ORGANISATION = "organisation"
    PRIVATE = "private"


# The organisation roles that may edit what is shared with the organisation (orgs.service.Role).
EDITOR_ROLES = frozenset({"owner", "mentor"})


class Shared(Protocol):
    """What visibility rules read of a shared thing."""

    @property
    def visibility(self) -> str: ...
    @property
    def owner_id(self) -> int | None: ...
    @property
    def org_id(self) -> int | None: ...
    @property
    def source(self) -> str: ...


@dataclass(frozen=True)
class Viewer:
    """Who is asking: a user (with their organisation roles), an anonymous visitor, or the
    operator at the command line."""

    user_id: int | None = None
    org_roles: Mapping[int, str] = field(default_factory=dict)
    operator: bool = False

    def can_see(self, item: Shared) -> bool:
        return (
            self.operator
            or item.visibility == Visibility.PUBLIC
            or (self.user_id is not None and item.owner_id == self.user_id)
            or (item.visibility == Visibility.ORGANISATION and item.org_id in self.org_roles)
        )

    def can_edit(self, item: Shared) -> bool:
        if self.operator:
            return True
        if item.source == "builtin":
            return False
        if self.user_id is not None and item.owner_id == self.user_id:
            return True
        return item.org_id is not None and self.org_roles.get(item.org_id) in EDITOR_ROLES


OPERATOR = Viewer(operator=True)
ANONYMOUS = Viewer()
