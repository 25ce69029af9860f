"""The lead, its inquiries (R1.9) and its audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Sequence, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, new_id

# Numbers come from a sequence: nextval never waits on another transaction, unlike a counter row.
lead_number_seq = Sequence("lead_number_seq", metadata=Base.metadata)

LEAD_STATUSES = ("new", "awaiting_assignment", "assigned", "claimed", "assignment_failed", "won", "lost",
                 "closed")
OPEN_STATUSES = ("new", "awaiting_assignment", "assigned", "claimed", "assignment_failed")
# What counts against a rep's capacity (R2.3): given to them and not yet closed or returned.
PENDING_STATUSES = ("assigned", "claimed")


class Lead(Base):
    __tablename__ = "leads"
    __table_args__ = (
        CheckConstraint(f"status IN {LEAD_STATUSES!r}", name="status"),
        Index("ix_leads_phone_open", "phone_e164", "created_at",
              postgresql_where=text(f"status IN {OPEN_STATUSES!r}")),
        Index("ix_leads_pending_by_assignee", "assignee_id", postgresql_where=text(f"status IN {PENDING_STATUSES!r}")),
        Index("ix_leads_claim_due", "claim_due_at", postgresql_where=text("status = 'assigned'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    lead_number: Mapped[str] = mapped_column(String(40), unique=True)
    source_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sources.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(30), default="new")
    name: Mapped[str] = mapped_column(String(200))
    phone_e164: Mapped[str] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(320))
    wechat: Mapped[str | None] = mapped_column(String(100))
    company: Mapped[str | None] = mapped_column(String(200))
    province: Mapped[str | None] = mapped_column(String(100))
    city: Mapped[str | None] = mapped_column(String(100))
    gender: Mapped[str | None] = mapped_column(String(20))
    message: Mapped[str | None] = mapped_column(Text)
    # Categorical answers (validated against the source's options) and other mapped custom fields.
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    inquiry_count: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    last_inquiry_at: Mapped[datetime]
    # R2: who has it. Stage timestamps (R2.8): trigger = committed, match = rep chosen, push = notification
    # delivered, claim = the rep took it.
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), index=True)
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("teams.id"))
    rule_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("assignment_rules.id"))
    assignment_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    # bumped by a return or a hand-out: queued rounds of an older generation do nothing (migration 0009)
    assignment_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    claim_due_at: Mapped[datetime | None]
    triggered_at: Mapped[datetime | None]
    matched_at: Mapped[datetime | None]
    pushed_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]


class Inquiry(Base):
    """A later submission for an open lead with the same phone (R1.9): kept, not turned into a second lead."""

    __tablename__ = "inquiries"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id"), index=True)
    submission_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("submissions.id"), unique=True)
    source_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sources.id"))
    fields: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime]


class AuditEntry(Base):
    """R2.7: every action on a lead with its result and reason."""

    __tablename__ = "audit_log"
    __table_args__ = (
        CheckConstraint("action_result IN ('success', 'failed', 'skipped')", name="action_result"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    lead_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("leads.id"), index=True)
    action: Mapped[str] = mapped_column(String(40))
    action_result: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(100), default="system")
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime]
