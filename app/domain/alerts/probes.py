"""R3.4: probe every configured channel on a timer, keep a brief per channel, alert on a change of state."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.alerts.models import IntegrationHealth
from app.domain.alerts.service import raise_alert, resolve_alert
from app.domain.notify.configs import live_configs
from app.domain.notify.delivery import Channels, egress_list
from app.domain.notify.errors import DeliveryError, explain_ip_block


async def run_probes(session: AsyncSession, channels: Channels, now: datetime, *, force: bool = False) -> list[dict]:
    """Probe once per interval across all workers (advisory lock + last check time). Returns the briefs."""
    settings = channels.settings
    if not await session.scalar(text("SELECT pg_try_advisory_xact_lock(hashtextextended('leadflow:probe', 0))")):
        return []
    last = await session.scalar(select(IntegrationHealth.checked_at).order_by(IntegrationHealth.checked_at.desc())
                                .limit(1))
    if not force and last is not None and last > now - timedelta(seconds=settings.probe_interval_seconds * 0.9):
        return []
    results = []
    full, canary = await live_configs(session, "wecom_app")
    # Each live version on its own brief: picking one at random (as deliveries do) made the brief and its
    # alert flip whenever only the canary was broken.
    app = channels.wecom_app(full.config if full is not None else None)
    if app is not None:
        results.append(await _probe(session, "wecom_app", app.probe, now, settings))
    if canary is not None:
        results.append(await _probe(session, "wecom_app:canary", channels.wecom_app(canary.config).probe, now,
                                    settings))
    else:
        await _forget(session, "wecom_app:canary", now)
    return results


async def _forget(session: AsyncSession, channel: str, now: datetime) -> None:
    """A channel no longer live (the canary was promoted or rolled back): no brief, no alert left firing."""
    brief = await session.get(IntegrationHealth, channel)
    if brief is not None:
        await session.delete(brief)
        await resolve_alert(session, f"probe:{channel}", now, "no longer live")


async def _probe(session: AsyncSession, channel: str, call, now: datetime, settings) -> dict[str, Any]:
    error: DeliveryError | None = None
    try:
        await call()
    except DeliveryError as caught:
        error = caught
    brief = await session.get(IntegrationHealth, channel, with_for_update=True)
    ok = error is None
    changed = brief is None or brief.ok != ok
    if brief is None:
        brief = IntegrationHealth(channel=channel, ok=ok, since=now, checked_at=now, detail={})
        session.add(brief)
    if changed:
        brief.since = now
    brief.ok, brief.checked_at = ok, now
    brief.error_kind = None if ok else error.kind
    brief.error = None if ok else str(error)[:1000]
    fix = (explain_ip_block(error, await egress_list(session, settings))
           if error is not None and error.kind == "ip_not_allowed" else None)
    brief.detail = {"ip": error.ip, "fix": fix} if error is not None else {}
    key = f"probe:{channel}"
    if not ok:
        await raise_alert(session, key, fix or f"{channel} probe failing: {error.kind} ({error.errcode})", now,
                          timedelta(seconds=settings.alert_cooldown_seconds), severity="critical",
                          detail={"error_kind": error.kind, "ip": error.ip})
    elif changed:
        await resolve_alert(session, key, now, "probe ok again")
    return {"channel": channel, "ok": ok, "since": brief.since, "error_kind": brief.error_kind}


async def integration_briefs(session: AsyncSession) -> list[IntegrationHealth]:
    return list(await session.scalars(select(IntegrationHealth).order_by(IntegrationHealth.channel)))
