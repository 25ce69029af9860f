"""R2.7: the audit trail every lead action writes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.leads.models import AuditEntry

ActionResult = Literal["success", "failed", "skipped"]


def record(
    session: AsyncSession,
    *,
    lead_id: uuid.UUID | None,
    action: str,
    result: ActionResult,
    at: datetime,
    reason: str | None = None,
    actor: str = "system",
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add one audit row to the caller's unit of work."""
    entry = AuditEntry(lead_id=lead_id, action=action, action_result=result, reason=reason, actor=actor,
                       detail=detail or {}, created_at=at)
    session.add(entry)
    return entry
