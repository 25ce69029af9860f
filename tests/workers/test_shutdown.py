"""Stopping a worker (SIGTERM / SIGINT, or close()) lets running jobs finish, within a grace time."""

from __future__ import annotations

import asyncio
import time

from arq import create_pool
from arq.worker import func

from app.queue import arq_redis_settings
from app.workers.settings import build_worker


def _worker(settings, job, grace: float):
    instance = build_worker(settings.model_copy(update={"worker_shutdown_grace_seconds": grace}),
                            handle_signals=False, poll_delay=0.05, functions=[func(job, name="job")])
    return instance, asyncio.create_task(instance.async_run())


async def _enqueue(settings, *args):
    redis = await create_pool(arq_redis_settings(settings), default_queue_name=settings.queue_name)
    try:
        await redis.enqueue_job("job", *args)
    finally:
        await redis.aclose()


async def test_stopping_lets_a_running_job_finish_then_releases_everything(settings, db):
    started, finished = asyncio.Event(), []

    async def job(ctx, seconds):
        started.set()
        await asyncio.sleep(seconds)
        finished.append(seconds)

    instance, task = _worker(settings, job, grace=5)
    await _enqueue(settings, 0.5)
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.wait_for(instance.close(), 10)
    assert finished == [0.5]  # arq's own close() cancelled it at once
    assert all(loop.done() for loop in instance.ctx["loops"])  # the shutdown hook ran
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)


async def test_a_job_longer_than_the_grace_is_cancelled_and_the_worker_still_shuts_down(settings, db):
    started, cancelled = asyncio.Event(), []

    async def job(ctx, seconds):
        started.set()
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            cancelled.append(seconds)
            raise

    instance, task = _worker(settings, job, grace=0.3)
    await _enqueue(settings, 60)
    await asyncio.wait_for(started.wait(), 10)
    begun = time.monotonic()
    await asyncio.wait_for(instance.close(), 10)
    assert cancelled == [60] and time.monotonic() - begun < 5
    assert all(loop.done() for loop in instance.ctx["loops"])
    assert instance._pool is None  # Redis released
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)


async def test_redis_going_away_between_the_poll_and_the_heartbeat_does_not_end_the_worker(
        settings, db, stack, monkeypatch):
    """The poll's own Redis errors were survived; the heartbeat right after it was not (the process exited)."""
    from arq.worker import Worker

    instance = build_worker(settings, handle_signals=False)
    instance._pool = await create_pool(arq_redis_settings(settings), default_queue_name=settings.queue_name)

    async def poll_that_worked(self) -> None:  # the poll got its answer just before Redis went away
        stack.stop_redis()

    monkeypatch.setattr(Worker, "_poll_iteration", poll_that_worked)
    try:
        await instance._poll_iteration()  # raised ConnectionError out of arq's main loop
        assert instance._last_beat == 0  # no beat recorded: the next poll beats again
    finally:
        stack.start_redis()
        await instance._pool.aclose()
