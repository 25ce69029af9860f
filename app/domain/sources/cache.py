"""Source configs read on every intake request are kept in process for a few seconds.

Changes made through this process apply at once (`invalidate`). Other processes' changes are seen within
`ttl_seconds` plus one refresh: once an entry is older than the TTL, the next request still gets it while
one background load refreshes it (stale-while-revalidate), so a busy intake never waits on, or piles up,
reloads every few seconds. An entry older than twice the TTL (an idle process) is not served: that request
waits for a fresh load. Concurrent requests for one key share one load. Unknown keys are not cached, so a
source created elsewhere works on its first request. `ttl_seconds=0` disables caching.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import unit_of_work
from app.domain.errors import NotFound
from app.domain.sources.models import Source

log = structlog.get_logger(__name__)


class SourceCache:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl_seconds: float) -> None:
        self._sessions = sessions
        self._ttl = ttl_seconds
        self._entries: dict[str, tuple[float, Source]] = {}
        self._loads: dict[str, asyncio.Task[Source | None]] = {}
        self._generation = 0  # bumped by invalidate(): a load that started before it must not store its row

    async def get(self, key: str) -> Source:
        """The source (a detached snapshot), or NotFound. Database down (and nothing fresh enough) → Unavailable."""
        entry = self._entries.get(key)
        if entry is not None:
            age = time.monotonic() - entry[0]
            if age < self._ttl:
                return entry[1]
            if age < 2 * self._ttl:
                self._load(key, background=True)
                return entry[1]
        source = await asyncio.shield(self._load(key))  # a caller going away must not cancel a shared load
        if source is None:
            raise NotFound(f"no source with key {key!r}")
        return source

    def invalidate(self, key: str | None = None) -> None:
        self._generation += 1
        if key is None:
            self._entries.clear()
            self._loads.clear()
        else:
            self._entries.pop(key, None)
            self._loads.pop(key, None)

    def _load(self, key: str, *, background: bool = False) -> asyncio.Task[Source | None]:
        task = self._loads.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._read(key, self._generation))
            self._loads[key] = task
            task.add_done_callback(lambda done: self._load_done(key, done))
            if background:  # nobody awaits it: its failure is logged here
                task.add_done_callback(_log_failed_refresh)
        return task

    def _load_done(self, key: str, task: asyncio.Task[Source | None]) -> None:
        if self._loads.get(key) is task:
            del self._loads[key]
        if not task.cancelled():
            task.exception()  # retrieved here too: every caller of a shared load may have gone away

    async def _read(self, key: str, generation: int) -> Source | None:
        source = await self._fetch(key)
        if generation == self._generation:
            if source is None:
                self._entries.pop(key, None)
            elif self._ttl > 0:
                self._entries[key] = (time.monotonic(), source)
        return source

    async def _fetch(self, key: str) -> Source | None:
        async with unit_of_work(self._sessions) as session:
            return await session.scalar(select(Source).where(Source.key == key))


def _log_failed_refresh(task: asyncio.Task[Source | None]) -> None:
    """A background refresh that fails leaves the entry as it was; the next request past the TTL tries again."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.warning("source_refresh_failed", error=f"{type(error).__name__}: {str(error)[:200]}")
