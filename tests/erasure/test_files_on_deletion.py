"""Deleting an account removes every row that names the person, on every database, and their
files' bytes from the storage in use: local disk and an S3 API server."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from skilltree.files.storage import S3Location
from skilltree.platform.config import FilesSettings, Settings
from skilltree.platform.db import Database
from tests.erasure.conftest import (
    People,
    author_of_the_web_roadmap,
    delete_me,
    fill_every_table,
    rows_naming,
)
from tests.files.s3server import ACCESS_KEY, SECRET_KEY
from tests.files.test_resumable import stored_keys
from tests.files.test_s3_storage import s3_endpoint, s3_location
from tests.support.accounts import user_id

__all__ = ["s3_endpoint", "s3_location"]  # fixtures shared with the storage tests


@pytest.fixture(params=["local", "s3"])
def settings(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    if request.param == "local":
        files = FilesSettings(storage_dir=tmp_path / "files")
    else:
        location: S3Location = request.getfixturevalue("s3_location")
        files = FilesSettings(
            storage="s3",
            s3_bucket=location.bucket,
            s3_endpoint_url=location.endpoint_url or "",
            s3_access_key_id=ACCESS_KEY,
            s3_secret_access_key=SECRET_KEY,  # type: ignore[arg-type]
        )
    return settings.model_copy(update={"files": files})


async def test_deletion_removes_every_row_and_file_of_the_person_and_nobody_elses(
    people: People,
    app: FastAPI,
    database: Database,
    settings: Settings,
    request: pytest.FixtureRequest,
) -> None:
    ada = await author_of_the_web_roadmap(people)
    grace = await people("Grace")
    await fill_every_table(ada)
    await fill_every_table(grace, roadmap_slug="grace")
    ada_id, grace_id = await user_id(ada), await user_id(grace)
    graces_rows = await rows_naming(database, grace_id)
    every_object = await stored_keys(settings, request)
    assert len(every_object) == 4  # an attachment and a partial upload each

    deleted = await delete_me(ada)

    assert deleted.status_code == 204, deleted.text
    left = {table: count for table, count in (await rows_naming(database, ada_id)).items() if count}
    assert left == {}
    assert await rows_naming(database, grace_id) == graces_rows
    graces_objects = await stored_keys(settings, request)
    assert len(graces_objects) == 2
    assert set(graces_objects) < set(every_object)
    assert (await grace.client.get("/v1/me/progress/web/retries/note/attachments")).json()["items"]
