"""The worker's outbox relay loop: wake on NOTIFY leadflow_outbox, or every sweep interval, and relay."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
import structlog

from app.domain.outbox.relay import NOTIFY_CHANNEL, QUEUE_ERRORS, sweep

log = structlog.get_logger(__name__)


async def relay_outbox_forever(ctx: dict[str, Any]) -> None:
    """Never returns; survives database and Redis outages (logs, waits, tries again)."""
    settings = ctx["settings"]
    wake = asyncio.Event()
    listener = asyncio.create_task(_listen(settings.require_database_url(), wake))
    try:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), settings.outbox_sweep_interval_seconds)
            wake.clear()
            try:
                while await sweep(ctx["sessions"], ctx["relay"], ctx["clock"],
                                  requeue_after_seconds=settings.outbox_requeue_after_seconds) >= 500:
                    pass  # a full batch: there may be more
            except QUEUE_ERRORS as error:
                log.warning("outbox_relay_waiting", reason="queue_unavailable", error=str(error)[:200])
            except Exception as error:
                log.warning("outbox_relay_waiting", reason=type(error).__name__, error=str(error)[:200])
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


async def _listen(database_url: str, wake: asyncio.Event) -> None:
    """Keep one LISTEN connection; reconnect after a database restart."""
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    while True:
        conn = None
        try:
            conn = await asyncpg.connect(dsn, timeout=3)
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c, lost=lost: lost.set())
            await conn.add_listener(NOTIFY_CHANNEL, lambda *_args: wake.set())
            wake.set()  # catch up on anything committed while we were not listening
            while not conn.is_closed():  # the termination callback, and a poll in case it never comes
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), 5)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
            log.warning("outbox_listen_reconnecting", error=f"{type(error).__name__}: {str(error)[:120]}")
        finally:
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)
        await asyncio.sleep(1)
