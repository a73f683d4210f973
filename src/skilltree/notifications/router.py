"""HTTP routes of notifications: your preferences, and the one-click unsubscribe link."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from skilltree.accounts.dependencies import AccountOwner, CurrentPrincipal
from skilltree.notifications import service
from skilltree.notifications.schemas import PreferencesIn, PreferencesOut, UnsubscribedOut
from skilltree.platform.http.problems import problem_responses
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.state import AppResources, DbSession

router = APIRouter(prefix=API_PREFIX, tags=["notifications"])


@router.get(
    "/me/notifications", response_model=PreferencesOut, responses=problem_responses(401, 403)
)
async def get_preferences(current: CurrentPrincipal, db: DbSession) -> PreferencesOut:
    found = await service.preferences(db, current.user_id)
    return PreferencesOut(
        weekly_digest=found.weekly_digest, review_reminders=found.review_reminders
    )


@router.put(
    "/me/notifications", response_model=PreferencesOut, responses=problem_responses(401, 403, 422)
)
async def set_preferences(
    body: PreferencesIn, current: AccountOwner, db: DbSession, resources: AppResources
) -> PreferencesOut:
    """Turn the weekly digest or review reminders on or off (fields left out stay as they are)."""
    changes = {k: v for k, v in body.model_dump().items() if v is not None}
    found = await service.update(db, current.user_id, resources.clock.now(), **changes)
    return PreferencesOut(
        weekly_digest=found.weekly_digest, review_reminders=found.review_reminders
    )


@router.post(
    "/notifications/unsubscribe",
    response_model=UnsubscribedOut,
    responses=problem_responses(400, 422),
)
async def unsubscribe(
    token: Annotated[str, Query(min_length=5, max_length=200)],
    db: DbSession,
    resources: AppResources,
) -> UnsubscribedOut:
    """The link in optional e-mails; mail clients POST to it for one-click unsubscribe
    (RFC 8058), so it needs no sign-in: the signed token is the authority."""
    app = resources.settings.app
    secrets = [app.secret_key, *app.previous_secret_keys]
    topic = await service.unsubscribe(db, secrets, token, resources.clock.now())
    return UnsubscribedOut(unsubscribed=topic)


def _out(found: service.Preferences) -> PreferencesOut:
    return PreferencesOut(
        weekly_digest=found.weekly_digest, review_reminders=found.review_reminders
    )
