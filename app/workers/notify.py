"""arq job: deliver one owed notification (R3.2). Thin: a session, the domain call."""

from __future__ import annotations

import uuid
from typing import Any

import structlog

from app.db import unit_of_work
from app.domain.notify.delivery import deliver_notification as deliver

log = structlog.get_logger(__name__)


async def deliver_notification(ctx: dict[str, Any], outbox_id: str) -> str:
    structlog.contextvars.bind_contextvars(job_id=ctx.get("job_id"), outbox_id=outbox_id)
    # A delivery holds its database connection across the WeCom call: at most `outbound` of them at once, so
    # a WeCom that hangs cannot take every connection from assignment and the outbox relay (R3.2).
    async with ctx["outbound"], unit_of_work(ctx["sessions"]) as session:
        outcome = await deliver(session, uuid.UUID(outbox_id), ctx["clock"].now(), ctx["channels"])
    log.info("deliver_notification_done", outcome=outcome)
    return outcome
