"""intake merge locks the open lead it attaches to

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25

leadflow_accept_submission() found the open lead with the submission's phone with a plain SELECT, then
updated it (inquiry count; an assignment_failed lead back to awaiting_assignment with a new assignment
job). The phone lock keeps intake from racing intake, but a manager closing or handing out that lead
does not take it: a customer asking again at that moment attached the inquiry to a lead just closed, or
reopened a lead a manager had just given to a rep (two holders). The lookup now locks the lead row
(FOR UPDATE) and so re-reads its status once the other transaction is done; a lead closed meanwhile no
longer matches and the submission makes a new lead. Lock order stays: advisory locks, then lead rows;
nothing that holds a lead row waits for an intake advisory lock.

The function text is 0007's with that one change (derived, so the two cannot drift apart).
"""
import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNLOCKED = "        ORDER BY l.created_at DESC LIMIT 1;\n"
LOCKED = "        ORDER BY l.created_at DESC LIMIT 1\n        FOR UPDATE OF l;\n"


def _previous():
    path = Path(__file__).with_name("20261125_0007_intake_batches_lock_order.py")
    spec = importlib.util.spec_from_file_location("leadflow_migration_0007", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    accept = _previous().ACCEPT
    assert accept.count(UNLOCKED) == 1, "0007's merge lookup is not where 0008 expects it"
    op.execute(accept.replace(UNLOCKED, LOCKED))


def downgrade() -> None:
    op.execute(_previous().ACCEPT)
