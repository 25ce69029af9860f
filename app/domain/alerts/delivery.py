"""Send one alert message to the ops groups (WeCom robot and/or DingTalk robot), retried with backoff."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.alerts.models import Alert
from app.domain.alerts.service import alert_text
from app.domain.notify.delivery import Channels
from app.domain.notify.errors import DeliveryError
from app.domain.notify.registry import ops_notifiers
from app.domain.outbox.models import OutboxMessage

MAX_ATTEMPTS = 20


async def send_alert(session: AsyncSession, outbox_id: uuid.UUID, now: datetime, channels: Channels) -> str:
    row = await session.scalar(select(OutboxMessage).where(OutboxMessage.id == outbox_id).with_for_update())
    if row is None or row.processed_at is not None:
        return "already_processed"
    row.processed_at = now
    alert = await session.get(Alert, uuid.UUID(row.payload["alert_id"]))
    if alert is None:
        return "no_alert"
    text = alert_text(alert, row.payload["state"])
    targets = ops_notifiers(channels.settings, channels.http)
    if not targets:
        return "no_ops_channel"  # stored and listable at /v1/alerts; nobody to tell
    errors: list[DeliveryError] = []
    for notifier in targets:
        try:
            await notifier.send_text(text)
        except DeliveryError as error:
            errors.append(error)
    if len(errors) < len(targets):
        return "sent"
    attempt = int(row.payload.get("attempt", 0)) + 1
    if attempt < MAX_ATTEMPTS and any(e.is_retryable for e in errors):
        session.add(OutboxMessage(job="send_alert", payload=row.payload | {"attempt": attempt}, created_at=now,
                                  not_before=now + timedelta(seconds=min(300, 5 * 2 ** attempt))))
        return "retry"
    return "failed"
