"""R2.1, R2.6–R2.10 through the API, as reps, managers and admins use it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.db import unit_of_work
from app.domain.assignment.actions import reassign_overdue
from app.domain.assignment.models import Notification, Ticket
from app.domain.clock import FrozenClock
from app.domain.leads.models import AuditEntry, Lead
from app.domain.notify.delivery import render
from app.domain.outbox.models import OutboxMessage
from tests.people import drain, make_team

WEDNESDAY_10 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    return FrozenClock(WEDNESDAY_10)


def stage_count(metrics, stage: str) -> float:
    """leadflow_assignment_stage_seconds_count for `stage` in a /metrics answer (0 before the first)."""
    prefix = f'leadflow_assignment_stage_seconds_count{{stage="{stage}"}} '
    return next((float(line[len(prefix):]) for line in metrics.text.splitlines() if line.startswith(prefix)), 0.0)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def post_leads(client, n: int, start: int = 0) -> list[str]:
    out = []
    for i in range(start, start + n):
        r = await client.post("/v1/intake/web", json={"name": f"客户{i}", "phone": f"1380000{i:04d}"})
        out.append(r.json()["lead_id"])
    return out


async def test_no_token_is_401_and_a_rep_cannot_configure(client, app):
    team = await make_team(app, reps=1)
    r = await client.get("/v1/me/leads")
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    r = await client.get("/v1/users", headers=bearer(team.tokens["rep0"]))
    assert r.status_code == 403 and r.json()["code"] == "missing_permission"
    assert r.json()["permission"] == "config.manage"


async def test_role_without_claim_permission_is_caught_by_the_lint_and_fixed(client, admin, make_source):
    """The guide's first story, configured the way an admin would."""
    await make_source(key="web")
    role = (await client.post("/v1/roles", headers=admin, json={"name": "销售", "permissions": ["lead.return"]})).json()
    rep = (await client.post("/v1/users", headers=admin, json={"name": "小王", "kind": "sales",
                                                               "role_id": role["role"]["id"]})).json()
    assert rep["token"].startswith("lf_")
    team = (await client.post("/v1/teams", headers=admin, json={"name": "华南", "primary": [rep["user"]["id"]]})).json()
    rule = await client.post("/v1/assignment/rules", headers=admin,
                             json={"name": "默认", "team_id": team["team"]["id"], "source_key": "web"})
    assert rule.status_code == 201
    assert "team_cannot_claim" in {w["code"] for w in rule.json()["warnings"]}
    fixed = await client.patch(f"/v1/roles/{role['role']['id']}", headers=admin,
                               json={"permissions": ["lead.claim", "lead.return", "lead.transfer"]})
    assert "team_cannot_claim" not in {w["code"] for w in fixed.json()["warnings"]}
    assert (await client.get("/v1/config/lint", headers=admin)).json() == {"warnings": []}


async def test_paused_window_with_night_auto_claim_is_caught_by_the_lint(client, admin, app, make_source):
    """The guide's second story: assignment paused 18:00–08:00, night auto-claim left on."""
    await make_source(key="web")
    team = await make_team(app, reps=2, rule=False)
    r = await client.post("/v1/assignment/rules", headers=admin, json={
        "name": "白天", "team_id": str(team.id), "window": {"weekdays": [1, 2, 3, 4, 5], "start": "08:00",
                                                            "end": "18:00"},
        "auto_claim": True, "auto_claim_window": {"start": "18:00", "end": "08:00"}})
    [warning] = [w for w in r.json()["warnings"] if w["code"] == "auto_claim_while_paused"]
    assert warning["refs"]["rule"] == "白天" and "auto-claims" in warning["message"]
    aligned = await client.patch(f"/v1/assignment/rules/{r.json()['rule']['id']}", headers=admin,
                                 json={"auto_claim_window": {"weekdays": [1, 2, 3, 4, 5], "start": "08:00",
                                                             "end": "18:00"}})
    assert "auto_claim_while_paused" not in {w["code"] for w in aligned.json()["warnings"]}


async def test_a_rule_with_an_unknown_time_zone_is_a_field_error_not_a_500(client, admin, app):
    team = await make_team(app, reps=1, rule=False)
    r = await client.post("/v1/assignment/rules", headers=admin, json={
        "name": "北京", "team_id": str(team.id), "timezone": "Beijing"})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["timezone"]
    ok = await client.post("/v1/assignment/rules", headers=admin, json={
        "name": "北京", "team_id": str(team.id), "timezone": "Asia/Shanghai"})
    assert ok.status_code == 201
    r = await client.patch(f"/v1/assignment/rules/{ok.json()['rule']['id']}", headers=admin,
                           json={"timezone": "UTC+8"})
    assert r.status_code == 422
    assert (await client.get("/v1/config/lint", headers=admin)).status_code == 200  # nothing bad was saved


async def test_lint_reports_capacity_zero_sources_without_rules_and_teams_nobody_can_serve(client, admin, app,
                                                                                           make_source):
    await make_source(key="web")
    await make_source(key="orphan")
    await make_team(app, reps=1, rule={"source_key": "web"}, rep_overrides=[{"capacity": 0}])
    codes = {w["code"]: w for w in (await client.get("/v1/config/lint", headers=admin)).json()["warnings"]}
    assert codes["zero_capacity"]["refs"]["user"] == "rep0"
    assert codes["source_without_rule"]["refs"]["source"] == "orphan"
    assert "at_capacity" in codes["no_eligible_member_now"]["message"]


async def test_rep_sees_only_their_own_leads_and_claims_them(client, app, make_source, settings, clock):
    await make_source(key="web")
    team = await make_team(app, reps=2)
    numbers = await post_leads(client, 2)
    await drain(app, settings, clock)
    mine = (await client.get("/v1/me/leads?status=assigned", headers=bearer(team.tokens["rep0"]))).json()
    assert [m["lead_id"] for m in mine] == [numbers[0]] and mine[0]["phone_masked"] == "138****0000"
    other = await client.get(f"/v1/leads/{numbers[0]}", headers=bearer(team.tokens["rep1"]))
    assert other.status_code == 404
    assert (await client.get(f"/v1/leads/{numbers[0]}", headers=bearer(team.tokens["manager"]))).status_code == 200
    timed_before = stage_count(await client.get("/metrics"), "match_to_claim")
    claimed = await client.post(f"/v1/leads/{numbers[0]}/claim", headers=bearer(team.tokens["rep0"]))
    assert claimed.status_code == 200 and claimed.json()["status"] == "claimed"
    again = await client.post(f"/v1/leads/{numbers[0]}/claim", headers=bearer(team.tokens["rep0"]))
    assert again.status_code == 409 and again.json()["code"] == "not_claimable"
    assert (await client.get("/v1/me/leads?status=assigned", headers=bearer(team.tokens["rep0"]))).json() == []
    trail = (await client.get(f"/v1/leads/{numbers[0]}/audit?result=success",
                              headers=bearer(team.tokens["rep0"]))).json()
    assert [e["action"] for e in trail] == ["intake", "assign", "claim"]
    assert stage_count(await client.get("/metrics"), "match_to_claim") == timed_before + 1  # this claim, timed
    team_view = (await client.get("/v1/leads", headers=bearer(team.tokens["manager"]))).json()
    assert sorted(lead["lead_id"] for lead in team_view) == sorted(numbers)
    assert [lead["lead_id"] for lead in (await client.get("/v1/leads", headers=bearer(team.tokens["rep1"]))).json()] \
        == [numbers[1]]


async def test_transfer_goes_only_to_an_eligible_colleague(client, app, make_source, settings, clock):
    await make_source(key="web")
    team = await make_team(app, reps=3, rep_overrides=[{}, {}, {"on_duty": False}])
    [number] = await post_leads(client, 1)
    await drain(app, settings, clock)
    refused = await client.post(f"/v1/leads/{number}/transfer", headers=bearer(team.tokens["rep0"]),
                                json={"to_user_id": str(team.reps[2].id)})
    assert refused.status_code == 409 and refused.json()["code"] == "off_duty"
    moved = await client.post(f"/v1/leads/{number}/transfer", headers=bearer(team.tokens["rep0"]),
                              json={"to_user_id": str(team.reps[1].id)})
    assert moved.status_code == 200 and moved.json()["assignee_id"] == str(team.reps[1].id)
    results = [(e["action"], e["action_result"]) for e in (await client.get(
        f"/v1/leads/{number}/audit?action=transfer", headers=bearer(team.tokens["manager"]))).json()]
    assert results == [("transfer", "failed"), ("transfer", "success")]


async def test_returned_lead_goes_back_through_assignment(client, app, make_source, settings, clock):
    await make_source(key="web")
    team = await make_team(app, reps=2)
    [number] = await post_leads(client, 1)
    await drain(app, settings, clock)
    r = await client.post(f"/v1/leads/{number}/return", headers=bearer(team.tokens["rep0"]),
                          json={"reason": "不是我负责的区域"})
    assert r.status_code == 200 and r.json()["status"] == "awaiting_assignment"
    await drain(app, settings, clock)
    lead = (await client.get(f"/v1/leads/{number}", headers=bearer(team.tokens["manager"]))).json()
    assert lead["status"] == "assigned" and lead["assignee_id"] == str(team.reps[1].id)
    returned = [e for e in lead["audit"] if e["action"] == "return"]
    assert returned[0]["reason"] == "不是我负责的区域"


async def test_unclaimed_lead_is_reassigned_after_the_claim_sla(client, app, make_source, settings, clock):
    await make_source(key="web")
    team = await make_team(app, reps=2, rule={"claim_sla_minutes": 30})
    [number] = await post_leads(client, 1)
    await drain(app, settings, clock)
    clock.advance(minutes=29)
    assert await reassign_overdue(app.state.sessions, clock.now(), settings) == 0
    clock.advance(minutes=2)
    assert await reassign_overdue(app.state.sessions, clock.now(), settings) == 1
    assert (await client.get("/v1/me/leads", headers=bearer(team.tokens["rep0"]))).json() == []
    [now_theirs] = (await client.get("/v1/me/leads", headers=bearer(team.tokens["rep1"]))).json()
    assert now_theirs["lead_id"] == number
    async with unit_of_work(app.state.sessions) as session:
        [entry] = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "reassign")))
    assert entry.action_result == "success" and entry.detail["previous_assignee_id"] == str(team.reps[0].id)
    assert [s["reason"] for s in entry.detail["skipped"]] == ["previous_assignee"]


async def test_a_lapsed_claim_tells_the_rep_and_their_manager_where_the_lead_went(
        client, app, make_source, settings, clock):
    """R3.7 "to-do overdue": by default it reaches the rep whose to-do lapsed and the team's manager."""
    await make_source(key="web")
    team = await make_team(app, reps=2, rule={"claim_sla_minutes": 30})
    [number] = await post_leads(client, 1)
    await drain(app, settings, clock)
    due = clock.now() + timedelta(minutes=30)
    clock.advance(minutes=31)
    assert await reassign_overdue(app.state.sessions, clock.now(), settings) == 1
    assert await reassign_overdue(app.state.sessions, clock.now(), settings) == 0  # told once, not per sweep
    async with unit_of_work(app.state.sessions) as session:
        owed = list(await session.scalars(select(Notification).where(Notification.kind == "todo_overdue")))
        lead = await session.scalar(select(Lead))
        texts = {n.user_id: render(n, lead, settings.tz) for n in owed}
        queued = await session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.job == "deliver_notification", OutboxMessage.payload["notification_id"].astext.in_(
                [str(n.id) for n in owed])))
    assert len(owed) == 2 and set(texts) == {team.reps[0].id, team.manager.id} and queued == 2
    local_due = f"{due.astimezone(settings.tz):%m-%d %H:%M}"
    assert texts[team.reps[0].id] == f"线索 {number}（客户0）未在 {local_due} 前认领，已超时，已转给 rep1"
    assert texts[team.manager.id] == f"rep0 未在 {local_due} 前认领线索 {number}（客户0），已转给 rep1"


async def test_dry_run_shows_who_would_get_what_and_writes_nothing(client, admin, app, make_source):
    await make_source(key="web")
    await make_team(app, reps=3, backups=1, rep_overrides=[{"capacity": 2}, {"capacity": 2}, {"role": "viewer"},
                                                           {"capacity": 1}])
    r = await client.post("/v1/assignment/dry-run", headers=admin, json={"count": 7, "source": "web"})
    assert r.status_code == 200
    result = r.json()
    assert result["per_rep"] == {"rep0": 2, "rep1": 2, "rep3": 1} and result["failed"] == 2
    assert {"name": "rep2", "reason": "no_claim_permission", "times": 7} in result["skipped"]
    async with unit_of_work(app.state.sessions) as session:
        assert await session.scalar(select(func.count()).select_from(Lead)) == 0
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == 0


async def test_assignment_health_reports_stage_timings_and_stuck_leads(client, admin, app, make_source, settings,
                                                                       clock):
    await make_source(key="web")
    await make_team(app, reps=1, rule={"claim_sla_minutes": 10})
    await post_leads(client, 2)
    clock.advance(seconds=2)
    await drain(app, settings, clock)
    clock.advance(minutes=11)
    health = (await client.get("/v1/health/assignment", headers=admin)).json()
    assert health["stages"]["trigger_to_match"]["count"] == 2
    assert health["stages"]["trigger_to_match"]["p50_ms"] == 2000.0
    assert health["counts"] == {"assigned": 2}
    assert {s["claim_overdue"] for s in health["stuck"]} == {True} and len(health["stuck"]) == 2


async def test_a_returned_lead_does_not_come_back_to_the_rep_who_returned_it(client, app, make_source, settings,
                                                                              clock):
    await make_source(key="web")
    team = await make_team(app, reps=2, rule={"strategy": "least_loaded"})
    [number, *others] = await post_leads(client, 3)
    await drain(app, settings, clock)  # rep0: the first and third, rep1: the second
    for other in others:  # rep1 keeps more pending than rep0 will have: least loaded alone would pick rep0
        await client.post(f"/v1/leads/{other}/transfer", headers=bearer(team.tokens["manager"]),
                          json={"to_user_id": str(team.reps[1].id)})
    await client.post(f"/v1/leads/{number}/return", headers=bearer(team.tokens["rep0"]), json={"reason": "不合适"})
    await drain(app, settings, clock)
    lead = (await client.get(f"/v1/leads/{number}", headers=bearer(team.tokens["manager"]))).json()
    assert lead["assignee_id"] == str(team.reps[1].id)
    [entry] = [e for e in lead["audit"] if e["action"] == "reassign" and e["action_result"] == "success"]
    assert [s["reason"] for s in entry["detail"]["skipped"]] == ["previous_assignee"]


async def test_permissions_and_team_boundaries_for_managers_and_reps(client, app, make_source, settings, clock):
    await make_source(key="web")
    team = await make_team(app, reps=3, rep_overrides=[{"role": "viewer"}, {}, {}])
    [number] = await post_leads(client, 1)
    await drain(app, settings, clock)
    # rep1 holds it; the viewer-role colleague has no rights on it, the team manager may transfer it
    moved = await client.post(f"/v1/leads/{number}/transfer", headers=bearer(team.tokens["manager"]),
                              json={"to_user_id": str(team.reps[2].id)})
    assert moved.status_code == 200 and moved.json()["assignee_id"] == str(team.reps[2].id)
    r = await client.post(f"/v1/leads/{number}/return", headers=bearer(team.tokens["rep0"]), json={"reason": "x"})
    assert r.status_code == 403 and r.json()["permission"] == "lead.return"
    moved = await client.post(f"/v1/leads/{number}/return", headers=bearer(team.tokens["manager"]),
                              json={"reason": "经理收回"})
    assert moved.status_code == 403 and moved.json()["permission"] == "lead.return"  # managers here lack it
    r = await client.post(f"/v1/leads/{number}/claim", headers=bearer(team.tokens["manager"]))
    assert r.status_code == 403  # the manager's role has no lead.claim


async def test_a_manager_takes_a_rep_off_duty_and_assignment_follows(client, admin, app, make_source, settings, clock):
    """team.manage: a team's manager runs duty and capacity for its members without the admin token."""
    await make_source(key="web")
    team = await make_team(app, reps=2)
    members_url = f"/v1/teams/{team.id}/members"
    await post_leads(client, 2)
    await drain(app, settings, clock)
    listed = (await client.get(members_url, headers=bearer(team.tokens["manager"]))).json()
    assert [(m["name"], m["tier"], m["on_duty"], m["pending"]) for m in listed] == [
        ("rep0", "primary", True, 1), ("rep1", "primary", True, 1)]
    r = await client.patch(f"{members_url}/{team.reps[1].id}", headers=bearer(team.tokens["manager"]),
                           json={"on_duty": False})
    assert r.status_code == 200 and r.json()["user"]["on_duty"] is False
    await post_leads(client, 2, start=2)
    await drain(app, settings, clock)
    async with unit_of_work(app.state.sessions) as session:
        owners = list(await session.scalars(select(Lead.assignee_id).order_by(Lead.lead_number)))
    assert owners[2:] == [team.reps[0].id, team.reps[0].id]  # rep1 is skipped as off_duty
    r = await client.patch(f"{members_url}/{team.reps[0].id}", headers=bearer(team.tokens["manager"]),
                           json={"on_duty": False})
    assert "no_eligible_member_now" in {w["code"] for w in r.json()["warnings"]}  # nobody left: said at once


async def test_only_the_teams_own_manager_or_an_admin_manages_its_members(client, admin, app):
    team = await make_team(app, reps=1)
    rep_url = f"/v1/teams/{team.id}/members/{team.reps[0].id}"
    r = await client.patch(rep_url, headers=bearer(team.tokens["rep0"]), json={"on_duty": False})
    assert r.status_code == 403 and r.json()["permission"] == "team.manage"
    manager_role = next(u["role_id"] for u in (await client.get("/v1/users", headers=admin)).json()
                        if u["id"] == str(team.manager.id))
    other = (await client.post("/v1/users", headers=admin, json={"name": "别组经理", "kind": "manager",
                                                                 "role_id": manager_role})).json()
    r = await client.patch(rep_url, headers=bearer(other["token"]), json={"on_duty": False})
    assert r.status_code == 403 and r.json()["code"] == "not_team_manager"
    r = await client.get(f"/v1/teams/{team.id}/members", headers=bearer(other["token"]))
    assert r.status_code == 403
    r = await client.patch(f"/v1/teams/{team.id}/members/{other['user']['id']}", headers=bearer(team.tokens["manager"]),
                           json={"capacity": 10})
    assert r.status_code == 404  # not a member of this team
    r = await client.patch(rep_url, headers=admin, json={"capacity": 2, "is_active": False})
    assert r.status_code == 422  # duty and capacity only; the rest stays with the admin's user API
    r = await client.patch(rep_url, headers=admin, json={"capacity": 2})
    assert r.status_code == 200 and r.json()["user"]["capacity"] == 2


async def test_closing_a_lead_frees_the_reps_capacity_for_the_next_one(client, app, make_source, settings, clock):
    await make_source(key="web")
    team = await make_team(app, reps=1, rep_overrides=[{"capacity": 1}])
    first, second = await post_leads(client, 2)
    await drain(app, settings, clock)
    rep = bearer(team.tokens["rep0"])
    assert [m["lead_id"] for m in (await client.get("/v1/me/leads", headers=rep)).json()] == [first]
    await client.post(f"/v1/leads/{first}/claim", headers=rep)
    won = await client.post(f"/v1/leads/{first}/close", headers=rep, json={"outcome": "won", "reason": "签约"})
    assert won.status_code == 200 and won.json()["status"] == "won"
    clock.advance(seconds=settings.assignment_retry_seconds)
    await drain(app, settings, clock)
    assert [m["lead_id"] for m in (await client.get("/v1/me/leads", headers=rep)).json()] == [second]
    again = await client.post(f"/v1/leads/{first}/close", headers=rep, json={"outcome": "lost"})
    assert again.status_code == 409 and again.json()["code"] == "not_open"
    [entry] = (await client.get(f"/v1/leads/{first}/audit?action=close", headers=rep)).json()
    assert entry["reason"] == "签约" and entry["detail"]["outcome"] == "won"


async def test_a_lead_nobody_could_take_is_seen_and_handed_out_by_the_teams_manager(
        client, app, make_source, settings, clock):
    await make_source(key="web")
    team = await make_team(app, reps=1, rep_overrides=[{"on_duty": False}])
    [number, junk] = await post_leads(client, 2)
    for _ in range(settings.assignment_max_tries):
        await drain(app, settings, clock)
        clock.advance(seconds=settings.assignment_retry_seconds)
    manager = bearer(team.tokens["manager"])
    seen = {lead["lead_id"]: lead["status"] for lead in (await client.get("/v1/leads", headers=manager)).json()}
    assert seen == {number: "assignment_failed", junk: "assignment_failed"}  # it used to be invisible to them
    back = await client.patch(f"/v1/teams/{team.id}/members/{team.reps[0].id}", headers=manager,
                              json={"on_duty": True})
    assert back.status_code == 200
    given = await client.post(f"/v1/leads/{number}/transfer", headers=manager,
                              json={"to_user_id": str(team.reps[0].id)})
    assert given.status_code == 200 and given.json()["status"] == "assigned"
    closed = await client.post(f"/v1/leads/{junk}/close", headers=manager, json={"outcome": "closed",
                                                                                "reason": "空号"})
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    async with unit_of_work(app.state.sessions) as session:
        tickets = {t.status for t in await session.scalars(select(Ticket))}
    assert tickets == {"resolved"}  # both tickets done; a later failure opens (and mentions) a new one


async def test_explicit_nulls_and_bad_team_lists_are_field_errors_not_500s(client, admin, app, make_source):
    await make_source(key="web")
    team = await make_team(app, reps=1)
    rep = team.reps[0].id
    answers = [
        await client.patch("/v1/sources/web", headers=admin, json={"name": None}),
        await client.patch(f"/v1/users/{rep}", headers=admin, json={"on_duty": None}),
        await client.patch(f"/v1/teams/{team.id}/members/{rep}", headers=bearer(team.tokens["manager"]),
                           json={"on_duty": None}),
        await client.post("/v1/teams", headers=admin, json={"name": "重复", "primary": [str(rep), str(rep)]}),
    ]
    assert [(r.status_code, r.json()["errors"][0]["field"]) for r in answers] == [
        (422, "name"), (422, "on_duty"), (422, "on_duty"), (422, "primary")]
    unknown = await client.put("/v1/teams/00000000-0000-7000-8000-000000000000/members", headers=admin,
                               json={"primary": [str(rep)]})
    assert unknown.status_code == 404
    cleared = await client.patch(f"/v1/teams/{team.id}/members/{rep}", headers=bearer(team.tokens["manager"]),
                                 json={"capacity": None})  # null is a value here: back to the default
    assert cleared.status_code == 200 and cleared.json()["user"]["capacity"] is None


async def test_a_managers_hand_out_is_not_undone_by_a_retry_queued_before_it(client, app, make_source, settings,
                                                                             clock):
    await make_source(key="web")
    team = await make_team(app, reps=2, rule={"claim_sla_minutes": 30}, rep_overrides=[{}, {"on_duty": False}])
    [number] = await post_leads(client, 1)
    await drain(app, settings, clock)  # rep0 has it, and lets the deadline pass
    clock.advance(minutes=31)
    assert await reassign_overdue(app.state.sessions, clock.now(), settings) == 1  # nobody else: a retry queued
    given = await client.post(f"/v1/leads/{number}/transfer", headers=bearer(team.tokens["manager"]),
                              json={"to_user_id": str(team.reps[0].id)})  # the manager: rep0 is back, take it
    assert given.status_code == 200
    clock.advance(seconds=settings.assignment_retry_seconds)
    await drain(app, settings, clock)  # the queued retry (excluding rep0) runs
    async with unit_of_work(app.state.sessions) as session:
        lead = await session.scalar(select(Lead))
    assert (lead.status, lead.assignee_id) == ("assigned", team.reps[0].id)


async def test_after_a_hand_out_and_a_return_one_chain_of_rounds_runs_not_two(client, app, make_source, settings,
                                                                              clock):
    await make_source(key="web")
    team = await make_team(app, reps=2, rep_overrides=[{"on_duty": False}, {"on_duty": False}])
    [number] = await post_leads(client, 1)
    await drain(app, settings, clock)  # round 1 fails: a retry is queued for +30 s
    manager = bearer(team.tokens["manager"])
    await client.patch(f"/v1/teams/{team.id}/members/{team.reps[0].id}", headers=manager, json={"on_duty": True})
    given = await client.post(f"/v1/leads/{number}/transfer", headers=manager,
                              json={"to_user_id": str(team.reps[0].id)})
    assert given.status_code == 200
    await client.post(f"/v1/leads/{number}/return", headers=bearer(team.tokens["rep0"]), json={"reason": "出差"})
    await drain(app, settings, clock)  # the return's round: rep1 is off duty, fails; its retry at +30 s
    clock.advance(seconds=settings.assignment_retry_seconds)
    await drain(app, settings, clock)
    async with unit_of_work(app.state.sessions) as session:
        lead = await session.scalar(select(Lead))
        queued = await session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.job == "assign_lead", OutboxMessage.processed_at.is_(None)))
    assert lead.assignment_attempts == 2 and queued == 1  # the retry queued before the hand-out did not run too


async def test_a_round_held_by_the_relay_during_a_return_does_not_give_the_lead_back(client, app, db, make_source,
                                                                                     settings, clock):
    """The sweep locks due rows while it hands them to Redis; a hand-out and a return at that moment could not
    retire such a round, which then ran without the returning rep excluded and gave the lead back to them."""
    from sqlalchemy import text

    await make_source(key="web")
    team = await make_team(app, reps=2, rule={"strategy": "least_loaded"},
                           rep_overrides=[{"on_duty": False}, {"on_duty": False}])
    [number, other] = await post_leads(client, 2)
    await drain(app, settings, clock)  # both fail: retries (no one excluded) are queued
    manager = bearer(team.tokens["manager"])
    for rep in team.reps:
        await client.patch(f"/v1/teams/{team.id}/members/{rep.id}", headers=manager, json={"on_duty": True})
    clock.advance(seconds=1)  # the return's round is written after the queued retries (and runs after them)
    async with db.connect() as conn:  # the relay holds the queued retries during the hand-outs and the return
        relay = await conn.begin()
        await conn.execute(text("SELECT id FROM outbox WHERE job = 'assign_lead' AND processed_at IS NULL "
                                "FOR UPDATE"))
        for lead_number, rep in ((number, team.reps[0]), (other, team.reps[1])):  # rep1 now has more pending
            await client.post(f"/v1/leads/{lead_number}/transfer", headers=manager,
                              json={"to_user_id": str(rep.id)})
        returned = await client.post(f"/v1/leads/{number}/return", headers=bearer(team.tokens["rep0"]),
                                     json={"reason": "不是我的区域"})
        await relay.commit()
    assert returned.status_code == 200
    clock.advance(seconds=settings.assignment_retry_seconds)
    await drain(app, settings, clock)  # the old retry (least loaded alone would pick rep0) and the return's round
    lead = (await client.get(f"/v1/leads/{number}", headers=manager)).json()
    assert (lead["status"], lead["assignee_id"]) == ("assigned", str(team.reps[1].id))
