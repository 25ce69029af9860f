"""Per-request dependencies: the unit of work, the clock, the admin check.

All are `async def`: FastAPI runs plain `def` dependencies in a thread pool, a thread hop per request.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import unit_of_work
from app.domain.clock import Clock
from app.domain.errors import Unauthorized
from app.domain.intake.service import IntakeContext
from app.domain.people.service import ADMIN, Principal, principal_for_token
from app.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="The admin token from LEADFLOW_ADMIN_TOKEN")


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_clock(request: Request) -> Clock:
    return request.app.state.clock


async def get_intake_context(request: Request) -> IntakeContext:
    return intake_context(request.app.state)


def intake_context(state: Any) -> IntakeContext:
    """Built by the lifespan: its resources do not change while the app runs."""
    return state.intake_context


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with unit_of_work(request.app.state.sessions) as session:
        yield session


# One transaction per request, committed when the endpoint function returns — before the response is sent
# (scope="function"), so a failed commit is never answered with 2xx.
SessionDep = Depends(_session, scope="function")


async def get_principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    """The caller behind `Authorization: Bearer …`: the admin token from settings, or a user's API token."""
    given = credentials.credentials if credentials else ""
    if not given:
        raise Unauthorized("a bearer token is required", extra={"code": "invalid_token"})
    token = request.app.state.settings.admin_token
    if token is not None and hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        return ADMIN
    async with unit_of_work(request.app.state.sessions) as session:
        principal = await principal_for_token(session, given)
    if principal is None:
        raise Unauthorized("a valid bearer token is required", extra={"code": "invalid_token"})
    return principal


async def require_admin(principal: Principal = Depends(get_principal)) -> Principal:
    """Configuration endpoints: the admin token or a role with config.manage."""
    principal.require("config.manage")
    return principal
