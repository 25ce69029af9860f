"""R3.6: versioned integration configs — sandbox (probed, no traffic) → canary (a share of deliveries) →
full — each promotion refused if the probe fails; rollback returns to the previous full version; every
change is audited. Without any version in the database, the WeCom app comes from settings."""

from __future__ import annotations

import random
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, new_id
from app.domain.errors import Conflict, NotFound
from app.domain.leads import audit

STAGES = ("sandbox", "canary", "full", "superseded", "rolled_back", "withdrawn")


class IntegrationConfig(Base):
    __tablename__ = "integration_configs"
    __table_args__ = (UniqueConstraint("channel", "version", name="uq_integration_configs_channel_version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    channel: Mapped[str] = mapped_column(String(50))
    version: Mapped[int]
    stage: Mapped[str] = mapped_column(String(20))
    # wecom_app: corp_id, agent_id, secret, base_url, egress_ips, ip_check_enabled
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    previous_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("integration_configs.id"))
    probe_ok: Mapped[bool | None]
    probe_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


def public_config(config: dict[str, Any]) -> dict[str, Any]:
    """What the API shows: secrets are reported as set, never returned."""
    return {k: v for k, v in config.items() if k != "secret"} | {"secret_set": bool(config.get("secret"))}


async def versions(session: AsyncSession, channel: str) -> list[IntegrationConfig]:
    return list(await session.scalars(select(IntegrationConfig).where(IntegrationConfig.channel == channel)
                                      .order_by(IntegrationConfig.version.desc())))


async def live_configs(session: AsyncSession, channel: str) -> tuple[IntegrationConfig | None,
                                                                     IntegrationConfig | None]:
    rows = {c.stage: c for c in await session.scalars(select(IntegrationConfig).where(
        IntegrationConfig.channel == channel, IntegrationConfig.stage.in_(("full", "canary"))))}
    return rows.get("full"), rows.get("canary")


async def pick_config(session: AsyncSession, channel: str, canary_share: float) -> IntegrationConfig | None:
    """The version a delivery uses: the canary for `canary_share` of deliveries, else the full one."""
    full, canary = await live_configs(session, channel)
    if canary is not None and (full is None or random.random() < canary_share):
        return canary
    return full


async def propose(session: AsyncSession, channel: str, config: dict[str, Any], actor: str, now: datetime,
                  probe) -> IntegrationConfig:
    """A new version in sandbox, probed at once with its own settings (no real traffic)."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"config:{channel}", 0))))
    last = await session.scalar(select(func.max(IntegrationConfig.version)).where(IntegrationConfig.channel == channel))
    row = IntegrationConfig(channel=channel, version=(last or 0) + 1, stage="sandbox", config=config,
                            created_at=now, updated_at=now)
    session.add(row)
    await session.flush()
    await _probe(row, probe)
    _audit(session, row, "propose", actor, now)
    return row


async def promote(session: AsyncSession, channel: str, version: int, actor: str, now: datetime,
                  probe) -> IntegrationConfig:
    """sandbox → canary → full. Refused (409, audited) when the version's probe fails now."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"config:{channel}", 0))))
    row = await _get(session, channel, version)
    if row.stage not in ("sandbox", "canary"):
        raise Conflict(f"version {version} is {row.stage}; only sandbox and canary versions can be promoted",
                       extra={"code": "not_promotable"})
    await _probe(row, probe)
    if not row.probe_ok:
        _audit(session, row, "promote", actor, now, result="failed", reason="probe_failed")
        raise Conflict(f"version {version} fails its probe: {row.probe_error}",
                       extra={"code": "probe_failed"}, keep_changes=True)
    full, canary = await live_configs(session, channel)
    if row.stage == "sandbox":
        if canary is not None:
            canary.stage, canary.updated_at = "withdrawn", now
        row.stage = "canary"
    else:
        if full is not None:
            full.stage, full.updated_at = "superseded", now
            row.previous_id = full.id
        row.stage = "full"
    row.updated_at = now
    _audit(session, row, "promote", actor, now)
    return row


async def rollback(session: AsyncSession, channel: str, actor: str, now: datetime) -> IntegrationConfig:
    """Withdraw any canary and put the previous full version back in place of the current one."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"config:{channel}", 0))))
    full, canary = await live_configs(session, channel)
    if canary is not None:
        canary.stage, canary.updated_at = "withdrawn", now
        _audit(session, canary, "rollback", actor, now)
        if full is not None:
            return full
    if full is None or full.previous_id is None:
        raise Conflict("nothing to roll back to", extra={"code": "no_previous_version"})
    previous = await session.get(IntegrationConfig, full.previous_id)
    assert previous is not None
    full.stage, full.updated_at = "rolled_back", now
    previous.stage, previous.updated_at = "full", now
    _audit(session, full, "rollback", actor, now, detail={"restored_version": previous.version})
    return previous


async def _get(session: AsyncSession, channel: str, version: int) -> IntegrationConfig:
    row = await session.scalar(select(IntegrationConfig).where(IntegrationConfig.channel == channel,
                                                              IntegrationConfig.version == version)
                               .with_for_update())
    if row is None:
        raise NotFound(f"no {channel} version {version}")
    return row


async def _probe(row: IntegrationConfig, probe) -> None:
    error = await probe(row.config)
    row.probe_ok, row.probe_error = error is None, (str(error)[:500] if error else None)


def _audit(session: AsyncSession, row: IntegrationConfig, step: str, actor: str, now: datetime,
           result: str = "success", reason: str | None = None, detail: dict | None = None) -> None:
    audit.record(session, lead_id=None, action=f"integration_{step}", result=result, at=now, reason=reason,
                 actor=actor, detail={"channel": row.channel, "version": row.version, "stage": row.stage,
                                      "probe_ok": row.probe_ok, **(detail or {})})
