"""arq job: post one alert message to the ops groups."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from redis.exceptions import RedisError

from app.db import unit_of_work
from app.domain.alerts.delivery import send_alert as send
from app.domain.alerts.probes import run_probes
from app.domain.alerts.watch import watch
from app.workers.loops import run_forever
from app.workers.notify import outbound_slot

log = structlog.get_logger(__name__)


async def send_alert(ctx: dict[str, Any], outbox_id: str) -> str:
    # its own slots: an alert about a hanging platform must not queue behind the pushes hanging on it
    async with outbound_slot(ctx["alert_outbound"]), unit_of_work(ctx["sessions"]) as session:
        return await send(session, uuid.UUID(outbox_id), ctx["clock"].now(), ctx["channels"])


async def probe_forever(ctx: dict[str, Any]) -> None:
    """R3.4: probe the integrations every LEADFLOW_PROBE_INTERVAL_SECONDS (one worker does it per interval)."""
    settings = ctx["settings"]

    async def one_pass() -> None:
        async with unit_of_work(ctx["sessions"]) as session:
            await run_probes(session, ctx["channels"], ctx["clock"].now())

    await run_forever("probe", one_pass, min(30.0, settings.probe_interval_seconds / 3))


async def watch_forever(ctx: dict[str, Any]) -> None:
    """R3.5: threshold alerts every LEADFLOW_WATCH_INTERVAL_SECONDS."""

    async def one_pass() -> None:
        await watch_once(ctx)

    await run_forever("watch", one_pass, ctx["settings"].watch_interval_seconds)


async def watch_once(ctx: dict[str, Any]) -> bool:
    """One watch pass, unless another worker made one this interval (every worker loops; one pass counts).

    The claim is a Redis key that expires with the interval (per queue name: deployments sharing a Redis
    each watch). With Redis down the pass runs anyway: a doubled pass beats none.
    """
    settings = ctx["settings"]
    try:
        first = await ctx["relay"].set(f"{settings.queue_name}:watch-pass", "1", nx=True,
                                       px=max(1, int(settings.watch_interval_seconds * 900)))
    except (RedisError, OSError):
        first = True
    if not first:
        return False
    async with unit_of_work(ctx["sessions"]) as session:
        await watch(session, ctx["clock"].now(), settings)
    return True
