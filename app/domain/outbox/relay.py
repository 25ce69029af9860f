"""R1.12: hand committed outbox rows to the arq queue — at once after commit, and again by a sweep.

The arq job id is the outbox id, so handing the same row over twice is a no-op while the job is queued,
running or its result is kept; jobs also check `processed_at` themselves, so a late duplicate does nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import structlog
from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import unit_of_work
from app.domain.clock import Clock
from app.domain.outbox.models import OutboxMessage

log = structlog.get_logger(__name__)

QUEUE_ERRORS = (RedisError, OSError, TimeoutError)


async def enqueue(redis: ArqRedis, job: str, outbox_id: uuid.UUID) -> None:
    await redis.enqueue_job(job, str(outbox_id), _job_id=f"outbox:{outbox_id}")


async def relay_now(redis: ArqRedis, outbox_ids: list[uuid.UUID], job: str = "assign_lead") -> bool:
    """Best-effort hand-over right after commit. False (and a log line) when Redis is down: the sweep retries."""
    try:
        for outbox_id in outbox_ids:
            await enqueue(redis, job, outbox_id)
    except QUEUE_ERRORS as error:
        log.warning("outbox_relay_deferred", reason="queue_unavailable", error=str(error)[:200],
                    outbox_ids=[str(i) for i in outbox_ids])
        return False
    return True


async def sweep(
    sessions: async_sessionmaker[AsyncSession], redis: ArqRedis, clock: Clock, *, grace_seconds: float,
    requeue_after_seconds: float, batch: int = 500,
) -> int:
    """Hand over unprocessed rows older than the grace period. Returns how many were handed over.

    A row is handed over once by the sweep, then again only if still unprocessed `requeue_after_seconds`
    later (its job may have been lost with a Redis that kept nothing). Rows are claimed with SKIP LOCKED so
    several workers sweep without double work; a Redis failure stops the pass and is recorded on the rows.
    """
    now = clock.now()
    handed = 0
    async with unit_of_work(sessions) as session:
        rows = list(await session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.processed_at.is_(None),
                OutboxMessage.created_at < now - timedelta(seconds=grace_seconds),
                or_(OutboxMessage.enqueued_at.is_(None),
                    OutboxMessage.enqueued_at < now - timedelta(seconds=requeue_after_seconds)))
            .order_by(OutboxMessage.created_at).limit(batch).with_for_update(skip_locked=True)))
        for row in rows:
            try:
                await enqueue(redis, row.job, row.id)
            except QUEUE_ERRORS as error:
                pending = [r.id for r in rows[handed:]]
                await session.execute(
                    update(OutboxMessage).where(OutboxMessage.id.in_(pending)).values(
                        enqueue_attempts=OutboxMessage.enqueue_attempts + 1, last_error=str(error)[:500]))
                log.warning("outbox_sweep_interrupted", reason="queue_unavailable", pending=len(pending))
                break
            row.enqueued_at = now
            row.enqueue_attempts += 1
            handed += 1
    if handed:
        log.info("outbox_swept", handed=handed)
    return handed


async def backlog(session: AsyncSession, now: datetime, grace_seconds: float) -> int:
    """Unprocessed rows older than the grace period: work that is late, for metrics and alerts."""
    return int(await session.scalar(
        select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.processed_at.is_(None),
            OutboxMessage.created_at < now - timedelta(seconds=grace_seconds))) or 0)
