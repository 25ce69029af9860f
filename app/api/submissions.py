"""Admin API: one submission, and replaying a rejected one (R1.6, R1.7)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import SessionDep, get_intake_context, require_admin
from app.api.problems import problem_responses
from app.domain.intake.models import Submission
from app.domain.intake.service import IntakeContext
from app.domain.intake.submissions import get_submission, replay_submission

router = APIRouter(tags=["submissions"], dependencies=[Depends(require_admin)],
                   responses=problem_responses(401, 503))


class SubmissionOut(BaseModel):
    id: uuid.UUID
    source_id: uuid.UUID
    received_at: datetime
    outcome: str = Field(description="accepted | merged | duplicate | rejected | spam")
    lead_id: str | None = Field(description="The lead number this request was answered with")
    reasons: list[dict[str, Any]]
    mapping_log: list[dict[str, Any]] = Field(
        description="Per incoming field: mapped / unmapped / invalid / empty / superseded / ignored / meta")
    content_type: str | None
    raw_body: str = Field(description="The body exactly as received (UTF-8, undecodable bytes replaced)")
    body_truncated: bool
    remote_addr: str | None
    idempotency_key: str | None
    replay_of: uuid.UUID | None
    replayed_by: uuid.UUID | None


class ReplayResult(BaseModel):
    lead_id: str
    submission_id: uuid.UUID
    status: str


def submission_out(s: Submission) -> SubmissionOut:
    return SubmissionOut(
        id=s.id, source_id=s.source_id, received_at=s.received_at, outcome=s.outcome,
        lead_id=s.answered_lead_number, reasons=s.reasons, mapping_log=s.mapping_log,
        content_type=s.content_type, raw_body=s.raw_body.decode("utf-8", errors="replace"),
        body_truncated=s.body_truncated, remote_addr=s.remote_addr, idempotency_key=s.idempotency_key,
        replay_of=s.replay_of_id, replayed_by=s.replayed_by_id,
    )


@router.get("/v1/submissions/{submission_id}", response_model=SubmissionOut, summary="One stored submission",
            responses=problem_responses(404, 422))
async def read_submission(submission_id: uuid.UUID, session: AsyncSession = SessionDep) -> SubmissionOut:
    return submission_out(await get_submission(session, submission_id))


@router.post("/v1/submissions/{submission_id}/replay", response_model=ReplayResult, status_code=201,
             summary="Replay a rejected submission through the current source config",
             responses={200: {"model": ReplayResult, "description": "already replayed, or merged"},
                        **problem_responses(404, 409, 422)})
async def replay(submission_id: uuid.UUID, ctx: IntakeContext = Depends(get_intake_context)) -> JSONResponse:
    result = await replay_submission(ctx, submission_id)
    body = {"lead_id": result.lead_number, "submission_id": str(result.submission_id), "status": result.status}
    return JSONResponse(body, status_code=201 if result.status == "accepted" else 200)
