"""R2.6 / R2.7 API for reps and managers: my to-do list; claim, transfer, return; a lead's audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import SessionDep, get_clock, get_principal
from app.api.leads import AuditOut
from app.api.problems import problem_responses
from app.domain.assignment import actions
from app.domain.clock import Clock
from app.domain.leads.models import LEAD_STATUSES
from app.domain.leads.service import audit_trail, leads_of, visible_leads
from app.domain.people.service import Principal

LeadStatus = Literal[LEAD_STATUSES]  # type: ignore[valid-type]  (as people.py's Permission)

router = APIRouter(tags=["worklist"], responses=problem_responses(401, 403, 503))


class LeadSummary(BaseModel):
    lead_id: str
    status: str
    name: str
    phone_masked: str
    channel: str
    assignee_id: uuid.UUID | None
    created_at: datetime
    matched_at: datetime | None
    claim_due_at: datetime | None
    claimed_at: datetime | None


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_user_id: uuid.UUID


class ReturnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=200)


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["won", "lost", "closed"] = Field(description="closed: neither (junk, a duplicate kept elsewhere)")
    reason: str = Field(default="", max_length=200)


def summary(lead) -> LeadSummary:
    from app.domain.intake.phone import mask_phones

    return LeadSummary(lead_id=lead.lead_number, status=lead.status, name=lead.name,
                       phone_masked=mask_phones(lead.phone_e164), channel=lead.channel, assignee_id=lead.assignee_id,
                       created_at=lead.created_at, matched_at=lead.matched_at, claim_due_at=lead.claim_due_at,
                       claimed_at=lead.claimed_at)


@router.get("/v1/me/leads", response_model=list[LeadSummary], summary="My to-do list")
async def my_leads(status: Literal["assigned", "claimed"] | None = None,
                   principal: Principal = Depends(get_principal),
                   session: AsyncSession = SessionDep) -> list[LeadSummary]:
    return [summary(lead) for lead in await leads_of(session, principal, status)]


@router.get("/v1/leads", response_model=list[LeadSummary],
            summary="Leads I may see: mine; my teams' as a manager; all with lead.view_all")
async def list_leads(status: LeadStatus | None = None, limit: int = Query(default=100, ge=1, le=1000),
                     principal: Principal = Depends(get_principal),
                     session: AsyncSession = SessionDep) -> list[LeadSummary]:
    return [summary(lead) for lead in await visible_leads(session, principal, status, limit)]


@router.post("/v1/leads/{lead_id}/claim", response_model=LeadSummary, responses=problem_responses(404, 409))
async def claim(lead_id: str, principal: Principal = Depends(get_principal), session: AsyncSession = SessionDep,
                clock: Clock = Depends(get_clock)) -> LeadSummary:
    return summary(await actions.claim_lead(session, principal, lead_id, clock.now()))


@router.post("/v1/leads/{lead_id}/transfer", response_model=LeadSummary,
             responses=problem_responses(404, 409, 422))
async def transfer(lead_id: str, data: TransferIn, request: Request, principal: Principal = Depends(get_principal),
                   session: AsyncSession = SessionDep, clock: Clock = Depends(get_clock)) -> LeadSummary:
    return summary(await actions.transfer_lead(session, principal, lead_id, data.to_user_id, clock.now(),
                                               request.app.state.settings))


@router.post("/v1/leads/{lead_id}/return", response_model=LeadSummary, responses=problem_responses(404, 409, 422))
async def give_back(lead_id: str, data: ReturnIn, principal: Principal = Depends(get_principal),
                    session: AsyncSession = SessionDep, clock: Clock = Depends(get_clock)) -> LeadSummary:
    return summary(await actions.return_lead(session, principal, lead_id, data.reason, clock.now()))


@router.post("/v1/leads/{lead_id}/close", response_model=LeadSummary, responses=problem_responses(404, 409, 422),
             summary="Won, lost or closed: the rep's capacity is free again (the holder, their manager, an admin)")
async def close(lead_id: str, data: CloseIn, principal: Principal = Depends(get_principal),
                session: AsyncSession = SessionDep, clock: Clock = Depends(get_clock)) -> LeadSummary:
    return summary(await actions.close_lead(session, principal, lead_id, data.outcome, data.reason, clock.now()))


@router.get("/v1/leads/{lead_id}/audit", response_model=list[AuditOut], responses=problem_responses(404))
async def lead_audit(
    lead_id: str, action: str | None = None,
    result: Literal["success", "failed", "skipped"] | None = None,
    limit: int = Query(default=200, ge=1, le=1000),
    principal: Principal = Depends(get_principal), session: AsyncSession = SessionDep,
) -> list[AuditOut]:
    entries = await audit_trail(session, principal, lead_id, action=action, result=result, limit=limit)
    return [AuditOut.model_validate(e, from_attributes=True) for e in entries]
