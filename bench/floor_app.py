"""The floor: the least an intake endpoint can do — Starlette + asyncpg, one INSERT per request."""

from __future__ import annotations

import os
import uuid
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DSN = os.environ["FLOOR_DSN"]


@asynccontextmanager
async def lifespan(app: Starlette):
    app.state.pool = await asyncpg.create_pool(DSN, min_size=10, max_size=20)
    async with app.state.pool.acquire() as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS floor_leads (id uuid PRIMARY KEY, body jsonb NOT NULL)")
    yield
    await app.state.pool.close()


async def intake(request: Request) -> JSONResponse:
    body = await request.body()
    lead_id = uuid.uuid4()
    async with request.app.state.pool.acquire() as conn:
        await conn.execute("INSERT INTO floor_leads (id, body) VALUES ($1, $2::jsonb)", lead_id, body.decode())
    return JSONResponse({"lead_id": str(lead_id)}, status_code=201)


app = Starlette(routes=[Route("/v1/intake/{key}", intake, methods=["POST"])], lifespan=lifespan)
