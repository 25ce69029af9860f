"""The field guide's 14:23 outage, reproduced: WeCom starts refusing our IP (60020) mid-run.

Assignment must keep running as if nothing happened, every refused push must be recorded with the IP and
the fix, and once WeCom accepts again every pending notification must be delivered exactly once.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import select, update

from app.domain.assignment.models import Notification
from app.domain.leads.models import AuditEntry, Lead
from app.settings import Settings
from tests.conftest import ADMIN_TOKEN, eventually
from tests.fakes.wecom import CALLER_IP
from tests.people import make_team


@pytest.fixture
def settings(stack, fake) -> Settings:
    return Settings(
        DATABASE_URL=stack.database_url, REDIS_URL=stack.redis_url, LEADFLOW_ADMIN_TOKEN=ADMIN_TOKEN,
        LEADFLOW_OUTBOX_SWEEP_INTERVAL=0.1, LEADFLOW_WORKER_HEARTBEAT_INTERVAL=0.2,
        LEADFLOW_WECOM_BASE_URL=fake.base_url, LEADFLOW_WECOM_CORP_ID=fake.corp_id,
        LEADFLOW_WECOM_SECRET=fake.secret, LEADFLOW_WECOM_AGENT_ID=fake.agent_id,
        LEADFLOW_EGRESS_IPS=["198.51.100.7"], LEADFLOW_NOTIFY_RETRY_BASE_SECONDS=0.2,
        LEADFLOW_NOTIFY_RETRY_MAX_SECONDS=0.5, LEADFLOW_OPS_WECOM_ROBOT_KEY="robot-key",
        LEADFLOW_ASSIGNMENT_RETRY_SECONDS=0.1)


async def post(client, start: int, n: int) -> list[str]:
    numbers = []
    for i in range(start, start + n):
        r = await client.post("/v1/intake/web", json={"name": f"客户{i}", "phone": f"1370000{i:04d}"})
        assert r.status_code == 201
        numbers.append(r.json()["lead_id"])
    return numbers


async def rows(db, model, *where):
    async with db.connect() as conn:
        return (await conn.execute(select(model).where(*where))).all()


async def test_ip_refusal_costs_no_assignment_and_every_push_arrives_once_after(
    client, make_source, db, app, worker, fake
):
    await make_source(key="web")
    await make_team(app, reps=2, rep_overrides=[{"wecom_userid": "rep0"}, {"wecom_userid": "rep1"}])
    before = await post(client, 0, 3)

    async def all_sent(n):
        sent = await rows(db, Notification, Notification.status == "sent")
        return len(sent) == n

    await eventually(lambda: all_sent(3), within=15)
    pushed = await rows(db, Lead, Lead.pushed_at.is_not(None))
    assert len(pushed) == 3
    successes = await rows(db, AuditEntry, AuditEntry.action == "notify", AuditEntry.action_result == "success")
    assert {s.reason for s in successes} == {"send_to_wx_success"} and len(successes) == 3

    fake.refuse_ip = True  # 14:23
    during = await post(client, 10, 4)

    async def assigned_and_refused():
        assigned = await rows(db, Lead, Lead.lead_number.in_(during), Lead.status == "assigned")
        refused = await rows(db, AuditEntry, AuditEntry.action == "notify", AuditEntry.reason == "ip_not_allowed")
        return len(assigned) == 4 and len(refused) >= 4

    await eventually(assigned_and_refused, within=15)
    # assignment did not wait for WeCom: each lead was matched as fast during the outage as before it
    for lead in await rows(db, Lead, Lead.lead_number.in_(before + during)):
        assert (lead.matched_at - lead.triggered_at).total_seconds() < 3, lead.lead_number
    refused = await rows(db, AuditEntry, AuditEntry.action == "notify", AuditEntry.reason == "ip_not_allowed")
    assert refused[0].detail["ip"] == CALLER_IP and "企业可信IP" in refused[0].detail["fix"]
    assert "NOT in LEADFLOW_EGRESS_IPS" in refused[0].detail["fix"]
    assert len(fake.messages) == 3

    # ops heard about it once, on the first failed push, with the IP and what to do (not once per failure)
    async def alerted():
        return [m for m in fake.robot_messages if "【告警】wecom:ip_not_allowed" in m["text"]["content"]]

    [alert] = await eventually(alerted, within=10)
    assert CALLER_IP in alert["text"]["content"] and "企业可信IP" in alert["text"]["content"]

    fake.refuse_ip = False  # fixed in the admin console
    await eventually(lambda: all_sent(7), within=20)
    per_lead = Counter(m["text"]["content"].split()[1] for m in fake.messages)
    assert sorted(per_lead) == sorted(before + during) and set(per_lead.values()) == {1}

    async def recovered():
        return [m for m in fake.robot_messages if m["text"]["content"].startswith("【恢复】wecom:ip_not_allowed")]

    await eventually(recovered, within=10)
    assert len(await alerted()) == 1


async def test_preferences_and_missing_addresses_are_recorded_not_silent(client, make_source, db, app, worker, fake):
    await make_source(key="web")
    await make_team(app, reps=2, rep_overrides=[{"wecom_userid": "rep0", "notify_kinds": ["todo_overdue"]}, {}])
    await post(client, 0, 2)

    async def settled():
        return len(await rows(db, Notification, Notification.status != "pending")) == 2

    await eventually(settled, within=15)
    statuses = {n.status for n in await rows(db, Notification)}
    assert statuses == {"suppressed", "undeliverable"} and fake.messages == []
    reasons = {a.reason for a in await rows(db, AuditEntry, AuditEntry.action == "notify")}
    assert reasons == {"preference", "no_channel_or_address"}


async def test_the_probe_finds_the_ip_block_before_any_push_and_clears_it(client, admin, db, app, fake):
    fake.refuse_ip = True
    failing = (await client.post("/v1/health/integrations/probe", headers=admin)).json()
    assert failing[0]["channel"] == "wecom_app" and failing[0]["ok"] is False
    assert failing[0]["error_kind"] == "ip_not_allowed" and failing[0]["detail"]["ip"] == CALLER_IP
    [firing] = (await client.get("/v1/alerts?status=firing", headers=admin)).json()
    assert firing["key"] == "probe:wecom_app" and CALLER_IP in firing["message"]
    ready = (await client.get("/readyz")).json()
    assert ready["integrations"]["wecom_app"]["ok"] is False  # shown, but not a reason to stop serving
    fake.refuse_ip = False
    ok = (await client.post("/v1/health/integrations/probe", headers=admin)).json()
    assert ok[0]["ok"] is True and ok[0]["since"] != failing[0]["since"]
    assert (await client.get("/v1/alerts?status=firing", headers=admin)).json() == []
    [resolved] = (await client.get("/v1/alerts?status=resolved", headers=admin)).json()
    assert resolved["key"] == "probe:wecom_app" and resolved["resolved_at"] is not None


async def test_a_gap_over_ten_percent_between_reported_and_received_alerts(client, admin, make_source, fake, app):
    from datetime import UTC, datetime, timedelta

    await make_source(key="web")
    start = datetime.now(UTC) - timedelta(minutes=5)
    await post(client, 0, 8)
    end = datetime.now(UTC)
    body = {"period_start": start.isoformat(), "period_end": end.isoformat()}
    fine = await client.post("/v1/sources/web/reported-counts", headers=admin, json=body | {"count": 8})
    assert fine.status_code == 201 and fine.json()["gap"] == 0
    short = await client.post("/v1/sources/web/reported-counts", headers=admin, json=body | {"count": 10})
    assert short.json()["received"] == 8 and short.json()["gap"] == pytest.approx(0.2)
    [firing] = (await client.get("/v1/alerts?status=firing", headers=admin)).json()
    assert firing["key"] == f"intake_gap:web:{start:%Y%m%dT%H%M}" and "sent 10" in firing["message"]
    assert "took 8" in firing["message"] and "(Asia/Shanghai)" in firing["message"]
    future = {"period_start": start.isoformat(), "period_end": (end + timedelta(hours=1)).isoformat(), "count": 1}
    assert (await client.post("/v1/sources/web/reported-counts", headers=admin, json=future)).status_code == 422


async def test_reconciliation_counts_a_replayed_lead_in_the_period_the_form_sent_it(client, admin, make_source, db):
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    await make_source(key="expo")
    ok = await client.post("/v1/intake/expo", json={"name": "甲", "phone": "13600000001"})
    bad = await client.post("/v1/intake/expo", json={"name": "乙", "联系电话": "13600000002"})
    assert ok.status_code == 201 and bad.status_code == 422
    async with db.begin() as conn:  # both were sent yesterday
        await conn.execute(text("UPDATE submissions SET received_at = received_at - interval '1 day'"))
    too_soon = await client.post(f"/v1/submissions/{bad.json()['submission_id']}/replay", headers=admin)
    assert too_soon.status_code == 422  # replayed before the fix: rejected again, a replay of the original
    await client.patch("/v1/sources/expo", headers=admin, json={"field_mapping": {"联系电话": "phone"}})
    replayed = await client.post(f"/v1/submissions/{too_soon.json()['submission_id']}/replay", headers=admin)
    assert replayed.status_code == 201  # today, a replay of the failed replay
    now = datetime.now(UTC)
    yesterday = {"period_start": (now - timedelta(days=2)).isoformat(), "period_end": (now - timedelta(hours=1))
                 .isoformat(), "count": 2}
    today = {"period_start": (now - timedelta(hours=1)).isoformat(), "period_end": now.isoformat(), "count": 0}
    assert (await client.post("/v1/sources/expo/reported-counts", headers=admin, json=yesterday)).json()[
        "received"] == 2  # the replayed lead counts when the form sent it, however many replays it took
    assert (await client.post("/v1/sources/expo/reported-counts", headers=admin, json=today)).json()[
        "received"] == 0  # not again on the day of the replay
    naive = await client.post("/v1/sources/expo/reported-counts", headers=admin,
                              json=today | {"period_start": "2026-11-25T00:00:00"})
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "period_start"  # was a 500
    status = {s["key"]: s for s in (await client.get("/v1/sources/status", headers=admin)).json()}
    assert status["expo"]["last_success_at"] < (now - timedelta(hours=12)).isoformat()  # a replay is no sign of life


async def test_watch_alerts_on_stale_sources_failed_assignments_and_recovers(client, admin, make_source, app, db,
                                                                             settings):
    from datetime import UTC, datetime

    from sqlalchemy import text

    from app.db import unit_of_work
    from app.domain.alerts.watch import watch

    await make_source(key="quiet")
    await make_source(key="busy")
    await post_to(client, "busy", 1)
    async with db.begin() as conn:
        await conn.execute(text("UPDATE leads SET status = 'assignment_failed'"))
        await conn.execute(text("UPDATE sources SET created_at = now() - interval '3 days'"))
    async with unit_of_work(app.state.sessions) as session:
        await watch(session, datetime.now(UTC), settings)
    keys = {a["key"] for a in (await client.get("/v1/alerts?status=firing", headers=admin)).json()}
    assert keys == {"source_stale:quiet", "assignment_failed"}
    async with db.begin() as conn:
        await conn.execute(text("UPDATE leads SET status = 'lost'"))
    async with unit_of_work(app.state.sessions) as session:
        await watch(session, datetime.now(UTC), settings)
    keys = {a["key"] for a in (await client.get("/v1/alerts?status=firing", headers=admin)).json()}
    assert keys == {"source_stale:quiet"}


async def test_the_backlog_alert_counts_late_work_not_leads_waiting_for_the_morning(client, admin, make_source, app,
                                                                                     settings):
    from datetime import UTC, datetime, timedelta

    from app.db import unit_of_work
    from app.domain.alerts.watch import watch
    from app.domain.outbox.models import OutboxMessage

    now = datetime.now(UTC)
    hour_ago = now - timedelta(hours=1)
    async with unit_of_work(app.state.sessions) as session:  # written last night, due when the window opens
        session.add_all([OutboxMessage(job="assign_lead", payload={}, created_at=hour_ago,
                                       not_before=now + timedelta(hours=8))
                         for _ in range(settings.outbox_backlog_alert)])
    async with unit_of_work(app.state.sessions) as session:
        await watch(session, now, settings)
    assert (await client.get("/v1/alerts?status=firing", headers=admin)).json() == []
    async with unit_of_work(app.state.sessions) as session:  # the same rows, now an hour overdue: a stalled worker
        await session.execute(update(OutboxMessage).values(not_before=hour_ago))
        await watch(session, now, settings)
    [firing] = (await client.get("/v1/alerts?status=firing", headers=admin)).json()
    assert firing["key"] == "outbox_backlog" and firing["severity"] == "critical"


async def post_to(client, key: str, n: int) -> None:
    for i in range(n):
        r = await client.post(f"/v1/intake/{key}", json={"name": f"甲{i}", "phone": f"1360000{i:04d}"})
        assert r.status_code == 201


async def test_staged_config_changes_probe_each_step_and_roll_back(client, admin, db, app, fake):
    base = {"corp_id": fake.corp_id, "agent_id": fake.agent_id, "base_url": fake.base_url}
    good = await client.post("/v1/integrations/wecom_app/versions", headers=admin, json=base | {"secret": fake.secret})
    assert good.status_code == 201 and good.json()["stage"] == "sandbox" and good.json()["probe_ok"] is True
    assert good.json()["config"]["secret_set"] is True and fake.secret not in good.text
    for stage in ("canary", "full"):
        r = await client.post("/v1/integrations/wecom_app/versions/1/promote", headers=admin)
        assert r.status_code == 200 and r.json()["stage"] == stage
    bad = await client.post("/v1/integrations/wecom_app/versions", headers=admin, json=base | {"secret": "wrong"})
    assert bad.json()["version"] == 2 and bad.json()["probe_ok"] is False
    refused = await client.post("/v1/integrations/wecom_app/versions/2/promote", headers=admin)
    assert refused.status_code == 409 and refused.json()["code"] == "probe_failed"
    # a second good version goes all the way, then is rolled back to version 1
    await client.post("/v1/integrations/wecom_app/versions", headers=admin, json=base | {"secret": fake.secret})
    for _ in range(2):
        await client.post("/v1/integrations/wecom_app/versions/3/promote", headers=admin)
    back = await client.post("/v1/integrations/wecom_app/rollback", headers=admin)
    assert back.json()["version"] == 1 and back.json()["stage"] == "full"
    stages = {v["version"]: v["stage"] for v in (await client.get("/v1/integrations/wecom_app/versions",
                                                                  headers=admin)).json()}
    assert stages == {1: "full", 2: "sandbox", 3: "rolled_back"}
    async with db.connect() as conn:
        actions = [(a.action, a.action_result) for a in (await conn.execute(
            select(AuditEntry).where(AuditEntry.action.like("integration_%")).order_by(AuditEntry.created_at))).all()]
    assert ("integration_promote", "failed") in actions and actions[-1] == ("integration_rollback", "success")


async def test_the_probe_checks_the_full_version_and_the_canary_each_on_its_own_brief(client, admin, db, app, fake):
    from sqlalchemy import text

    base = {"corp_id": fake.corp_id, "agent_id": fake.agent_id, "base_url": fake.base_url, "secret": fake.secret}
    for version, stages in ((1, ("canary", "full")), (2, ("canary",))):
        await client.post("/v1/integrations/wecom_app/versions", headers=admin, json=base)
        for _ in stages:
            await client.post(f"/v1/integrations/wecom_app/versions/{version}/promote", headers=admin)
    async with db.begin() as conn:  # the canary's secret is revoked after it was promoted
        await conn.execute(text("UPDATE integration_configs SET config = config || '{\"secret\": \"revoked\"}' "
                                "WHERE version = 2"))
    for _ in range(4):  # the same answer every time, not a coin toss between the two versions
        briefs = {b["channel"]: b["ok"] for b in
                  (await client.post("/v1/health/integrations/probe", headers=admin)).json()}
        assert briefs == {"wecom_app": True, "wecom_app:canary": False}
    assert [a["key"] for a in (await client.get("/v1/alerts?status=firing", headers=admin)).json()] == [
        "probe:wecom_app:canary"]
    await client.post("/v1/integrations/wecom_app/rollback", headers=admin)  # the canary is withdrawn
    briefs = (await client.post("/v1/health/integrations/probe", headers=admin)).json()
    assert [b["channel"] for b in briefs] == ["wecom_app"]
    assert (await client.get("/v1/alerts?status=firing", headers=admin)).json() == []


async def test_a_lead_nobody_can_take_mentions_the_manager_in_the_team_group(client, make_source, db, app, worker,
                                                                             fake):
    from sqlalchemy import update

    from app.domain.people.models import Team, User

    await make_source(key="web")
    team = await make_team(app, reps=1, rep_role="viewer")
    async with db.begin() as conn:
        await conn.execute(update(Team).values(wecom_robot_key="robot-key"))
        await conn.execute(update(User).where(User.id == team.manager.id).values(wecom_userid="manager"))
    [number] = await post(client, 0, 1)

    async def escalated():
        return [m for m in fake.robot_messages if number in m["text"]["content"]]

    [message] = await eventually(escalated, within=15)
    assert message["text"]["mentioned_list"] == ["manager"] and "no_claim_permission" in message["text"]["content"]


async def test_a_hanging_wecom_does_not_hold_up_assignment(client, make_source, app, db, worker, fake):
    """Deliveries hold a database connection across the WeCom call; when WeCom hangs they must not take all of
    them: leads keep being assigned at once (R3.2)."""
    await make_source(key="web")
    await make_team(app, reps=2, rep_overrides=[{"wecom_userid": "rep0", "capacity": 50},
                                                {"wecom_userid": "rep1", "capacity": 50}])
    fake.answer_after_seconds = 4.0  # under the 5 s read timeout: every push is stuck for 4 s
    await post(client, 0, 30)  # more pushes than the worker's 20 job slots, too

    async def assigned(n):
        return len(await rows(db, Lead, Lead.status == "assigned")) == n

    await eventually(lambda: assigned(30), within=8)
    await asyncio.sleep(0.7)  # their thirty pushes are now hanging on WeCom, or waiting for a slot
    await post(client, 30, 4)
    # when pushes held every connection: over 3 s; when the waiting ones held every job slot: over 10 s
    await eventually(lambda: assigned(34), within=2.5)
    fake.answer_after_seconds = 0.0


async def test_a_push_retried_past_a_reassignment_reaches_only_the_new_rep(client, make_source, app, fake,
                                                                          settings):
    """The outage outlasts the claim SLA: rep0's "assigned to you" must not arrive after rep1 got the lead."""
    from datetime import UTC, datetime

    from app.db import unit_of_work
    from app.domain.assignment.actions import reassign_overdue
    from app.domain.clock import FrozenClock
    from tests.people import drain

    clock = FrozenClock(datetime.now(UTC))

    async def deliver_due() -> list[str]:
        return await deliver_due_notifications(app, settings, clock.now())

    await make_source(key="web")
    team = await make_team(app, reps=2, rule={"claim_sla_minutes": 30},
                           rep_overrides=[{"wecom_userid": "rep0"}, {"wecom_userid": "rep1"}])
    fake.refuse_ip = True
    await post(client, 0, 1)
    await drain(app, settings, clock)
    assert await deliver_due() == ["retry"]
    clock.advance(minutes=31)
    assert await reassign_overdue(app.state.sessions, clock.now(), settings) == 1
    fake.refuse_ip = False
    clock.advance(minutes=5)
    # rep1: assigned; rep0: to-do overdue (sent) and the stale assignment (superseded); the manager has no WeCom id
    assert sorted(await deliver_due()) == ["sent", "sent", "superseded", "undeliverable"]
    assert [m["touser"] for m in fake.messages if "分配给你" in m["text"]["content"]] == ["rep1"]
    async with unit_of_work(app.state.sessions) as session:
        lead = await session.scalar(select(Lead))
        superseded = await session.scalar(select(Notification).where(Notification.status == "superseded"))
    assert lead.assignee_id == team.reps[1].id and superseded.user_id == team.reps[0].id
    assert lead.pushed_at >= lead.matched_at  # match→push is rep1's, not negative


async def deliver_due_notifications(app, settings, now) -> list[str]:
    """Run every due deliver_notification row once, as the worker would; their results."""
    from app.db import unit_of_work
    from app.domain.notify.delivery import Channels, deliver_notification
    from app.domain.outbox.models import OutboxMessage

    channels = Channels(http=app.state.http, redis=app.state.redis, settings=settings)
    async with unit_of_work(app.state.sessions) as session:
        due = list(await session.scalars(select(OutboxMessage.id).where(
            OutboxMessage.job == "deliver_notification", OutboxMessage.processed_at.is_(None),
            OutboxMessage.not_before.is_(None) | (OutboxMessage.not_before <= now))))
    results = []
    for outbox_id in due:
        async with unit_of_work(app.state.sessions) as session:
            results.append(await deliver_notification(session, outbox_id, now, channels))
    return results


async def test_a_push_wecom_accepts_but_the_rep_cannot_read_is_a_failure_that_names_them(
        client, make_source, app, fake, settings, admin):
    """errcode 0 with the recipient under unlicenseduser: nobody got it, so it is not send_to_wx_success."""
    from datetime import UTC, datetime

    from app.db import unit_of_work
    from app.domain.clock import SystemClock
    from tests.people import drain

    await make_source(key="web")
    team = await make_team(app, reps=1, rep_overrides=[{"wecom_userid": "rep0"}])
    fake.unlicensed = {"rep0"}
    await post(client, 0, 1)
    await drain(app, settings, SystemClock())
    assert await deliver_due_notifications(app, settings, datetime.now(UTC)) == ["failed"]  # not worth retrying
    assert fake.messages == []
    async with unit_of_work(app.state.sessions) as session:
        lead = await session.scalar(select(Lead))
        notification = await session.scalar(select(Notification))
        pushes = await session.scalar(select(AuditEntry).where(AuditEntry.reason == "send_to_wx_success"))
    assert lead.pushed_at is None and pushes is None and notification.error_kind == "recipients_invalid"
    [alert] = (await client.get("/v1/alerts?status=firing", headers=admin)).json()
    assert alert["key"] == f"wecom:recipients_invalid:{team.reps[0].id}"
    assert "rep0" in alert["message"] and "unlicenseduser" in alert["message"]
