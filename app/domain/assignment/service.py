"""R2 entry point for the worker: process one `assign_lead` outbox row exactly once."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.assignment.engine import Outcome, assign_lead
from app.domain.clock import Clock
from app.domain.outbox.models import OutboxMessage
from app.metrics import ASSIGNMENT_ROUNDS
from app.settings import Settings


async def handle_assignment_request(
    session: AsyncSession, outbox_id: uuid.UUID, clock: Clock, settings: Settings
) -> str:
    """Run one assignment round for the row's lead and mark the row processed, in one transaction.

    A round that must be repeated (nobody eligible yet, or the rule's window is closed) writes the next
    attempt as a new outbox row with `not_before`: durable, and relayed like any other.
    """
    row = await session.scalar(select(OutboxMessage).where(OutboxMessage.id == outbox_id).with_for_update())
    if row is None:
        return "unknown_outbox_row"
    if row.processed_at is not None:
        return "already_processed"
    now = clock.now()
    row.processed_at = now
    if row.lead_id is None:
        return "no_lead"
    exclude = frozenset(uuid.UUID(u) for u in row.payload.get("exclude", []))
    outcome = await assign_lead(session, row.lead_id, now, settings, exclude=exclude,
                                action="reassign" if exclude else "assign",
                                already_waiting=row.payload.get("waits_for") == "window",
                                generation=row.payload.get("generation"))
    ASSIGNMENT_ROUNDS.labels(outcome.result).inc()
    schedule_next_round(session, row.lead_id, outcome, now)
    return outcome.result


def schedule_next_round(session: AsyncSession, lead_id: uuid.UUID, outcome: Outcome, now: datetime) -> None:
    """The round to come, when this one said when (a closed window, a retry): a durable outbox row."""
    if outcome.retry_at is None:
        return
    payload = assignment_payload(lead_id, outcome.exclude, outcome.generation)
    if outcome.result == "waiting_window":
        payload["waits_for"] = "window"  # a rule change moves it up (recheck_waiting_leads)
    session.add(OutboxMessage(job="assign_lead", payload=payload, lead_id=lead_id, created_at=now,
                              not_before=outcome.retry_at))


async def recheck_waiting_leads(session: AsyncSession, now: datetime) -> int:
    """Leads waiting for a rule's window get their next round now, against the rules as they are now.

    Called when a rule is created or changed: a window that opens earlier, or a rule that no longer waits,
    must not leave leads waiting for the old opening time. A lead whose window is still closed computes
    its opening again and goes on waiting (no attempt is counted, nothing is audited twice).
    """
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.job == "assign_lead", OutboxMessage.processed_at.is_(None),
               OutboxMessage.not_before > now, OutboxMessage.payload["waits_for"].astext == "window")
        .values(not_before=now))
    return result.rowcount


def assignment_payload(lead_id: uuid.UUID, exclude: frozenset[uuid.UUID] = frozenset(),
                       generation: int | None = None) -> dict:
    """An `assign_lead` outbox payload; `exclude` names reps who must not get the lead back this time;
    `generation` is the lead's assignment generation the round belongs to (None: whatever is current)."""
    payload: dict = {"lead_id": str(lead_id)}
    if exclude:
        payload["exclude"] = sorted(str(u) for u in exclude)
    if generation is not None:
        payload["generation"] = generation
    return payload
