"""R3.7: which notifications reach a person."""

from __future__ import annotations

# What a person gets when they chose nothing.
DEFAULT_KINDS = frozenset({"lead_assigned", "todo_overdue", "approval_pending"})
# Escalations a manager cannot opt out of (R2.5: a lead nobody could take).
MANDATORY_KINDS = frozenset({"assignment_failed"})
KNOWN_KINDS = DEFAULT_KINDS | MANDATORY_KINDS | frozenset({"lead_merged", "lead_reassigned", "daily_digest"})


def wants(kind: str, chosen: list[str] | None) -> bool:
    if kind in MANDATORY_KINDS:
        return True
    return kind in (DEFAULT_KINDS if chosen is None else set(chosen))
