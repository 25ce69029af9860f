"""arq job: assign one lead (R1.12 → R2). Thin: a session, the domain call, nothing else."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from arq import Retry

from app.db import unit_of_work
from app.domain.assignment.actions import reassign_overdue
from app.domain.assignment.service import handle_assignment_request
from app.domain.errors import Unavailable
from app.workers.loops import run_forever

RETRY_DEFER_SECONDS = 5

log = structlog.get_logger(__name__)


async def assign_lead(ctx: dict[str, Any], outbox_id: str) -> str:
    structlog.contextvars.bind_contextvars(job_id=ctx.get("job_id"), outbox_id=outbox_id)
    try:
        async with unit_of_work(ctx["sessions"]) as session:
            outcome = await handle_assignment_request(session, uuid.UUID(outbox_id), ctx["clock"], ctx["settings"])
    except Unavailable as error:
        log.warning("assign_lead_retry", reason=error.dependency, attempt=ctx.get("job_try"))
        raise Retry(defer=RETRY_DEFER_SECONDS) from error
    log.info("assign_lead_done", outcome=outcome)
    return outcome


async def reassign_overdue_forever(ctx: dict[str, Any]) -> None:
    """R2.6: every LEADFLOW_CLAIM_CHECK_INTERVAL, leads past their claim deadline go to the next rep."""
    settings = ctx["settings"]

    async def one_pass() -> None:
        moved = await reassign_overdue(ctx["sessions"], ctx["clock"].now(), settings)
        if moved:
            log.info("claim_deadline_reassigned", leads=moved)

    await run_forever("claim_check", one_pass, settings.claim_check_interval_seconds)
