"""R2.3 / R2.4: who may take a lead now, why the others may not, and who goes next."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

CLAIM_PERMISSION = "lead.claim"


@dataclass
class Candidate:
    user_id: uuid.UUID
    name: str
    tier: str  # primary | backup
    is_active: bool
    on_duty: bool
    permissions: list[str]
    capacity: int
    pending: int
    last_turn: int | None
    last_assigned_at: datetime | None = None

    def snapshot(self, reason: str | None = None) -> dict[str, Any]:
        data = asdict(self) | {"user_id": str(self.user_id)}
        data["last_assigned_at"] = self.last_assigned_at.isoformat() if self.last_assigned_at else None
        if reason:
            data["reason"] = reason
        return data


def skip_reason(candidate: Candidate) -> str | None:
    """Why this candidate cannot take a lead now, or None. Checked in the order a manager fixes them."""
    if not candidate.is_active:
        return "inactive"
    if CLAIM_PERMISSION not in candidate.permissions:
        return "no_claim_permission"
    if not candidate.on_duty:
        return "off_duty"
    if candidate.pending >= candidate.capacity:
        return "at_capacity"
    return None


def choose(
    candidates: list[Candidate], strategy: str, exclude: frozenset[uuid.UUID] = frozenset()
) -> tuple[Candidate | None, list[dict[str, Any]]]:
    """Pick from eligible primary members, else from eligible backups (R2.4). Every skip is explained.

    round_robin: the eligible member whose last turn is oldest (never assigned first); least_loaded: fewest
    pending leads, then oldest turn. Ties go to the lower user id, so the order is total and repeatable.
    `exclude` (the rep who returned the lead or let its claim deadline pass) is skipped as previous_assignee.
    """
    skipped: list[dict[str, Any]] = []
    for tier in ("primary", "backup"):
        eligible = []
        for candidate in (c for c in candidates if c.tier == tier):
            reason = "previous_assignee" if candidate.user_id in exclude else skip_reason(candidate)
            if reason is None:
                eligible.append(candidate)
            else:
                skipped.append(candidate.snapshot(reason))
        if eligible:
            return min(eligible, key=lambda c: _order(c, strategy)), skipped
    return None, skipped


def _order(candidate: Candidate, strategy: str) -> tuple:
    turn = candidate.last_turn if candidate.last_turn is not None else -1  # never assigned: first
    if strategy == "least_loaded":
        return (candidate.pending, turn, candidate.user_id)
    return (turn, candidate.user_id)
