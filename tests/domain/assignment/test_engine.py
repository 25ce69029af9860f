"""R2.2–R2.5, R2.11: who gets a lead, who is skipped and why, and what happens when nobody can take it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from app.db import unit_of_work
from app.domain.assignment.models import Notification, Ticket
from app.domain.clock import FrozenClock
from app.domain.leads.models import AuditEntry, Lead
from app.domain.people.models import User
from tests.people import drain, make_team

# A Wednesday, 10:00 in Shanghai.
WEDNESDAY_10 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    return FrozenClock(WEDNESDAY_10)


async def post_leads(client, n: int, key: str = "web", start: int = 0) -> list[str]:
    numbers = []
    for i in range(start, start + n):
        r = await client.post(f"/v1/intake/{key}", json={"name": f"客户{i}", "phone": f"1380000{i:04d}"})
        assert r.status_code == 201, r.text
        numbers.append(r.json()["lead_id"])
    return numbers


async def leads(app) -> list[Lead]:
    async with unit_of_work(app.state.sessions) as session:
        return list(await session.scalars(select(Lead).order_by(Lead.created_at, Lead.lead_number)))


async def audit(app, lead_id, action="assign") -> list[AuditEntry]:
    async with unit_of_work(app.state.sessions) as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.lead_id == lead_id,
                                                                   AuditEntry.action == action)
                                          .order_by(AuditEntry.created_at, AuditEntry.id)))


async def test_round_robin_gives_each_rep_one_in_turn(app, client, make_source, settings, clock):
    await make_source(key="web")
    team = await make_team(app, reps=3)
    await post_leads(client, 9)
    await drain(app, settings, clock)
    got = Counter(lead.assignee_id for lead in await leads(app))
    assert got == {rep.id: 3 for rep in team.reps}
    assert {lead.status for lead in await leads(app)} == {"assigned"}


async def test_rep_without_claim_permission_is_skipped_with_reason(app, client, make_source, settings, clock):
    """The field guide's 47-hour story: a role without lead.claim is skipped, loudly, not silently."""
    await make_source(key="web")
    team = await make_team(app, reps=2, rep_overrides=[{"role": "viewer"}, {}])
    [number] = await post_leads(client, 1)
    await drain(app, settings, clock)
    [lead] = await leads(app)
    assert lead.assignee_id == team.reps[1].id
    [entry] = await audit(app, lead.id)
    assert entry.action_result == "success"
    assert [(s["name"], s["reason"]) for s in entry.detail["skipped"]] == [("rep0", "no_claim_permission")]
    assert number == lead.lead_number


@pytest.mark.parametrize(("override", "reason"), [
    ({"on_duty": False}, "off_duty"), ({"capacity": 0}, "at_capacity")])
async def test_each_skip_reason_is_recorded(app, client, make_source, settings, clock, override, reason):
    await make_source(key="web")
    await make_team(app, reps=2, rep_overrides=[override, {}])
    await post_leads(client, 1)
    await drain(app, settings, clock)
    [lead] = await leads(app)
    [entry] = await audit(app, lead.id)
    assert [s["reason"] for s in entry.detail["skipped"]] == [reason]


async def test_inactive_rep_is_skipped(app, client, make_source, settings, clock):
    await make_source(key="web")
    team = await make_team(app, reps=2)
    async with unit_of_work(app.state.sessions) as session:
        await session.execute(update(User).where(User.id == team.reps[0].id).values(is_active=False))
    await post_leads(client, 1)
    await drain(app, settings, clock)
    [lead] = await leads(app)
    assert lead.assignee_id == team.reps[1].id
    assert [s["reason"] for s in (await audit(app, lead.id))[0].detail["skipped"]] == ["inactive"]


async def test_backups_take_over_when_every_primary_is_full(app, client, make_source, settings, clock):
    await make_source(key="web")
    team = await make_team(app, reps=2, backups=1, rep_overrides=[{"capacity": 1}, {"capacity": 1}, {}])
    await post_leads(client, 4)
    await drain(app, settings, clock)
    got = Counter(lead.assignee_id for lead in await leads(app))
    assert got == {team.reps[0].id: 1, team.reps[1].id: 1, team.reps[2].id: 2}


async def test_least_loaded_prefers_the_rep_with_fewest_pending(app, client, make_source, settings, clock):
    await make_source(key="web")
    team = await make_team(app, reps=2, rule={"strategy": "least_loaded"})
    await post_leads(client, 2)
    await drain(app, settings, clock)
    first = await leads(app)
    # rep1 closes their lead: rep1 now has 0 pending, rep0 1. Round robin would give the next one to rep0
    # (the older turn); least loaded must give it to rep1.
    async with unit_of_work(app.state.sessions) as session:
        await session.execute(update(Lead).where(Lead.assignee_id == team.reps[1].id).values(status="won"))
    await post_leads(client, 1, start=10)
    await drain(app, settings, clock)
    newest = (await leads(app))[-1]
    assert len(first) == 2 and newest.assignee_id == team.reps[1].id


async def test_auto_claim_rule_claims_for_the_rep(app, client, make_source, settings, clock):
    await make_source(key="web")
    await make_team(app, reps=1, rule={"auto_claim": True})
    await post_leads(client, 1)
    await drain(app, settings, clock)
    [lead] = await leads(app)
    assert lead.status == "claimed" and lead.claimed_at == clock.now()
    assert [e.reason for e in await audit(app, lead.id, "claim")] == ["auto_claim"]


async def test_nobody_eligible_retries_then_tickets_the_manager_then_fails(app, client, make_source, settings, clock):
    await make_source(key="web")
    team = await make_team(app, reps=2, rep_role="viewer")
    await post_leads(client, 1)
    for _ in range(settings.assignment_max_tries):
        await drain(app, settings, clock)
        clock.advance(seconds=settings.assignment_retry_seconds)
    await drain(app, settings, clock)
    [lead] = await leads(app)
    assert lead.status == "assignment_failed" and lead.assignment_attempts == settings.assignment_max_tries
    rounds = await audit(app, lead.id)
    assert [e.action_result for e in rounds] == ["failed"] * 5
    assert {s["reason"] for s in rounds[0].detail["candidates"]} == {"no_claim_permission"}
    assert [e.reason for e in await audit(app, lead.id, "fail")] == ["no_eligible_candidate"]
    async with unit_of_work(app.state.sessions) as session:
        [ticket] = list(await session.scalars(select(Ticket)))
        [owed] = list(await session.scalars(select(Notification).where(Notification.kind == "assignment_failed")))
    assert ticket.manager_id == team.manager.id and ticket.snapshot["attempt"] == settings.assignment_fallback_rounds
    assert ticket.snapshot["lead"]["lead_id"] == lead.lead_number and owed.user_id == team.manager.id


@pytest.fixture
def few_tries(settings):
    return settings.model_copy(update={"assignment_max_tries": 2})  # fewer than the 3 fallback rounds


async def test_with_fewer_tries_than_fallback_rounds_the_manager_still_gets_a_ticket(app, client, make_source,
                                                                                    few_tries, clock):
    await make_source(key="web")
    await make_team(app, reps=1, rep_role="viewer")
    await post_leads(client, 1)
    for _ in range(2):
        await drain(app, few_tries, clock)
        clock.advance(seconds=few_tries.assignment_retry_seconds)
    [lead] = await leads(app)
    async with unit_of_work(app.state.sessions) as session:
        tickets = list(await session.scalars(select(Ticket)))
    assert lead.status == "assignment_failed" and len(tickets) == 1  # it failed for good with no ticket before


async def test_retries_wait_the_configured_interval(app, client, make_source, settings, clock):
    await make_source(key="web")
    await make_team(app, reps=1, rep_role="viewer")
    await post_leads(client, 1)
    await drain(app, settings, clock)
    await drain(app, settings, clock)  # nothing due yet: still one round
    [lead] = await leads(app)
    assert lead.assignment_attempts == 1 and lead.status == "awaiting_assignment"
    clock.advance(seconds=settings.assignment_retry_seconds)
    await drain(app, settings, clock)
    assert (await leads(app))[0].assignment_attempts == 2


async def test_lead_outside_the_window_waits_and_is_assigned_when_it_opens(app, client, make_source, settings, clock):
    await make_source(key="web")
    team = await make_team(app, reps=2, rule={"window": {"weekdays": [1, 2, 3, 4, 5], "start": "09:00",
                                                          "end": "18:00"}})
    clock.at = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # Friday 20:00 in Shanghai: closed until Monday 09:00
    await post_leads(client, 4)
    await drain(app, settings, clock)
    assert {lead.status for lead in await leads(app)} == {"awaiting_assignment"}
    [entry] = await audit(app, (await leads(app))[0].id)
    assert entry.reason == "outside_window" and entry.detail["opens_at"] == "2026-11-30T01:00:00+00:00"
    clock.at = datetime(2026, 11, 30, 1, 0, tzinfo=UTC) + timedelta(seconds=1)
    await drain(app, settings, clock)
    waiting = await leads(app)
    assert {lead.status for lead in waiting} == {"assigned"}
    assert Counter(lead.assignee_id for lead in waiting) == {rep.id: 2 for rep in team.reps}  # spread, not a burst


WORKDAYS_9_TO_18 = {"weekdays": [1, 2, 3, 4, 5], "start": "09:00", "end": "18:00"}
FRIDAY_20 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # in Shanghai; the window above opens Monday 09:00


async def _only_rule(client, admin) -> str:
    [rule] = (await client.get("/v1/assignment/rules", headers=admin)).json()
    return rule["id"]


async def test_widening_the_window_assigns_waiting_leads_now_not_at_the_old_opening(
        app, client, make_source, settings, clock, admin):
    await make_source(key="web")
    team = await make_team(app, reps=2, rule={"window": WORKDAYS_9_TO_18})
    clock.at = FRIDAY_20
    await post_leads(client, 3)
    await drain(app, settings, clock)
    assert {lead.status for lead in await leads(app)} == {"awaiting_assignment"}
    clock.advance(minutes=5)  # the manager opens evenings and weekends too
    r = await client.patch(f"/v1/assignment/rules/{await _only_rule(client, admin)}", headers=admin,
                           json={"window": {"start": "08:00", "end": "22:00"}})
    assert r.status_code == 200 and r.json()["rechecked_leads"] == 3
    await drain(app, settings, clock)
    assigned = await leads(app)
    assert {lead.status for lead in assigned} == {"assigned"}
    assert {lead.assignee_id for lead in assigned} <= {rep.id for rep in team.reps}


async def test_a_rule_change_that_keeps_the_window_closed_leaves_leads_waiting_quietly(
        app, client, make_source, settings, clock, admin):
    await make_source(key="web")
    await make_team(app, reps=2, rule={"window": WORKDAYS_9_TO_18})
    clock.at = FRIDAY_20
    await post_leads(client, 2)
    await drain(app, settings, clock)
    clock.advance(minutes=5)
    r = await client.patch(f"/v1/assignment/rules/{await _only_rule(client, admin)}", headers=admin,
                           json={"window": WORKDAYS_9_TO_18 | {"start": "10:00"}})
    assert r.json()["rechecked_leads"] == 2
    await drain(app, settings, clock)
    waiting = await leads(app)
    assert {(lead.status, lead.assignment_attempts) for lead in waiting} == {("awaiting_assignment", 0)}
    assert len(await audit(app, waiting[0].id)) == 1  # the first "outside_window", not one per recheck
    clock.at = datetime(2026, 11, 30, 1, 0, tzinfo=UTC) + timedelta(seconds=1)  # Monday 09:00: now too early
    await drain(app, settings, clock)
    assert {lead.status for lead in await leads(app)} == {"awaiting_assignment"}
    clock.at = datetime(2026, 11, 30, 2, 0, tzinfo=UTC) + timedelta(seconds=1)  # Monday 10:00
    await drain(app, settings, clock)
    assert {lead.status for lead in await leads(app)} == {"assigned"}


async def test_a_lead_returned_after_hours_says_in_its_audit_that_it_waits(app, client, make_source, settings, clock):
    await make_source(key="web")
    team = await make_team(app, reps=2, rule={"window": WORKDAYS_9_TO_18})
    [number] = await post_leads(client, 1)
    await drain(app, settings, clock)  # Wednesday 10:00: given to rep0
    clock.at = FRIDAY_20
    r = await client.post(f"/v1/leads/{number}/return", json={"reason": "下班了"},
                          headers={"Authorization": f"Bearer {team.tokens['rep0']}"})
    assert r.status_code == 200
    await drain(app, settings, clock)
    [lead] = await leads(app)
    waits = [e for e in await audit(app, lead.id, "reassign") if e.reason == "outside_window"]
    assert lead.status == "awaiting_assignment" and len(waits) == 1  # it used to say nothing until Monday
    assert waits[0].detail["opens_at"] == "2026-11-30T01:00:00+00:00"


async def test_customer_asking_again_revives_a_failed_lead(app, client, make_source, settings, clock):
    await make_source(key="web")
    await make_team(app, reps=1, rep_role="viewer")
    [number] = await post_leads(client, 1)
    for _ in range(settings.assignment_max_tries):
        await drain(app, settings, clock)
        clock.advance(seconds=settings.assignment_retry_seconds)
    assert (await leads(app))[0].status == "assignment_failed"
    again = await client.post("/v1/intake/web", json={"name": "客户0", "phone": "13800000000"})
    assert again.json() == {"lead_id": number, "status": "merged", "submission_id": again.json()["submission_id"]}
    [lead] = await leads(app)
    assert (lead.status, lead.assignment_attempts) == ("awaiting_assignment", 0)
    await drain(app, settings, clock)
    assert (await leads(app))[0].assignment_attempts == 1  # it is being assigned again, not forgotten


async def test_attempts_count_in_a_row_and_reset_when_assigned(app, client, make_source, settings, clock):
    await make_source(key="web")
    team = await make_team(app, reps=1, rep_overrides=[{"on_duty": False}])
    await post_leads(client, 1)
    await drain(app, settings, clock)
    async with unit_of_work(app.state.sessions) as session:
        await session.execute(update(User).where(User.id == team.reps[0].id).values(on_duty=True))
    clock.advance(seconds=settings.assignment_retry_seconds)
    await drain(app, settings, clock)
    [lead] = await leads(app)
    assert (lead.status, lead.assignment_attempts) == ("assigned", 0)


@pytest.mark.parametrize("window", [{"start": "09:00", "end": "09:00"}, {"start": "25:00", "end": "26:00"},
                                    {"start": "24:00", "end": "08:00"}])
def test_unreadable_windows_are_refused(window):
    from pydantic import ValidationError

    from app.domain.assignment.rules import Window

    with pytest.raises(ValidationError):
        Window.model_validate(window)


def test_a_window_ending_at_24_00_includes_the_last_minute():
    from zoneinfo import ZoneInfo

    from app.domain.assignment.windows import is_open

    tz = ZoneInfo("Asia/Shanghai")
    friday_late = datetime(2026, 11, 27, 15, 59, 30, tzinfo=UTC)  # 23:59:30 in Shanghai
    assert is_open({"weekdays": [5], "start": "09:00", "end": "24:00"}, tz, friday_late)
    overnight = {"weekdays": [1, 2, 3, 4, 5], "start": "22:00", "end": "06:00"}
    saturday_early = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)  # Sat 04:00: Friday's night window
    assert is_open(overnight, tz, saturday_early)
    assert not is_open(overnight, tz, datetime(2026, 11, 28, 20, 0, tzinfo=UTC))  # Sun 04:00: Sat not a weekday
