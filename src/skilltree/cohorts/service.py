"""The rules of cohorts: what mentors see of members, assignments, and the activity feed.

The feed is a projection of domain events (`project`): each event that concerns an
organisation becomes at most one line of its feed (unique per organisation and event id), so
the projection may run twice for the same event — right after the commit in the process that
made the change, and again in a worker that consumes the event — and still write one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import directory
from skilltree.cohorts import repository
from skilltree.cohorts.errors import AssignmentNotFound, InvalidAssignment
from skilltree.cohorts.models import Activity, Assignment, SharingChoice
from skilltree.identity import Viewer, Visibility
from skilltree.orgs import service as orgs
from skilltree.orgs.service import Member, Role
from skilltree.platform import events
from skilltree.platform.events import Event
from skilltree.platform.pagination import Page, Position, make_page
from skilltree.progress import service as progress
from skilltree.progress.rollup import FINISHED, NodeState, Tally
from skilltree.roadmaps import service as roadmaps

MANAGERS = (Role.OWNER, Role.MENTOR)
STUCK_SHOWN = 3
ASSIGNMENT_CREATED = "assignment.created"
ASSIGNMENT_COMPLETED = "assignment.completed"
INVITATION_CREATED = "invitation.created"
# The events the feed projects; anything else is not the cohort's business.
FEED_EVENTS = frozenset(
    {
        progress.TOPIC_STATUS_CHANGED,
        "member.joined",
        "roadmap.published",
        ASSIGNMENT_CREATED,
        ASSIGNMENT_COMPLETED,
    }
)


@dataclass(frozen=True)
class StuckTopic:
    slug: str
    title: str
    since: datetime


@dataclass(frozen=True)
class RoadmapStanding:
    slug: str
    title: str
    tally: Tally
    last_activity_at: datetime | None
    stuck: list[StuckTopic] | None  # None: the member shares the percentage only


@dataclass(frozen=True)
class MemberStanding:
    user_id: int
    display_name: str
    role: Role
    details_shared: bool
    current_streak: int | None
    last_activity_at: datetime | None
    roadmaps: list[RoadmapStanding]


@dataclass(frozen=True)
class RoadmapRef:
    slug: str
    title: str


@dataclass(frozen=True)
class MentorView:
    roadmaps: list[RoadmapRef]
    members: list[MemberStanding]


@dataclass(frozen=True)
class AssignmentView:
    id: int
    roadmap: str
    roadmap_title: str
    section: str | None
    assignee_id: int | None
    due_at: datetime | None
    created_at: datetime
    org: str
    completed_by: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class ActivityView:
    id: int
    org_id: int
    kind: str
    actor_id: int | None
    data: dict[str, Any]
    occurred_at: datetime


def _viewer(member: Member, roles: dict[int, str]) -> Viewer:
    return Viewer(user_id=member.caller.user_id, org_roles=roles)


# ---------------------------------------------------------------- the mentors' view


async def mentor_view(db: AsyncSession, member: Member, now: datetime) -> MentorView:
    """Members × the organisation's roadmaps (its own and those assigned to it)."""
    member.require(*MANAGERS)
    trees = [
        await roadmaps.outline_of(db, roadmap) for roadmap in await _cohort_roadmaps(db, member)
    ]
    sharing = await repository.sharing_choices(db, member.org.id)
    standings = []
    for info in await orgs.member_infos(db, member.org.id):
        shares = sharing.get(info.user_id, True)
        per_roadmap = [
            _standing(tree, await progress.progress_on(db, info.user_id, tree), shares)
            for tree in trees
        ]
        streak = (await progress.stats(db, info.user_id, now)).streaks.current if shares else None
        moments = [s.last_activity_at for s in per_roadmap if s.last_activity_at is not None]
        standings.append(
            MemberStanding(
                user_id=info.user_id,
                display_name=info.display_name,
                role=info.role,
                details_shared=shares,
                current_streak=streak,
                last_activity_at=max(moments) if moments and shares else None,
                roadmaps=per_roadmap,
            )
        )
    return MentorView([RoadmapRef(t.roadmap.slug, t.roadmap.title) for t in trees], standings)


async def _cohort_roadmaps(db: AsyncSession, member: Member) -> list[roadmaps.RoadmapRef]:
    own: list[roadmaps.RoadmapRef] = list(await roadmaps.roadmaps_of_org(db, member.org.id))
    assigned_ids = {a.roadmap_id for a in await repository.assignments_of_org(db, member.org.id)}
    assigned_ids -= {roadmap.id for roadmap in own}
    return own + list(await roadmaps.roadmaps_by_ids(db, sorted(assigned_ids)))


def _standing(
    tree: roadmaps.RoadmapTree[roadmaps.TopicRef], state: progress.RoadmapProgress, shares: bool
) -> RoadmapStanding:
    topics = state.topics()
    own_marks = [t.mark for t in topics if t.mark is not None and t.source == "own"]
    last = max((mark.updated_at for mark in own_marks), default=None)
    stuck = sorted(
        (t for t in topics if t.status == "in_progress" and t.mark is not None and not t.children),
        key=lambda t: (t.mark.updated_at if t.mark else datetime.max, t.node.topic.id),
    )
    return RoadmapStanding(
        slug=tree.roadmap.slug,
        title=tree.roadmap.title,
        tally=state.tally,
        last_activity_at=last if shares else None,
        stuck=[_stuck(t) for t in stuck[:STUCK_SHOWN]] if shares else None,
    )


def _stuck(state: NodeState) -> StuckTopic:
    assert state.mark is not None
    return StuckTopic(state.node.topic.slug, state.node.topic.title, state.mark.updated_at)


async def set_sharing(db: AsyncSession, member: Member, share_details: bool) -> bool:
    """A member decides whether mentors see more than their percentage done."""
    choice = await repository.sharing_choice(db, member.org.id, member.caller.user_id)
    if choice is None:
        repository.add(
            db,
            SharingChoice(
                org_id=member.org.id, user_id=member.caller.user_id, share_details=share_details
            ),
        )
    else:
        choice.share_details = share_details
    await repository.flush(db)
    return share_details


# ---------------------------------------------------------------- assignments


async def assign(
    db: AsyncSession,
    member: Member,
    now: datetime,
    *,
    roadmap_slug: str,
    section_slug: str | None,
    user_ids: Sequence[int] | None,
    due_at: datetime | None,
) -> list[AssignmentView]:
    """Owners and mentors assign a roadmap (or one of its sections) to the organisation, or to
    named members: one assignment per member, so each completes on its own."""
    member.require(*MANAGERS)
    roles = await orgs.roles_of(db, member.caller.user_id)
    roadmap = (await roadmaps.get_roadmap(db, roadmap_slug, _viewer(member, roles))).roadmap
    if roadmap.visibility == Visibility.PRIVATE or (
        roadmap.visibility == Visibility.ORGANISATION and roadmap.org_id != member.org.id
    ):
        raise InvalidAssignment(
            "Assign a public roadmap or one of this organisation's.", roadmap=roadmap_slug
        )
    section_id = None
    if section_slug is not None:
        section = await roadmaps.find_topic(db, roadmap_slug, section_slug, _viewer(member, roles))
        section_id = section.id
    if due_at is not None and due_at <= now:
        raise InvalidAssignment("The due date must be in the future.", due_at=due_at.isoformat())
    members = {info.user_id for info in await orgs.member_infos(db, member.org.id)}
    unknown = sorted(set(user_ids or []) - members)
    if unknown:
        raise InvalidAssignment("Assign to members of this organisation only.", unknown=unknown)
    created = []
    for assignee in sorted(set(user_ids)) if user_ids else [None]:
        row = Assignment(
            org_id=member.org.id,
            roadmap_id=roadmap.id,
            section_id=section_id,
            assignee_id=assignee,
            due_at=due_at,
            assigned_by=member.caller.user_id,
            created_at=now,
        )
        repository.add(db, row)
        await repository.flush(db)
        events.emit(
            db,
            ASSIGNMENT_CREATED,
            at=now,
            org_id=member.org.id,
            data={
                "org": member.org.slug,
                "assignment_id": row.id,
                "roadmap": roadmap.slug,
                "roadmap_title": roadmap.title,
                "section": section_slug,
                "assignee_id": assignee,
                "due_at": due_at.isoformat() if due_at else None,
                "user_id": member.caller.user_id,
            },
        )
        created.append(_assignment_view(row, roadmap, section_slug, member.org.slug, []))
    return created


async def assignments(db: AsyncSession, member: Member) -> list[AssignmentView]:
    """Managers see every assignment of the organisation; learners those addressed to them."""
    if member.role in MANAGERS:
        rows = await repository.assignments_of_org(db, member.org.id)
    else:
        rows = await repository.assignments_for(db, member.caller.user_id, [member.org.id])
    return await _views(
        db, rows, {member.org.id: member.org.slug}, member.caller.user_id, member.role
    )


async def my_assignments(db: AsyncSession, user_id: int) -> list[AssignmentView]:
    org_ids = await orgs.org_ids_of(db, user_id)
    rows = await repository.assignments_for(db, user_id, org_ids)
    slugs = {org_id: await orgs.org_slug(db, org_id) or "" for org_id in {r.org_id for r in rows}}
    return await _views(db, rows, slugs, user_id, Role.LEARNER)


async def unassign(db: AsyncSession, member: Member, assignment_id: int) -> None:
    member.require(*MANAGERS)
    if await repository.get_assignment(db, member.org.id, assignment_id) is None:
        raise AssignmentNotFound(assignment_id)
    await repository.delete_assignment(db, assignment_id)


async def _views(
    db: AsyncSession,
    rows: Sequence[Assignment],
    org_slugs: dict[int, str],
    user_id: int,
    role: Role,
) -> list[AssignmentView]:
    by_id = {
        r.id: r for r in await roadmaps.roadmaps_by_ids(db, sorted({a.roadmap_id for a in rows}))
    }
    sections = await roadmaps.topic_labels(db, sorted({a.section_id for a in rows if a.section_id}))
    done: dict[int, list[int]] = {}
    for completion in await repository.completions(db, [a.id for a in rows]):
        # A learner learns only whether they themselves completed it.
        if role in MANAGERS or completion.user_id == user_id:
            done.setdefault(completion.assignment_id, []).append(completion.user_id)
    return [
        _assignment_view(
            a,
            by_id[a.roadmap_id],
            sections[a.section_id].slug if a.section_id in sections else None,
            org_slugs.get(a.org_id, ""),
            sorted(done.get(a.id, [])),
        )
        for a in rows
        if a.roadmap_id in by_id
    ]


def _assignment_view(
    row: Assignment,
    roadmap: roadmaps.RoadmapRef,
    section: str | None,
    org: str,
    completed_by: list[int],
) -> AssignmentView:
    return AssignmentView(
        id=row.id,
        roadmap=roadmap.slug,
        roadmap_title=roadmap.title,
        section=section,
        assignee_id=row.assignee_id,
        due_at=row.due_at,
        created_at=row.created_at,
        org=org,
        completed_by=completed_by,
    )


@dataclass(frozen=True)
class Reminder:
    user_id: int
    org: str
    assignment_id: int
    roadmap: str
    roadmap_title: str
    due_at: datetime


async def claim_reminders(db: AsyncSession, now: datetime, horizon: timedelta) -> list[Reminder]:
    """Assignments due within `horizon` whose reminder has not gone out: marked reminded, and
    one reminder per member who has not completed it yet."""
    reminders = []
    for assignment in await repository.due_before(db, now + horizon, now):
        assignment.reminded_at = now
        done = {c.user_id for c in await repository.completions(db, [assignment.id])}
        infos = await orgs.member_infos(db, assignment.org_id)
        targets = [
            info.user_id
            for info in infos
            if assignment.assignee_id in (None, info.user_id) and info.user_id not in done
        ]
        roadmap = (await roadmaps.roadmaps_by_ids(db, [assignment.roadmap_id]))[0]
        slug = await orgs.org_slug(db, assignment.org_id) or ""
        assert assignment.due_at is not None
        reminders += [
            Reminder(user, slug, assignment.id, roadmap.slug, roadmap.title, assignment.due_at)
            for user in targets
        ]
    await repository.flush(db)
    return reminders


# ---------------------------------------------------------------- the feed


async def feed(
    db: AsyncSession, member: Member, position: Position | None, limit: int
) -> Page[ActivityView]:
    """The organisation's activity, newest first (what every member may see)."""
    rows = await repository.feed_page(db, member.org.id, position, limit)
    page = make_page(rows, position, limit, lambda row: (row.id, row.id))
    return Page([_activity_view(row) for row in page.items], page.next, page.prev)


def _activity_view(row: Activity) -> ActivityView:
    return ActivityView(row.id, row.org_id, row.kind, row.actor_id, row.data, row.occurred_at)


async def project(db: AsyncSession, event: Event, now: datetime) -> list[ActivityView]:
    """Turn one domain event into feed lines (and assignment completions); returns the lines
    written now, none for an event projected before."""
    if event.type not in FEED_EVENTS:
        return []
    if event.type == progress.TOPIC_STATUS_CHANGED:
        return await _project_progress(db, event, now)
    if event.org_id is None:
        return []  # a public roadmap's revision is no organisation's news
    kind = {"member.joined": "member.joined", "roadmap.published": "roadmap.published"}.get(
        event.type, event.type
    )
    actor = event.data.get("user_id")
    names = {i.user_id: i.display_name for i in await orgs.member_infos(db, event.org_id)}
    data = dict(event.data)
    if isinstance(actor, int) and actor in names:
        data["user"] = names[actor]
    line = await _record(db, event.org_id, event.id, kind, actor, data, event.occurred_at)
    return [line] if line else []


async def _project_progress(db: AsyncSession, event: Event, now: datetime) -> list[ActivityView]:
    user_id, to = int(event.data["user_id"]), event.data.get("to")
    if to not in FINISHED:
        return []
    # Most learners belong to no organisation: then there is no feed and no assignment, and
    # the roadmap's progress (an outline of every topic, rolled up) is not worth computing.
    org_ids = await orgs.org_ids_of(db, user_id)
    if not org_ids:
        return []
    roadmap_list = await roadmaps.roadmaps_by_ids(db, [int(event.data["roadmap_id"])])
    if not roadmap_list:
        return []
    roadmap = roadmap_list[0]
    tree = await roadmaps.outline_of(db, roadmap)
    state = await progress.progress_on(db, user_id, tree)
    topic_id = int(event.data["topic_id"])
    lines: list[ActivityView] = []
    for org_id in org_ids:
        await _complete_assignments(db, org_id, user_id, roadmap, state, event, now)
        if not _org_may_see(roadmap, org_id):
            continue
        if not (await repository.sharing_choices(db, org_id)).get(user_id, True):
            continue  # shares the percentage only: no topic-by-topic news
        names = {i.user_id: i.display_name for i in await orgs.member_infos(db, org_id)}
        base = {"user_id": user_id, "user": names.get(user_id), "roadmap": roadmap.slug}
        topic = next((t for t in state.topics() if t.node.topic.id == topic_id), None)
        if topic is None:
            continue
        if to == "done":
            data = base | {"topic": topic.node.topic.slug, "title": topic.node.topic.title}
            line = await _record(
                db, org_id, event.id, "topic.done", user_id, data, event.occurred_at
            )
            lines += [line] if line else []
        section = next((s for s in state.sections if _contains(s, topic_id)), None)
        if section is not None and section.node.topic.id != topic_id and _finished(section.tally):
            data = base | {"section": section.node.topic.slug, "title": section.node.topic.title}
            line = await _record(
                db,
                org_id,
                f"{event.id}:section",
                "section.finished",
                user_id,
                data,
                event.occurred_at,
            )
            lines += [line] if line else []
    return lines


async def _complete_assignments(
    db: AsyncSession,
    org_id: int,
    user_id: int,
    roadmap: roadmaps.RoadmapRef,
    state: progress.RoadmapProgress,
    event: Event,
    now: datetime,
) -> None:
    slug = await orgs.org_slug(db, org_id) or ""
    for assignment in await repository.assignments_for(db, user_id, [org_id], roadmap.id):
        if assignment.section_id is None:
            tally = state.tally
        else:
            found = next(
                (s for s in state.topics() if s.node.topic.id == assignment.section_id), None
            )
            if found is None:
                continue
            tally = found.tally
        if _finished(tally) and await repository.complete_once(db, assignment.id, user_id, now):
            events.emit(
                db,
                ASSIGNMENT_COMPLETED,
                at=event.occurred_at,
                org_id=org_id,
                data={
                    "org": slug,
                    "assignment_id": assignment.id,
                    "roadmap": roadmap.slug,
                    "user_id": user_id,
                },
            )


def _finished(tally: Tally) -> bool:
    return tally.total > 0 and tally.counts["todo"] + tally.counts["in_progress"] == 0


def _contains(state: NodeState, topic_id: int) -> bool:
    return state.node.topic.id == topic_id or any(_contains(c, topic_id) for c in state.children)


def _org_may_see(roadmap: roadmaps.RoadmapRef, org_id: int) -> bool:
    """Progress on a private roadmap is nobody's news; an organisation's roadmap is its own."""
    return roadmap.visibility == Visibility.PUBLIC or (
        roadmap.visibility == Visibility.ORGANISATION and roadmap.org_id == org_id
    )


async def _record(
    db: AsyncSession,
    org_id: int,
    event_id: str,
    kind: str,
    actor_id: Any,
    data: dict[str, Any],
    at: datetime,
) -> ActivityView | None:
    row = await repository.record_activity(
        db,
        {
            "org_id": org_id,
            "event_id": event_id,
            "kind": kind,
            "actor_id": actor_id if isinstance(actor_id, int) else None,
            "data": data,
            "occurred_at": at,
        },
    )
    return _activity_view(row) if row is not None else None


async def personal_notices(db: AsyncSession, event: Event) -> list[tuple[int, dict[str, Any]]]:
    """Who hears about an event on their own stream, and what: an assignment reaches its
    assignee (or every member but its author, when it is for the whole organisation); a
    completion reaches the organisation's owners and mentors; an invitation reaches the
    account of the invited address, if there is one (the e-mail carries the link)."""
    if event.type == INVITATION_CREATED:
        return await _invitation_notice(db, event)
    if event.org_id is None or event.type not in (ASSIGNMENT_CREATED, ASSIGNMENT_COMPLETED):
        return []
    infos = await orgs.member_infos(db, event.org_id)
    if event.type == ASSIGNMENT_CREATED:
        assignee = event.data.get("assignee_id")
        targets = [
            i.user_id
            for i in infos
            if (assignee is None and i.user_id != event.data.get("user_id"))
            or i.user_id == assignee
        ]
        kind = "assignment.assigned"
    else:
        targets = [i.user_id for i in infos if i.role in MANAGERS]
        kind = "assignment.completed"
    notice = {"kind": kind, "occurred_at": event.occurred_at.isoformat(), "data": event.data}
    return [(user_id, notice) for user_id in targets]


async def _invitation_notice(db: AsyncSession, event: Event) -> list[tuple[int, dict[str, Any]]]:
    invited = await directory.person_by_email(db, str(event.data.get("email", "")))
    if invited is None:
        return []
    notice = {
        "kind": "invitation.received",
        "occurred_at": event.occurred_at.isoformat(),
        # Not the token: accepting needs the link from the e-mail, proof of the address.
        "data": {"org": event.data.get("org"), "role": event.data.get("role")},
    }
    return [(invited.user_id, notice)]
