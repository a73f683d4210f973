"""Object storage behind one interface; the local disk is the embedded default.

Objects are written from an async iterator of chunks and read back by byte range, so no
caller ever holds a whole file in memory. A write lands under a temporary name and is renamed
into place when complete: a reader never sees half an object, and a failed upload leaves
nothing behind but a temporary file that is removed.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import anyio

READ_CHUNK = 64 * 1024


class ObjectStorage(Protocol):
    async def save(self, key: str, chunks: AsyncIterator[bytes]) -> None: ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes start..end (inclusive; None: to the end)."""
        ...

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...


class LocalDiskStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        # Keys are made by the server from [a-z0-9/]; this refuses anything else anyway.
        if not key or ".." in key or key.startswith("/") or "\\" in key:
            raise ValueError(f"not a storage key: {key!r}")
        return self.root / key

    async def save(self, key: str, chunks: AsyncIterator[bytes]) -> None:
        path = self._path(key)
        partial = path.with_name(path.name + ".partial")
        await anyio.Path(path.parent).mkdir(parents=True, exist_ok=True)
        try:
            async with await anyio.open_file(partial, "wb") as sink:
                async for chunk in chunks:
                    await sink.write(chunk)
            await anyio.to_thread.run_sync(os.replace, partial, path)
        except BaseException:
            await anyio.Path(partial).unlink(missing_ok=True)
            raise

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        remaining = None if end is None else end - start + 1
        async with await anyio.open_file(self._path(key), "rb") as source:
            await source.seek(start)
            while remaining is None or remaining > 0:
                size = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
                chunk = await source.read(size)
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    async def delete(self, key: str) -> None:
        await anyio.Path(self._path(key)).unlink(missing_ok=True)

    async def exists(self, key: str) -> bool:
        return await anyio.Path(self._path(key)).is_file()
