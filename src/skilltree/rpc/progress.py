"""`skilltree.v1.Progress`: a learner's statuses and summary, and their changes as they happen.

SetStatus and Summary are PUT /v1/me/progress/{roadmap}/{topic} and GET …/summary: the same
scopes (`progress:write`, `progress:read`), the same service functions. WatchProgress is the
personal live stream of realtime/ over gRPC: it subscribes to the caller's `progress:<id>`
channel of the fan-out (platform/broadcast.py) that the realtime projector publishes each
committed status change on, and runs the same stream loop as GET /v1/me/stream (resume after an
id, re-check the credential, end at the maximum lifetime or at shutdown). No polling.

A client that hangs up cancels the call: the cancellation reaches the stream where it waits,
and leaving the subscription's `async with` removes the subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime

import grpc
from pydantic import ValidationError

from skilltree.identity import Scope
from skilltree.platform.cache import Computed, Key
from skilltree.platform.errors import DomainError
from skilltree.platform.http.rate_limit import RateLimiter
from skilltree.platform.state import Resources
from skilltree.progress import service
from skilltree.progress.rollup import Status, Tally
from skilltree.progress.schemas import StatusIn
from skilltree.realtime import service as realtime
from skilltree.realtime.live import progress_channel
from skilltree.rpc.calls import Caller, Context, authenticate, run, slug
from skilltree.rpc.problems import InvalidArgument
from skilltree.rpc.roadmaps import timestamp
from skilltree.rpc.v1 import progress_pb2 as pb
from skilltree.rpc.v1.progress_pb2_grpc import ProgressServicer

STATUS_PREFIX = "TOPIC_STATUS_"


class Progress(ProgressServicer):
    def __init__(self, resources: Resources, limiter: RateLimiter | None = None) -> None:
        self.resources = resources
        self.limiter = limiter

    async def SetStatus(self, request: pb.SetStatusRequest, context: Context) -> pb.TopicProgress:
        async def work(caller: Caller) -> pb.TopicProgress:
            learner = caller.learner(Scope.PROGRESS_WRITE)
            roadmap, topic = slug(request.roadmap, "roadmap"), slug(request.topic, "topic")
            body = _status_in(request)
            mark = await service.set_status(
                caller.session, learner, roadmap, topic, body.status, body.confidence
            )
            return pb.TopicProgress(
                roadmap=roadmap,
                topic=topic,
                status=request.status,
                confidence=mark.confidence,
                updated_at=timestamp(mark.updated_at),
            )

        return await run(context, self.resources, work, writes=True, limiter=self.limiter)

    async def Summary(self, request: pb.SummaryRequest, context: Context) -> pb.ProgressSummary:
        async def work(caller: Caller) -> pb.ProgressSummary:
            learner = caller.learner(Scope.PROGRESS_READ)
            roadmap = slug(request.roadmap, "roadmap")

            async def render() -> Computed:
                progress = await service.roadmap_progress(caller.session, learner, roadmap)
                return Computed(_summary(roadmap, progress).SerializeToString())

            # As GET …/summary: access checked on every read, then the learner's own entry
            # (under their user id), made stale by the same writes.
            await service.check_access(caller.session, learner, roadmap)
            key = Key(
                f"learner:{learner.user_id}:{roadmap}:summary:protobuf",
                service.cache_namespaces(learner.user_id, roadmap),
            )
            ttl = caller.resources.settings.cache.progress_ttl_seconds
            cached = await caller.resources.cache.fetch(key, render, ttl)
            return pb.ProgressSummary.FromString(cached)

        return await run(context, self.resources, work, writes=False, limiter=self.limiter)

    async def WatchProgress(
        self, request: pb.WatchProgressRequest, context: Context
    ) -> AsyncIterator[pb.ProgressEvent]:
        async def learner_id(caller: Caller) -> int:
            return caller.learner(Scope.PROGRESS_READ).user_id

        user_id = await run(context, self.resources, learner_id, writes=False, limiter=self.limiter)
        settings = self.resources.settings.realtime
        frames = realtime.stream(
            self.resources.broadcaster,
            progress_channel(user_id),
            "progress",
            request.after_id or None,
            settings,
            self._still_allowed(context),
        )
        try:
            async with asyncio.timeout(context.time_remaining()) as deadline:
                async with contextlib.aclosing(frames):
                    async for frame in frames:
                        if frame.event == "progress" and frame.data is not None:
                            yield _event(frame.id or "", frame.data)
                        elif frame.event is not None and frame.data is not None:
                            await _end(context, frame.event, str(frame.data.get("reason", "")))
                            return
        except TimeoutError:
            if not deadline.expired():
                raise
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "The call's deadline passed.")

    def _still_allowed(self, context: Context) -> realtime.StillAllowed:
        """Authenticate the call's metadata again, as a new call would be: a revoked token
        family or API key (or a key that lost its scope) ends the stream."""

        async def check() -> bool:
            async with self.resources.database.unit_of_work(writes=False) as session:
                try:
                    caller = await authenticate(session, self.resources, context)
                    caller.learner(Scope.PROGRESS_READ)
                except DomainError:
                    return False
            return True

        return check


async def _end(context: Context, event: str, reason: str) -> None:
    """How the stream loop's endings read in gRPC (docs/api-styles.md)."""
    if event == "shutdown":
        # UNAVAILABLE is what clients retry: another instance takes the call.
        await context.abort(grpc.StatusCode.UNAVAILABLE, f"Server shutting down ({reason}).")
    if event == "reset":
        await context.abort(
            grpc.StatusCode.OUT_OF_RANGE,
            "The stream's history no longer reaches after_id: read Summary, then watch again.",
        )
    if reason == "signed out":
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "The credential was revoked.")
    if reason.startswith("too slow"):
        await context.abort(
            grpc.StatusCode.RESOURCE_EXHAUSTED, "Too slow: watch again with after_id."
        )
    # The maximum lifetime: the call ends well, and the client calls again with after_id.


def _status_in(request: pb.SetStatusRequest) -> StatusIn:
    if request.status == pb.TOPIC_STATUS_UNSPECIFIED:
        raise InvalidArgument(
            "status is required: todo, in progress, done or skipped.",
            errors=[{"field": "status", "message": "required", "type": "missing"}],
        )
    confidence = request.confidence if request.HasField("confidence") else None
    try:
        return StatusIn(status=status_name(request.status), confidence=confidence)
    except ValidationError as error:
        errors = [
            {"field": ".".join(map(str, item["loc"])), "message": item["msg"], "type": item["type"]}
            for item in error.errors()
        ]
        raise InvalidArgument(
            f"The request has {len(errors)} invalid field(s).", errors=errors
        ) from None


def status_name(value: pb.TopicStatus.ValueType) -> Status:
    name = pb.TopicStatus.Name(value).removeprefix(STATUS_PREFIX).lower()
    assert name in ("todo", "in_progress", "done", "skipped")
    return name  # type: ignore[return-value]


def status_value(name: str | None) -> pb.TopicStatus.ValueType:
    if name is None:
        return pb.TOPIC_STATUS_UNSPECIFIED
    return pb.TopicStatus.Value(STATUS_PREFIX + name.upper())


def _summary(roadmap: str, progress: service.RoadmapProgress) -> pb.ProgressSummary:
    return pb.ProgressSummary(
        roadmap=roadmap,
        summary=_tally(progress.tally),
        sections=[
            pb.SectionSummary(
                slug=section.node.topic.slug,
                title=section.node.topic.title,
                status=status_value(section.status),
                summary=_tally(section.tally),
            )
            for section in progress.sections
        ],
    )


def _tally(tally: Tally) -> pb.Tally:
    return pb.Tally(
        total=tally.total,
        todo=tally.counts["todo"],
        in_progress=tally.counts["in_progress"],
        done=tally.counts["done"],
        skipped=tally.counts["skipped"],
        percent_done=tally.percent_done,
        total_hours=round(tally.total_hours, 2),
        remaining_hours=round(tally.remaining_hours, 2),
    )


def _event(event_id: str, data: dict[str, object]) -> pb.ProgressEvent:
    return pb.ProgressEvent(
        id=event_id,
        roadmap=str(data["roadmap"]),
        topic=str(data["topic"]),
        from_status=status_value(_optional_text(data.get("from"))),
        to_status=status_value(_optional_text(data.get("to"))),
        occurred_at=timestamp(datetime.fromisoformat(str(data["occurred_at"]))),
    )


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)
