"""R2: assignment. Until the assignment engine lands, a lead's job only records that it awaits assignment."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.clock import Clock
from app.domain.leads import audit
from app.domain.leads.models import Lead
from app.domain.outbox.models import OutboxMessage


async def handle_assignment_request(session: AsyncSession, outbox_id: uuid.UUID, clock: Clock) -> str:
    """Process one `assign_lead` outbox row exactly once. Returns what happened, for the job log.

    No rep is chosen yet (the engine is a later issue): the lead is marked `awaiting_assignment` and the
    audit log says so with result `skipped`, never `success`.
    """
    row = await session.scalar(select(OutboxMessage).where(OutboxMessage.id == outbox_id).with_for_update())
    if row is None:
        return "unknown_outbox_row"
    if row.processed_at is not None:
        return "already_processed"
    now = clock.now()
    lead = await session.get(Lead, row.lead_id, with_for_update=True) if row.lead_id else None
    if lead is not None and lead.status == "new":
        lead.status = "awaiting_assignment"
        lead.updated_at = now
        audit.record(session, lead_id=lead.id, action="assign", result="skipped", at=now,
                     reason="awaiting_assignment", detail={"why": "assignment engine not configured yet",
                                                          "outbox_id": str(outbox_id)})
    row.processed_at = now
    return "awaiting_assignment"
