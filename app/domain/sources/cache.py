"""Source configs read on every intake request are kept in process for a few seconds.

Changes made through this process apply at once (`invalidate`); other API processes see them within
`ttl_seconds`. Unknown keys are not cached, so a source created elsewhere works on its first request.
"""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import unit_of_work
from app.domain.errors import NotFound
from app.domain.sources.models import Source


class SourceCache:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl_seconds: float) -> None:
        self._sessions = sessions
        self._ttl = ttl_seconds
        self._entries: dict[str, tuple[float, Source]] = {}

    async def get(self, key: str) -> Source:
        """The source (a detached snapshot), or NotFound. Database down → Unavailable."""
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() - entry[0] < self._ttl:
            return entry[1]
        async with unit_of_work(self._sessions) as session:
            source = await session.scalar(select(Source).where(Source.key == key))
        if source is None:
            self._entries.pop(key, None)
            raise NotFound(f"no source with key {key!r}")
        self._entries[key] = (time.monotonic(), source)
        return source

    def invalidate(self, key: str | None = None) -> None:
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)
