"""R1.10 / R3.5: threshold alerts — intake gap vs the form side's count, stale sources, assignment
failures, outbox backlog. Each condition has a key: it alerts once per cooldown and recovers when it clears."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.alerts.models import ReportedCount
from app.domain.alerts.service import raise_alert, resolve_alert
from app.domain.errors import FieldError, InvalidInput
from app.domain.leads.models import Lead
from app.domain.outbox.relay import backlog
from app.domain.sources.service import get_source
from app.domain.sources.status import source_statuses
from app.settings import Settings

RECEIVED_FROM_FORM = text("""
WITH RECURSIVE chain (id, outcome) AS (
    SELECT id, outcome FROM submissions
    WHERE source_id = :source AND replay_of_id IS NULL AND received_at >= :start AND received_at < :end
      AND NOT headers ? 'x-import-file'
    UNION ALL
    SELECT replay.id, replay.outcome FROM submissions replay JOIN chain ON replay.replay_of_id = chain.id
)
SELECT count(*) FROM chain WHERE outcome IN ('accepted', 'merged')
""")


async def received_from_form(session: AsyncSession, source_id: Any, start: datetime, end: datetime) -> int:
    """Leads taken from what the form sent in [start, end): counted by when the form sent them.

    A submission rejected then replayed (after a mapping fix; a failed replay replayed again) counts in the
    period the form sent the original, not the day of a replay; imported rows were never sent by the form.
    """
    return int(await session.scalar(RECEIVED_FROM_FORM, {"source": source_id, "start": start, "end": end}) or 0)


async def report_count(session: AsyncSession, source_key: str, start: datetime, end: datetime, reported: int,
                       now: datetime, settings: Settings) -> ReportedCount:
    """Store the form side's count for [start, end) and compare it with the leads we took in that period."""
    if end <= start or end > now:
        raise InvalidInput("the period must have ended", [FieldError("period_end", "invalid_period",
                                                                     "period_end must be after start and past")])
    source = await get_source(session, source_key)
    received = await received_from_form(session, source.id, start, end)
    gap = (reported - received) / reported if reported else 0.0
    row = ReportedCount(source_id=source.id, period_start=start, period_end=end, reported=reported,
                        received=received, gap=gap, created_at=now)
    session.add(row)
    # One alert per source and period: a good report for another period does not clear this one.
    key = f"intake_gap:{source.key}:{start.astimezone(UTC):%Y%m%dT%H%M}"
    # before per-period keys: one alert per source, which no report computes any more
    await resolve_alert(session, f"intake_gap:{source.key}", now, "replaced by per-period alerts")
    cooldown = timedelta(seconds=settings.alert_cooldown_seconds)
    if abs(gap) > settings.reconcile_gap_threshold:
        tz = settings.tz
        await raise_alert(session, key, f"source {source.key!r}: the form side sent {reported} between "
                          f"{start.astimezone(tz):%Y-%m-%d %H:%M} and {end.astimezone(tz):%Y-%m-%d %H:%M} "
                          f"({tz.key}), we took {received} ({gap:+.0%}); check rejected submissions and the "
                          f"form's network", now, cooldown, severity="critical",
                          detail={"reported": reported, "received": received, "period_start": start.isoformat(),
                                  "period_end": end.isoformat()})
    else:
        await resolve_alert(session, key, now, f"gap {gap:+.0%} within threshold")
    await session.flush()
    return row


async def watch(session: AsyncSession, now: datetime, settings: Settings) -> None:
    """One pass over the threshold conditions (one worker per interval, by advisory lock)."""
    if not await session.scalar(text("SELECT pg_try_advisory_xact_lock(hashtextextended('leadflow:watch', 0))")):
        return
    cooldown = timedelta(seconds=settings.alert_cooldown_seconds)
    for status in await source_statuses(session, now):
        key = f"source_stale:{status['key']}"
        if status["stale"]:
            await raise_alert(session, key, f"source {status['key']!r} has accepted nothing for 24 h", now, cooldown,
                              detail={"last_success_at": str(status["last_success_at"])})
        else:
            await resolve_alert(session, key, now)
    failed = int(await session.scalar(select(func.count()).select_from(Lead).where(
        Lead.status == "assignment_failed", Lead.updated_at >= now - timedelta(hours=1))) or 0)
    if failed:
        await raise_alert(session, "assignment_failed", f"{failed} lead(s) could not be assigned in the last hour",
                          now, cooldown, severity="critical", detail={"count": failed})
    else:
        await resolve_alert(session, "assignment_failed", now)
    late = await backlog(session, now, settings.outbox_late_after_seconds)
    if late >= settings.outbox_backlog_alert:
        await raise_alert(session, "outbox_backlog", f"{late} follow-on jobs waiting longer than "
                          f"{settings.outbox_late_after_seconds:.0f} s: is a worker or Redis down?", now, cooldown,
                          severity="critical", detail={"late": late})
    else:
        await resolve_alert(session, "outbox_backlog", now)
