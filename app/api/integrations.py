"""R3.6 API: versioned integration configs — propose (sandbox), promote (canary, full), roll back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi import Path as FastPath
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import SessionDep, get_clock, require_admin
from app.api.problems import problem_responses
from app.domain.clock import Clock
from app.domain.notify import configs
from app.domain.notify.delivery import Channels
from app.domain.people.service import Principal

router = APIRouter(tags=["integrations"], responses=problem_responses(401, 403, 503))
Channel = Literal["wecom_app"]


class WeComAppConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    corp_id: str = Field(min_length=1)
    agent_id: int
    secret: SecretStr = Field(description="write-only")
    base_url: AnyHttpUrl | None = None
    egress_ips: list[str] = Field(default_factory=list, description="this service's egress IPs/CIDRs")
    ip_check_enabled: bool = Field(default=True, description="explain IP refusals against egress_ips")


class VersionOut(BaseModel):
    channel: str
    version: int
    stage: str
    config: dict[str, Any]
    probe_ok: bool | None
    probe_error: str | None
    created_at: datetime
    updated_at: datetime


def _out(row: configs.IntegrationConfig) -> VersionOut:
    return VersionOut(channel=row.channel, version=row.version, stage=row.stage,
                      config=configs.public_config(row.config), probe_ok=row.probe_ok, probe_error=row.probe_error,
                      created_at=row.created_at, updated_at=row.updated_at)


def _probe(request: Request):
    state = request.app.state
    return Channels(http=state.http, redis=state.redis, settings=state.settings).probe_config


@router.get("/v1/integrations/{channel}/versions", response_model=list[VersionOut],
            dependencies=[Depends(require_admin)])
async def list_versions(channel: Channel, session: AsyncSession = SessionDep) -> list[VersionOut]:
    return [_out(r) for r in await configs.versions(session, channel)]


@router.post("/v1/integrations/{channel}/versions", status_code=201, response_model=VersionOut,
             summary="Propose a config: a new sandbox version, probed at once, carrying no traffic",
             responses=problem_responses(422))
async def propose(channel: Channel, data: WeComAppConfig, request: Request,
                  principal: Principal = Depends(require_admin), session: AsyncSession = SessionDep,
                  clock: Clock = Depends(get_clock)) -> VersionOut:
    config = data.model_dump(mode="json") | {"secret": data.secret.get_secret_value()}
    return _out(await configs.propose(session, channel, config, principal.name, clock.now(), _probe(request)))


@router.post("/v1/integrations/{channel}/versions/{version}/promote", response_model=VersionOut,
             summary="sandbox → canary → full; refused when the probe fails", responses=problem_responses(404, 409))
async def promote(channel: Channel, version: Annotated[int, FastPath(ge=1, le=2**31 - 1)], request: Request,
                  principal: Principal = Depends(require_admin),
                  session: AsyncSession = SessionDep, clock: Clock = Depends(get_clock)) -> VersionOut:
    return _out(await configs.promote(session, channel, version, principal.name, clock.now(), _probe(request)))


@router.post("/v1/integrations/{channel}/rollback", response_model=VersionOut,
             summary="Withdraw the canary, or put the previous full version back", responses=problem_responses(409))
async def rollback(channel: Channel, principal: Principal = Depends(require_admin),
                   session: AsyncSession = SessionDep, clock: Clock = Depends(get_clock)) -> VersionOut:
    return _out(await configs.rollback(session, channel, principal.name, clock.now()))
