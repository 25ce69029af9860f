"""The worker's background loops end when the worker stops, even when cancellation arrives mid-query."""

from __future__ import annotations

import asyncio

from app.workers.loops import run_forever, stop_loops


async def test_a_loop_whose_pass_turns_cancellation_into_an_error_still_stops():
    # What asyncpg does when a query is cancelled and the rollback that follows finds the connection busy:
    # the CancelledError comes out as a plain error. Before the fix the loop logged it and went on forever.
    passes = 0

    async def one_pass() -> None:
        nonlocal passes
        passes += 1
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise RuntimeError("cannot perform operation: another operation is in progress") from None

    task = asyncio.create_task(run_forever("demo", one_pass, 0.01))
    await asyncio.sleep(0.05)
    assert await stop_loops([task], timeout_seconds=2) == []
    assert task.cancelled() and passes == 1


async def test_a_failing_pass_is_logged_and_the_loop_goes_on(capsys):
    passes = 0

    async def one_pass() -> None:
        nonlocal passes
        passes += 1
        raise ValueError("database down")

    task = asyncio.create_task(run_forever("demo", one_pass, 0.01))
    await asyncio.sleep(0.2)
    assert not task.done() and passes >= 3
    assert await stop_loops([task]) == []
    logged = capsys.readouterr().err
    assert "demo_failed" in logged and "database down" in logged


async def test_shutdown_does_not_wait_forever_for_a_loop_that_ignores_cancellation(capsys):
    released = asyncio.Event()

    async def stubborn() -> None:
        while not released.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                await released.wait()

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    assert await stop_loops([task], timeout_seconds=0.2) == ["stubborn"]
    assert "worker_loops_did_not_stop" in capsys.readouterr().err
    released.set()
    await task


async def test_one_watch_pass_per_interval_however_many_workers_loop(app, client, admin, settings, make_source, db):
    """Every worker runs the watch loop; the advisory lock only kept passes from overlapping, so N workers
    made N passes an interval (alert occurrences counted N times, the 24 h queries run N times)."""
    from sqlalchemy import text

    from app.domain.clock import SystemClock
    from app.workers.alerts import watch_once

    await make_source(key="web")
    await client.post("/v1/intake/web", json={"name": "甲", "phone": "13600000001"})
    async with db.begin() as conn:
        await conn.execute(text("UPDATE leads SET status = 'assignment_failed'"))
    workers = [{"sessions": app.state.sessions, "clock": SystemClock(), "settings": settings,
                "relay": app.state.redis} for _ in range(3)]
    assert [await watch_once(ctx) for ctx in workers] == [True, False, False]
    [alert] = (await client.get("/v1/alerts?status=firing", headers=admin)).json()
    assert alert["key"] == "assignment_failed" and alert["occurrences"] == 1
