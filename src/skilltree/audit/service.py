"""Recording and reading security events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.audit import repository
from skilltree.audit.models import SecurityEvent
from skilltree.platform.observability.context import current_client, current_request_id
from skilltree.platform.observability.logging import get_logger

security_log = get_logger("skilltree.security")


class EventKind(StrEnum):
    LOGIN_SUCCEEDED = "login.succeeded"
    LOGIN_FAILED = "login.failed"
    LOGOUT = "logout"
    LOGOUT_EVERYWHERE = "logout.everywhere"
    EMAIL_VERIFIED = "email.verified"
    PASSWORD_CHANGED = "password.changed"
    PASSWORD_RESET_REQUESTED = "password.reset_requested"
    PASSWORD_RESET = "password.reset"
    TOKENS_ISSUED = "tokens.issued"
    REFRESH_TOKEN_REUSED = "refresh_token.reused"
    SESSION_ENDED = "session.ended"
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    MFA_ENABLED = "mfa.enabled"
    MFA_DISABLED = "mfa.disabled"
    RECOVERY_CODE_USED = "mfa.recovery_code_used"
    ROLE_CHANGED = "org.role_changed"
    INVITATION_ACCEPTED = "org.invitation_accepted"
    OIDC_LINKED = "oidc.linked"
    ADMIN_GRANTED = "admin.granted"
    ADMIN_REVOKED = "admin.revoked"
    SIGNED_OUT_BY_ADMIN = "admin.signed_out_user"
    FLAG_CHANGED = "flag.changed"
    FLAG_DELETED = "flag.deleted"
    ACCOUNT_DELETED = "account.deleted"


async def record(
    db: AsyncSession,
    kind: EventKind,
    *,
    user_id: int | None,
    at: datetime,
    org_id: int | None = None,
    **details: Any,
) -> None:
    """Append an event in the caller's transaction, with the request's client and id, and
    write it to the security log too."""
    client = current_client()
    repository.add(
        db,
        SecurityEvent(
            user_id=user_id,
            org_id=org_id,
            kind=kind.value,
            occurred_at=at,
            ip=client.ip[:64],
            user_agent=client.user_agent[:300],
            request_id=current_request_id() or "",
            details=details,
        ),
    )
    security_log.info(kind.value, user_id=user_id, ip=client.ip, **details)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """A recorded security event, as the audit log shows it."""

    kind: str
    occurred_at: datetime
    ip: str
    user_agent: str
    details: dict[str, Any]

    @classmethod
    def of(cls, row: SecurityEvent) -> AuditEvent:
        return cls(row.kind, row.occurred_at, row.ip, row.user_agent, dict(row.details))


async def events_of_org(db: AsyncSession, org_id: int, *, limit: int = 100) -> list[AuditEvent]:
    return [AuditEvent.of(row) for row in await repository.latest_for_org(db, org_id, limit)]


async def events_of(db: AsyncSession, user_id: int, *, limit: int = 100) -> list[AuditEvent]:
    return [AuditEvent.of(row) for row in await repository.latest_for_user(db, user_id, limit)]
