"""The rules of feature flags: how a flag is decided for a caller, and how flags change.

A flag is decided in a fixed order; the first rule that speaks wins:

    1. a per-user override           (reason TARGETING_MATCH)
    2. a per-organisation override   (TARGETING_MATCH; when the caller's organisations
                                      disagree, "off" wins: an organisation's kill switch holds)
    3. the percentage rollout        (SPLIT): on for a user whose bucket is below the percentage
    4. the global default            (DEFAULT)

The bucket is a stable hash of the flag's key and the user's id, 0-9999: a user's bucket never
changes, so raising the percentage from 10 to 20 keeps the first 10 % in and adds 10 % more,
and each flag splits users independently of every other flag. Anonymous callers have no bucket
and get the default. Decisions are made in memory from rule sets the provider keeps per process
(provider.py); this module loads them and changes them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import directory
from skilltree.audit import service as audit
from skilltree.audit.service import EventKind
from skilltree.flags import repository
from skilltree.flags.errors import FlagNotFound, UnknownSubject
from skilltree.flags.models import FeatureFlag, FlagOverride
from skilltree.orgs import service as orgs
from skilltree.platform.cache import stale_on_commit
from skilltree.platform.clock import Clock
from skilltree.platform.db import after_commit

USER = "user"
ORGANISATION = "organisation"
BUCKETS = 10_000
# The cache namespace every rule set is computed from (platform/cache.py).
NAMESPACE = "flags"

# Reasons, as OpenFeature names them (openfeature.flag_evaluation.Reason).
TARGETING_MATCH = "TARGETING_MATCH"
SPLIT = "SPLIT"
DEFAULT = "DEFAULT"


@dataclass(frozen=True)
class FlagRules:
    """Everything needed to decide one flag, held in memory by every process."""

    key: str
    enabled: bool
    rollout_percentage: int | None = None
    users: Mapping[int, bool] = field(default_factory=dict)
    organisations: Mapping[int, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    value: bool
    reason: str
    rule: str  # user | organisation | percentage | default: which rule spoke

    @property
    def variant(self) -> str:
        return "on" if self.value else "off"


def bucket(flag_key: str, user_id: int) -> int:
    """The user's fixed place, 0-9999, in this flag's rollout."""
    digest = hashlib.sha256(f"{flag_key}\x00{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def decide(rules: FlagRules, user_id: int | None, organisation_ids: Iterable[int]) -> Decision:
    """The flag's value for this caller, by the documented order of rules."""
    if user_id is not None and user_id in rules.users:
        return Decision(rules.users[user_id], TARGETING_MATCH, USER)
    said = [rules.organisations[org] for org in organisation_ids if org in rules.organisations]
    if said:
        return Decision(all(said), TARGETING_MATCH, ORGANISATION)
    if user_id is not None and _in_rollout(rules, user_id):
        return Decision(True, SPLIT, "percentage")
    return Decision(rules.enabled, DEFAULT, "default")


def _in_rollout(rules: FlagRules, user_id: int) -> bool:
    percentage = rules.rollout_percentage
    return percentage is not None and bucket(rules.key, user_id) < percentage * (BUCKETS // 100)


# --- Reading and changing flags ------------------------------------------------------------


@dataclass(frozen=True)
class FlagView:
    key: str
    description: str
    enabled: bool
    rollout_percentage: int | None
    users: dict[int, bool]
    organisations: dict[int, bool]
    updated_at: datetime

    def rules(self) -> FlagRules:
        return FlagRules(
            self.key, self.enabled, self.rollout_percentage, self.users, self.organisations
        )


# Called with the stored flag (None: none) before a change: the HTTP layer's If-Match check.
Check = Callable[["FlagView | None"], None] | None


@dataclass(frozen=True)
class FlagChanges:
    """What a change needs: the time, who makes it (None: the operator's command line), and
    what to tell once it has committed (every instance drops its rule sets)."""

    clock: Clock
    actor_id: int | None
    announce: Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class RuleChanges:
    """A partial change (PATCH): what is None is left as it is; an override set to None is
    removed; `clear_rollout` removes the percentage."""

    description: str | None = None
    enabled: bool | None = None
    rollout_percentage: int | None = None
    clear_rollout: bool = False
    users: Mapping[int, bool | None] = field(default_factory=dict)
    organisations: Mapping[int, bool | None] = field(default_factory=dict)


async def list_flags(session: AsyncSession) -> list[FlagView]:
    overrides = await repository.all_overrides(session)
    return [_view(flag, overrides) for flag in await repository.all_flags(session)]


async def get_flag(session: AsyncSession, key: str) -> FlagView:
    flag = await _flag(session, key)
    return _view(flag, await repository.overrides_of(session, flag.id))


async def find_flag(session: AsyncSession, key: str) -> FlagView | None:
    flag = await repository.flag_by_key(session, key)
    if flag is None:
        return None
    return _view(flag, await repository.overrides_of(session, flag.id))


async def put_flag(
    session: AsyncSession,
    changes: FlagChanges,
    key: str,
    *,
    description: str,
    enabled: bool,
    rollout_percentage: int | None,
    check: Check = None,
) -> tuple[FlagView, bool]:
    """Create the flag, or replace its description, default and rollout (overrides stay).
    `check` sees what is stored (None: nothing) before anything changes. Returns the flag
    and whether it was created."""
    now = changes.clock.now()
    flag = await repository.flag_by_key(session, key)
    if check is not None:
        check(None if flag is None else await get_flag(session, key))
    created = flag is None
    if flag is None:
        flag = FeatureFlag(key=key, created_at=now)
        repository.add(session, flag)
    flag.description = description
    flag.enabled = enabled
    flag.rollout_percentage = rollout_percentage
    flag.updated_at = now
    await session.flush()
    await _changed(
        session,
        changes,
        key,
        "created" if created else "replaced",
        enabled=enabled,
        rollout_percentage=rollout_percentage,
    )
    return await get_flag(session, key), created


async def change_rules(
    session: AsyncSession,
    changes: FlagChanges,
    key: str,
    rule_changes: RuleChanges,
    check: Check = None,
) -> FlagView:
    flag = await _flag(session, key)
    if check is not None:
        check(await get_flag(session, key))
    await _check_subjects(session, rule_changes)
    if rule_changes.description is not None:
        flag.description = rule_changes.description
    if rule_changes.enabled is not None:
        flag.enabled = rule_changes.enabled
    if rule_changes.clear_rollout:
        flag.rollout_percentage = None
    elif rule_changes.rollout_percentage is not None:
        flag.rollout_percentage = rule_changes.rollout_percentage
    for subject, targets in (
        (USER, rule_changes.users),
        (ORGANISATION, rule_changes.organisations),
    ):
        for subject_id, enabled in targets.items():
            await _set_override(session, flag.id, subject, subject_id, enabled)
    flag.updated_at = changes.clock.now()
    await session.flush()
    await _changed(session, changes, key, "rules", **_described(rule_changes))
    return await get_flag(session, key)


async def delete_flag(
    session: AsyncSession, changes: FlagChanges, key: str, check: Check = None
) -> None:
    flag = await _flag(session, key)
    if check is not None:
        check(await get_flag(session, key))
    await repository.remove_flag(session, flag)
    await session.flush()
    await _changed(session, changes, key, "deleted")


async def rule_sets(session: AsyncSession) -> dict[str, FlagRules]:
    """Every flag's rules, as the provider keeps them."""
    return {view.key: view.rules() for view in await list_flags(session)}


def encode_rule_sets(rules: Mapping[str, FlagRules]) -> bytes:
    """Rule sets as the shared cache stores them."""
    return orjson.dumps(
        [
            [
                r.key,
                r.enabled,
                r.rollout_percentage,
                list(r.users.items()),
                list(r.organisations.items()),
            ]
            for r in rules.values()
        ]
    )


def decode_rule_sets(data: bytes) -> dict[str, FlagRules]:
    decoded: list[list[Any]] = orjson.loads(data)
    return {
        key: FlagRules(key, enabled, percentage, dict(users), dict(organisations))
        for key, enabled, percentage, users, organisations in decoded
    }


async def _flag(session: AsyncSession, key: str) -> FeatureFlag:
    flag = await repository.flag_by_key(session, key)
    if flag is None:
        raise FlagNotFound(key)
    return flag


def _view(flag: FeatureFlag, overrides: Iterable[FlagOverride]) -> FlagView:
    mine = [o for o in overrides if o.flag_id == flag.id]
    return FlagView(
        key=flag.key,
        description=flag.description,
        enabled=flag.enabled,
        rollout_percentage=flag.rollout_percentage,
        users={o.subject_id: o.enabled for o in mine if o.subject == USER},
        organisations={o.subject_id: o.enabled for o in mine if o.subject == ORGANISATION},
        updated_at=flag.updated_at,
    )


async def _check_subjects(session: AsyncSession, rule_changes: RuleChanges) -> None:
    """An override is set only for a user or organisation that exists (removing one that
    no longer exists is allowed: that is how a stale override is cleaned up)."""
    wanted_users = [uid for uid, enabled in rule_changes.users.items() if enabled is not None]
    found = {person.user_id for person in await directory.people(session, wanted_users)}
    for user_id in wanted_users:
        if user_id not in found:
            raise UnknownSubject(USER, user_id)
    for org_id, enabled in rule_changes.organisations.items():
        if enabled is not None and await orgs.org_slug(session, org_id) is None:
            raise UnknownSubject(ORGANISATION, org_id)


async def _set_override(
    session: AsyncSession, flag_id: int, subject: str, subject_id: int, enabled: bool | None
) -> None:
    row = await repository.override(session, flag_id, subject, subject_id)
    if enabled is None:
        if row is not None:
            await repository.remove_override(session, row)
        return
    if row is None:
        repository.add(
            session,
            FlagOverride(flag_id=flag_id, subject=subject, subject_id=subject_id, enabled=enabled),
        )
    else:
        row.enabled = enabled


def _described(rule_changes: RuleChanges) -> dict[str, Any]:
    """The change as the audit log keeps it (JSON: override ids as strings)."""
    described: dict[str, Any] = {}
    if rule_changes.enabled is not None:
        described["enabled"] = rule_changes.enabled
    if rule_changes.clear_rollout or rule_changes.rollout_percentage is not None:
        described["rollout_percentage"] = rule_changes.rollout_percentage
    if rule_changes.users:
        described["users"] = {str(k): v for k, v in rule_changes.users.items()}
    if rule_changes.organisations:
        described["organisations"] = {str(k): v for k, v in rule_changes.organisations.items()}
    return described


async def _changed(
    session: AsyncSession, changes: FlagChanges, key: str, change: str, **details: Any
) -> None:
    """Audit the change, make the shared cache's rule sets stale, and tell every instance once
    the change has committed (never before: an instance reloading early would read the old)."""
    kind = EventKind.FLAG_DELETED if change == "deleted" else EventKind.FLAG_CHANGED
    await audit.record(
        session,
        kind,
        user_id=changes.actor_id,
        at=changes.clock.now(),
        flag=key,
        change=change,
        **details,
    )
    stale_on_commit(session, NAMESPACE)
    after_commit(session, changes.announce)
