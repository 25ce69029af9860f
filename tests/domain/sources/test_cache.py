"""The in-process source cache: fresh entries served, stale ones refreshed once in the background."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from app.db import create_sessionmaker
from app.domain.errors import NotFound, Unavailable
from app.domain.sources.cache import SourceCache


@pytest.fixture
async def sessions(db):
    return create_sessionmaker(db)


async def _add_source(db, key: str, enabled: bool = True) -> None:
    async with db.begin() as conn:
        await conn.execute(text(
            "INSERT INTO sources (id, key, name, kind, enabled, field_mapping, options, auth_mode, auth_settings, "
            "created_at, updated_at) VALUES (:id, :key, :key, 'generic', :enabled, '{}', '{}', 'none', '{}', now(), "
            "now())"), {"id": uuid.uuid4(), "key": key, "enabled": enabled})


async def _set_enabled(db, key: str, enabled: bool) -> None:  # another process's change: no invalidate()
    async with db.begin() as conn:
        await conn.execute(text("UPDATE sources SET enabled = :e WHERE key = :k"), {"e": enabled, "k": key})


async def refreshed(cache: SourceCache) -> None:
    """Wait for the background refreshes in flight (no fixed sleep racing a slow, shared machine)."""
    await asyncio.gather(*list(cache._loads.values()), return_exceptions=True)
    await asyncio.sleep(0)  # their done-callbacks


class CountingCache(SourceCache):
    reads = 0

    async def _read(self, key, generation):
        self.reads += 1
        await asyncio.sleep(0.02)  # a slow database makes concurrent requests overlap the load
        return await super()._read(key, generation)


async def test_concurrent_requests_share_one_load_and_fresh_entries_are_served_from_memory(db, sessions):
    await _add_source(db, "web")
    cache = CountingCache(sessions, ttl_seconds=60)
    sources = await asyncio.gather(*(cache.get("web") for _ in range(20)))
    assert {s.key for s in sources} == {"web"} and cache.reads == 1
    await cache.get("web")
    assert cache.reads == 1


async def test_a_stale_entry_is_served_while_one_refresh_runs_then_the_change_is_seen(db, sessions):
    await _add_source(db, "web")
    cache = CountingCache(sessions, ttl_seconds=1.0)
    assert (await cache.get("web")).enabled
    await _set_enabled(db, "web", False)
    await asyncio.sleep(1.1)  # past the TTL, well within twice the TTL
    stale = await asyncio.gather(*(cache.get("web") for _ in range(10)))
    assert all(s.enabled for s in stale) and cache.reads == 2  # answered at once; one refresh for all ten
    await refreshed(cache)
    assert not (await cache.get("web")).enabled and cache.reads == 2


async def test_an_entry_older_than_twice_the_ttl_is_not_served(db, sessions):
    await _add_source(db, "web")
    cache = SourceCache(sessions, ttl_seconds=0.1)
    await cache.get("web")
    await _set_enabled(db, "web", False)
    await asyncio.sleep(0.25)  # an idle process: the next request waits for the database
    assert not (await cache.get("web")).enabled


async def test_unknown_and_deleted_keys_are_not_found(db, sessions):
    await _add_source(db, "web")
    cache = SourceCache(sessions, ttl_seconds=0.1)
    with pytest.raises(NotFound):
        await cache.get("nope")
    await cache.get("web")
    async with db.begin() as conn:
        await conn.execute(text("DELETE FROM sources WHERE key = 'web'"))
    await asyncio.sleep(0.25)
    with pytest.raises(NotFound):
        await cache.get("web")


async def test_invalidate_wins_over_a_load_that_started_before_it(db, sessions):
    await _add_source(db, "web")
    read_old_row = asyncio.Event()

    class SlowToStore(SourceCache):
        async def _fetch(self, key):
            source = await super()._fetch(key)  # enabled=true, read before the admin's change
            read_old_row.set()
            await asyncio.sleep(0.05)
            return source

    cache = SlowToStore(sessions, ttl_seconds=60)
    before = asyncio.create_task(cache.get("web"))
    await read_old_row.wait()
    await _set_enabled(db, "web", False)
    cache.invalidate("web")  # what the admin API does after its change
    assert (await before).enabled  # that request was answered with what it read
    assert not (await cache.get("web")).enabled  # but the old row was not kept for the next one


async def test_a_failed_background_refresh_keeps_the_entry_and_is_retried(db, sessions):
    await _add_source(db, "web")
    cache = SourceCache(sessions, ttl_seconds=1.0)
    await cache.get("web")
    failing = True
    real_read = cache._read

    async def read(key, generation):
        if failing:
            raise Unavailable("database", "ConnectionRefusedError")
        return await real_read(key, generation)

    cache._read = read
    await asyncio.sleep(1.1)
    assert (await cache.get("web")).enabled  # stale entry served; its refresh fails in the background
    await refreshed(cache)
    failing = False
    await _set_enabled(db, "web", False)
    await cache.get("web")  # still stale: starts another refresh, which succeeds
    await refreshed(cache)
    assert not (await cache.get("web")).enabled
