"""The arq worker: job functions, resources in ctx, the outbox relay loop, and a heartbeat from the poll loop.

The worker survives Redis outages: a failed poll is logged and retried instead of ending the process, so
leads accepted while Redis was down are assigned as soon as it is back.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import httpx
import structlog
from arq.worker import Worker
from redis.exceptions import RedisError

import app.domain.tables  # noqa: F401  (every table, so foreign keys resolve in a worker-only process)
from app.db import create_engine, create_sessionmaker
from app.domain.clock import Clock, SystemClock
from app.domain.notify.delivery import Channels
from app.queue import arq_redis_settings, create_queue_client, worker_heartbeat_key
from app.settings import Settings
from app.workers.alerts import probe_forever, send_alert, watch_forever
from app.workers.assignment import assign_lead, reassign_overdue_forever
from app.workers.loops import stop_loops
from app.workers.notify import deliver_notification
from app.workers.outbox import relay_outbox_forever

log = structlog.get_logger(__name__)

FUNCTIONS = [assign_lead, deliver_notification, send_alert]
DB_POOL_SIZE = 5  # and as many again as overflow: 10 connections per worker process
# Jobs that call WeCom / DingTalk inside their transaction: deliveries and alert posts each have their own
# slots; the other 4+ connections stay for assignment, the outbox relay and the loops however slowly the
# platforms answer. A job finding no free slot is retried by arq shortly (it does not wait in a job slot).
OUTBOUND_SLOTS = 4
ALERT_SLOTS = 2


class ResilientWorker(Worker):
    """An arq Worker whose poll loop outlives a Redis restart, and whose heartbeat proves the loop runs."""

    heartbeat_interval: float = 5.0
    heartbeat_ttl: int = 120
    shutdown_grace: float = 10.0
    _last_beat: float = 0.0
    _closing: asyncio.Task[None] | None = None

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        # arq takes a job slot before its Redis calls; if one fails the slot would never come back and,
        # after max_jobs blips, the worker would pick up nothing while looking alive.
        for job_id in job_ids:
            started = self.job_counter
            try:
                await super().start_jobs([job_id])
            except (RedisError, OSError):
                if self.job_counter > started:
                    self.job_counter -= 1
                    self.sem.release()
                raise

    def handle_sig(self, signum: int) -> None:
        """A signal (or `close()`) stops the worker gracefully: no new job, running ones get the grace time."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._stop(signum))

    async def _stop(self, signum: int) -> None:
        self.allow_pick_jobs = False
        running = [task for task in self.tasks.values() if not task.done()]
        log.info("worker_stopping", signal=signal.Signals(signum).name, running_jobs=len(running),
                 grace_seconds=self.shutdown_grace)
        if running:
            _, unfinished = await asyncio.wait(running, timeout=self.shutdown_grace)
            for task in unfinished:  # arq puts a cancelled job back in the queue (or the outbox sweep does)
                task.cancel()
            if unfinished:
                log.warning("worker_jobs_cancelled", count=len(unfinished))
        if self.main_task is not None:
            self.main_task.cancel()
        if self.on_stop is not None:
            self.on_stop(signal.Signals(signum))

    async def close(self) -> None:
        """Stop as a signal would, then release Redis, the loops and the database.

        arq's own close() gathers the jobs it has just cancelled, so their CancelledError escaped it and the
        shutdown (heartbeat key, loops, engine) was skipped whenever a job was running.
        """
        self.handle_sig(signal.SIGTERM)
        assert self._closing is not None
        await asyncio.shield(self._closing)
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        if not self._pool:
            return
        try:
            await self.pool.delete(self.health_check_key)
        except (RedisError, OSError):
            pass  # Redis is down: the key expires by itself
        if self.on_shutdown:
            await self.on_shutdown(self.ctx)
        await self.pool.close(close_connection_pool=True)
        self._pool = None

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except (RedisError, OSError) as error:
            log.warning("worker_poll_failed", reason="redis_unavailable", error=str(error)[:200])
            await asyncio.sleep(1)
            return
        if time.monotonic() - self._last_beat >= self.heartbeat_interval:
            try:
                await self.pool.set(worker_heartbeat_key(self.queue_name), str(time.time()), ex=self.heartbeat_ttl)
            except (RedisError, OSError) as error:  # Redis went away after the poll: beat on the next one
                log.warning("worker_heartbeat_failed", reason="redis_unavailable", error=str(error)[:200])
                return
            self._last_beat = time.monotonic()


def build_worker(settings: Settings, clock: Clock | None = None, **overrides: Any) -> ResilientWorker:
    clock = clock or SystemClock()

    async def on_startup(ctx: dict[str, Any]) -> None:
        engine = create_engine(settings.require_database_url(), pool_size=DB_POOL_SIZE)
        relay = create_queue_client(settings)
        http = httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=3.0))
        ctx.update(engine=engine, sessions=create_sessionmaker(engine), settings=settings, clock=clock,
                   outbound=asyncio.Semaphore(OUTBOUND_SLOTS), alert_outbound=asyncio.Semaphore(ALERT_SLOTS),
                   relay=relay, http=http, channels=Channels(http=http, redis=relay, settings=settings))

        ctx["loops"] = [asyncio.create_task(loop(ctx), name=loop.__name__)
                        for loop in (relay_outbox_forever, reassign_overdue_forever, probe_forever, watch_forever)]

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        await stop_loops(ctx.get("loops", []))
        if "http" in ctx:
            await ctx["http"].aclose()
        if "relay" in ctx:
            await ctx["relay"].aclose()
        if "engine" in ctx:
            await ctx["engine"].dispose()

    options: dict[str, Any] = dict(
        functions=FUNCTIONS, redis_settings=arq_redis_settings(settings), queue_name=settings.queue_name,
        on_startup=on_startup, on_shutdown=on_shutdown, max_jobs=20, job_timeout=settings.job_timeout_seconds,
        max_tries=10,
        # No stored results: the job id then dedupes only while queued or running, and a failed job can be
        # handed over again by the outbox sweep; `processed_at` is the lasting guard against doing it twice.
        keep_result=0, poll_delay=0.1, handle_signals=True,
    )
    options.update(overrides)
    worker = ResilientWorker(**options)
    worker.heartbeat_interval = settings.worker_heartbeat_interval_seconds
    worker.heartbeat_ttl = int(settings.worker_heartbeat_max_age_seconds * 4)
    worker.shutdown_grace = settings.worker_shutdown_grace_seconds
    return worker
