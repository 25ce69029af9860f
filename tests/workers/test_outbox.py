"""R1.12: the assignment job is written with the lead and reaches the queue — even across a Redis outage."""

from __future__ import annotations

from sqlalchemy import func, select

from app.domain.clock import SystemClock
from app.domain.leads.models import AuditEntry, Lead
from app.domain.outbox.models import OutboxMessage
from app.domain.outbox.relay import enqueue, sweep
from tests.conftest import eventually
from tests.people import make_team


async def statuses(db) -> list[str]:
    async with db.connect() as conn:
        return list((await conn.execute(select(Lead.status).order_by(Lead.created_at))).scalars())


async def unprocessed(db) -> int:
    async with db.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.processed_at.is_(None), OutboxMessage.job == "assign_lead"))).scalar_one()


async def test_accepted_lead_is_queued_and_assigned_by_the_worker(client, make_source, db, worker, app):
    await make_source(key="web")
    await make_team(app, reps=1)
    r = await client.post("/v1/intake/web", json={"name": "张三", "phone": "13800138000"})
    assert r.status_code == 201
    await eventually(lambda: _all_assigned(db, 1))
    async with db.connect() as conn:
        [entry] = (await conn.execute(select(AuditEntry).where(AuditEntry.action == "assign"))).all()
    assert (entry.action_result, entry.detail["assignee"]) == ("success", "rep0")


async def _all_assigned(db, n: int) -> bool:
    return await statuses(db) == ["assigned"] * n and await unprocessed(db) == 0


async def test_handing_the_same_row_over_twice_runs_the_job_once(client, make_source, db, worker, app):
    await make_source(key="web")
    await make_team(app, reps=2)
    await client.post("/v1/intake/web", json={"name": "张三", "phone": "13800138000"})
    await eventually(lambda: _all_assigned(db, 1))
    async with db.connect() as conn:
        outbox_id = (await conn.execute(
            select(OutboxMessage.id).where(OutboxMessage.job == "assign_lead"))).scalar_one()
    await enqueue(app.state.redis, "assign_lead", outbox_id)
    await sweep(app.state.sessions, app.state.redis, SystemClock(), requeue_after_seconds=0)
    await worker.pool.enqueue_job("assign_lead", str(outbox_id))  # even a job under another id is a no-op
    async with db.connect() as conn:
        await eventually(lambda: _queue_empty(worker))
        n = (await conn.execute(select(func.count()).select_from(AuditEntry)
                                .where(AuditEntry.action == "assign"))).scalar_one()
    assert n == 1


async def _queue_empty(worker) -> bool:
    return await worker.pool.zcard(worker.queue_name) == 0 and not worker.tasks


async def test_with_redis_down_intake_still_answers_and_every_job_runs_once_redis_is_back(
    client, make_source, db, worker, stack, app
):
    await make_source(key="web")
    await make_team(app, reps=5)
    stack.stop_redis()
    try:
        answers = [await client.post("/v1/intake/web", json={"name": f"客户{i}", "phone": f"1380013{i:04d}"})
                   for i in range(5)]
        assert [a.status_code for a in answers] == [201] * 5
        assert await unprocessed(db) == 5
    finally:
        stack.start_redis()
    await eventually(lambda: _all_assigned(db, 5), within=20)


async def test_a_sweep_hands_over_every_row_once_across_its_concurrent_chunks(client, make_source, db, app, settings):
    await make_source(key="web")
    for i in range(120):  # more than two chunks of ENQUEUE_CONCURRENCY; no worker runs, so nothing is taken
        r = await client.post("/v1/intake/web", json={"name": f"客户{i}", "phone": f"1380013{i:04d}"})
        assert r.status_code == 201
    handed = await sweep(app.state.sessions, app.state.redis, SystemClock(), requeue_after_seconds=60)
    assert handed == 120
    assert await app.state.redis.zcard(settings.queue_name) == 120
    async with db.connect() as conn:
        marked = (await conn.execute(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.enqueued_at.is_not(None), OutboxMessage.enqueue_attempts == 1))).scalar_one()
    assert marked == 120
    assert await sweep(app.state.sessions, app.state.redis, SystemClock(), requeue_after_seconds=60) == 0
