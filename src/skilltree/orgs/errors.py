"""Errors of the organisations domain."""

from __future__ import annotations

from skilltree.platform.errors import Conflict, DomainError, NotFound


class OrgNotFound(NotFound):
    """Also what a non-member sees: whether an organisation exists is members' business."""

    type_slug = "org-not-found"
    title = "Organisation not found"

    def __init__(self, slug: str) -> None:
        super().__init__(f"There is no organisation {slug!r} that you belong to.", org=slug)


class MemberNotFound(NotFound):
    type_slug = "member-not-found"
    title = "Member not found"

    def __init__(self, user_id: int) -> None:
        super().__init__(f"User {user_id} is not a member.", user=user_id)


class RoleRequired(DomainError):
    status = 403
    type_slug = "role-required"
    title = "Your role does not allow this"


class OrgSlugTaken(Conflict):
    type_slug = "org-slug-taken"
    title = "Organisation slug taken"

    def __init__(self, slug: str) -> None:
        super().__init__(f"The slug {slug!r} is taken; choose another.", org=slug)


class LastOwner(Conflict):
    type_slug = "last-owner"
    title = "An organisation needs an owner"

    def __init__(self) -> None:
        super().__init__(
            "Transfer ownership first: the organisation would be left without an owner."
        )


class InvitationInvalid(DomainError):
    status = 400
    type_slug = "invalid-invitation"
    title = "Invalid invitation"

    def __init__(
        self, detail: str = "This invitation is invalid, expired or already used."
    ) -> None:
        super().__init__(detail)
