"""R1.6 / R1.7 / R1.11: every request that reaches a known source, as it arrived, with its outcome."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, new_id

OUTCOMES = ("accepted", "merged", "duplicate", "rejected", "spam")
# Outcomes that answered with a lead and therefore own their idempotency key.
KEYED_OUTCOMES = ("accepted", "merged", "spam")


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (
        CheckConstraint(f"outcome IN {OUTCOMES!r}", name="outcome"),
        Index(
            "uq_submissions_source_idempotency_key",
            "source_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text(f"idempotency_key IS NOT NULL AND outcome IN {KEYED_OUTCOMES!r}"),
        ),
        Index("ix_submissions_source_outcome_received", "source_id", "outcome", "received_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    source_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sources.id"))
    received_at: Mapped[datetime]
    content_type: Mapped[str | None] = mapped_column(String(200))
    raw_body: Mapped[bytes] = mapped_column(LargeBinary)
    body_truncated: Mapped[bool] = mapped_column(default=False)
    body_sha256: Mapped[str] = mapped_column(String(64))
    headers: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(20))
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    mapping_log: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    lead_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("leads.id"), index=True)
    # The lead number this request was answered with (also for spam, which gets a look-alike number).
    answered_lead_number: Mapped[str | None] = mapped_column(String(40), index=True)
    # A replay is a new submission pointing at the rejected one it retried.
    replay_of_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("submissions.id"))
    replayed_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("submissions.id", use_alter=True, name="fk_submissions_replayed_by_id_submissions")
    )


class SignatureNonce(Base):
    """A signature seen once: the same signed request presented again is refused (R1.11)."""

    __tablename__ = "signature_nonces"

    source_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sources.id"), primary_key=True)
    signature: Mapped[str] = mapped_column(String(128), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(index=True)
