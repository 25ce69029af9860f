"""R1.8: sync status per source — last success, last failure and why, 24 h counts, stale flag."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.intake.models import Submission
from app.domain.sources.models import Source

SUCCESS_OUTCOMES = ("accepted", "merged", "duplicate")
STALE_AFTER = timedelta(hours=24)


async def source_statuses(session: AsyncSession, now: datetime) -> list[dict[str, Any]]:
    """One entry per source. `stale`: enabled for over 24 h, and no successful submission in the last 24 h."""
    since = now - STALE_AFTER
    counts: dict[Any, dict[str, int]] = {}
    for source_id, outcome, n in await session.execute(
            select(Submission.source_id, Submission.outcome, func.count())
            .where(Submission.received_at >= since).group_by(Submission.source_id, Submission.outcome)):
        counts.setdefault(source_id, {})[outcome] = n
    last_success = dict((await session.execute(  # from the channel itself: replays and imports prove nothing
        select(Submission.source_id, func.max(Submission.received_at))
        .where(Submission.outcome.in_(SUCCESS_OUTCOMES), Submission.replay_of_id.is_(None),
               ~Submission.headers.has_key("x-import-file")).group_by(Submission.source_id))).all())
    failures = {row.source_id: row for row in (await session.execute(
        select(Submission.source_id, Submission.received_at, Submission.reasons)
        .where(Submission.outcome == "rejected")
        .order_by(Submission.source_id, Submission.received_at.desc())
        .ext(distinct_on(Submission.source_id)))).all()}
    out = []
    for source in await session.scalars(select(Source).order_by(Source.key)):
        success = last_success.get(source.id)
        failure = failures.get(source.id)
        out.append({
            "key": source.key, "name": source.name, "kind": source.kind, "enabled": source.enabled,
            "last_success_at": success,
            "last_failure_at": failure.received_at if failure else None,
            "last_failure_reasons": failure.reasons if failure else [],
            "counts_24h": counts.get(source.id, {}),
            # a source younger than the window has had no chance to be stale yet
            "stale": source.enabled and source.created_at < since and (success is None or success < since),
        })
    return out
