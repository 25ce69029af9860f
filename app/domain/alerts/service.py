"""R3.5: alerts with a key — the same key does not re-alert within the cooldown; clearing sends a recovery.

Raising or resolving writes the alert and, when a message is due, a `send_alert` outbox job in the caller's
transaction; the job posts to the ops WeCom robot and/or DingTalk robot.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.alerts.models import Alert
from app.domain.outbox.models import OutboxMessage

log = structlog.get_logger(__name__)


async def raise_alert(
    session: AsyncSession, key: str, message: str, now: datetime, cooldown: timedelta, *,
    severity: str = "warning", detail: dict[str, Any] | None = None,
) -> Alert:
    """Fire (or keep firing) the alert `key`. A message goes out now unless one went out within `cooldown`.

    Concurrent raisers of one key queue on an advisory lock, so exactly one firing row exists per key.
    """
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"alert:{key}"})
    alert = await session.scalar(select(Alert).where(Alert.key == key, Alert.status == "firing").with_for_update())
    if alert is None:
        alert = Alert(key=key, severity=severity, status="firing", message=message, detail=detail or {},
                      first_at=now, last_at=now, send_count=0, occurrences=1)
        session.add(alert)
        await session.flush()
    else:
        alert.message, alert.detail, alert.last_at = message, detail or alert.detail, now
        alert.occurrences += 1
    if alert.last_sent_at is None or alert.last_sent_at <= now - cooldown:
        alert.last_sent_at = now
        alert.send_count += 1
        _send_later(session, alert, "firing", now)
        log.warning("alert_firing", key=key, message=message)
    return alert


async def resolve_alert(session: AsyncSession, key: str, now: datetime, note: str = "") -> Alert | None:
    """Clear the alert `key` if it is firing, and send the recovery message."""
    alert = await session.scalar(select(Alert).where(Alert.key == key, Alert.status == "firing").with_for_update())
    if alert is None:
        return None
    alert.status, alert.resolved_at = "resolved", now
    if note:
        alert.detail = alert.detail | {"resolution": note}
    _send_later(session, alert, "resolved", now)
    log.info("alert_resolved", key=key)
    return alert


async def list_alerts(session: AsyncSession, status: str | None, limit: int = 200) -> list[Alert]:
    query = select(Alert)
    if status:
        query = query.where(Alert.status == status)
    return list(await session.scalars(query.order_by(Alert.last_at.desc()).limit(limit)))


def _send_later(session: AsyncSession, alert: Alert, state: str, now: datetime) -> None:
    session.add(OutboxMessage(job="send_alert", payload={"alert_id": str(alert.id), "state": state},
                              created_at=now))


def alert_text(alert: Alert, state: str) -> str:
    if state == "resolved":
        return f"【恢复】{alert.key} 已恢复 — {alert.message}"
    return f"【告警】{alert.key} — {alert.message}"
