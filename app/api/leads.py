"""Admin API: a lead by the number a visitor quotes, with its inquiries and audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import SessionDep, get_principal
from app.api.problems import problem_responses
from app.domain.assignment.actions import can_see
from app.domain.errors import NotFound
from app.domain.intake.phone import mask_phones
from app.domain.leads.service import get_lead_by_number, lead_audit, lead_inquiries
from app.domain.people.service import Principal

router = APIRouter(tags=["leads"], responses=problem_responses(401, 503))


class InquiryOut(BaseModel):
    id: uuid.UUID
    submission_id: uuid.UUID
    source_id: uuid.UUID
    fields: dict[str, Any]
    created_at: datetime


class AuditOut(BaseModel):
    action: str
    action_result: str
    reason: str | None
    actor: str
    detail: dict[str, Any]
    created_at: datetime


class LeadOut(BaseModel):
    id: uuid.UUID
    lead_id: str
    status: str
    channel: str
    source_id: uuid.UUID
    name: str
    phone: str
    phone_masked: str
    assignee_id: uuid.UUID | None
    team_id: uuid.UUID | None
    assignment_attempts: int
    triggered_at: datetime | None
    matched_at: datetime | None
    pushed_at: datetime | None
    claimed_at: datetime | None
    claim_due_at: datetime | None
    email: str | None
    wechat: str | None
    company: str | None
    province: str | None
    city: str | None
    gender: str | None
    message: str | None
    attributes: dict[str, Any]
    inquiry_count: int
    created_at: datetime
    last_inquiry_at: datetime
    inquiries: list[InquiryOut]
    audit: list[AuditOut]


@router.get("/v1/leads/{lead_id}", response_model=LeadOut, summary="A lead by its number (LD-YYYYMMDD-NNNNNN)",
            responses=problem_responses(404))
async def read_lead(lead_id: str, principal: Principal = Depends(get_principal),
                    session: AsyncSession = SessionDep) -> LeadOut:
    lead = await get_lead_by_number(session, lead_id)
    if not await can_see(session, principal, lead):
        raise NotFound(f"no lead {lead_id}")  # a rep cannot learn that someone else's lead exists
    inquiries = await lead_inquiries(session, lead)
    entries = await lead_audit(session, lead)
    return LeadOut(
        id=lead.id, lead_id=lead.lead_number, status=lead.status, channel=lead.channel, source_id=lead.source_id,
        name=lead.name, phone=lead.phone_e164, phone_masked=mask_phones(lead.phone_e164), assignee_id=lead.assignee_id,
        team_id=lead.team_id, assignment_attempts=lead.assignment_attempts, triggered_at=lead.triggered_at,
        matched_at=lead.matched_at, pushed_at=lead.pushed_at, claimed_at=lead.claimed_at,
        claim_due_at=lead.claim_due_at, email=lead.email,
        wechat=lead.wechat, company=lead.company, province=lead.province, city=lead.city, gender=lead.gender,
        message=lead.message, attributes=lead.attributes, inquiry_count=lead.inquiry_count,
        created_at=lead.created_at, last_inquiry_at=lead.last_inquiry_at,
        inquiries=[InquiryOut.model_validate(i, from_attributes=True) for i in inquiries],
        audit=[AuditOut.model_validate(e, from_attributes=True) for e in entries],
    )
