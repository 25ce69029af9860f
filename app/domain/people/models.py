"""R2.1: users, roles with permissions, teams with primary and backup members."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Sequence, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, new_id

PERMISSIONS = ("lead.claim", "lead.transfer", "lead.return", "lead.view_all", "config.manage", "team.manage",
               "source.report")
USER_KINDS = ("sales", "manager", "finance", "admin")
assignment_turn_seq = Sequence("assignment_turn_seq", metadata=Base.metadata)


class Role(Base):
    __tablename__ = "roles"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    permissions: Mapped[list[str]] = mapped_column(ARRAY(String(50)), default=list)
    created_at: Mapped[datetime]


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"kind IN {USER_KINDS!r}", name="kind"),
                      CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    role_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("roles.id"), index=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    on_duty: Mapped[bool] = mapped_column(default=True)
    capacity: Mapped[int | None]  # None → the default from settings
    wecom_userid: Mapped[str | None] = mapped_column(String(100))
    # R3.7: which notification kinds reach this person; None = the defaults (see notify/preferences.py)
    notify_kinds: Mapped[list[str] | None] = mapped_column(ARRAY(String(40)))
    token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Round-robin order: the eligible rep with the lowest turn goes next. A sequence, not a timestamp:
    # two assignments in the same microsecond (or under a frozen test clock) still get distinct turns.
    last_turn: Mapped[int | None] = mapped_column(BigInteger)
    last_assigned_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    manager_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    # The team's WeCom group robot: where failed assignments @-mention the manager (R2.5)
    wecom_robot_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]


class TeamMember(Base):
    __tablename__ = "team_members"
    __table_args__ = (CheckConstraint("tier IN ('primary', 'backup')", name="tier"),)

    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    tier: Mapped[str] = mapped_column(String(10), default="primary")
