"""Imports every table so `Base.metadata` is complete (Alembic, tests)."""

from app.db import Base
from app.domain.intake.models import SignatureNonce, Submission
from app.domain.leads.models import AuditEntry, Inquiry, Lead
from app.domain.outbox.models import OutboxMessage
from app.domain.sources.models import Source

metadata = Base.metadata

__all__ = ["AuditEntry", "Inquiry", "Lead", "OutboxMessage", "SignatureNonce", "Source", "Submission",
           "metadata"]
