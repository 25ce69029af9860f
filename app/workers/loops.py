"""The worker's background loops (outbox relay, claim deadlines, probes, watch): run forever, stop when told.

A loop must survive any error of one pass (a stopped loop is a silent outage), yet end when the worker
shuts down. Catching `Exception` alone is not enough for the second: a task cancelled in the middle of a
database call can come out of it with a different exception (the driver's "operation in progress" from
the rollback that followed), which would be logged as one more failed pass and the loop would go on,
holding the worker's shutdown forever. So a pass that fails while its task is being cancelled ends the
loop, and shutdown waits for the loops only a bounded time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

import structlog

log = structlog.get_logger(__name__)


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def run_forever(name: str, one_pass: Callable[[], Awaitable[object]], interval_seconds: float) -> None:
    """Call `one_pass` every `interval_seconds`; log its failures and go on; end only when cancelled."""
    while True:
        try:
            await one_pass()
        except Exception as error:
            if _cancelling():
                raise asyncio.CancelledError(f"{name} stopped") from error
            log.warning(f"{name}_failed", error=f"{type(error).__name__}: {str(error)[:200]}")
        await asyncio.sleep(interval_seconds)


async def stop_loops(tasks: Iterable[asyncio.Task[None]], timeout_seconds: float = 5.0) -> list[str]:
    """Cancel the loops and wait for them at most `timeout_seconds`; return the names of any that hang."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    if not tasks:
        return []
    _, pending = await asyncio.wait(tasks, timeout=timeout_seconds)
    stuck = sorted(task.get_name() for task in pending)
    if stuck:
        log.error("worker_loops_did_not_stop", loops=stuck, waited_seconds=timeout_seconds)
    return stuck
