"""R2.6: what a rep does with an assigned lead — claim, transfer, return — and the claim deadline."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import unit_of_work
from app.domain.assignment.eligibility import skip_reason
from app.domain.assignment.engine import Outcome, assign_lead, load_candidates, owe_notification, resolve_tickets
from app.domain.assignment.models import AssignmentRule
from app.domain.assignment.service import assignment_payload, schedule_next_round
from app.domain.errors import Conflict, Forbidden, NotFound
from app.domain.leads import audit
from app.domain.leads.models import OPEN_STATUSES, Lead
from app.domain.outbox.models import OutboxMessage
from app.domain.people.models import Team, User
from app.domain.people.service import Principal
from app.metrics import observe_stage
from app.settings import Settings


async def _lead_for_update(session: AsyncSession, lead_number: str) -> Lead:
    lead = await session.scalar(select(Lead).where(Lead.lead_number == lead_number).with_for_update())
    if lead is None:
        raise NotFound(f"no lead {lead_number}")
    return lead


async def can_see(session: AsyncSession, principal: Principal, lead: Lead) -> bool:
    """Reps see their own leads; a team's manager sees the team's; lead.view_all sees all."""
    if principal.is_admin or "lead.view_all" in principal.permissions or lead.assignee_id == principal.user_id:
        return True
    if lead.team_id is None:
        return False
    team = await session.get(Team, lead.team_id)
    return team is not None and team.manager_id == principal.user_id


async def _require_holder(session: AsyncSession, principal: Principal, lead: Lead) -> None:
    if lead.assignee_id == principal.user_id:
        return
    if not await can_see(session, principal, lead):
        raise NotFound(f"no lead {lead.lead_number}")  # do not confirm others' leads exist
    if principal.is_admin or (lead.team_id and (await session.get(Team, lead.team_id)).manager_id == principal.user_id):
        return
    raise Forbidden("only the assignee or their manager can do this", extra={"code": "not_assignee"})


async def claim_lead(session: AsyncSession, principal: Principal, lead_number: str, now: datetime) -> Lead:
    """The assignee takes the lead (stops its claim deadline)."""
    principal.require("lead.claim")
    lead = await _lead_for_update(session, lead_number)
    if lead.assignee_id != principal.user_id:
        raise (NotFound(f"no lead {lead_number}") if not await can_see(session, principal, lead)
               else Forbidden("only the assignee can claim this lead", extra={"code": "not_assignee"}))
    if lead.status != "assigned":
        raise Conflict(f"lead is {lead.status}, not assigned",
                       extra={"code": "not_claimable", "lead_status": lead.status})
    lead.status, lead.claimed_at, lead.claim_due_at, lead.updated_at = "claimed", now, None, now
    observe_stage("match_to_claim", lead.matched_at, now)
    observe_stage("trigger_to_claim", lead.triggered_at, now)
    audit.record(session, lead_id=lead.id, action="claim", result="success", at=now, actor=str(principal.user_id))
    return lead


async def transfer_lead(
    session: AsyncSession, principal: Principal, lead_number: str, to_user_id: uuid.UUID, now: datetime,
    settings: Settings,
) -> Lead:
    """Hand an assigned or claimed lead to an eligible colleague in the same team."""
    principal.require("lead.transfer")
    lead = await _lead_for_update(session, lead_number)
    await _require_holder(session, principal, lead)
    # A lead nobody holds (assignment failed, or waiting) is handed out by its team's manager or an admin.
    handing_out = lead.status in ("assignment_failed", "awaiting_assignment") and lead.assignee_id is None
    if not (lead.status in ("assigned", "claimed") or handing_out) or lead.team_id is None:
        raise Conflict(f"lead is {lead.status}", extra={"code": "not_transferable", "lead_status": lead.status})
    candidates = {c.user_id: c for c in await load_candidates(session, lead.team_id, settings.default_capacity,
                                                              lock=True)}
    target = candidates.get(to_user_id)
    reason = "not_in_team" if target is None else skip_reason(target)
    if reason is not None or to_user_id == lead.assignee_id:
        audit.record(session, lead_id=lead.id, action="transfer", result="failed", at=now,
                     reason=reason or "same_assignee", actor=str(principal.user_id),
                     detail={"to_user_id": str(to_user_id)})
        raise Conflict(f"cannot transfer to that user: {reason or 'same_assignee'}",
                       extra={"code": reason or "same_assignee"}, keep_changes=True)
    previous = lead.assignee_id
    rule = await session.get(AssignmentRule, lead.rule_id) if lead.rule_id else None
    lead.assignee_id, lead.status, lead.claimed_at, lead.updated_at = to_user_id, "assigned", None, now
    lead.claim_due_at = now + timedelta(minutes=rule.claim_sla_minutes if rule else 30)
    lead.matched_at, lead.pushed_at = now, None  # match→push is timed per assignee
    if handing_out:
        lead.assignment_attempts = 0
        lead.assignment_generation += 1  # rounds queued before this hand-out do nothing now
        await resolve_tickets(session, lead.id, now, "handed_out")
    audit.record(session, lead_id=lead.id, action="transfer", result="success", at=now, actor=str(principal.user_id),
                 detail={"from_user_id": str(previous), "to_user_id": str(to_user_id)})
    await owe_notification(session, lead.id, to_user_id, "lead_assigned", now, {"lead_id": lead.lead_number},
                           dedupe_key=f"transfer:{now.isoformat()}")
    return lead


async def return_lead(session: AsyncSession, principal: Principal, lead_number: str, reason: str,
                      now: datetime) -> Lead:
    """The assignee gives the lead back to the pool with a reason; it goes through assignment again."""
    principal.require("lead.return")
    lead = await _lead_for_update(session, lead_number)
    await _require_holder(session, principal, lead)
    if lead.status not in ("assigned", "claimed"):
        raise Conflict(f"lead is {lead.status}", extra={"code": "not_returnable", "lead_status": lead.status})
    previous = lead.assignee_id
    lead.assignee_id, lead.status, lead.claimed_at, lead.claim_due_at = None, "awaiting_assignment", None, None
    lead.updated_at = now
    audit.record(session, lead_id=lead.id, action="return", result="success", at=now, reason=reason[:200],
                 actor=str(principal.user_id), detail={"from_user_id": str(previous)})
    lead.assignment_generation += 1  # one chain of rounds: this return's (queued older ones do nothing)
    session.add(OutboxMessage(job="assign_lead", lead_id=lead.id, created_at=now,
                              payload=assignment_payload(lead.id, frozenset({previous}),
                                                         lead.assignment_generation)))
    return lead


async def close_lead(session: AsyncSession, principal: Principal, lead_number: str, outcome: str, reason: str,
                     now: datetime) -> Lead:
    """The lead's story ends: `won`, `lost` or `closed` (junk, a duplicate kept elsewhere).

    Its rep's capacity (R2.3) is free again at once. The holder closes their own lead; the team's manager or an
    admin closes any of the team's open leads, including ones nobody could be given.
    """
    lead = await _lead_for_update(session, lead_number)
    await _require_holder(session, principal, lead)
    if lead.status not in OPEN_STATUSES:
        raise Conflict(f"lead is already {lead.status}", extra={"code": "not_open", "lead_status": lead.status})
    previous = lead.status
    lead.status, lead.claim_due_at, lead.updated_at = outcome, None, now
    audit.record(session, lead_id=lead.id, action="close", result="success", at=now, reason=reason[:200] or outcome,
                 actor=str(principal.user_id or principal.name),
                 detail={"outcome": outcome, "previous_status": previous, "assignee_id": _str(lead.assignee_id)})
    await resolve_tickets(session, lead.id, now, outcome)
    return lead


def _str(value: object) -> str | None:
    return str(value) if value is not None else None


async def reassign_overdue(
    sessions: async_sessionmaker[AsyncSession], now: datetime, settings: Settings, batch: int = 100
) -> int:
    """Leads not claimed by their deadline go to the next eligible rep; the first rep loses them (R2.6).

    One transaction per lead, like an assignment job, so the locks taken (lead, then its team's reps in id
    order) never cross another transaction's in the opposite order.
    """
    async with unit_of_work(sessions) as session:
        overdue = list(await session.scalars(
            select(Lead.id).where(Lead.status == "assigned", Lead.claim_due_at < now)
            .order_by(Lead.claim_due_at).limit(batch)))
    moved = 0
    for lead_id in overdue:
        async with unit_of_work(sessions) as session:
            lead = await session.scalar(select(Lead).where(Lead.id == lead_id, Lead.status == "assigned",
                                                           Lead.claim_due_at < now)
                                        .with_for_update(skip_locked=True))
            if lead is None or lead.assignee_id is None:
                continue  # claimed, moved or being handled meanwhile
            lapsed, due, team_id = lead.assignee_id, lead.claim_due_at, lead.team_id
            outcome = await assign_lead(session, lead_id, now, settings, exclude=frozenset({lapsed}),
                                        action="reassign", take_back=True)
            schedule_next_round(session, lead_id, outcome, now)
            await _owe_todo_overdue(session, lead, lapsed, due, team_id, outcome, now)
            moved += 1
    return moved


async def _owe_todo_overdue(session: AsyncSession, lead: Lead, lapsed: uuid.UUID, due: datetime | None,
                            team_id: uuid.UUID | None, outcome: Outcome, now: datetime) -> None:
    """R3.7 "to-do overdue": the rep whose to-do lapsed, and their team's manager, learn where the lead went."""
    names = dict((await session.execute(
        select(User.id, User.name).where(User.id.in_([u for u in (lapsed, outcome.assignee_id) if u])))).all())
    payload = {"lead_id": lead.lead_number, "name": lead.name, "lapsed_user": names.get(lapsed),
               "claim_due_at": due.isoformat() if due else None, "outcome": outcome.result,
               "new_assignee": names.get(outcome.assignee_id) if outcome.assignee_id else None}
    key = f"claim_due:{payload['claim_due_at']}"
    await owe_notification(session, lead.id, lapsed, "todo_overdue", now, payload | {"to": "assignee"}, key)
    manager = await session.scalar(select(Team.manager_id).where(Team.id == team_id)) if team_id else None
    if manager is not None and manager != lapsed:
        await owe_notification(session, lead.id, manager, "todo_overdue", now, payload | {"to": "manager"}, key)
