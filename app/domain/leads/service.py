"""Reading leads back: by the number a visitor quotes to support."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.errors import NotFound
from app.domain.leads.models import AuditEntry, Inquiry, Lead


async def get_lead_by_number(session: AsyncSession, lead_number: str) -> Lead:
    lead = await session.scalar(select(Lead).where(Lead.lead_number == lead_number))
    if lead is None:
        raise NotFound(f"no lead {lead_number}")
    return lead


async def lead_inquiries(session: AsyncSession, lead: Lead) -> list[Inquiry]:
    return list(await session.scalars(
        select(Inquiry).where(Inquiry.lead_id == lead.id).order_by(Inquiry.created_at)))


async def lead_audit(session: AsyncSession, lead: Lead) -> list[AuditEntry]:
    return list(await session.scalars(
        select(AuditEntry).where(AuditEntry.lead_id == lead.id).order_by(AuditEntry.created_at, AuditEntry.id)))
