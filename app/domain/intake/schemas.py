"""What intake takes in from the HTTP layer and gives back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from app.domain.errors import DomainError

IntakeStatus = Literal["accepted", "duplicate", "merged"]


@dataclass
class IncomingRequest:
    """One request as it reached us; the body is kept byte for byte."""

    source_key: str
    body: bytes
    content_type: str | None
    headers: dict[str, str]  # lower-cased names
    remote_addr: str | None
    body_truncated: bool = False

    @property
    def origin(self) -> str | None:
        return self.headers.get("origin")

    @property
    def idempotency_key(self) -> str | None:
        return idempotency_key_from(self.headers)


# Keys leadflow makes itself: a client's Idempotency-Key may not take one (it would claim a Douyin clue id).
RESERVED_KEY_PREFIXES = ("native:", "import:")


def idempotency_key_from(headers: dict[str, str]) -> str | None:
    """The client's Idempotency-Key as stored: trimmed, at most 200 characters (live intake and replays)."""
    value = (headers.get("idempotency-key") or "").strip()
    return value[:200] or None


@dataclass
class SubmissionDraft:
    """A submission before its outcome is known; written by the acceptance function or as a rejection."""

    id: uuid.UUID
    source_id: uuid.UUID
    received_at: datetime
    content_type: str | None
    raw_body: bytes
    body_truncated: bool
    body_sha256: str
    headers: dict[str, str]
    remote_addr: str | None
    idempotency_key: str | None = None
    replay_of_id: uuid.UUID | None = None


@dataclass
class IntakeResult:
    lead_number: str
    submission_id: uuid.UUID
    status: IntakeStatus
    source_kind: str
    lead_id: uuid.UUID | None = None
    allowed_origin: str | None = None  # echo for CORS


@dataclass
class Rejection:
    """A refused request, already stored; raised after the transaction that stored it commits."""

    error: DomainError
    submission_id: uuid.UUID | None = None
