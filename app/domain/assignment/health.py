"""R2.8: how fast leads move through trigger → match → push → claim, and which ones are stuck."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.leads.models import AuditEntry, Lead

STAGES = {
    "trigger_to_match": (Lead.triggered_at, Lead.matched_at),
    "match_to_push": (Lead.matched_at, Lead.pushed_at),
    "match_to_claim": (Lead.matched_at, Lead.claimed_at),
    "trigger_to_claim": (Lead.triggered_at, Lead.claimed_at),
}


async def assignment_health(
    session: AsyncSession, now: datetime, window: timedelta, stuck_after: timedelta, limit: int = 100
) -> dict[str, Any]:
    """p50/p95 per stage in milliseconds over leads created in `window`, counts by status, and stuck leads
    (waiting for a rep longer than `stuck_after`, or past their claim deadline) with the last reason."""
    since = now - window
    stages: dict[str, Any] = {}
    for name, (start, end) in STAGES.items():
        millis = func.extract("epoch", end - start) * 1000
        row = (await session.execute(
            select(func.count(end), func.percentile_cont(0.5).within_group(millis),
                   func.percentile_cont(0.95).within_group(millis))
            .where(Lead.created_at >= since, end.is_not(None), start.is_not(None)))).one()
        stages[name] = {"count": row[0], "p50_ms": _ms(row[1]), "p95_ms": _ms(row[2])}
    counts = dict((await session.execute(
        select(Lead.status, func.count()).where(Lead.created_at >= since).group_by(Lead.status))).all())
    stuck_rows = list(await session.scalars(
        select(Lead).where(
            ((Lead.status.in_(("new", "awaiting_assignment", "assignment_failed")))
             & (Lead.triggered_at < now - stuck_after))
            | ((Lead.status == "assigned") & (Lead.claim_due_at < now)))
        .order_by(Lead.triggered_at).limit(limit)))
    return {"window_hours": window.total_seconds() / 3600, "stages": stages, "counts": counts,
            "stuck": [await _why(session, lead, now) for lead in stuck_rows]}


def _ms(value: float | None) -> float | None:
    return round(float(value), 1) if value is not None else None


async def _why(session: AsyncSession, lead: Lead, now: datetime) -> dict[str, Any]:
    last = await session.scalar(
        select(AuditEntry).where(AuditEntry.lead_id == lead.id, AuditEntry.action != "intake")
        .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc()).limit(1))
    waiting = now - (lead.triggered_at or lead.created_at)
    return {"lead_id": lead.lead_number, "status": lead.status, "waiting_minutes": round(waiting.total_seconds() / 60),
            "attempts": lead.assignment_attempts,
            "claim_overdue": lead.status == "assigned" and lead.claim_due_at is not None and lead.claim_due_at < now,
            "last_action": None if last is None else {"action": last.action, "result": last.action_result,
                                                      "reason": last.reason, "at": last.created_at.isoformat()}}
