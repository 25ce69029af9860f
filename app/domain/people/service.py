"""R2.1: roles, users (with opaque API tokens), teams; the principal behind a bearer token."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.clock import Clock
from app.domain.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from app.domain.people.models import PERMISSIONS, Role, Team, TeamMember, User

TOKEN_PREFIX = "lf_"
log = structlog.get_logger(__name__)


@dataclass
class Principal:
    """Who is calling. The settings' admin token is a principal with every permission (bootstrap)."""

    user_id: uuid.UUID | None
    name: str
    permissions: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False

    def require(self, permission: str) -> None:
        if not (self.is_admin or permission in self.permissions):
            raise Forbidden(f"this needs the {permission} permission", extra={"code": "missing_permission",
                                                                            "permission": permission})


ADMIN = Principal(user_id=None, name="admin", permissions=frozenset(PERMISSIONS), is_admin=True)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def principal_for_token(session: AsyncSession, token: str) -> Principal | None:
    """The active user holding this API token, or None. Tokens are stored only as SHA-256."""
    row = (await session.execute(
        select(User, Role.permissions).join(Role, Role.id == User.role_id)
        .where(User.token_sha256 == hash_token(token), User.is_active))).first()
    if row is None:
        return None
    user, permissions = row
    # Rights come from the role alone (kind "admin" is a label): only the settings token is all-powerful.
    return Principal(user_id=user.id, name=user.name, permissions=frozenset(permissions or []))


async def create_role(session: AsyncSession, name: str, permissions: list[str], clock: Clock) -> Role:
    unknown = sorted(set(permissions) - set(PERMISSIONS))
    if unknown:
        raise InvalidInput("unknown permissions", [FieldError("permissions", "unknown_permission",
                                                              f"unknown: {', '.join(unknown)}")])
    if await session.scalar(select(Role).where(Role.name == name)):
        raise Conflict(f"role {name!r} exists")
    role = Role(name=name, permissions=sorted(set(permissions)), created_at=clock.now())
    session.add(role)
    await session.flush()
    return role


async def create_user(
    session: AsyncSession, *, name: str, kind: str, role_id: uuid.UUID, clock: Clock, capacity: int | None = None,
    on_duty: bool = True, wecom_userid: str | None = None, notify_kinds: list[str] | None = None,
) -> tuple[User, str]:
    """Create a user and their API token; the token is returned once and stored only as a hash."""
    if await session.get(Role, role_id) is None:
        raise NotFound(f"no role {role_id}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    user = User(name=name, kind=kind, role_id=role_id, capacity=capacity, on_duty=on_duty, is_active=True,
                wecom_userid=wecom_userid, notify_kinds=notify_kinds, token_sha256=hash_token(token),
                created_at=clock.now())
    session.add(user)
    await session.flush()
    return user, token


async def create_team(
    session: AsyncSession, *, name: str, manager_id: uuid.UUID | None, primary: list[uuid.UUID],
    backup: list[uuid.UUID], clock: Clock, wecom_robot_key: str | None = None,
) -> Team:
    if await session.scalar(select(Team).where(Team.name == name)):
        raise Conflict(f"team {name!r} exists")
    if manager_id is not None and await session.get(User, manager_id) is None:
        raise NotFound(f"no user {manager_id} (manager_id)")
    team = Team(name=name, manager_id=manager_id, wecom_robot_key=wecom_robot_key, created_at=clock.now())
    session.add(team)
    await session.flush()
    await set_members(session, team.id, primary, backup)
    return team


async def set_members(session: AsyncSession, team_id: uuid.UUID, primary: list[uuid.UUID],
                      backup: list[uuid.UUID]) -> None:
    """Replace the team's membership: primary members first in line, backups when all primaries are full."""
    if await session.get(Team, team_id) is None:
        raise NotFound(f"no team {team_id}")
    for name, ids in (("primary", primary), ("backup", backup)):
        if len(set(ids)) != len(ids):
            raise InvalidInput("a member is listed twice", [FieldError(name, "duplicate_member",
                                                                       "each user at most once")])
    both = set(primary) & set(backup)
    if both:
        raise InvalidInput("a member cannot be primary and backup",
                           [FieldError("backup", "duplicate_member", f"{len(both)} user(s) in both lists")])
    await session.execute(delete(TeamMember).where(TeamMember.team_id == team_id))
    for tier, users in (("primary", primary), ("backup", backup)):
        for user_id in users:
            if await session.get(User, user_id) is None:
                raise NotFound(f"no user {user_id}")
            session.add(TeamMember(team_id=team_id, user_id=user_id, tier=tier))
    await session.flush()


async def list_roles(session: AsyncSession) -> list[Role]:
    return list(await session.scalars(select(Role).order_by(Role.name)))


async def list_users(session: AsyncSession) -> list[User]:
    return list(await session.scalars(select(User).order_by(User.created_at)))


async def update_user(session: AsyncSession, user_id: uuid.UUID, changes: dict) -> User:
    """Change duty, capacity, activity or role; fields left out stay as they are."""
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound(f"no user {user_id}")
    if "role_id" in changes and await session.get(Role, changes["role_id"]) is None:
        raise NotFound(f"no role {changes['role_id']}")
    for name, value in changes.items():
        setattr(user, name, value)
    await session.flush()
    return user


async def update_role(session: AsyncSession, role_id: uuid.UUID, permissions: list[str]) -> Role:
    role = await session.get(Role, role_id, with_for_update=True)
    if role is None:
        raise NotFound(f"no role {role_id}")
    unknown = sorted(set(permissions) - set(PERMISSIONS))
    if unknown:
        raise InvalidInput("unknown permissions", [FieldError("permissions", "unknown_permission",
                                                              f"unknown: {', '.join(unknown)}")])
    role.permissions = sorted(set(permissions))
    await session.flush()
    return role


async def list_teams(session: AsyncSession) -> list[tuple[Team, list[TeamMember]]]:
    teams = list(await session.scalars(select(Team).order_by(Team.name)))
    members = list(await session.scalars(select(TeamMember)))
    return [(t, [m for m in members if m.team_id == t.id]) for t in teams]


@dataclass
class MemberState:
    user: User
    tier: str
    pending: int  # assigned or claimed leads: what counts against capacity


async def _team_for(session: AsyncSession, principal: Principal, team_id: uuid.UUID) -> Team:
    """The team, if the caller may manage it: config.manage anywhere, team.manage as this team's manager."""
    team = await session.get(Team, team_id)
    if team is None:
        raise NotFound(f"no team {team_id}")
    if principal.is_admin or "config.manage" in principal.permissions:
        return team
    principal.require("team.manage")
    if team.manager_id != principal.user_id:
        raise Forbidden("only this team's manager (or an admin) manages its members",
                        extra={"code": "not_team_manager"})
    return team


async def team_members(session: AsyncSession, principal: Principal, team_id: uuid.UUID) -> list[MemberState]:
    """Who is in the team, on duty or not, and how full each one is: what a manager checks before a shift."""
    from app.domain.leads.models import PENDING_STATUSES, Lead

    await _team_for(session, principal, team_id)
    pending = (select(func.count()).select_from(Lead)
               .where(Lead.assignee_id == User.id, Lead.status.in_(PENDING_STATUSES)).scalar_subquery())
    rows = await session.execute(select(User, TeamMember.tier, pending)
                                 .join(TeamMember, TeamMember.user_id == User.id)
                                 .where(TeamMember.team_id == team_id).order_by(TeamMember.tier.desc(), User.name))
    return [MemberState(user, tier, count) for user, tier, count in rows]


async def manage_member(session: AsyncSession, principal: Principal, team_id: uuid.UUID, user_id: uuid.UUID,
                        changes: dict) -> User:
    """R2.1 `team.manage`: a team's manager takes a rep off duty (leave, a training day) or sets their
    capacity, without the admin token. Only members of that team; assignment sees the change at once."""
    await _team_for(session, principal, team_id)
    if await session.get(TeamMember, (team_id, user_id)) is None:
        raise NotFound(f"user {user_id} is not a member of team {team_id}")
    user = await update_user(session, user_id, changes)
    log.info("team_member_changed", team_id=str(team_id), user_id=str(user_id), by=principal.name, **changes)
    return user
