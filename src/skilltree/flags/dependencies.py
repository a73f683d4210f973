"""The feature flags of the app serving the request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from skilltree.accounts.dependencies import PlatformAdmin
from skilltree.flags.provider import FeatureFlags
from skilltree.flags.service import FlagChanges
from skilltree.platform.state import AppResources


async def get_feature_flags(request: Request) -> FeatureFlags:
    flags: FeatureFlags = request.app.state.feature_flags
    return flags


Flags = Annotated[FeatureFlags, Depends(get_feature_flags)]


async def flag_changes(
    current: PlatformAdmin, resources: AppResources, flags: Flags
) -> FlagChanges:
    """A change by the administrator calling, announced to every instance once committed."""
    return FlagChanges(resources.clock, current.user_id, flags.rule_sets.announce)


Changes = Annotated[FlagChanges, Depends(flag_changes)]
