"""R2.10: push N synthetic leads through today's rules and capacities without writing anything."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.assignment.eligibility import choose
from app.domain.assignment.engine import find_rule, load_candidates
from app.domain.assignment.windows import is_open, next_open
from app.domain.errors import NotFound
from app.domain.sources.models import Source
from app.settings import Settings


async def dry_run(session: AsyncSession, source_key: str, count: int, now: datetime,
                  settings: Settings) -> dict[str, Any]:
    """Who would get each of `count` leads arriving now from `source_key`, who would be skipped and why,
    and how many would fail. Reads only; the caller's transaction is rolled back."""
    source = await session.scalar(select(Source).where(Source.key == source_key))
    if source is None:
        raise NotFound(f"no source with key {source_key!r}")
    rule = await find_rule(session, source.id)
    if rule is None:
        return {"source": source_key, "rule": None, "assigned": [], "per_rep": {}, "failed": count,
                "failure_reason": "no_rule", "skipped": []}
    tz = ZoneInfo(rule.timezone or settings.business_timezone)
    if not is_open(rule.window, tz, now):
        return {"source": source_key, "rule": rule.name, "assigned": [], "per_rep": {}, "failed": 0,
                "waiting_until": next_open(rule.window, tz, now).isoformat(), "skipped": []}
    candidates = await load_candidates(session, rule.team_id, settings.default_capacity, lock=False)
    turn = max((c.last_turn or 0 for c in candidates), default=0)
    assigned: list[dict[str, Any]] = []
    skipped_reasons: Counter[tuple[str, str]] = Counter()
    failed = 0
    for index in range(count):
        chosen, skipped = choose(candidates, rule.strategy)
        for skip in skipped:
            skipped_reasons[(skip["name"], skip["reason"])] += 1
        if chosen is None:
            failed += 1
            continue
        turn += 1
        chosen.pending += 1
        chosen.last_turn = turn
        assigned.append({"lead": index + 1, "assignee": chosen.name, "assignee_id": str(chosen.user_id),
                         "tier": chosen.tier})
    return {
        "source": source_key, "rule": rule.name, "strategy": rule.strategy, "assigned": assigned,
        "per_rep": dict(Counter(a["assignee"] for a in assigned)), "failed": failed,
        "failure_reason": "no_eligible_candidate" if failed else None,
        "skipped": [{"name": name, "reason": reason, "times": n} for (name, reason), n in skipped_reasons.items()],
    }
