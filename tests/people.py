"""Test helpers: a sales team with reps, roles and a rule, written through the domain services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from app.db import unit_of_work
from app.domain.assignment.rules import RuleIn, create_rule
from app.domain.assignment.service import handle_assignment_request
from app.domain.clock import SystemClock
from app.domain.outbox.models import OutboxMessage
from app.domain.people.service import create_role, create_team, create_user

CLOCK = SystemClock()


@dataclass
class Team:
    id: Any
    manager: Any
    reps: list[Any] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)


async def make_team(app, *, reps: int = 3, backups: int = 0, rule: dict | None = None, rep_role: str = "sales",
                    rep_overrides: list[dict] | None = None, name: str = "华东销售") -> Team:
    async with unit_of_work(app.state.sessions) as session:
        sales = await create_role(session, "sales", ["lead.claim", "lead.transfer", "lead.return"], CLOCK)
        viewer = await create_role(session, "viewer", [], CLOCK)
        manager_role = await create_role(session, "manager", ["lead.view_all", "lead.transfer", "team.manage"], CLOCK)
        manager, manager_token = await create_user(session, name="经理", kind="manager", role_id=manager_role.id,
                                                   clock=CLOCK)
        roles = {"sales": sales.id, "viewer": viewer.id}
        people, tokens = [], {"manager": manager_token}
        for index in range(reps + backups):
            extra = (rep_overrides or [{}] * (reps + backups))[index] if rep_overrides else {}
            role = roles[extra.pop("role", rep_role)]
            user, token = await create_user(session, name=f"rep{index}", kind="sales", role_id=role, clock=CLOCK,
                                            **extra)
            people.append(user)
            tokens[f"rep{index}"] = token
        team = await create_team(session, name=name, manager_id=manager.id,
                                 primary=[p.id for p in people[:reps]], backup=[p.id for p in people[reps:]],
                                 clock=CLOCK)
        if rule is not False:
            await create_rule(session, RuleIn.model_validate({"name": "默认", "team_id": team.id} | (rule or {})),
                              CLOCK)
    return Team(id=team.id, manager=manager, reps=people, tokens=tokens)


async def drain(app, settings, clock) -> None:
    """Run every due assignment round, as the worker would, until none is left (deliveries are left alone)."""
    while True:
        async with unit_of_work(app.state.sessions) as session:
            due = list(await session.scalars(
                select(OutboxMessage.id).where(OutboxMessage.processed_at.is_(None), OutboxMessage.job == "assign_lead",
                                               (OutboxMessage.not_before.is_(None))
                                               | (OutboxMessage.not_before <= clock.now()))
                .order_by(OutboxMessage.created_at)))
        if not due:
            return
        for outbox_id in due:
            async with unit_of_work(app.state.sessions) as session:
                await handle_assignment_request(session, outbox_id, clock, settings)
