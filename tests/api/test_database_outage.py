"""R1.3: a lead ID is returned only after commit; with PostgreSQL down the answer is 503 + Retry-After."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from app.domain.leads.models import Lead
from tests.conftest import eventually


async def test_database_stopped_mid_run_gives_503_and_every_2xx_lead_id_exists(client, make_source, stack, db):
    await make_source(key="web")
    answers = []

    async def post(i: int):
        r = await client.post("/v1/intake/web", json={"name": f"客户{i}", "phone": f"1390013{i:04d}"})
        answers.append(r)
        return r

    for i in range(5):
        await post(i)
    stopping = asyncio.create_task(asyncio.to_thread(stack.stop_postgres))
    i = 5
    while not stopping.done():  # requests keep coming while the database goes away
        await post(i)
        i += 1
    await stopping
    down = [await post(i + n) for n in range(3)]
    assert all(r.status_code == 503 for r in down)
    problem = down[0].json()
    assert down[0].headers["retry-after"] == "3" and problem["type"].endswith("dependency-unavailable")
    assert down[0].headers["content-type"] == "application/problem+json" and "lead_id" not in problem
    assert problem["dependency"] == "database" and "127.0.0.1" not in down[0].text  # no internals leak
    await asyncio.to_thread(stack.start_postgres)
    after = await eventually(lambda: _retry_ok(client), within=20)
    assert after.status_code == 201
    answers.append(after)

    assert {r.status_code for r in answers} <= {201, 503}
    promised = {r.json()["lead_id"] for r in answers if r.status_code == 201}
    async with db.connect() as conn:
        stored = set((await conn.execute(select(Lead.lead_number))).scalars())
    assert promised <= stored and len(promised) >= 6


async def _retry_ok(client):
    r = await client.post("/v1/intake/web", json={"name": "回来了", "phone": "13900139999"})
    return r if r.status_code == 201 else None


async def test_readyz_names_the_database_when_it_is_down(client, stack, db):
    await asyncio.to_thread(stack.stop_postgres)
    try:
        r = await client.get("/readyz")
        assert r.status_code == 503 and "database" in r.json()["down"]
    finally:
        await asyncio.to_thread(stack.start_postgres)
