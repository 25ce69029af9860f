"""R1.12: hand committed outbox rows to the arq queue.

The API never talks to Redis for this: `leadflow_accept_submission()` writes the row in the lead's
transaction; the worker's relay loop sweeps the outbox every few hundred milliseconds and hands rows over.
The arq job id is `outbox:<id>`, so a second hand-over of a queued row is a no-op; jobs check
`processed_at`, so a late duplicate does nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import structlog
from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import unit_of_work
from app.domain.clock import Clock
from app.domain.outbox.models import OutboxMessage

log = structlog.get_logger(__name__)

BATCH = 500
ENQUEUE_CONCURRENCY = 50
QUEUE_ERRORS = (RedisError, OSError, TimeoutError)


async def enqueue(redis: ArqRedis, job: str, outbox_id: uuid.UUID) -> None:
    await redis.enqueue_job(job, str(outbox_id), _job_id=f"outbox:{outbox_id}")


async def sweep(
    sessions: async_sessionmaker[AsyncSession], redis: ArqRedis, clock: Clock, *, requeue_after_seconds: float,
    batch: int = 500,
) -> int:
    """Hand over unprocessed rows never handed over, or handed over long ago. Returns how many.

    A row handed over and still unprocessed `requeue_after_seconds` later is handed over again (its job may
    have been lost with a Redis that kept nothing). Rows are claimed with SKIP LOCKED so several workers
    sweep without double work. If Redis fails, the transaction rolls back: nothing is marked handed over.
    """
    now = clock.now()
    handed = 0
    async with unit_of_work(sessions) as session:
        rows = list(await session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.processed_at.is_(None),
                or_(OutboxMessage.not_before.is_(None), OutboxMessage.not_before <= now),
                or_(OutboxMessage.enqueued_at.is_(None),
                    OutboxMessage.enqueued_at < now - timedelta(seconds=requeue_after_seconds)))
            .order_by(OutboxMessage.created_at).limit(batch).with_for_update(skip_locked=True)))
        # The claimed rows stay locked until commit, and a job that starts meanwhile waits on its row: hand
        # them over ENQUEUE_CONCURRENCY at a time instead of one round trip after another.
        for start in range(0, len(rows), ENQUEUE_CONCURRENCY):
            chunk = rows[start:start + ENQUEUE_CONCURRENCY]
            await asyncio.gather(*(enqueue(redis, row.job, row.id) for row in chunk))
            for row in chunk:
                row.enqueued_at = now
                row.enqueue_attempts += 1
            handed += len(chunk)
    if handed:
        log.info("outbox_relayed", handed=handed)
    return handed


async def backlog(session: AsyncSession, now: datetime, late_after_seconds: float) -> int:
    """Unprocessed rows due more than `late_after_seconds` ago: work that is late, for metrics and alerts.

    A row is due at `not_before` when it has one (a lead waiting for its rule's window, a retry), else when
    written: leads waiting overnight for the morning are not a stalled worker.
    """
    due_at = func.coalesce(OutboxMessage.not_before, OutboxMessage.created_at)
    return int(await session.scalar(
        select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.processed_at.is_(None), due_at < now - timedelta(seconds=late_after_seconds))) or 0)
