"""Admin API for sources (R1.1) and their stored submissions (R1.6)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import SessionDep, get_clock, get_principal, require_admin
from app.api.problems import problem_responses
from app.api.submissions import SubmissionOut, submission_out
from app.domain.alerts.watch import report_count
from app.domain.clock import Clock
from app.domain.intake.submissions import list_submissions
from app.domain.people.service import Principal
from app.domain.sources import service
from app.domain.sources.schemas import SourceIn, SourceOut, SourcePatch
from app.domain.sources.status import source_statuses

router = APIRouter(tags=["sources"], dependencies=[Depends(require_admin)],
                   responses=problem_responses(401, 503))


@router.post("/v1/sources", status_code=201, response_model=SourceOut, summary="Create a source",
             responses=problem_responses(409, 422))
async def create_source(data: SourceIn, session: AsyncSession = SessionDep,
                        clock: Clock = Depends(get_clock)) -> SourceOut:
    return service.to_out(await service.create_source(session, data, clock))


@router.get("/v1/sources", response_model=list[SourceOut], summary="List sources")
async def list_sources(session: AsyncSession = SessionDep) -> list[SourceOut]:
    return [service.to_out(s) for s in await service.list_sources(session)]


class SourceStatus(BaseModel):
    key: str
    name: str
    kind: str
    enabled: bool
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_failure_reasons: list[dict[str, Any]]
    counts_24h: dict[str, int] = Field(description="submissions in the last 24 h by outcome")
    stale: bool = Field(description="enabled and no successful submission in 24 h")


@router.get("/v1/sources/status", response_model=list[SourceStatus], summary="Sync status per source (R1.8)")
async def sources_status(session: AsyncSession = SessionDep, clock: Clock = Depends(get_clock)) -> list[SourceStatus]:
    return [SourceStatus(**entry) for entry in await source_statuses(session, clock.now())]


class ReportedCountIn(BaseModel):
    period_start: AwareDatetime = Field(description="With its offset, e.g. 2026-11-25T00:00:00+08:00")
    period_end: AwareDatetime
    count: int = Field(ge=0, description="How many submissions the form side sent in [start, end)")


class ReportedCountOut(BaseModel):
    period_start: datetime
    period_end: datetime
    reported: int
    received: int = Field(description="Leads we accepted or merged in the period")
    gap: float = Field(description="(reported - received) / reported; over LEADFLOW_RECONCILE_GAP alerts")


@router.get("/v1/sources/{key}", response_model=SourceOut, summary="One source",
            responses=problem_responses(404))
async def get_source(key: str, session: AsyncSession = SessionDep) -> SourceOut:
    return service.to_out(await service.get_source(session, key))


@router.patch("/v1/sources/{key}", response_model=SourceOut, summary="Change a source (mapping, options, auth…)",
              responses=problem_responses(404, 422))
async def update_source(key: str, patch: SourcePatch, request: Request,
                        session: AsyncSession = SessionDep, clock: Clock = Depends(get_clock)) -> SourceOut:
    updated = service.to_out(await service.update_source(session, key, patch, clock))
    request.app.state.sources.invalidate(key)  # this process at once; others within LEADFLOW_SOURCE_CACHE_SECONDS
    return updated


@router.get("/v1/sources/{key}/submissions", response_model=list[SubmissionOut],
            summary="Stored submissions of a source, newest first", responses=problem_responses(404, 422))
async def source_submissions(
    key: str,
    outcome: Literal["accepted", "merged", "duplicate", "rejected", "spam"] | None = None,
    before: datetime | None = Query(default=None, description="Page: received_at of the last item seen"),
    limit: int = Query(default=50, ge=1, le=500),
    session: AsyncSession = SessionDep,
) -> list[SubmissionOut]:
    rows = await list_submissions(session, key, outcome=outcome, before=before, limit=limit)
    return [submission_out(s) for s in rows]


reporting = APIRouter(tags=["sources"], responses=problem_responses(401, 403, 503))


@reporting.post("/v1/sources/{key}/reported-counts", status_code=201, response_model=ReportedCountOut,
                summary="The form side reports how many submissions it sent (R1.10)",
                responses=problem_responses(404, 422))
async def reported_counts(key: str, data: ReportedCountIn, request: Request,
                          principal: Principal = Depends(get_principal), session: AsyncSession = SessionDep,
                          clock: Clock = Depends(get_clock)) -> ReportedCountOut:
    principal.require("source.report")
    row = await report_count(session, key, data.period_start, data.period_end, data.count, clock.now(),
                             request.app.state.settings)
    return ReportedCountOut.model_validate(row, from_attributes=True)
