"""R1.2–R1.4, R1.9, R1.12: hand a valid submission to `leadflow_accept_submission()` (migration 0002).

One round trip on a raw asyncpg connection, in autocommit: the function takes the idempotency and phone
locks, decides accepted / merged / duplicate, and writes the submission, lead, inquiry, outbox row and audit
entry in its own transaction. It is the only place those decisions are made.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from app.db import is_database_unavailable, new_id
from app.domain.errors import Unavailable
from app.domain.intake.mapping import MappedSubmission
from app.domain.intake.schemas import SubmissionDraft
from app.domain.sources.models import Source

_ACCEPT = """
SELECT outcome, lead_id, lead_number, detail FROM leadflow_accept_submission(
    $1::uuid[], $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13::jsonb, $14, $15, $16::jsonb,
    $17::jsonb, $18, $19)
"""
_NEXT_NUMBER = "SELECT leadflow_next_lead_number($1)"
ACQUIRE_TIMEOUT = 3  # seconds: a stalled database answers 503, it does not hold the visitor


@dataclass
class Acceptance:
    outcome: str  # accepted | merged | duplicate | rejected | already_replayed
    lead_id: uuid.UUID | None
    lead_number: str | None
    detail: str | None  # rejected: the reason code; duplicate / already_replayed: the earlier submission id


def lead_number_prefix(prefix: str, at: datetime, tz: Any) -> str:
    """`LD-20261125-`: the business-timezone date of `at`; the database appends the sequence number."""
    return f"{prefix}-{at.astimezone(tz):%Y%m%d}-"


async def accept_in_database(
    pool: asyncpg.Pool, *, source: Source, draft: SubmissionDraft, mapped: MappedSubmission, key_is_native: bool,
    signature: str | None, merge_since: datetime, number_prefix: str,
) -> Acceptance:
    """Decide and write in one call. Database unreachable → Unavailable (nothing was written)."""
    ids = [draft.id, new_id(), new_id(), new_id(), new_id()]
    try:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            row = await conn.fetchrow(
                _ACCEPT, ids, source.id, source.key, source.kind, draft.received_at, draft.content_type,
                draft.raw_body, draft.body_sha256, json.dumps(draft.headers, ensure_ascii=False), draft.remote_addr,
                draft.idempotency_key, key_is_native, json.dumps(mapped.log, ensure_ascii=False), draft.replay_of_id,
                signature, json.dumps(mapped.fields, ensure_ascii=False),
                json.dumps(mapped.attributes, ensure_ascii=False), merge_since, number_prefix)
    except Exception as error:
        if is_database_unavailable(error):
            raise Unavailable("database", type(error).__name__) from error
        raise
    return Acceptance(outcome=row["outcome"], lead_id=row["lead_id"], lead_number=row["lead_number"],
                      detail=row["detail"])


async def draw_lead_number(pool: asyncpg.Pool, number_prefix: str) -> str:
    """A number from the same sequence and format, for answers that make no lead (honeypot spam)."""
    try:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            return await conn.fetchval(_NEXT_NUMBER, number_prefix)
    except Exception as error:
        if is_database_unavailable(error):
            raise Unavailable("database", type(error).__name__) from error
        raise


async def _no_reset(_conn: asyncpg.Connection) -> None:
    """The pool's default reset is a round trip per release; our statements leave no session state."""


async def create_intake_pool(database_url: str, max_size: int = 20) -> asyncpg.Pool:
    """min_size 0: the API starts (and answers 503) while the database is down."""
    return await asyncpg.create_pool(
        database_url.replace("postgresql+asyncpg://", "postgresql://"), min_size=0, max_size=max_size,
        timeout=3, command_timeout=15, reset=_no_reset, server_settings={"timezone": "UTC"})
