"""skilltree's OpenFeature provider: flags decided from rule sets kept in each process's memory.

Code asks through the OpenFeature SDK (`FeatureFlags.is_enabled`, an OpenFeature client
underneath), so the flag store could be swapped for another provider without touching callers.

Where a decision's rules come from, fastest first:

    this process's memory   every flag's rules, loaded at once (flags are few), kept until a
                            change is announced or SNAPSHOT_SECONDS pass
    the shared cache        the same rule sets as bytes (platform/cache.py, namespace "flags"):
                            after a change, N instances reload from Redis, not N times the
                            database
    the database            flags.service.rule_sets

A change (admin API or CLI) marks the namespace stale and, once committed, publishes on the
broadcast channel "flags" (platform/broadcast.py: Redis pub/sub across instances); every
instance drops its rules and reloads on its next decision. Pub/sub is at-most-once, so
SNAPSHOT_SECONDS bounds how long a lost announcement (a Redis blip) leaves an instance stale.

Each decision is logged (`flag.evaluated`, debug level) and counted in
`skilltree_flag_evaluations_total{flag,variant,reason}` by an OpenFeature hook.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagResolutionDetails, FlagValueType
from openfeature.hook import Hook, HookContext, HookHints
from openfeature.provider import AbstractProvider, Metadata
from openfeature.provider.no_op_provider import NoOpProvider
from redis.exceptions import RedisError

from skilltree.flags import service
from skilltree.flags.service import FlagRules
from skilltree.platform.broadcast import Broadcaster, ChannelListener, Delivery
from skilltree.platform.cache import Cache, Computed, Key
from skilltree.platform.db import Database
from skilltree.platform.observability import metrics
from skilltree.platform.observability.logging import get_logger

log = get_logger("skilltree.flags")

CHANNEL = "flags"
SNAPSHOT_SECONDS = 30.0
ORGANISATIONS = "organisations"  # the evaluation context attribute: the caller's org ids
T = TypeVar("T")


class RuleSets:
    """Every flag's rules in this process's memory, reloaded after a change."""

    def __init__(
        self,
        database: Database,
        cache: Cache,
        broadcaster: Broadcaster,
        *,
        snapshot_seconds: float = SNAPSHOT_SECONDS,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._cache = cache
        self._broadcaster = broadcaster
        self._snapshot_seconds = snapshot_seconds
        self._timer = timer
        self._rules: Mapping[str, FlagRules] | None = None
        self._loaded_at = 0.0
        # Bumped by every invalidation: a load that began before one does not install its
        # (possibly older) result.
        self._generation = 0
        self._loading: asyncio.Lock | None = None
        # Announcements carry their origin: an instance has already forgotten its own change.
        self._origin = uuid.uuid4().hex
        # A gap (an overflow, a reconnection) may have lost an announcement: reload.
        self._listener = ChannelListener(
            broadcaster, CHANNEL, on_message=self._heard_of, on_gap=self.invalidate
        )
        self.loads = 0
        self.heard = 0  # other instances' announcements received

    async def rules(self) -> Mapping[str, FlagRules]:
        current = self.current()
        if current is not None:
            return current
        if self._loading is None:
            self._loading = asyncio.Lock()
        async with self._loading:  # one load per process however many requests miss
            current = self.current()
            if current is not None:
                return current
            generation = self._generation
            loaded = await self._load()
            if generation == self._generation:
                self._rules, self._loaded_at = loaded, self._timer()
            return loaded

    def current(self) -> Mapping[str, FlagRules] | None:
        """The rules in memory, if still fresh (what a synchronous resolve can use)."""
        if self._rules is None or self._timer() - self._loaded_at > self._snapshot_seconds:
            return None
        return self._rules

    def invalidate(self) -> None:
        self._generation += 1
        self._rules = None

    async def announce(self) -> None:
        """After a committed change: forget here at once, and tell every other instance."""
        self.invalidate()
        try:
            await self._broadcaster.publish(CHANNEL, {"origin": self._origin}, keep=False)
        except (RedisError, OSError) as error:
            # The others catch up within SNAPSHOT_SECONDS.
            log.warning("flags.announce_failed", error=repr(error))

    async def start(self) -> None:
        self._listener.start()

    async def close(self) -> None:
        await self._listener.close()

    def _heard_of(self, delivery: Delivery) -> None:
        if delivery.message.get("origin") != self._origin:
            self.heard += 1
            self.invalidate()

    async def _load(self) -> Mapping[str, FlagRules]:
        self.loads += 1

        async def from_database() -> Computed:
            async with self._database.unit_of_work(writes=False) as session:
                return Computed(service.encode_rule_sets(await service.rule_sets(session)))

        key = Key("flags:rule-sets", (service.NAMESPACE,))
        data = await self._cache.fetch(key, from_database, int(self._snapshot_seconds))
        return service.decode_rule_sets(data)


class DatabaseFlagProvider(AbstractProvider):
    """An OpenFeature provider for boolean flags stored in skilltree's database."""

    def __init__(self, rule_sets: RuleSets) -> None:
        super().__init__()
        self.rule_sets = rule_sets

    def get_metadata(self) -> Metadata:
        return Metadata(name="skilltree-database")

    async def resolve_boolean_details_async(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return _resolve(await self.rule_sets.rules(), flag_key, default_value, evaluation_context)

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        # A synchronous caller cannot wait for a load: it gets the rules in memory, if any.
        rules = self.rule_sets.current()
        if rules is None:
            return FlagResolutionDetails(
                default_value,
                error_code=ErrorCode.PROVIDER_NOT_READY,
                error_message="flag rules not loaded; evaluate asynchronously",
                reason="ERROR",
            )
        return _resolve(rules, flag_key, default_value, evaluation_context)

    # skilltree's flags are on/off switches; other types are not stored.
    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return _mismatch(default_value)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return _mismatch(default_value)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return _mismatch(default_value)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return _mismatch(default_value)


def _mismatch(default_value: T) -> FlagResolutionDetails[T]:
    return FlagResolutionDetails(
        default_value,
        error_code=ErrorCode.TYPE_MISMATCH,
        error_message="skilltree's flags are boolean",
        reason="ERROR",
    )


def _resolve(
    rules: Mapping[str, FlagRules],
    flag_key: str,
    default_value: bool,
    context: EvaluationContext | None,
) -> FlagResolutionDetails[bool]:
    flag = rules.get(flag_key)
    if flag is None:
        return FlagResolutionDetails(
            default_value,
            error_code=ErrorCode.FLAG_NOT_FOUND,
            error_message=f"no flag {flag_key!r}; the code's default applies",
            reason="ERROR",
        )
    user_id, organisation_ids = _caller(context)
    decision = service.decide(flag, user_id, organisation_ids)
    return FlagResolutionDetails(
        decision.value,
        reason=decision.reason,
        variant=decision.variant,
        flag_metadata={"rule": decision.rule},
    )


def _caller(context: EvaluationContext | None) -> tuple[int | None, list[int]]:
    if context is None:
        return None, []
    key = context.targeting_key
    user_id = int(key) if key is not None and key.isdigit() else None
    organisations = context.attributes.get(ORGANISATIONS, [])
    org_ids = (
        [o for o in organisations if isinstance(o, int)] if isinstance(organisations, list) else []
    )
    return user_id, org_ids


class DecisionLog(Hook):
    """Every decision, logged and counted, whichever rule (or error) made it."""

    def finally_after(
        self,
        hook_context: HookContext,
        details: FlagEvaluationDetails[FlagValueType],
        hints: HookHints,
    ) -> None:
        reason = str(details.reason or "UNKNOWN")
        variant = details.variant or "default"  # the code's default: no rule decided
        metrics.FLAG_EVALUATIONS.labels(details.flag_key, variant, reason).inc()
        log.debug(
            "flag.evaluated",
            flag=details.flag_key,
            value=details.value,
            variant=variant,
            reason=reason,
            rule=details.flag_metadata.get("rule"),
            targeting_key=hook_context.evaluation_context.targeting_key,
            error=details.error_code.value if details.error_code else None,
        )


class FeatureFlags:
    """What code asks: is this flag on for this caller? One per app (or command)."""

    def __init__(self, rule_sets: RuleSets) -> None:
        self.rule_sets = rule_sets
        self.provider = DatabaseFlagProvider(rule_sets)
        # Each instance binds its provider to an OpenFeature domain of its own, so two apps
        # in one process (tests) never share one; a production process has one app.
        self.domain = f"skilltree-{uuid.uuid4().hex[:12]}"
        api.set_provider_and_wait(self.provider, domain=self.domain)
        self.client: OpenFeatureClient = api.get_client(self.domain)
        self.client.add_hooks([DecisionLog()])

    async def is_enabled(
        self, key: str, *, default: bool, user_id: int | None, organisation_ids: Sequence[int] = ()
    ) -> bool:
        context = EvaluationContext(
            targeting_key=str(user_id) if user_id is not None else None,
            attributes={ORGANISATIONS: list(organisation_ids)},
        )
        return await self.client.get_boolean_value_async(key, default, context)

    def close(self) -> None:
        """Unbind this instance's provider (its domain answers defaults from now on)."""
        api.set_provider(NoOpProvider(), domain=self.domain)
