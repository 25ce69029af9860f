"""Send one alert message to the ops groups (WeCom robot and/or DingTalk robot), retried with backoff."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.alerts.models import Alert
from app.domain.alerts.service import alert_text
from app.domain.notify.delivery import Channels
from app.domain.notify.errors import DeliveryError
from app.domain.notify.registry import ops_notifiers
from app.domain.outbox.models import OutboxMessage

MAX_ATTEMPTS = 20
log = structlog.get_logger(__name__)


async def send_alert(session: AsyncSession, outbox_id: uuid.UUID, now: datetime, channels: Channels) -> str:
    row = await session.scalar(select(OutboxMessage).where(OutboxMessage.id == outbox_id).with_for_update())
    if row is None or row.processed_at is not None:
        return "already_processed"
    row.processed_at = now
    alert = await session.get(Alert, uuid.UUID(row.payload["alert_id"]))
    if alert is None:
        return "no_alert"
    if row.payload["state"] == "firing" and alert.status != "firing" and row.payload.get("attempt"):
        return "superseded"  # resolved while this waited for a retry: the group must not read it as live
    text = alert_text(alert, row.payload["state"])
    targets = {type(n).__name__: n for n in ops_notifiers(channels.settings, channels.http)}
    if "targets" in row.payload:  # a retry goes only to the groups that did not get it
        targets = {name: n for name, n in targets.items() if name in row.payload["targets"]}
    if not targets:
        return "no_ops_channel"  # stored and listable at /v1/alerts; nobody to tell
    errors: dict[str, DeliveryError] = {}
    for name, notifier in targets.items():
        try:
            await notifier.send_text(text)
        except DeliveryError as error:
            errors[name] = error
        except Exception as error:  # one group's surprise must not roll back, and so repeat, the others' post
            log.exception("alert_delivery_error", target=name)
            errors[name] = DeliveryError(name, "unknown", None, f"{type(error).__name__}: {error}"[:200])
    if not errors:
        return "sent"
    attempt = int(row.payload.get("attempt", 0)) + 1
    retryable = sorted(name for name, error in errors.items() if error.is_retryable)
    if attempt < MAX_ATTEMPTS and retryable:
        session.add(OutboxMessage(job="send_alert", payload=row.payload | {"attempt": attempt, "targets": retryable},
                                  created_at=now, not_before=now + timedelta(seconds=min(300, 5 * 2 ** attempt))))
        return "retry" if len(errors) == len(targets) else "partly_sent"
    return "failed" if len(errors) == len(targets) else "partly_sent"
