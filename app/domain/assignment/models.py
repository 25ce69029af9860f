"""R2.2, R2.5: assignment rules, fallback tickets, and notifications waiting for delivery."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, new_id


class AssignmentRule(Base):
    __tablename__ = "assignment_rules"
    __table_args__ = (CheckConstraint("strategy IN ('round_robin', 'least_loaded')", name="strategy"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    source_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sources.id"), index=True)  # None: any source
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id"))
    strategy: Mapped[str] = mapped_column(String(20), default="round_robin")
    # {"weekdays": [1..7 (Mon=1)], "start": "09:00", "end": "18:00"}; None: always open
    window: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    timezone: Mapped[str | None] = mapped_column(String(64))  # None → settings
    auto_claim: Mapped[bool] = mapped_column(default=False)
    # When auto-claim applies ({weekdays, start, end}); None: whenever the rule assigns.
    auto_claim_window: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    claim_sla_minutes: Mapped[int] = mapped_column(default=30)
    priority: Mapped[int] = mapped_column(default=100)  # lower first
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Ticket(Base):
    """R2.5: a lead nobody could take, for the team manager, with the snapshot of why."""

    __tablename__ = "tickets"
    __table_args__ = (Index("uq_tickets_open_lead", "lead_id", unique=True, postgresql_where=text("status = 'open'")),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id"))
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("teams.id"))
    manager_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(20), default="open")
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime]


class Notification(Base):
    """A message owed to a person; delivered by the notifier jobs (integrations issue)."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("uq_notifications_once", "lead_id", "user_id", "kind", "dedupe_key", unique=True),
        Index("ix_notifications_pending", "created_at", postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    lead_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("leads.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(40))  # lead_assigned, assignment_failed, todo_overdue, …
    dedupe_key: Mapped[str] = mapped_column(String(100), default="")
    # pending → sent | suppressed (preference) | undeliverable (no address/channel) | failed (gave up)
    # | superseded (a lead_assigned retried past a reassignment: the lead is someone else's now)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    error_kind: Mapped[str | None] = mapped_column(String(40))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
