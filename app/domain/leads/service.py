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


async def leads_of(session: AsyncSession, principal, status: str | None) -> list[Lead]:
    """The caller's to-do list: leads assigned to or claimed by them, oldest deadline first."""
    query = select(Lead).where(Lead.assignee_id == principal.user_id,
                               Lead.status.in_((status,) if status else ("assigned", "claimed")))
    return list(await session.scalars(query.order_by(Lead.claim_due_at.asc().nulls_last(), Lead.matched_at)))


async def audit_trail(session: AsyncSession, principal, lead_number: str, *, action: str | None,
                      result: str | None, limit: int) -> list[AuditEntry]:
    """A lead's audit log, filterable; only for callers who may see the lead (else NotFound)."""
    from app.domain.assignment.actions import can_see

    lead = await get_lead_by_number(session, lead_number)
    if not await can_see(session, principal, lead):
        raise NotFound(f"no lead {lead_number}")
    query = select(AuditEntry).where(AuditEntry.lead_id == lead.id)
    if action:
        query = query.where(AuditEntry.action == action)
    if result:
        query = query.where(AuditEntry.action_result == result)
    return list(await session.scalars(query.order_by(AuditEntry.created_at, AuditEntry.id).limit(limit)))


async def visible_leads(session: AsyncSession, principal, status: str | None, limit: int) -> list[Lead]:
    """Leads the caller may see: all with lead.view_all, their teams' as a manager, else their own."""
    from app.domain.people.models import Team

    query = select(Lead)
    if not (principal.is_admin or "lead.view_all" in principal.permissions):
        managed = select(Team.id).where(Team.manager_id == principal.user_id)
        query = query.where((Lead.assignee_id == principal.user_id) | Lead.team_id.in_(managed))
    if status:
        query = query.where(Lead.status == status)
    return list(await session.scalars(query.order_by(Lead.created_at.desc()).limit(limit)))
