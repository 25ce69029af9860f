"""notification delivery: attempts and errors, per-user kinds, team robot

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("notifications", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column("notifications", sa.Column("error_kind", sa.String(length=40), nullable=True))
    op.add_column("notifications", sa.Column("last_error", sa.Text(), nullable=True))
    op.add_column("notifications", sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("notify_kinds", postgresql.ARRAY(sa.String(length=40)), nullable=True))
    op.add_column("teams", sa.Column("wecom_robot_key", sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.drop_column("teams", "wecom_robot_key")
    op.drop_column("users", "notify_kinds")
    op.drop_column("notifications", "sent_at")
    op.drop_column("notifications", "last_error")
    op.drop_column("notifications", "error_kind")
    op.drop_column("notifications", "attempts")
