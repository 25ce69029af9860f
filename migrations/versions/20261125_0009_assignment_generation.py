"""leads.assignment_generation: rounds queued before a person decided do nothing

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25

A return or a manager's hand-out starts a new generation of assignment rounds for the lead; a round queued
before it (a retry, a window wait) carries the old number in its outbox payload and does nothing when it
runs. Rows without a number (written by intake) run as before.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("leads", sa.Column("assignment_generation", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("leads", "assignment_generation")
