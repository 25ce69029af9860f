"""The worker's outbox relay loop: sweep the outbox every LEADFLOW_OUTBOX_SWEEP_INTERVAL (default 0.25 s).

Polling rather than LISTEN/NOTIFY: a NOTIFY takes a database-wide lock at commit, which would serialize
every intake transaction. An idle poll is one index-only query.
"""

from __future__ import annotations

from typing import Any

import structlog

from app.domain.outbox.relay import BATCH, QUEUE_ERRORS, sweep
from app.workers.loops import run_forever

log = structlog.get_logger(__name__)


async def relay_outbox_forever(ctx: dict[str, Any]) -> None:
    """Never returns until cancelled; survives database and Redis outages (logs, waits, tries again)."""
    settings = ctx["settings"]

    async def one_pass() -> None:
        try:
            while await sweep(ctx["sessions"], ctx["relay"], ctx["clock"],
                              requeue_after_seconds=settings.outbox_requeue_after_seconds) >= BATCH:
                pass  # a full batch: there may be more
        except QUEUE_ERRORS as error:
            log.warning("outbox_relay_waiting", reason="queue_unavailable", error=str(error)[:200])

    await run_forever("outbox_relay", one_pass, settings.outbox_sweep_interval_seconds)
