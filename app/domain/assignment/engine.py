"""R2.2–R2.5, R2.11, R2.12: give one lead to a rep who can and will take it, or say loudly why not.

Concurrency is settled in PostgreSQL: the lead row is locked, then the team's member rows in user-id order
(the same order in every worker, so no deadlock). Capacity counts and the round-robin position are read under
those locks, so two workers can neither overfill a rep nor hand one lead out twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import new_id
from app.domain.assignment.eligibility import Candidate, choose
from app.domain.assignment.models import AssignmentRule, Notification, Ticket
from app.domain.assignment.windows import is_open, next_open
from app.domain.leads import audit
from app.domain.leads.models import PENDING_STATUSES, Lead
from app.domain.outbox.models import OutboxMessage
from app.domain.people.models import Role, Team, TeamMember, User, assignment_turn_seq
from app.metrics import observe_stage
from app.settings import Settings

ASSIGNABLE_STATUSES = ("new", "awaiting_assignment")


@dataclass
class Outcome:
    result: str  # assigned | waiting_window | retry | failed | not_assignable
    retry_at: datetime | None = None
    exclude: frozenset[uuid.UUID] = frozenset()  # carried into the next round (returned / overdue rep)
    generation: int | None = None  # the lead's assignment generation, carried into the next round
    assignee_id: uuid.UUID | None = None
    detail: dict[str, Any] = field(default_factory=dict)


RULES_SHARED_LOCK = text("SELECT pg_advisory_xact_lock_shared(hashtextextended('leadflow:assignment_rules', 0))")
RULES_EXCLUSIVE_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended('leadflow:assignment_rules', 0))")


async def find_rule(session: AsyncSession, source_id: uuid.UUID) -> AssignmentRule | None:
    """The enabled rule for this source with the lowest priority number; source-specific before catch-all."""
    return await session.scalar(
        select(AssignmentRule)
        .where(AssignmentRule.enabled, (AssignmentRule.source_id == source_id) | AssignmentRule.source_id.is_(None))
        .order_by(AssignmentRule.source_id.is_(None), AssignmentRule.priority, AssignmentRule.created_at)
        .limit(1))


async def load_candidates(
    session: AsyncSession, team_id: uuid.UUID, default_capacity: int, *, lock: bool
) -> list[Candidate]:
    """Every member of the team with what eligibility needs; with `lock`, their rows stay locked."""
    members = select(User.id).join(TeamMember, TeamMember.user_id == User.id).where(TeamMember.team_id == team_id)
    if lock:
        await session.execute(select(User.id).where(User.id.in_(members)).order_by(User.id).with_for_update())
    # Correlated per member: served by the partial index on pending leads, whatever the table's size.
    pending = (select(func.count()).select_from(Lead)
               .where(Lead.assignee_id == User.id, Lead.status.in_(PENDING_STATUSES)).scalar_subquery())
    # Columns, not User entities: a round reads ~20 members and building ORM objects was most of its cost.
    rows = await session.execute(
        select(User.id, User.name, TeamMember.tier, User.is_active, User.on_duty, Role.permissions, User.capacity,
               pending, User.last_turn, User.last_assigned_at)
        .join(TeamMember, TeamMember.user_id == User.id).join(Role, Role.id == User.role_id)
        .where(TeamMember.team_id == team_id).order_by(User.id))
    return [Candidate(user_id=user_id, name=name, tier=tier, is_active=is_active, on_duty=on_duty,
                      permissions=list(permissions or []),
                      capacity=capacity if capacity is not None else default_capacity,
                      pending=int(count), last_turn=last_turn, last_assigned_at=last_assigned_at)
            for user_id, name, tier, is_active, on_duty, permissions, capacity, count, last_turn, last_assigned_at
            in rows]


async def assign_lead(
    session: AsyncSession, lead_id: uuid.UUID, now: datetime, settings: Settings,
    exclude: frozenset[uuid.UUID] = frozenset(), action: str = "assign", already_waiting: bool = False,
    take_back: bool = False, generation: int | None = None,
) -> Outcome:
    """One assignment round for one lead, inside the caller's transaction. Never reports "assigning".

    `exclude`/`action` serve reassignment: the previous assignee is skipped and the audit says "reassign".
    """
    lead = await session.get(Lead, lead_id, with_for_update=True)
    # An assigned lead is taken away only by the claim-deadline sweep (`take_back`, its rep excluded); a queued
    # round (a retry, a wait) finding it assigned, e.g. handed out by a manager meanwhile, leaves it alone.
    taking_back = take_back and lead is not None and lead.status == "assigned" and lead.assignee_id in exclude
    if lead is None or (lead.status not in ASSIGNABLE_STATUSES and not taking_back):
        return Outcome("not_assignable", detail={"status": lead.status if lead else None})
    if generation is not None and generation != lead.assignment_generation:
        # queued before a return or a hand-out started a new generation: that one's rounds decide now
        return Outcome("not_assignable", detail={"superseded_generation": generation})
    # Shared with other rounds, exclusive with a rule change (rules.py): a round never decides on a rule an
    # edit is replacing, so the edit's recheck of waiting leads sees every wait decided on the old rule.
    await session.execute(RULES_SHARED_LOCK)
    rule = await find_rule(session, lead.source_id)
    if rule is None:
        return await _failed_round(session, lead, None, now, settings, "no_rule", [])
    try:
        tz = ZoneInfo(rule.timezone or settings.business_timezone)
        window_open = is_open(rule.window, tz, now)
        opens = now if window_open else next_open(rule.window, tz, now)
    except (ValueError, KeyError) as error:  # a rule we cannot read must fail loudly, not crash the job
        return await _failed_round(session, lead, rule, now, settings, "bad_rule", [], note=str(error))
    if not window_open:
        if not already_waiting:  # once per wait (a returned lead too), not again on each recheck
            audit.record(session, lead_id=lead.id, action=action, result="skipped", at=now,
                         reason="outside_window", detail={"rule": rule.name, "opens_at": opens.isoformat(),
                                                          "previous_assignee_id": _str(lead.assignee_id)})
        lead.status, lead.updated_at, lead.team_id = "awaiting_assignment", now, rule.team_id
        lead.assignee_id, lead.claim_due_at = None, None  # an overdue rep loses it now, not at opening
        return Outcome("waiting_window", retry_at=opens, exclude=exclude, generation=lead.assignment_generation,
                       detail={"opens_at": opens.isoformat()})
    candidates = await load_candidates(session, rule.team_id, settings.default_capacity, lock=True)
    chosen, skipped = choose(candidates, rule.strategy, exclude)
    if chosen is None:
        lead.assignee_id, lead.claim_due_at = None, None
        outcome = await _failed_round(session, lead, rule, now, settings, "no_eligible_candidate", skipped)
        outcome.exclude = exclude
        return outcome
    await _give(session, lead, rule, chosen, now, skipped, action, tz)
    return Outcome("assigned", assignee_id=chosen.user_id, detail={"skipped": skipped})


async def _give(
    session: AsyncSession, lead: Lead, rule: AssignmentRule, chosen: Candidate, now: datetime, skipped: list,
    action: str, tz: ZoneInfo,
) -> None:
    previous = lead.assignee_id
    await resolve_tickets(session, lead.id, now, "assigned")
    lead.assignee_id, lead.team_id, lead.rule_id = chosen.user_id, rule.team_id, rule.id
    lead.assignment_attempts = 0  # failed rounds count towards the ticket and the give-up only in a row
    lead.matched_at, lead.updated_at, lead.pushed_at = now, now, None  # match→push is timed per assignee
    observe_stage("trigger_to_match", lead.triggered_at, now)
    auto_claim = rule.auto_claim and is_open(rule.auto_claim_window, tz, now)
    if auto_claim:
        lead.status, lead.claimed_at, lead.claim_due_at = "claimed", now, None
    else:
        lead.status, lead.claim_due_at = "assigned", now + timedelta(minutes=rule.claim_sla_minutes)
    turn = await session.scalar(
        update(User).where(User.id == chosen.user_id)
        .values(last_assigned_at=now, last_turn=assignment_turn_seq.next_value()).returning(User.last_turn))
    audit.record(session, lead_id=lead.id, action=action, result="success", at=now, actor="system",
                 detail={"assignee_id": str(chosen.user_id), "assignee": chosen.name, "tier": chosen.tier,
                         "rule": rule.name, "strategy": rule.strategy, "turn": turn,
                         "previous_assignee_id": str(previous) if previous else None, "skipped": skipped})
    if auto_claim:
        audit.record(session, lead_id=lead.id, action="claim", result="success", at=now, reason="auto_claim",
                     actor=str(chosen.user_id))
    await owe_notification(session, lead.id, chosen.user_id, "lead_assigned", now,
                           {"lead_id": lead.lead_number, "name": lead.name, "rule": rule.name},
                           dedupe_key=str(turn))


async def _failed_round(
    session: AsyncSession, lead: Lead, rule: AssignmentRule | None, now: datetime, settings: Settings, reason: str,
    skipped: list[dict[str, Any]], note: str | None = None,
) -> Outcome:
    """Nobody could take it: record why; after N rounds in a row a ticket for the manager; after the last, fail."""
    lead.assignment_attempts += 1
    lead.updated_at = now
    lead.assignee_id, lead.claim_due_at = None, None  # nobody holds it (a deadline reassign that found no rule)
    if rule is not None:
        lead.team_id = rule.team_id  # its manager sees it, can hand it out or close it
    attempt = lead.assignment_attempts
    snapshot = {"attempt": attempt, "reason": reason, "rule": rule.name if rule else None, "candidates": skipped}
    if note:
        snapshot["note"] = note[:300]
    audit.record(session, lead_id=lead.id, action="assign", result="failed", at=now, reason=reason, detail=snapshot)
    # the ticket comes at the fallback round, or at the last one when fewer tries are configured than that
    ticket_at = min(settings.assignment_fallback_rounds, settings.assignment_max_tries)
    if attempt >= ticket_at and not await _has_open_ticket(session, lead.id):
        await _open_ticket(session, lead, rule, now, snapshot)
    if attempt >= settings.assignment_max_tries:
        lead.status = "assignment_failed"
        audit.record(session, lead_id=lead.id, action="fail", result="failed", at=now, reason=reason,
                     detail=snapshot)
        return Outcome("failed", detail=snapshot)
    lead.status = "awaiting_assignment"
    return Outcome("retry", retry_at=now + timedelta(seconds=settings.assignment_retry_seconds), detail=snapshot,
                   generation=lead.assignment_generation)


def _str(value: Any) -> str | None:
    return str(value) if value is not None else None


async def resolve_tickets(session: AsyncSession, lead_id: uuid.UUID, now: datetime, how: str) -> None:
    """The lead found a holder or ended: its open ticket is done (a later failure opens a new one)."""
    await session.execute(update(Ticket).where(Ticket.lead_id == lead_id, Ticket.status == "open")
                          .values(status="resolved", snapshot=Ticket.snapshot.op("||")(
                              func.jsonb_build_object("resolved_at", now.isoformat(), "resolution", how))))


async def _has_open_ticket(session: AsyncSession, lead_id: uuid.UUID) -> bool:
    return await session.scalar(select(Ticket.id).where(Ticket.lead_id == lead_id, Ticket.status == "open")) is not None


async def _open_ticket(
    session: AsyncSession, lead: Lead, rule: AssignmentRule | None, now: datetime, snapshot: dict[str, Any]
) -> None:
    team = await session.get(Team, rule.team_id) if rule else None
    manager_id = team.manager_id if team else None
    ticket = Ticket(lead_id=lead.id, team_id=team.id if team else None, manager_id=manager_id, status="open",
                    snapshot=snapshot | {"lead": {"lead_id": lead.lead_number, "name": lead.name,
                                                  "channel": lead.channel}}, created_at=now)
    session.add(ticket)
    await session.flush()
    # the ticket is done now; whether the manager was reached is the delivery job's audit entry ("notify")
    audit.record(session, lead_id=lead.id, action="ticket", result="success", at=now,
                 reason="ticket_opened" if manager_id else "ticket_opened_no_manager",
                 detail={"manager_id": str(manager_id) if manager_id else None})
    if manager_id is not None:
        await owe_notification(session, lead.id, manager_id, "assignment_failed", now,
                               {"lead_id": lead.lead_number, "why": snapshot, "team_id": str(team.id)},
                               dedupe_key=f"ticket:{ticket.id}")  # each new ticket mentions them again


async def owe_notification(
    session: AsyncSession, lead_id: uuid.UUID, user_id: uuid.UUID, kind: str, now: datetime, payload: dict,
    dedupe_key: str = "",
) -> None:
    """A notification owed to a person, and its delivery job in the outbox — in the caller's transaction.

    Once per (lead, user, kind, dedupe key); delivery is its own job (R3.2), so assignment never waits on it.
    """
    notification_id = await session.scalar(insert(Notification).values(
        id=new_id(), lead_id=lead_id, user_id=user_id, kind=kind, dedupe_key=dedupe_key, status="pending",
        payload=payload, created_at=now).on_conflict_do_nothing().returning(Notification.id))
    if notification_id is not None:
        session.add(OutboxMessage(job="deliver_notification", payload={"notification_id": str(notification_id)},
                                  lead_id=lead_id, created_at=now))
