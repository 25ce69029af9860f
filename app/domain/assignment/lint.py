"""R2.9: contradictions in the assignment configuration, found before they strand leads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.assignment.eligibility import CLAIM_PERMISSION, skip_reason
from app.domain.assignment.engine import load_candidates
from app.domain.assignment.models import AssignmentRule
from app.domain.assignment.windows import is_open
from app.domain.people.models import Team, TeamMember, User
from app.domain.sources.models import Source
from app.settings import Settings

_WEEK_START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday; any week will do


@dataclass
class LintWarning:
    code: str
    message: str
    refs: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _auto_claim_while_paused(rule: AssignmentRule, tz: ZoneInfo) -> datetime | None:
    """A moment in the week when auto-claim is scheduled but assignment is paused, if any (30-min steps)."""
    if not (rule.auto_claim and rule.window and rule.auto_claim_window):
        return None
    for step in range(7 * 48):
        moment = _WEEK_START + timedelta(minutes=30 * step)
        local = moment.astimezone(tz)
        if is_open(rule.auto_claim_window, tz, local) and not is_open(rule.window, tz, local):
            return local
    return None


async def lint_configuration(session: AsyncSession, settings: Settings) -> list[LintWarning]:
    """Every contradiction we can see now; an empty list means none."""
    warnings: list[LintWarning] = []
    rules = list(await session.scalars(select(AssignmentRule).where(AssignmentRule.enabled)))
    teams = {t.id: t for t in await session.scalars(select(Team))}
    for rule in rules:
        tz = ZoneInfo(rule.timezone or settings.business_timezone)
        refs = {"rule": rule.name, "rule_id": str(rule.id)}
        moment = _auto_claim_while_paused(rule, tz)
        if moment is not None:
            warnings.append(LintWarning(
                "auto_claim_while_paused",
                f"rule {rule.name!r} pauses assignment outside {rule.window} but auto-claims at "
                f"{moment:%a %H:%M}: leads pile up in the pause and burst when it ends; align the two windows",
                refs))
        candidates = await load_candidates(session, rule.team_id, settings.default_capacity, lock=False)
        team = teams.get(rule.team_id)
        refs = refs | {"team": team.name if team else str(rule.team_id)}
        if not candidates:
            warnings.append(LintWarning("team_without_members", f"rule {rule.name!r} targets a team with no members",
                                        refs))
        elif not any(CLAIM_PERMISSION in c.permissions for c in candidates):
            warnings.append(LintWarning(
                "team_cannot_claim",
                f"rule {rule.name!r} targets team {refs['team']!r} where no member's role grants {CLAIM_PERMISSION}",
                refs))
        elif not any(skip_reason(c) is None for c in candidates):
            reasons = sorted({skip_reason(c) or "" for c in candidates})
            warnings.append(LintWarning(
                "no_eligible_member_now",
                f"team {refs['team']!r} has no member who can take a lead now ({', '.join(reasons)})", refs))
    warnings += await _capacity_and_coverage(session, settings, rules)
    return warnings


async def _capacity_and_coverage(
    session: AsyncSession, settings: Settings, rules: list[AssignmentRule]
) -> list[LintWarning]:
    warnings: list[LintWarning] = []
    members = select(TeamMember.user_id)
    for user in await session.scalars(select(User).where(User.is_active, User.id.in_(members))):
        capacity = user.capacity if user.capacity is not None else settings.default_capacity
        if capacity == 0:
            warnings.append(LintWarning("zero_capacity", f"{user.name} is in a team but can hold no lead (capacity 0)",
                                        {"user": user.name, "user_id": str(user.id)}))
    has_catch_all = any(r.source_id is None for r in rules)
    covered = {r.source_id for r in rules}
    for source in await session.scalars(select(Source).where(Source.enabled)):
        if not has_catch_all and source.id not in covered:
            warnings.append(LintWarning("source_without_rule",
                                        f"source {source.key!r} has no assignment rule: its leads will fail",
                                        {"source": source.key}))
    return warnings
