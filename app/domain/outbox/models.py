"""R1.12: follow-on work recorded in the same transaction as the change that causes it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, new_id


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_unprocessed", "created_at", postgresql_where=text("processed_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    job: Mapped[str] = mapped_column(String(100))  # the arq function name
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    lead_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("leads.id"), index=True)
    created_at: Mapped[datetime]
    # Not to be handed over before this (a retry 30 s later, a lead waiting for its rule's window).
    not_before: Mapped[datetime | None]
    enqueued_at: Mapped[datetime | None]
    enqueue_attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None]
