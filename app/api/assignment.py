"""R2.2, R2.8–R2.10 API: assignment rules, the configuration lint, dry runs and assignment health."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import SessionDep, get_clock, get_principal, require_admin
from app.api.problems import problem_responses
from app.domain.assignment import rules
from app.domain.assignment.dry_run import dry_run
from app.domain.assignment.health import assignment_health
from app.domain.assignment.lint import lint_configuration
from app.domain.clock import Clock
from app.domain.people.service import Principal

router = APIRouter(tags=["assignment"], responses=problem_responses(401, 403, 503))


class RuleOut(BaseModel):
    id: uuid.UUID
    name: str
    source_id: uuid.UUID | None
    team_id: uuid.UUID
    strategy: str
    window: dict[str, Any] | None
    timezone: str | None
    auto_claim: bool
    auto_claim_window: dict[str, Any] | None
    claim_sla_minutes: int
    priority: int
    enabled: bool
    updated_at: datetime


class LintReport(BaseModel):
    warnings: list[dict[str, Any]] = Field(description="code, message, refs; empty when consistent")


class RuleChanged(LintReport):
    rule: RuleOut
    rechecked_leads: int = Field(description="Leads that were waiting for a window: their next round runs now, "
                                             "against the rules as they are after this change")


class DryRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = Field(ge=1, le=10_000)
    source: str = Field(description="Source key the synthetic leads arrive from")


def _rule(rule) -> RuleOut:
    return RuleOut.model_validate(rule, from_attributes=True)


async def _warnings(session: AsyncSession, request: Request) -> list[dict[str, Any]]:
    return [w.as_dict() for w in await lint_configuration(session, request.app.state.settings)]


@router.post("/v1/assignment/rules", status_code=201, response_model=RuleChanged,
             dependencies=[Depends(require_admin)], responses=problem_responses(404, 422))
async def create_rule(data: rules.RuleIn, request: Request, session: AsyncSession = SessionDep,
                      clock: Clock = Depends(get_clock)) -> RuleChanged:
    saved = await rules.create_rule(session, data, clock)
    return RuleChanged(rule=_rule(saved.rule), rechecked_leads=saved.rechecked_leads,
                       warnings=await _warnings(session, request))


@router.get("/v1/assignment/rules", response_model=list[RuleOut], dependencies=[Depends(require_admin)])
async def list_rules(session: AsyncSession = SessionDep) -> list[RuleOut]:
    return [_rule(r) for r in await rules.list_rules(session)]


@router.patch("/v1/assignment/rules/{rule_id}", response_model=RuleChanged, dependencies=[Depends(require_admin)],
              responses=problem_responses(404, 422))
async def update_rule(rule_id: uuid.UUID, patch: rules.RulePatch, request: Request,
                      session: AsyncSession = SessionDep, clock: Clock = Depends(get_clock)) -> RuleChanged:
    saved = await rules.update_rule(session, rule_id, patch, clock)
    return RuleChanged(rule=_rule(saved.rule), rechecked_leads=saved.rechecked_leads,
                       warnings=await _warnings(session, request))


@router.get("/v1/config/lint", response_model=LintReport, dependencies=[Depends(require_admin)],
            summary="Contradictions in the assignment configuration (R2.9)")
async def lint(request: Request, session: AsyncSession = SessionDep) -> LintReport:
    return LintReport(warnings=await _warnings(session, request))


@router.post("/v1/assignment/dry-run", dependencies=[Depends(require_admin)], responses=problem_responses(404, 422),
             summary="Who would get N synthetic leads now, without writing anything (R2.10)")
async def assignment_dry_run(data: DryRunIn, request: Request, clock: Clock = Depends(get_clock)) -> dict[str, Any]:
    async with request.app.state.sessions() as session:  # read-only: never committed
        try:
            return await dry_run(session, data.source, data.count, clock.now(), request.app.state.settings)
        finally:
            await session.rollback()


@router.get("/v1/health/assignment", summary="Stage timings p50/p95, counts by status, stuck leads (R2.8)")
async def health(
    window_hours: float = Query(default=24, gt=0, le=24 * 31),
    stuck_after_minutes: float = Query(default=30, gt=0, le=60 * 24 * 31),
    principal: Principal = Depends(get_principal), session: AsyncSession = SessionDep,
    clock: Clock = Depends(get_clock),
) -> dict[str, Any]:
    principal.require("lead.view_all")
    return await assignment_health(session, clock.now(), timedelta(hours=window_hours),
                                   timedelta(minutes=stuck_after_minutes))
