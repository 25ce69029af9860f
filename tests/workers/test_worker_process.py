"""The worker as ops start it (`leadflow worker`, its own process), not only in-process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from sqlalchemy import select

from app.domain.leads.models import Lead
from tests.conftest import eventually
from tests.people import make_team


async def test_worker_process_assigns_leads_and_stops_cleanly_on_sigint(client, make_source, db, settings, app):
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
           "LEADFLOW_WORKER_HEARTBEAT_INTERVAL": "0.2"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "app.cli", "worker", env=env,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        await make_source(key="web")
        await make_team(app, reps=1)
        r = await client.post("/v1/intake/web", json={"name": "张三", "phone": "13800138000"})

        async def awaiting():
            async with db.connect() as conn:
                status = (await conn.execute(select(Lead.status))).scalar_one()
            return status == "assigned"

        await eventually(awaiting, within=20)
        ready = await eventually(lambda: _ready(client), within=10)
        assert ready.json()["checks"]["worker"]["ok"] and r.status_code == 201
        # intake goes first where they share CPUs: the worker runs at LEADFLOW_WORKER_NICE (default 10)
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == max(10, os.getpriority(os.PRIO_PROCESS, 0))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, stderr = await asyncio.wait_for(proc.communicate(), 20)
        except TimeoutError:  # say what it was doing, not only that it hung
            proc.kill()
            _, stderr = await proc.communicate()
            raise AssertionError("worker still running 20 s after SIGINT:\n" + stderr.decode()[-3000:]) from None
    assert proc.returncode == 0, stderr.decode()[-2000:]
    assert b"Traceback" not in stderr, stderr.decode()[-2000:]


async def _ready(client):
    r = await client.get("/readyz")
    return r if r.status_code == 200 else None
