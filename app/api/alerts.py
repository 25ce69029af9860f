"""R3.4 / R3.5 API: stored alerts, the integration probe's brief, and running the probe now."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import SessionDep, get_clock, require_admin
from app.api.problems import problem_responses
from app.domain.alerts.probes import integration_briefs, run_probes
from app.domain.alerts.service import list_alerts
from app.domain.clock import Clock
from app.domain.notify.delivery import Channels

router = APIRouter(tags=["alerts"], dependencies=[Depends(require_admin)], responses=problem_responses(401, 403, 503))


class AlertOut(BaseModel):
    id: uuid.UUID
    key: str
    severity: str
    status: str
    message: str
    detail: dict[str, Any]
    first_at: datetime
    last_at: datetime
    last_sent_at: datetime | None
    send_count: int
    occurrences: int
    resolved_at: datetime | None


class IntegrationBrief(BaseModel):
    channel: str
    ok: bool
    since: datetime
    checked_at: datetime
    error_kind: str | None
    error: str | None
    detail: dict[str, Any]


@router.get("/v1/alerts", response_model=list[AlertOut], summary="Alerts, newest first")
async def alerts(status: Literal["firing", "resolved"] | None = None,
                 session: AsyncSession = SessionDep) -> list[AlertOut]:
    return [AlertOut.model_validate(a, from_attributes=True) for a in await list_alerts(session, status)]


@router.get("/v1/health/integrations", response_model=list[IntegrationBrief],
            summary="The integration probe's brief per channel: ok / failing, since when, last error")
async def integrations(session: AsyncSession = SessionDep) -> list[IntegrationBrief]:
    return [IntegrationBrief.model_validate(b, from_attributes=True) for b in await integration_briefs(session)]


@router.post("/v1/health/integrations/probe", response_model=list[IntegrationBrief],
             summary="Run the integration probe now")
async def probe_now(request: Request, session: AsyncSession = SessionDep,
                    clock: Clock = Depends(get_clock)) -> list[IntegrationBrief]:
    state = request.app.state
    await run_probes(session, Channels(http=state.http, redis=state.redis, settings=state.settings), clock.now(),
                     force=True)
    await session.flush()
    return [IntegrationBrief.model_validate(b, from_attributes=True) for b in await integration_briefs(session)]
