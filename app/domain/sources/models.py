"""R1.1: a configured form channel."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, new_id

SOURCE_KINDS = ("wechat_h5", "douyin", "qr_offline", "generic")
AUTH_MODES = ("none", "hmac", "browser")


class Source(Base):
    __tablename__ = "sources"
    __table_args__ = (
        CheckConstraint(f"kind IN {SOURCE_KINDS!r}", name="kind"),
        CheckConstraint(f"auth_mode IN {AUTH_MODES!r}", name="auth_mode"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # incoming field (dotted path for nested JSON) → lead field
    field_mapping: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    # categorical lead field → allowed values
    options: Mapped[dict[str, list[str]]] = mapped_column(JSONB, default=dict)
    native_id_field: Mapped[str | None] = mapped_column(String(100))
    auth_mode: Mapped[str] = mapped_column(String(20), default="none")
    # hmac: scheme, secret; browser: allowed_origins, rate_limit_per_minute, honeypot_field
    auth_settings: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
