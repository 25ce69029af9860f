"""R7.1: is this instance fit to take traffic? Database, Redis, migrations at head, a live worker."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.migrate import head_revisions

CHECK_TIMEOUT = 2.0
log = structlog.get_logger(__name__)


def _error(error: Exception, detail: bool) -> str:
    """The exception class; its message (hosts, ports, driver text) only where asked for (the ops CLI)."""
    if not detail:
        log.warning("readiness_check_failed", error=f"{type(error).__name__}: {str(error)[:300]}")
        return type(error).__name__
    return f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:200]}"


async def _database(engine: AsyncEngine, detail: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        async with engine.connect() as conn:
            revisions = set((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars())
    except Exception as error:
        down = {"ok": False, "error": _error(error, detail)}
        return down, {"ok": False, "error": "database unreachable"}
    heads = head_revisions()
    migrations = {"ok": revisions == heads, "current": sorted(revisions), "head": sorted(heads)}
    if not migrations["ok"]:
        migrations["error"] = "run `leadflow migrate`"
    return {"ok": True}, migrations


async def _redis_and_worker(redis: Redis, max_age: float, heartbeat_key: str,
                            detail: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        await redis.ping()
        beat = await redis.get(heartbeat_key)
    except Exception as error:
        return ({"ok": False, "error": _error(error, detail)},
                {"ok": False, "error": "unknown: redis unreachable"})
    if beat is None:
        return {"ok": True}, {"ok": False, "error": "no worker heartbeat seen; start `leadflow worker`"}
    age = time.time() - float(beat)
    worker = {"ok": age <= max_age, "last_heartbeat_age_seconds": round(age, 1)}
    if not worker["ok"]:
        worker["error"] = f"last worker heartbeat {age:.0f} s ago (limit {max_age:.0f} s)"
    return {"ok": True}, worker


async def check_readiness(engine: AsyncEngine, redis: Redis, heartbeat_max_age: float, heartbeat_key: str, *,
                          detail: bool = False) -> dict[str, Any]:
    """Every check runs (in parallel, each time-boxed) so the answer names everything that is down.

    `detail`: error messages as the driver gave them (the ops CLI); the HTTP answer names only the class.
    """
    async def boxed(coro, names):
        try:
            return await asyncio.wait_for(coro, CHECK_TIMEOUT)
        except TimeoutError:
            return tuple({"ok": False, "error": "timed out"} for _ in names)

    (database, migrations), (redis_state, worker) = await asyncio.gather(
        boxed(_database(engine, detail), ("database", "migrations")),
        boxed(_redis_and_worker(redis, heartbeat_max_age, heartbeat_key, detail), ("redis", "worker")))
    checks = {"database": database, "migrations": migrations, "redis": redis_state, "worker": worker}
    down = [name for name, check in checks.items() if not check["ok"]]
    report = {"status": "ready" if not down else "not_ready", "down": down, "checks": checks}
    if database["ok"]:
        # Informational: a failing WeCom must not take the API out of the load balancer.
        report["integrations"] = await _integrations_summary(engine)
    return report


async def _integrations_summary(engine: AsyncEngine) -> dict[str, Any]:
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT channel, ok, since, error_kind FROM integration_health ORDER BY channel"))).all()
    except Exception as error:
        return {"error": type(error).__name__}
    return {r.channel: {"ok": r.ok, "since": r.since.isoformat(), "error_kind": r.error_kind} for r in rows}
