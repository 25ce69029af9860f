"""R7.1: /healthz, /readyz, /metrics — for load balancers, orchestrators and Prometheus."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from app.db import unit_of_work
from app.domain.outbox.relay import backlog
from app.domain.readiness import check_readiness
from app.metrics import OUTBOX_BACKLOG
from app.queue import worker_heartbeat_key

router = APIRouter(tags=["health"])


class Alive(BaseModel):
    status: str = "ok"


class Readiness(BaseModel):
    status: str
    down: list[str]
    checks: dict[str, dict[str, Any]]


@router.get("/healthz", response_model=Alive, summary="The process is alive")
async def healthz() -> Alive:
    return Alive()


@router.get("/readyz", response_model=Readiness, summary="Ready to serve: database, Redis, migrations, worker",
            responses={503: {"model": Readiness, "description": "Something is down; `down` names it"}})
async def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    report = await check_readiness(state.engine, state.redis, state.settings.worker_heartbeat_max_age_seconds,
                                   worker_heartbeat_key(state.settings.queue_name))
    return JSONResponse(report, status_code=200 if report["status"] == "ready" else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
async def metrics(request: Request) -> Response:
    state = request.app.state
    try:
        async with unit_of_work(state.sessions) as session:
            OUTBOX_BACKLOG.set(await backlog(session, state.clock.now(),
                                             state.settings.outbox_late_after_seconds))
    except Exception:
        OUTBOX_BACKLOG.set(-1)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


