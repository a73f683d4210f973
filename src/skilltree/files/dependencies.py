"""What the files routes share: the storage the settings choose, and the limits."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from skilltree.files import service
from skilltree.files.storage import ObjectStorage, storage_for
from skilltree.platform.state import AppResources


async def object_storage(resources: AppResources) -> ObjectStorage:
    return storage_for(resources.settings.files)


Storage = Annotated[ObjectStorage, Depends(object_storage)]


def limits_of(resources: AppResources) -> service.Limits:
    files = resources.settings.files
    return service.Limits(
        files.attachment_max_bytes,
        files.quota_bytes,
        files.image_max_pixels,
        files.avatar_max_bytes,
    )
