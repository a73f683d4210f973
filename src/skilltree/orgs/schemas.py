"""Request and response models of the organisations API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, EmailStr, StringConstraints

from skilltree.identity import Slug
from skilltree.orgs.service import Role

OrgName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class OrgIn(BaseModel):
    slug: Slug
    name: OrgName


class OrgRenameIn(BaseModel):
    name: OrgName


class OrgOut(BaseModel):
    slug: str
    name: str
    role: Role
    created_at: datetime


class OrgListOut(BaseModel):
    items: list[OrgOut]


class MemberOut(BaseModel):
    user_id: int
    display_name: str
    role: Role
    joined_at: datetime


class MemberListOut(BaseModel):
    items: list[MemberOut]


class RoleIn(BaseModel):
    role: Role


class InvitationIn(BaseModel):
    email: EmailStr
    role: Role


class InvitationOut(BaseModel):
    email: str
    role: Role
    expires_at: datetime


class AcceptIn(BaseModel):
    token: Annotated[str, StringConstraints(min_length=16, max_length=128)]


class TransferIn(BaseModel):
    user_id: int
