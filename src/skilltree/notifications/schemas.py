"""Request and response models of the notifications API."""

from __future__ import annotations

from pydantic import BaseModel


class PreferencesOut(BaseModel):
    weekly_digest: bool
    review_reminders: bool


class PreferencesIn(BaseModel):
    weekly_digest: bool | None = None
    review_reminders: bool | None = None


class UnsubscribedOut(BaseModel):
    unsubscribed: str
