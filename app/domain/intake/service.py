"""R1.2–R1.7, R1.9, R1.11: take one request at a source and answer only with what is committed."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

import structlog
from redis.asyncio import Redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import new_id, unit_of_work
from app.domain.clock import Clock
from app.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    MalformedBody,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
)
from app.domain.intake.acceptance import Acceptor, accept_in_database, draw_lead_number, lead_number_prefix
from app.domain.intake.mapping import DEFAULT_NATIVE_ID_FIELDS, map_submission
from app.domain.intake.models import Submission
from app.domain.intake.parsing import BodyError, parse_body
from app.domain.intake.schemas import RESERVED_KEY_PREFIXES, IncomingRequest, IntakeResult, SubmissionDraft
from app.domain.intake.source_auth import check_origin, take_rate_limit_slot, verify_signature
from app.domain.sources.cache import SourceCache
from app.domain.sources.models import Source
from app.settings import Settings

log = structlog.get_logger(__name__)

KEPT_HEADERS = ("content-type", "user-agent", "origin", "referer", "idempotency-key", "x-forwarded-for",
                "x-leadflow-timestamp", "x-request-id")


@dataclass
class IntakeContext:
    sessions: async_sessionmaker[AsyncSession]
    acceptor: Acceptor  # writes accepted submissions (group commit); .pool is the raw asyncpg pool
    redis: Redis
    sources: SourceCache
    settings: Settings
    clock: Clock


async def receive_submission(ctx: IntakeContext, request: IncomingRequest) -> IntakeResult:
    """Store the request as a submission and, when it is good, as a lead (or an inquiry on an open lead).

    Returns only after commit. A refused request is stored too, then raised as a domain error carrying its
    submission id. Database down → Unavailable (nothing was promised). Redis is not on this path: the
    lead's assignment job waits in the outbox, which the worker relays.
    """
    source = await ctx.sources.get(request.source_key)
    now = ctx.clock.now()
    draft = SubmissionDraft(
        id=new_id(), source_id=source.id, received_at=now, content_type=request.content_type,
        raw_body=request.body, body_truncated=request.body_truncated,
        body_sha256=hashlib.sha256(request.body).hexdigest(),
        headers={k: v for k, v in request.headers.items() if k in KEPT_HEADERS}, remote_addr=request.remote_addr,
    )
    try:
        result = await _decide(ctx, source, request, draft, now)
    except DomainError:
        raise
    except Exception as error:  # a defect must not lose the visitor's submission: keep it, replayable
        await _store_unexpected(ctx, draft, error)
        raise
    # One log line per request: the access line (app/main.py) carries these, the request id and the timing.
    structlog.contextvars.bind_contextvars(submission_id=str(result.submission_id), lead_id=result.lead_number,
                                           intake=result.status, source=source.key)
    return result


async def _decide(ctx: IntakeContext, source: Source, request: IncomingRequest, draft: SubmissionDraft,
                  now: datetime) -> IntakeResult:
    rate_wait = await _rate_limit_wait(ctx, source, request)
    refusal, signature = _refusal(ctx, source, request, rate_wait, now)
    if refusal is not None:
        await store_rejection(ctx, draft, refusal, [])
    try:
        payload = parse_body(request.body, request.content_type)
    except BodyError as error:
        await store_rejection(ctx, draft, MalformedBody(error.message, extra={"code": error.code}), [])
    return await accept_payload(ctx, source, draft, payload, request.idempotency_key, signature=signature)


async def _store_unexpected(ctx: IntakeContext, draft: SubmissionDraft, error: Exception) -> None:
    """Keep the raw submission as rejected (`internal_error`) so it can be replayed once the defect is fixed.

    The error itself still answers (500, or 503 when it was the database); if even this write fails, the
    original error is what the caller sees.
    """
    reasons = [{"code": "internal_error", "message": f"{type(error).__name__}: {str(error)[:300]}"}]
    try:
        async with unit_of_work(ctx.sessions) as session:
            session.add(_submission_row(draft, outcome="rejected", reasons=reasons, mapping_log=[]))
    except Exception:
        log.warning("unexpected_intake_error_not_stored", submission_id=str(draft.id), exc_info=True)
        return
    log.error("unexpected_intake_error_stored", submission_id=str(draft.id), error=type(error).__name__)
    structlog.contextvars.bind_contextvars(submission_id=str(draft.id))


async def accept_payload(
    ctx: IntakeContext, source: Source, draft: SubmissionDraft, payload: dict[str, Any], header_key: str | None,
    *, signature: str | None = None, from_browser: bool = True,
) -> IntakeResult:
    """The part of intake a replay repeats: honeypot, mapping and validation, then the database decides.

    The channel's own submission id (a Douyin clue id) is the idempotency key when there is one, whatever
    Idempotency-Key says; imports (`from_browser=False`) skip the honeypot, a column that only bots fill in
    a form but that a CRM export may well have.
    """
    honeypot = source.auth_settings.get("honeypot_field") if source.auth_mode == "browser" and from_browser \
        else None
    native_field, native_id = _native_id(source, payload)
    draft.idempotency_key = f"native:{native_id}" if native_id else header_key
    if honeypot and str(payload.get(honeypot) or "").strip():
        return await _store_spam(ctx, source, draft, honeypot)
    mapped = map_submission(payload, kind=source.kind, field_mapping=source.field_mapping, options=source.options,
                            meta_fields=frozenset(f for f in (honeypot, native_field) if f))
    if not mapped.is_valid:
        error = InvalidInput(f"{len(mapped.errors)} field(s) failed validation", mapped.errors)
        await store_rejection(ctx, draft, error, mapped.log)
    now = draft.received_at
    decided = await accept_in_database(
        ctx.acceptor, source=source, draft=draft, mapped=mapped, signature=signature,
        key_is_native=native_id is not None,
        merge_since=now - timedelta(days=ctx.settings.duplicate_window_days),
        number_prefix=lead_number_prefix(ctx.settings.lead_id_prefix, now, ctx.settings.tz))
    if decided.outcome == "rejected":
        raise _stored_refusal(decided.detail, draft)
    status = "duplicate" if decided.outcome == "already_replayed" else decided.outcome
    submission_id = draft.id if decided.outcome != "already_replayed" else _uuid(decided.detail)
    assert decided.lead_number is not None
    return IntakeResult(lead_number=decided.lead_number, submission_id=submission_id, status=status,
                        source_kind=source.kind, lead_id=decided.lead_id)


def _stored_refusal(code: str | None, draft: SubmissionDraft) -> DomainError:
    extra = {"code": code, "submission_id": str(draft.id)}
    if code == "signature_replayed":
        return Unauthorized("this signature was already used; sign every request anew", extra=extra)
    return Conflict("this Idempotency-Key was already used with a different body", extra=extra)


def _uuid(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


async def _rate_limit_wait(ctx: IntakeContext, source: Source, request: IncomingRequest) -> int | None:
    if source.auth_mode != "browser" or not source.enabled:
        return None
    limit = source.auth_settings.get("rate_limit_per_minute") or ctx.settings.browser_rate_limit_per_minute
    return await take_rate_limit_slot(ctx.redis, scope=str(source.id), client=request.remote_addr or "unknown",
                                      limit=limit)


def _refusal(
    ctx: IntakeContext, source: Source, request: IncomingRequest, rate_wait: int | None, now: datetime,
) -> tuple[DomainError | None, str | None]:
    """Checks that refuse a request before its body is read, in the order a client can fix them.

    Returns (refusal, None) or (None, the signature to spend once when the request is accepted).
    """
    if request.body_truncated:
        return PayloadTooLarge(f"body exceeds {ctx.settings.max_body_bytes} bytes"), None
    if (request.idempotency_key or "").startswith(RESERVED_KEY_PREFIXES):
        return MalformedBody(f"Idempotency-Key may not start with {' or '.join(RESERVED_KEY_PREFIXES)}",
                             extra={"code": "idempotency_key_reserved"}), None
    if not source.enabled:
        return Forbidden(f"source {source.key!r} is disabled", extra={"code": "source_disabled"}), None
    settings = source.auth_settings
    if source.auth_mode == "hmac":
        signature, failure = verify_signature(
            scheme=settings.get("hmac_scheme", "leadflow"), secret=settings["secret"], headers=request.headers,
            body=request.body, now=now, tolerance_s=ctx.settings.signature_tolerance_seconds)
        if failure is not None:
            return Unauthorized(failure.message, extra={"code": failure.code}), None
        return None, signature
    if source.auth_mode == "browser":
        failure = check_origin(request.origin, settings.get("allowed_origins", []))
        if failure is not None:
            return Forbidden(failure.message, extra={"code": failure.code}), None
        if rate_wait is not None:
            return RateLimited("too many submissions from this client; retry later", retry_after=rate_wait,
                               extra={"code": "rate_limited"}), None
    return None, None


async def store_rejection(
    ctx: IntakeContext, draft: SubmissionDraft, error: DomainError, mapping_log: list[dict[str, Any]]
) -> NoReturn:
    """Store the submission as rejected with its reasons (R1.6), then raise `error` carrying its id."""
    if isinstance(error, InvalidInput):
        reasons = [e.as_dict() for e in error.errors]
    else:
        code = error.extra.get("code") or error.code
        reasons = [{"code": code.replace("-", "_"), "message": error.detail}]
    async with unit_of_work(ctx.sessions) as session:
        session.add(_submission_row(draft, outcome="rejected", reasons=reasons, mapping_log=mapping_log))
        if draft.replay_of_id is not None:
            await session.flush()
            await session.execute(update(Submission).where(Submission.id == draft.replay_of_id)
                                  .values(replayed_by_id=draft.id))
    error.extra.setdefault("submission_id", str(draft.id))
    raise error


def _submission_row(draft: SubmissionDraft, **outcome: Any) -> Submission:
    return Submission(
        id=draft.id, source_id=draft.source_id, received_at=draft.received_at, content_type=draft.content_type,
        raw_body=draft.raw_body, body_truncated=draft.body_truncated, body_sha256=draft.body_sha256,
        headers=draft.headers, remote_addr=draft.remote_addr, idempotency_key=draft.idempotency_key,
        replay_of_id=draft.replay_of_id, **outcome)


def _native_id(source: Source, payload: dict[str, Any]) -> tuple[str | None, str | None]:
    candidates = (source.native_id_field,) if source.native_id_field else DEFAULT_NATIVE_ID_FIELDS.get(
        source.kind, ())
    for name in candidates:
        value = payload.get(name)
        if value not in (None, ""):
            return name, str(value)[:180]
    return (candidates[0] if candidates else None), None


async def _store_spam(ctx: IntakeContext, source: Source, draft: SubmissionDraft, honeypot: str) -> IntakeResult:
    """Bots that fill the hidden field get a look-alike answer, so they learn nothing; no lead is made.

    The key is not kept: a bot reusing a real visitor's Idempotency-Key must not claim it. A replay (an admin
    asking) is told the truth instead of a look-alike number.
    """
    draft.idempotency_key = None
    reasons = [{"code": "honeypot_filled", "message": f"hidden field {honeypot!r} was filled", "field": honeypot}]
    if draft.replay_of_id is not None:
        await store_rejection(ctx, draft, Conflict("the body fills the honeypot field: it is spam",
                                                   extra={"code": "honeypot_filled"}), [])
    prefix = lead_number_prefix(ctx.settings.lead_id_prefix, draft.received_at, ctx.settings.tz)
    number = await draw_lead_number(ctx.acceptor.pool, prefix)
    async with unit_of_work(ctx.sessions) as session:
        session.add(_submission_row(draft, outcome="spam", reasons=reasons, mapping_log=[],
                                    answered_lead_number=number))
    return IntakeResult(lead_number=number, submission_id=draft.id, status="accepted", source_kind=source.kind)
