"""arq job: deliver one owed notification (R3.2). Thin: a session, the domain call."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import structlog
from arq import Retry

from app.db import unit_of_work
from app.domain.notify.delivery import deliver_notification as deliver

log = structlog.get_logger(__name__)
SLOT_RETRY_SECONDS = 2


@contextlib.asynccontextmanager
async def outbound_slot(slots: asyncio.Semaphore) -> AsyncIterator[None]:
    """One of the worker's slots for a platform call, or come back later: waiting here would hold one of arq's
    job slots instead, and enough waiting deliveries would then keep assignment jobs from starting at all."""
    if slots.locked():
        raise Retry(defer=SLOT_RETRY_SECONDS)  # arq frees the job slot; the row stays unprocessed either way
    async with slots:
        yield


async def deliver_notification(ctx: dict[str, Any], outbox_id: str) -> str:
    structlog.contextvars.bind_contextvars(job_id=ctx.get("job_id"), outbox_id=outbox_id)
    # A delivery holds its database connection across the WeCom call: at most OUTBOUND_SLOTS at once, so a
    # WeCom that hangs cannot take every connection from assignment and the outbox relay (R3.2).
    async with outbound_slot(ctx["outbound"]), unit_of_work(ctx["sessions"]) as session:
        outcome = await deliver(session, uuid.UUID(outbox_id), ctx["clock"].now(), ctx["channels"])
    log.info("deliver_notification_done", outcome=outcome)
    return outcome
