"""TOTP two-factor authentication (RFC 6238) with single-use recovery codes.

Enrolment is two steps — a secret is issued, then confirmed with a code from the authenticator
app — so a typo in scanning never locks anyone out. Codes are accepted one time step either side
of now (clock drift) and never twice: the last accepted step is remembered. Recovery codes are
shown once and stored as digests.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

import pyotp
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import repository
from skilltree.accounts.authentication import user_row
from skilltree.accounts.errors import InvalidCredentials, MfaAlreadyEnabled, MfaNotPending
from skilltree.accounts.models import RecoveryCode, User
from skilltree.accounts.passwords import verify_password
from skilltree.audit import service as audit
from skilltree.audit.service import EventKind
from skilltree.platform.clock import Clock
from skilltree.platform.crypto import SecretBox, digest

ISSUER = "skilltree"
RECOVERY_CODES = 10
DRIFT_STEPS = 1  # accept the previous and the next 30-second step too


@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str


def _recovery_digest(code: str) -> str:
    # Recovery codes are typed by people: ignore case and the dash.
    return digest(code.replace("-", "").lower())


async def start_enrolment(db: AsyncSession, box: SecretBox, user_id: int) -> Enrolment:
    user = await user_row(db, user_id)
    if user.totp_enabled_at is not None:
        raise MfaAlreadyEnabled()
    secret = pyotp.random_base32()
    user.totp_secret = box.encrypt(secret)
    user.totp_last_step = None
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    return Enrolment(secret, uri)


async def confirm_enrolment(
    db: AsyncSession, box: SecretBox, clock: Clock, user_id: int, code: str
) -> list[str]:
    """Turn MFA on with a first valid code; returns the recovery codes, shown this once."""
    user = await user_row(db, user_id)
    if user.totp_secret is None or user.totp_enabled_at is not None:
        raise MfaNotPending()
    if not _accept_totp(box, clock, user, code):
        raise InvalidCredentials()
    user.totp_enabled_at = clock.now()
    codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODES)]
    await repository.delete_recovery_codes(db, user.id)
    for code_text in codes:
        repository.add(db, RecoveryCode(user_id=user.id, code_hash=_recovery_digest(code_text)))
    await audit.record(db, EventKind.MFA_ENABLED, user_id=user.id, at=clock.now())
    return codes


async def disable(db: AsyncSession, clock: Clock, user_id: int, password: str) -> None:
    """Turn MFA off; the password is asked again so a stolen session cannot do it."""
    user = await user_row(db, user_id)
    if not await verify_password(user.password_hash, password):
        raise InvalidCredentials()
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    await repository.delete_recovery_codes(db, user.id)
    await audit.record(db, EventKind.MFA_DISABLED, user_id=user.id, at=clock.now())


async def verify_second_factor(
    db: AsyncSession,
    box: SecretBox,
    clock: Clock,
    user: User,
    *,
    code: str | None,
    recovery_code: str | None,
) -> bool:
    if code is not None:
        return _accept_totp(box, clock, user, code)
    if recovery_code is not None:
        return await _spend_recovery_code(db, clock, user, recovery_code)
    return False


def _accept_totp(box: SecretBox, clock: Clock, user: User, code: str) -> bool:
    if user.totp_secret is None:
        return False
    totp = pyotp.TOTP(box.decrypt(user.totp_secret))
    now = clock.now()
    current_step = totp.timecode(now)
    for offset in range(-DRIFT_STEPS, DRIFT_STEPS + 1):
        step = current_step + offset
        if user.totp_last_step is not None and step <= user.totp_last_step:
            continue  # this step (or an earlier one) was already used: a replay
        if hmac.compare_digest(totp.generate_otp(step), code.strip()):
            user.totp_last_step = step
            return True
    return False


async def _spend_recovery_code(db: AsyncSession, clock: Clock, user: User, code: str) -> bool:
    expected = _recovery_digest(code.strip())
    for row in await repository.unused_recovery_codes(db, user.id):
        if hmac.compare_digest(row.code_hash, expected):
            row.used_at = clock.now()
            await audit.record(db, EventKind.RECOVERY_CODE_USED, user_id=user.id, at=clock.now())
            return True
    return False
