"""R1.6: stored submissions — listing them and replaying rejected ones once the mapping is fixed."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NoReturn

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import new_id, unit_of_work
from app.domain.errors import Conflict, DomainError, MalformedBody, NotFound
from app.domain.intake.models import Submission
from app.domain.intake.parsing import BodyError, parse_body
from app.domain.intake.schemas import RESERVED_KEY_PREFIXES, IntakeResult, SubmissionDraft, idempotency_key_from
from app.domain.intake.service import IntakeContext, accept_payload, store_rejection
from app.domain.sources.models import Source
from app.domain.sources.service import get_source


async def list_submissions(
    session: AsyncSession, source_key: str, *, outcome: str | None, before: datetime | None, limit: int
) -> list[Submission]:
    """Newest first; page with `before` = the last item's received_at."""
    source = await get_source(session, source_key)
    query = select(Submission).where(Submission.source_id == source.id)
    if outcome:
        query = query.where(Submission.outcome == outcome)
    if before:
        query = query.where(Submission.received_at < before)
    return list(await session.scalars(query.order_by(Submission.received_at.desc()).limit(limit)))


async def get_submission(session: AsyncSession, submission_id: uuid.UUID) -> Submission:
    submission = await session.get(Submission, submission_id)
    if submission is None:
        raise NotFound(f"no submission {submission_id}")
    return submission


async def replay_submission(ctx: IntakeContext, submission_id: uuid.UUID) -> IntakeResult:
    """Run a rejected submission's stored body through today's source config, as a new linked submission.

    The caller (an admin) vouches for it, so signature, origin and rate checks are not repeated. Replaying
    again after a successful replay returns that replay's lead instead of creating another (the database
    function serializes concurrent replays of one submission).
    """
    async with unit_of_work(ctx.sessions) as session:
        original = await session.get(Submission, submission_id)
        if original is None:
            raise NotFound(f"no submission {submission_id}")
        _check_replayable(original)
        if original.replayed_by_id is not None:
            previous = await session.get(Submission, original.replayed_by_id)
            if previous is not None and previous.answered_lead_number is not None:
                return IntakeResult(lead_number=previous.answered_lead_number, submission_id=previous.id,
                                    status="duplicate", source_kind="", lead_id=previous.lead_id)
        source = await session.get(Source, original.source_id)
    assert source is not None
    if not source.enabled:
        raise Conflict(f"source {source.key!r} is disabled; enable it before replaying",
                       extra={"code": "source_disabled"})
    draft = SubmissionDraft(
        id=new_id(), source_id=source.id, received_at=ctx.clock.now(), content_type=original.content_type,
        raw_body=original.raw_body, body_truncated=False, body_sha256=original.body_sha256,
        headers=original.headers, remote_addr=original.remote_addr, replay_of_id=original.id)
    try:
        payload = parse_body(original.raw_body, original.content_type)
    except BodyError as error:
        await _store_failed_replay(ctx, draft, MalformedBody(error.message, extra={"code": error.code}), [])
    try:
        key = idempotency_key_from(original.headers)
        if key is not None and key.startswith(RESERVED_KEY_PREFIXES):
            await _store_failed_replay(ctx, draft, MalformedBody(
                "Idempotency-Key may not start with a reserved prefix", extra={"code": "idempotency_key_reserved"}),
                [])
        return await accept_payload(ctx, source, draft, payload, key,
                                    from_browser="x-import-file" not in original.headers)
    except DomainError as error:
        error.extra.setdefault("replay_of", str(submission_id))
        raise


def _check_replayable(original: Submission) -> None:
    if original.outcome != "rejected":
        raise Conflict(f"only rejected submissions can be replayed; this one is {original.outcome}",
                       extra={"code": "not_rejected"})
    if original.body_truncated:
        raise Conflict("the stored body was cut at the size limit and cannot be replayed",
                       extra={"code": "body_truncated"})


async def _store_failed_replay(
    ctx: IntakeContext, draft: SubmissionDraft, error: DomainError, mapping_log: list
) -> NoReturn:
    error.extra.setdefault("replay_of", str(draft.replay_of_id))
    await store_rejection(ctx, draft, error, mapping_log)
