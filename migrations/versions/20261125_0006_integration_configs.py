"""versioned integration configs (sandbox, canary, full)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "integration_configs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=50), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("config", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("previous_id", sa.Uuid(), nullable=True),
        sa.Column("probe_ok", sa.Boolean(), nullable=True),
        sa.Column("probe_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["previous_id"], ["integration_configs.id"],
                                name=op.f("fk_integration_configs_previous_id_integration_configs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_configs")),
        sa.UniqueConstraint("channel", "version", name="uq_integration_configs_channel_version"),
    )


def downgrade() -> None:
    op.drop_table("integration_configs")
