"""R2.2: assignment rules per source and/or team."""

from __future__ import annotations

import uuid
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.assignment.engine import RULES_EXCLUSIVE_LOCK
from app.domain.assignment.models import AssignmentRule
from app.domain.assignment.service import recheck_waiting_leads
from app.domain.assignment.windows import parse_clock
from app.domain.clock import Clock
from app.domain.errors import NotFound
from app.domain.patching import not_null
from app.domain.people.models import Team
from app.domain.sources.models import Source


class Window(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weekdays: list[int] = Field(default=[1, 2, 3, 4, 5, 6, 7], description="ISO weekdays, Monday = 1")
    start: str = Field(default="00:00", pattern=r"^\d{2}:\d{2}$", description="HH:MM, local time")
    end: str = Field(default="24:00", pattern=r"^\d{2}:\d{2}$", description="HH:MM, exclusive; 24:00 = midnight")

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if not value or any(d < 1 or d > 7 for d in value):
            raise ValueError("weekdays are 1 (Monday) to 7 (Sunday), at least one")
        return sorted(set(value))

    @model_validator(mode="after")
    def _times(self) -> Window:
        try:
            start, end = parse_clock(self.start), parse_clock(self.end)
        except ValueError as error:
            raise ValueError(f"times are HH:MM between 00:00 and 24:00: {error}") from error
        if self.start == "24:00" or start == end:
            raise ValueError("start must differ from end, and 24:00 can only end a window")
        return self


def _known_zone(value: str | None) -> str | None:
    """An IANA zone name as the rule is saved (a typo like "Beijing" used to surface as 500s later)."""
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Asia/Shanghai") from error
    return value


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    source_key: str | None = Field(default=None, description="None: leads from any source")
    team_id: uuid.UUID
    strategy: Literal["round_robin", "least_loaded"] = "round_robin"
    window: Window | None = Field(default=None, description="None: always open")
    timezone: str | None = Field(default=None, description="Default: LEADFLOW_TIMEZONE (Asia/Shanghai)")
    auto_claim: bool = False
    auto_claim_window: Window | None = Field(default=None, description="When auto-claim applies; None: always")
    claim_sla_minutes: int = Field(default=30, ge=1)
    priority: int = 100
    enabled: bool = True

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return _known_zone(value)


class RuleSaved(NamedTuple):
    rule: AssignmentRule
    rechecked_leads: int  # leads waiting for a window whose next round now runs at once


async def create_rule(session: AsyncSession, data: RuleIn, clock: Clock) -> RuleSaved:
    await session.execute(RULES_EXCLUSIVE_LOCK)  # rounds in flight finish first (engine.assign_lead)
    source_id = None
    if data.source_key is not None:
        source = await session.scalar(select(Source).where(Source.key == data.source_key))
        if source is None:
            raise NotFound(f"no source with key {data.source_key!r}")
        source_id = source.id
    if await session.get(Team, data.team_id) is None:
        raise NotFound(f"no team {data.team_id}")
    now = clock.now()
    values: dict[str, Any] = data.model_dump(exclude={"source_key", "window", "auto_claim_window"})
    rule = AssignmentRule(**values, source_id=source_id, window=_dump(data.window),
                          auto_claim_window=_dump(data.auto_claim_window), created_at=now, updated_at=now)
    session.add(rule)
    await session.flush()
    return RuleSaved(rule, await recheck_waiting_leads(session, now))


def _dump(window: Window | None) -> dict[str, Any] | None:
    return window.model_dump() if window else None


class RulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    strategy: Literal["round_robin", "least_loaded"] | None = None
    window: Window | None = None
    timezone: str | None = None
    auto_claim: bool | None = None
    auto_claim_window: Window | None = None
    claim_sla_minutes: int | None = Field(default=None, ge=1)
    priority: int | None = None
    enabled: bool | None = None

    _not_null = not_null("name", "strategy", "auto_claim", "claim_sla_minutes", "priority", "enabled")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return _known_zone(value)


async def list_rules(session: AsyncSession) -> list[AssignmentRule]:
    return list(await session.scalars(select(AssignmentRule).order_by(AssignmentRule.priority,
                                                                      AssignmentRule.created_at)))


async def update_rule(session: AsyncSession, rule_id: uuid.UUID, patch: RulePatch, clock: Clock) -> RuleSaved:
    """Change a rule; fields left out stay. Sending `window: null` makes the rule always open.

    Either way, leads waiting for a window are rechecked at once (`recheck_waiting_leads`)."""
    await session.execute(RULES_EXCLUSIVE_LOCK)  # rounds in flight finish first (engine.assign_lead)
    rule = await session.get(AssignmentRule, rule_id, with_for_update=True)
    if rule is None:
        raise NotFound(f"no rule {rule_id}")
    for name in patch.model_fields_set:
        value = getattr(patch, name)
        setattr(rule, name, _dump(value) if isinstance(value, Window) else value)
    rule.updated_at = clock.now()
    await session.flush()
    return RuleSaved(rule, await recheck_waiting_leads(session, rule.updated_at))
