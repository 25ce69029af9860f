"""R1.2–R1.7, R1.9, R1.11, R1.12: take one request at a source and answer only with what is committed."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from redis.asyncio import Redis
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import new_id, unit_of_work
from app.domain.clock import Clock
from app.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    MalformedBody,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
)
from app.domain.intake.mapping import DEFAULT_NATIVE_ID_FIELDS, MappedSubmission, map_submission
from app.domain.intake.models import KEYED_OUTCOMES, SignatureNonce, Submission
from app.domain.intake.parsing import BodyError, parse_body
from app.domain.intake.schemas import IncomingRequest, IntakeResult, Rejection
from app.domain.intake.source_auth import check_origin, take_rate_limit_slot, verify_signature
from app.domain.leads import audit
from app.domain.leads.creation import insert_lead_with_follow_on
from app.domain.leads.models import OPEN_STATUSES, Inquiry, Lead
from app.domain.leads.numbering import format_lead_number, next_lead_number
from app.domain.outbox.relay import relay_now
from app.domain.sources.models import Source
from app.settings import Settings

log = structlog.get_logger(__name__)

KEPT_HEADERS = ("content-type", "user-agent", "origin", "referer", "idempotency-key", "x-forwarded-for",
                "x-leadflow-timestamp", "x-request-id")


@dataclass
class IntakeContext:
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    settings: Settings
    clock: Clock


async def receive_submission(ctx: IntakeContext, request: IncomingRequest) -> IntakeResult:
    """Store the request as a submission and, when it is good, as a lead (or an inquiry on an open lead).

    Returns only after commit. A refused request is stored too, then raised as a domain error carrying its
    submission id. Database down → Unavailable (nothing was promised). Redis down → the lead is still
    accepted; its assignment job waits in the outbox.
    """
    async with unit_of_work(ctx.sessions) as session:
        source = await session.scalar(select(Source).where(Source.key == request.source_key))
        if source is None:
            raise NotFound(f"no source with key {request.source_key!r}")
        source_id, source_kind = source.id, source.kind
        rate_limit = await _rate_limit_wait(ctx, source, request)
        outcome = await _process(ctx, session, source, request, rate_limit)
    if isinstance(outcome, Rejection):
        outcome.error.extra.setdefault("submission_id", str(outcome.submission_id))
        raise outcome.error
    structlog.contextvars.bind_contextvars(submission_id=str(outcome.submission_id),
                                           lead_id=outcome.lead_number)
    log.info("intake_" + outcome.status, source=request.source_key, kind=source_kind, source_id=str(source_id))
    if outcome.outbox_ids:
        await relay_now(ctx.redis, outcome.outbox_ids)
    return outcome


async def _rate_limit_wait(ctx: IntakeContext, source: Source, request: IncomingRequest) -> int | None:
    if source.auth_mode != "browser" or not source.enabled:
        return None
    limit = source.auth_settings.get("rate_limit_per_minute") or ctx.settings.browser_rate_limit_per_minute
    return await take_rate_limit_slot(ctx.redis, scope=str(source.id), client=request.remote_addr or "unknown",
                                      limit=limit)


async def _process(
    ctx: IntakeContext, session: AsyncSession, source: Source, request: IncomingRequest, rate_wait: int | None
) -> IntakeResult | Rejection:
    now = ctx.clock.now()
    submission = Submission(
        id=new_id(), source_id=source.id, received_at=now,
        content_type=request.content_type, raw_body=request.body, body_truncated=request.body_truncated,
        body_sha256=hashlib.sha256(request.body).hexdigest(),
        headers={k: v for k, v in request.headers.items() if k in KEPT_HEADERS},
        remote_addr=request.remote_addr, reasons=[], mapping_log=[],
    )
    refusal = await _refusal(ctx, session, source, request, rate_wait, now)
    if refusal is not None:
        return record_rejection(session, submission, refusal, [])
    try:
        payload = parse_body(request.body, request.content_type)
    except BodyError as error:
        return record_rejection(session, submission, MalformedBody(error.message, extra={"code": error.code}), [])
    return await accept_payload(ctx, session, source, submission, payload, request.idempotency_key)


async def accept_payload(
    ctx: IntakeContext, session: AsyncSession, source: Source, submission: Submission,
    payload: dict[str, Any], header_key: str | None,
) -> IntakeResult | Rejection:
    """The part of intake a replay repeats: honeypot, idempotency, mapping, duplicates, the lead itself."""
    now = submission.received_at
    honeypot = source.auth_settings.get("honeypot_field") if source.auth_mode == "browser" else None
    native_field, native_id = _native_id(source, payload)
    submission.idempotency_key = header_key or (f"native:{native_id}" if native_id else None)
    if submission.idempotency_key:
        await _lock(session, f"idem:{source.id}:{submission.idempotency_key}")
        earlier = await session.scalar(
            select(Submission).where(
                Submission.source_id == source.id, Submission.idempotency_key == submission.idempotency_key,
                Submission.outcome.in_(KEYED_OUTCOMES)))
        if earlier is not None:
            return _duplicate_of(session, source, submission, earlier)
    meta = frozenset(f for f in (honeypot, native_field) if f)
    if honeypot and str(payload.get(honeypot) or "").strip():
        return await _store_spam(ctx, session, source, submission, honeypot)
    mapped = map_submission(payload, kind=source.kind, field_mapping=source.field_mapping,
                            options=source.options, meta_fields=meta)
    if not mapped.is_valid:
        error = InvalidInput(f"{len(mapped.errors)} field(s) failed validation", mapped.errors)
        return record_rejection(session, submission, error, mapped.log)
    submission.mapping_log = mapped.log
    phone = mapped.fields["phone"]
    # The phone lock and the number come in one round trip; a merge leaves that number unused (a gap).
    sequence_value = await _lock(session, f"phone:{phone}", with_lead_number=True)
    since = now - timedelta(days=ctx.settings.duplicate_window_days)
    number = format_lead_number(ctx.settings.lead_id_prefix, now, sequence_value, ctx.settings.tz)
    created = await _create_lead(session, source, submission, mapped, number, open_lead_since=since)
    if created is not None:
        return created
    open_lead = await _open_lead_with_phone(session, phone, since)
    assert open_lead is not None, "the phone lock is held: the open lead cannot have gone"
    return await _merge_into(session, source, submission, open_lead, mapped)


async def _refusal(
    ctx: IntakeContext, session: AsyncSession, source: Source, request: IncomingRequest, rate_wait: int | None,
    now: datetime,
) -> Exception | None:
    """Checks that refuse a request before its body is read, in the order a client can fix them."""
    if request.body_truncated:
        return PayloadTooLarge(f"body exceeds {ctx.settings.max_body_bytes} bytes")
    if not source.enabled:
        return Forbidden(f"source {source.key!r} is disabled", extra={"code": "source_disabled"})
    settings = source.auth_settings
    if source.auth_mode == "hmac":
        signature, failure = verify_signature(
            scheme=settings.get("hmac_scheme", "leadflow"), secret=settings["secret"], headers=request.headers,
            body=request.body, now=now, tolerance_s=ctx.settings.signature_tolerance_seconds)
        if failure is not None:
            return Unauthorized(failure.message, extra={"code": failure.code})
        if signature and not await _remember_signature(session, source.id, signature, now):
            return Unauthorized("this signature was already used; sign every request anew",
                                extra={"code": "signature_replayed"})
    if source.auth_mode == "browser":
        failure = check_origin(request.origin, settings.get("allowed_origins", []))
        if failure is not None:
            return Forbidden(failure.message, extra={"code": failure.code})
        if rate_wait is not None:
            return RateLimited("too many submissions from this client; retry later", retry_after=rate_wait,
                               extra={"code": "rate_limited"})
    return None


def record_rejection(
    session: AsyncSession, submission: Submission, error: Exception, mapping_log: list
) -> Rejection:
    """Store the submission as rejected with its reasons; the caller raises the error after commit."""
    submission.outcome = "rejected"
    if isinstance(error, InvalidInput):
        submission.reasons = [e.as_dict() for e in error.errors]
    else:
        code = getattr(error, "extra", {}).get("code") or getattr(error, "code", "rejected")
        submission.reasons = [{"code": code.replace("-", "_"), "message": str(error)}]
    submission.mapping_log = mapping_log
    session.add(submission)
    return Rejection(error=error, submission_id=submission.id)  # type: ignore[arg-type]


def _native_id(source: Source, payload: dict[str, Any]) -> tuple[str | None, str | None]:
    candidates = (source.native_id_field,) if source.native_id_field else DEFAULT_NATIVE_ID_FIELDS.get(
        source.kind, ())
    for name in candidates:
        value = payload.get(name)
        if value not in (None, ""):
            return name, str(value)[:180]
    return (candidates[0] if candidates else None), None


_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))")
_LOCK_AND_NUMBER = text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0)), nextval('lead_number_seq')")


async def _lock(session: AsyncSession, key: str, *, with_lead_number: bool = False) -> int:
    """Serialize only the requests that share `key` (same idempotency key, same phone) until commit.

    With `with_lead_number`, also draw the next lead number in the same round trip.
    """
    if not with_lead_number:
        await session.execute(_LOCK, {"k": key})
        return 0
    return int((await session.execute(_LOCK_AND_NUMBER, {"k": key})).one()[1])


async def _remember_signature(session: AsyncSession, source_id: uuid.UUID, signature: str, now: datetime) -> bool:
    inserted = await session.scalar(
        insert(SignatureNonce).values(source_id=source_id, signature=signature, seen_at=now)
        .on_conflict_do_nothing().returning(SignatureNonce.signature))
    return inserted is not None


def _duplicate_of(
    session: AsyncSession, source: Source, submission: Submission, earlier: Submission
) -> IntakeResult | Rejection:
    if earlier.body_sha256 != submission.body_sha256 and not submission.idempotency_key.startswith("native:"):
        error = Conflict("this Idempotency-Key was already used with a different body",
                         extra={"code": "idempotency_key_reused", "original_submission_id": str(earlier.id)})
        return record_rejection(session, submission, error, [])
    submission.outcome = "duplicate"
    submission.lead_id = earlier.lead_id
    submission.answered_lead_number = earlier.answered_lead_number
    submission.reasons = [{"code": "duplicate_of", "message": f"same submission as {earlier.id}",
                           "submission_id": str(earlier.id)}]
    session.add(submission)
    assert earlier.answered_lead_number is not None
    return IntakeResult(lead_number=earlier.answered_lead_number, submission_id=submission.id,
                        status="duplicate", source_kind=source.kind, lead_id=earlier.lead_id)


async def _store_spam(
    ctx: IntakeContext, session: AsyncSession, source: Source, submission: Submission, honeypot: str
) -> IntakeResult:
    """Bots that fill the hidden field get a look-alike answer, so they learn nothing; no lead is made."""
    number = await next_lead_number(session, ctx.settings.lead_id_prefix, submission.received_at, ctx.settings.tz)
    submission.outcome = "spam"
    submission.answered_lead_number = number
    submission.reasons = [{"code": "honeypot_filled", "message": f"hidden field {honeypot!r} was filled",
                           "field": honeypot}]
    session.add(submission)
    return IntakeResult(lead_number=number, submission_id=submission.id, status="accepted",
                        source_kind=source.kind)


async def _open_lead_with_phone(session: AsyncSession, phone: str, since: datetime) -> Lead | None:
    return await session.scalar(
        select(Lead).where(Lead.phone_e164 == phone, Lead.status.in_(OPEN_STATUSES), Lead.created_at >= since)
        .order_by(Lead.created_at.desc()).limit(1).with_for_update())


async def _merge_into(
    session: AsyncSession, source: Source, submission: Submission, lead: Lead, mapped: MappedSubmission
) -> IntakeResult:
    now = submission.received_at
    submission.outcome = "merged"
    submission.lead_id = lead.id
    submission.answered_lead_number = lead.lead_number
    submission.reasons = [{"code": "open_lead_same_phone", "message": f"attached to open lead {lead.lead_number}"}]
    session.add(submission)
    await session.flush()
    session.add(Inquiry(lead_id=lead.id, submission_id=submission.id, source_id=source.id,
                        fields=mapped.fields | {"attributes": mapped.attributes}, created_at=now))
    lead.inquiry_count = Lead.inquiry_count + 1
    lead.last_inquiry_at = now
    lead.updated_at = now
    audit.record(session, lead_id=lead.id, action="inquiry", result="success", at=now,
                 reason="open_lead_same_phone", detail={"submission_id": str(submission.id),
                                                        "source": source.key})
    return IntakeResult(lead_number=lead.lead_number, submission_id=submission.id, status="merged",
                        source_kind=source.kind, lead_id=lead.id)


async def _create_lead(
    session: AsyncSession, source: Source, submission: Submission, mapped: MappedSubmission, number: str,
    *, open_lead_since: datetime,
) -> IntakeResult | None:
    """The new lead, unless an open lead has this phone (then None and nothing written)."""
    ids = {"lead": new_id(), "submission": submission.id, "outbox": new_id(), "audit": new_id()}
    created = await insert_lead_with_follow_on(
        session, ids=ids, number=number, source_id=source.id, source_key=source.key, channel=source.kind,
        fields=mapped.fields, attributes=mapped.attributes, now=submission.received_at,
        submission={
            "content_type": submission.content_type, "raw_body": submission.raw_body,
            "body_sha256": submission.body_sha256, "headers": submission.headers,
            "remote_addr": submission.remote_addr, "idempotency_key": submission.idempotency_key,
            "mapping_log": submission.mapping_log, "replay_of_id": submission.replay_of_id,
        }, open_lead_since=open_lead_since)
    if not created:
        return None
    return IntakeResult(lead_number=number, submission_id=submission.id, status="accepted",
                        source_kind=source.kind, lead_id=ids["lead"], outbox_ids=[ids["outbox"]])
