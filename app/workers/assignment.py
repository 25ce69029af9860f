"""arq job: assign one lead (R1.12 → R2). Thin: a session, the domain call, nothing else."""

from __future__ import annotations

import uuid
from typing import Any

import structlog

from app.db import unit_of_work
from app.domain.assignment.service import handle_assignment_request

log = structlog.get_logger(__name__)


async def assign_lead(ctx: dict[str, Any], outbox_id: str) -> str:
    structlog.contextvars.bind_contextvars(job_id=ctx.get("job_id"), outbox_id=outbox_id)
    async with unit_of_work(ctx["sessions"]) as session:
        outcome = await handle_assignment_request(session, uuid.UUID(outbox_id), ctx["clock"])
    log.info("assign_lead_done", outcome=outcome)
    return outcome
