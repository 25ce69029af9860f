"""R2.1 admin API: roles, users (API tokens), teams with primary and backup members.

Changes that can strand leads (a role's permissions, a user's duty or capacity, team membership) answer
with the configuration lint's warnings (R2.9).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import SessionDep, get_clock, get_principal, require_admin
from app.api.problems import problem_responses
from app.domain.assignment.lint import lint_configuration
from app.domain.clock import Clock
from app.domain.notify.preferences import KNOWN_KINDS
from app.domain.patching import not_null
from app.domain.people import service
from app.domain.people.models import PERMISSIONS
from app.domain.people.service import Principal

router = APIRouter(tags=["people"], dependencies=[Depends(require_admin)],
                   responses=problem_responses(401, 403, 503))

Permission = Literal[PERMISSIONS]  # type: ignore[valid-type]
NotifyKind = Literal[tuple(sorted(KNOWN_KINDS))]  # type: ignore[valid-type]


class RoleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    permissions: list[Permission] = Field(default_factory=list)


class RolePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    permissions: list[Permission]


class RoleOut(BaseModel):
    id: uuid.UUID
    name: str
    permissions: list[str]


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["sales", "manager", "finance", "admin"]
    role_id: uuid.UUID
    capacity: int | None = Field(default=None, ge=0, description="Max pending leads; default from settings")
    on_duty: bool = True
    wecom_userid: str | None = None
    notify_kinds: list[NotifyKind] | None = Field(
        default=None, description="Notification kinds that reach this user; null = lead_assigned, todo_overdue, "
                                  "approval_pending (assignment_failed always reaches a manager)")


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on_duty: bool | None = None
    capacity: int | None = Field(default=None, ge=0)
    is_active: bool | None = None
    role_id: uuid.UUID | None = None
    wecom_userid: str | None = None
    notify_kinds: list[NotifyKind] | None = None

    _not_null = not_null("on_duty", "is_active", "role_id")


class UserOut(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    role_id: uuid.UUID
    is_active: bool
    on_duty: bool
    capacity: int | None
    wecom_userid: str | None
    notify_kinds: list[str] | None
    last_assigned_at: datetime | None


class UserCreated(BaseModel):
    user: UserOut
    token: str = Field(description="The user's API bearer token; shown once, stored only as a hash")


class TeamIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    manager_id: uuid.UUID | None = None
    wecom_robot_key: SecretStr | None = Field(
        default=None, description="The team's WeCom group robot key (write-only): failed assignments @-mention "
                                  "the manager there")
    primary: list[uuid.UUID] = Field(default_factory=list)
    backup: list[uuid.UUID] = Field(default_factory=list)


class Members(BaseModel):
    model_config = ConfigDict(extra="forbid")
    primary: list[uuid.UUID] = Field(default_factory=list)
    backup: list[uuid.UUID] = Field(default_factory=list)


class TeamOut(BaseModel):
    id: uuid.UUID
    name: str
    manager_id: uuid.UUID | None
    robot_set: bool = False
    primary: list[uuid.UUID]
    backup: list[uuid.UUID]


class Changed(BaseModel):
    warnings: list[dict[str, Any]] = Field(description="Configuration lint after the change (R2.9)")


class RoleChanged(Changed):
    role: RoleOut


class UserChanged(Changed):
    user: UserOut


class TeamChanged(Changed):
    team: TeamOut


def _user(u) -> UserOut:
    return UserOut.model_validate(u, from_attributes=True)


async def _lint(session: AsyncSession, request: Request) -> list[dict[str, Any]]:
    return [w.as_dict() for w in await lint_configuration(session, request.app.state.settings)]


@router.post("/v1/roles", status_code=201, response_model=RoleChanged, responses=problem_responses(409, 422))
async def create_role(data: RoleIn, request: Request, session: AsyncSession = SessionDep,
                      clock: Clock = Depends(get_clock)) -> RoleChanged:
    role = await service.create_role(session, data.name, list(data.permissions), clock)
    return RoleChanged(role=RoleOut.model_validate(role, from_attributes=True), warnings=await _lint(session, request))


@router.get("/v1/roles", response_model=list[RoleOut])
async def list_roles(session: AsyncSession = SessionDep) -> list[RoleOut]:
    return [RoleOut.model_validate(r, from_attributes=True) for r in await service.list_roles(session)]


@router.patch("/v1/roles/{role_id}", response_model=RoleChanged, responses=problem_responses(404, 422))
async def update_role(role_id: uuid.UUID, data: RolePatch, request: Request,
                      session: AsyncSession = SessionDep) -> RoleChanged:
    role = await service.update_role(session, role_id, list(data.permissions))
    return RoleChanged(role=RoleOut.model_validate(role, from_attributes=True), warnings=await _lint(session, request))


@router.post("/v1/users", status_code=201, response_model=UserCreated, responses=problem_responses(404, 422))
async def create_user(data: UserIn, session: AsyncSession = SessionDep,
                      clock: Clock = Depends(get_clock)) -> UserCreated:
    user, token = await service.create_user(session, clock=clock, **data.model_dump())
    return UserCreated(user=_user(user), token=token)


@router.get("/v1/users", response_model=list[UserOut])
async def list_users(session: AsyncSession = SessionDep) -> list[UserOut]:
    return [_user(u) for u in await service.list_users(session)]


@router.patch("/v1/users/{user_id}", response_model=UserChanged, responses=problem_responses(404, 422))
async def update_user(user_id: uuid.UUID, data: UserPatch, request: Request,
                      session: AsyncSession = SessionDep) -> UserChanged:
    user = await service.update_user(session, user_id, data.model_dump(exclude_unset=True))
    return UserChanged(user=_user(user), warnings=await _lint(session, request))


@router.post("/v1/teams", status_code=201, response_model=TeamChanged, responses=problem_responses(404, 409, 422))
async def create_team(data: TeamIn, request: Request, session: AsyncSession = SessionDep,
                      clock: Clock = Depends(get_clock)) -> TeamChanged:
    key = data.wecom_robot_key.get_secret_value() if data.wecom_robot_key else None
    team = await service.create_team(session, clock=clock, wecom_robot_key=key,
                                     **data.model_dump(exclude={"wecom_robot_key"}))
    out = TeamOut(id=team.id, name=team.name, manager_id=team.manager_id, robot_set=bool(key), primary=data.primary,
                  backup=data.backup)
    return TeamChanged(team=out, warnings=await _lint(session, request))


@router.get("/v1/teams", response_model=list[TeamOut])
async def list_teams(session: AsyncSession = SessionDep) -> list[TeamOut]:
    return [TeamOut(id=t.id, name=t.name, manager_id=t.manager_id, robot_set=bool(t.wecom_robot_key),
                    primary=[m.user_id for m in ms if m.tier == "primary"],
                    backup=[m.user_id for m in ms if m.tier == "backup"])
            for t, ms in await service.list_teams(session)]


@router.put("/v1/teams/{team_id}/members", response_model=Changed, responses=problem_responses(404, 422))
async def set_members(team_id: uuid.UUID, data: Members, request: Request,
                      session: AsyncSession = SessionDep) -> Changed:
    await service.set_members(session, team_id, data.primary, data.backup)
    return Changed(warnings=await _lint(session, request))


# Managers, not only admins: a team's manager (team.manage) sees and sets its members' duty and capacity.
members = APIRouter(tags=["people"], responses=problem_responses(401, 403, 404, 503))


class MemberOut(UserOut):
    tier: Literal["primary", "backup"]
    pending: int = Field(description="Assigned or claimed leads: what counts against capacity")


class MemberPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on_duty: bool | None = Field(default=None, description="false: skipped by assignment (off_duty) until true")
    capacity: int | None = Field(default=None, ge=0, description="Max pending leads; null = the default")

    _not_null = not_null("on_duty")


@members.get("/v1/teams/{team_id}/members", response_model=list[MemberOut],
             summary="A team's members: duty, capacity and pending leads (its manager or an admin)")
async def list_members(team_id: uuid.UUID, principal: Principal = Depends(get_principal),
                       session: AsyncSession = SessionDep) -> list[MemberOut]:
    return [MemberOut(**_user(m.user).model_dump(), tier=m.tier, pending=m.pending)
            for m in await service.team_members(session, principal, team_id)]


@members.patch("/v1/teams/{team_id}/members/{user_id}", response_model=UserChanged,
               responses=problem_responses(422), summary="Set a member's duty or capacity (its manager or an admin)")
async def manage_member(team_id: uuid.UUID, user_id: uuid.UUID, data: MemberPatch, request: Request,
                        principal: Principal = Depends(get_principal),
                        session: AsyncSession = SessionDep) -> UserChanged:
    user = await service.manage_member(session, principal, team_id, user_id, data.model_dump(exclude_unset=True))
    return UserChanged(user=_user(user), warnings=await _lint(session, request))
