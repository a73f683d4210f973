"""Account deletion, in one unit of work: every domain removes what the person made, then the
account row goes and the database cascades to the rest (decision 0053).

The order matters. Refusals come first (wrong password, an organisation that would be left
without an owner), so a refused deletion changes nothing. Stored bytes leave storage only after
the commit: a rolled-back deletion still finds every file.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import service as accounts
from skilltree.accounts.service import AccountsContext, SignedIn
from skilltree.files import resumable
from skilltree.files import service as files
from skilltree.files.storage import ObjectStorage
from skilltree.orgs import service as orgs
from skilltree.platform.cache import stale_on_commit
from skilltree.profiles import service as profiles
from skilltree.progress import service as progress
from skilltree.roadmaps import service as roadmaps


async def delete_account(
    db: AsyncSession,
    ctx: AccountsContext,
    storage: ObjectStorage,
    signed_in: SignedIn,
    *,
    password: str | None,
    code: str | None,
) -> None:
    await accounts.confirm_deletion(db, ctx, signed_in, password=password, code=code)
    user_id = signed_in.user.id
    await orgs.require_no_sole_ownership(db, user_id)
    await roadmaps.delete_private_roadmaps_of(db, user_id)
    await remove_stored_files(db, storage, user_id)
    # SQLite hands the highest id out again once its row is gone: answers cached for the old
    # account must not be served to a new one that gets the same id.
    stale_on_commit(db, progress.cache_namespace(user_id), profiles.cache_namespace(user_id))
    # Last: the row whose deletion cascades to progress, notes, resources, review cards,
    # memberships, sessions, tokens, keys, notification settings and search documents.
    await accounts.delete_account(db, ctx, user_id)


async def remove_stored_files(db: AsyncSession, storage: ObjectStorage, user_id: int) -> None:
    """Every file the person stored, bytes removed after the commit. The one place deletion
    calls the files domain: anything else kept in storage for a person is removed here too."""
    await files.delete_files_of(db, storage, user_id)
    await resumable.forget_uploads_of(db, storage, user_id)
