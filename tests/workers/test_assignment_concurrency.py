"""R2.12: four worker processes racing over a 500-lead burst: no rep over capacity, no lead assigned twice,
round-robin fair in every cycle."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter

from sqlalchemy import func, select

from app.domain.leads.models import AuditEntry, Lead
from app.domain.outbox.models import OutboxMessage
from tests.conftest import eventually
from tests.people import make_team

REPS, CAPACITY, LEADS, WORKERS = 7, 60, 500, 4


async def test_four_workers_never_overfill_a_rep_nor_assign_a_lead_twice(client, make_source, db, settings, app):
    await make_source(key="burst")
    team = await make_team(app, reps=REPS, rep_overrides=[{"capacity": CAPACITY} for _ in range(REPS)])
    posts = [client.post("/v1/intake/burst", json={"name": f"客户{i}", "phone": f"1390000{i:04d}"})
             for i in range(LEADS)]
    for chunk in range(0, LEADS, 50):
        assert {r.status_code for r in await asyncio.gather(*posts[chunk:chunk + 50])} == {201}

    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
           "LEADFLOW_ASSIGNMENT_RETRY_SECONDS": "600", "LOG_LEVEL": "WARNING"}
    workers = [await asyncio.create_subprocess_exec(sys.executable, "-m", "app.cli", "worker", env=env,
                                                    stderr=asyncio.subprocess.PIPE) for _ in range(WORKERS)]
    try:
        async def first_round_done():
            async with db.connect() as conn:
                left = await conn.scalar(select(func.count()).select_from(OutboxMessage).where(
                    OutboxMessage.processed_at.is_(None), OutboxMessage.not_before.is_(None)))
            return left == 0

        await eventually(first_round_done, within=90, interval=0.5)
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGINT)
        errors = [(await proc.communicate())[1].decode() for proc in workers]
    assert all("Traceback" not in e for e in errors), errors

    async with db.connect() as conn:
        per_rep = Counter(dict((await conn.execute(
            select(Lead.assignee_id, func.count()).where(Lead.assignee_id.is_not(None))
            .group_by(Lead.assignee_id))).all()))
        successes = (await conn.execute(
            select(AuditEntry.lead_id, AuditEntry.detail).where(AuditEntry.action == "assign",
                                                                AuditEntry.action_result == "success"))).all()
        waiting = await conn.scalar(select(func.count()).select_from(Lead).where(Lead.assignee_id.is_(None)))
    # no rep over capacity, and every slot used
    assert per_rep == {rep.id: CAPACITY for rep in team.reps}
    # no lead assigned twice
    assert len(successes) == REPS * CAPACITY == len({lead_id for lead_id, _ in successes})
    assert waiting == LEADS - REPS * CAPACITY
    # round-robin: in turn order, every cycle of REPS assignments reaches every rep once
    by_turn = [detail["assignee_id"] for _, detail in sorted(successes, key=lambda s: s[1]["turn"])]
    cycles = [by_turn[i:i + REPS] for i in range(0, len(by_turn), REPS)]
    assert all(len(set(cycle)) == REPS for cycle in cycles)
