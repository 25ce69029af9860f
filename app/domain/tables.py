"""Imports every table so `Base.metadata` is complete (Alembic, tests)."""

from app.db import Base
from app.domain.alerts.models import Alert, IntegrationHealth
from app.domain.assignment.models import AssignmentRule, Notification, Ticket
from app.domain.intake.models import SignatureNonce, Submission
from app.domain.leads.models import AuditEntry, Inquiry, Lead
from app.domain.outbox.models import OutboxMessage
from app.domain.people.models import Role, Team, TeamMember, User
from app.domain.sources.models import Source

metadata = Base.metadata

__all__ = [
           "Alert",
           "AssignmentRule",
           "AuditEntry",
           "Inquiry",
           "IntegrationHealth",
           "Lead",
           "Notification",
           "OutboxMessage",
           "Role",
           "SignatureNonce",
           "Source",
           "Submission",
           "Team",
           "TeamMember",
           "Ticket",
           "User",
           "metadata",
]
