"""Response models of the security audit log (account pages and organisation owners show it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class SecurityEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built straight from an AuditEvent

    kind: str
    occurred_at: datetime
    ip: str
    user_agent: str
    details: dict[str, Any]


class SecurityEventListOut(BaseModel):
    items: list[SecurityEventOut]
