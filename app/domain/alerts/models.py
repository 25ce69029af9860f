"""R3.4 / R3.5: alerts (one firing row per key) and the integration probe's brief per channel."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, new_id


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("uq_alerts_firing_key", "key", unique=True, postgresql_where=text("status = 'firing'")),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(20), default="warning")
    status: Mapped[str] = mapped_column(String(20), default="firing")  # firing | resolved
    message: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
    last_sent_at: Mapped[datetime | None]
    send_count: Mapped[int] = mapped_column(default=0)
    occurrences: Mapped[int] = mapped_column(default=1)
    resolved_at: Mapped[datetime | None]


class IntegrationHealth(Base):
    __tablename__ = "integration_health"

    channel: Mapped[str] = mapped_column(String(100), primary_key=True)
    ok: Mapped[bool]
    since: Mapped[datetime]
    checked_at: Mapped[datetime]
    error_kind: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class ReportedCount(Base):
    """R1.10: the form side's own count of what it sent for a period, and how ours compared."""

    __tablename__ = "reported_counts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    source_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sources.id"), index=True)
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    reported: Mapped[int]
    received: Mapped[int]  # leads we accepted or merged in the period
    gap: Mapped[float]  # (reported - received) / reported
    created_at: Mapped[datetime]
