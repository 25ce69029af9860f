"""The test harness: real PostgreSQL and Redis (embedded unless TEST_DATABASE_URL / TEST_REDIS_URL name
disposable servers), migrations run once per session, every test starting from empty tables and Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine
from app.domain.clock import Clock, SystemClock
from app.domain.tables import metadata
from app.embedded import EmbeddedStack
from app.logs import configure_logging
from app.main import create_app
from app.migrate import upgrade_to_head
from app.settings import Settings

warnings.filterwarnings("ignore", module="platformdirs")

# Property-based and contract tests replay the same generated inputs every run, so the suite (and CI) fails
# only when the code changed; `make fuzz` sets LEADFLOW_FUZZ_EXPLORE=1 for new random inputs each run.
hypothesis.settings.register_profile("repeatable", derandomize=True, database=None)
hypothesis.settings.register_profile("explore", database=None, print_blob=True)
hypothesis.settings.load_profile("explore" if os.environ.get("LEADFLOW_FUZZ_EXPLORE") == "1" else "repeatable")

ROOT = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "test-admin-token"
TEST_CLIENT_IP = "203.0.113.7"


@dataclass
class Stack:
    database_url: str
    redis_url: str
    embedded: EmbeddedStack | None

    def stop_postgres(self) -> None:
        self._need_embedded().postgres.stop(mode="immediate")

    def start_postgres(self) -> None:
        self._need_embedded().postgres.start()

    def stop_redis(self) -> None:
        self._need_embedded().redis.stop()

    def start_redis(self) -> None:
        self._need_embedded().redis.start()

    def _need_embedded(self) -> EmbeddedStack:
        if self.embedded is None:
            pytest.skip("outage tests stop and start the servers: they need the embedded stack")
        return self.embedded


def _reap_abandoned_stacks(parent: Path) -> None:
    """Stop and delete stacks left by test runs that were killed before their teardown."""
    if not parent.exists():
        return
    for folder in parent.iterdir():
        if not folder.name.isdigit():
            continue
        try:
            os.kill(int(folder.name), 0)
            continue  # that run is still going
        except ProcessLookupError:
            pass
        with contextlib.suppress(Exception):
            EmbeddedStack(folder, redis_persist=False).stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def stack() -> Any:
    db_url, redis_url = os.environ.get("TEST_DATABASE_URL"), os.environ.get("TEST_REDIS_URL")
    embedded = None
    if not (db_url and redis_url):
        # One stack per test run (its own folder and ports): two runs on one machine never share a database.
        _reap_abandoned_stacks(ROOT / ".leadflow" / "test")
        embedded = EmbeddedStack(ROOT / ".leadflow" / "test" / str(os.getpid()), redis_persist=False)
        embedded.postgres.start()
        db_url = db_url or embedded.postgres.create_database("leadflow_test", drop_first=True)
        redis_url = redis_url or embedded.redis.start()
    upgrade_to_head(db_url)
    yield Stack(db_url, redis_url, embedded)
    if embedded is not None:
        embedded.stop()
        shutil.rmtree(embedded.root, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def json_logs() -> None:
    configure_logging("INFO", json=True)


@pytest.fixture
def clock() -> Clock:
    return SystemClock()


@pytest.fixture
def settings(stack: Stack) -> Settings:
    return Settings(
        DATABASE_URL=stack.database_url, REDIS_URL=stack.redis_url, LEADFLOW_ADMIN_TOKEN=ADMIN_TOKEN,
        LEADFLOW_OUTBOX_SWEEP_INTERVAL=0.2, LEADFLOW_OUTBOX_REQUEUE_AFTER=2,
        LEADFLOW_WORKER_HEARTBEAT_INTERVAL=0.2, LEADFLOW_RETRY_AFTER_SECONDS=3, LEADFLOW_LOG_JSON=True,
    )


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[AsyncEngine]:
    """A direct engine for assertions; tables are emptied before each test."""
    engine = create_engine(stack.database_url, pool_size=2, pre_ping=True)
    await empty_everything(engine, stack.redis_url)
    yield engine
    await engine.dispose()


async def empty_everything(engine: AsyncEngine, redis_url: str) -> None:
    """Every table truncated, the Redis database flushed: a test starts from nothing another one left."""
    tables = ", ".join(t.name for t in metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    client = aioredis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()


@pytest.fixture
async def app(settings: Settings, clock: Clock, db: AsyncEngine) -> AsyncIterator[Any]:
    application = create_app(settings, clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(TEST_CLIENT_IP, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://leadflow.test") as http:
        yield http


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
async def make_source(client: httpx.AsyncClient, admin: dict[str, str]) -> Callable[..., Any]:
    """Create a source through the admin API; returns its JSON."""

    async def _make(**fields: Any) -> dict[str, Any]:
        body = {"name": fields.get("key", "source"), "kind": "generic", "auth": {"mode": "none"}} | fields
        response = await client.post("/v1/sources", json=body, headers=admin)
        assert response.status_code == 201, response.text
        return response.json()

    return _make


@pytest.fixture
async def worker(settings: Settings, clock: Clock, db: AsyncEngine) -> AsyncIterator[Any]:
    """A real arq worker (with its outbox sweep and heartbeat) running in this event loop."""
    from app.workers.settings import build_worker

    instance = build_worker(settings, clock, handle_signals=False, poll_delay=0.05)
    task = asyncio.create_task(instance.async_run())
    yield instance
    try:
        await asyncio.wait_for(instance.close(), 20)
    except TimeoutError:
        warnings.warn("arq worker did not close within 20 s", stacklevel=1)
    task.cancel()
    try:
        await asyncio.wait_for(task, 5)
    except (asyncio.CancelledError, TimeoutError, Exception):
        pass


async def within_one_rate_window(margin_seconds: float = 5.0) -> None:
    """The browser rate limit counts per wall-clock minute: start a burst with enough of the minute left that
    it cannot straddle two windows (a test that did would see its last request let through)."""
    import time

    left = 60 - time.time() % 60
    if left < margin_seconds:
        await asyncio.sleep(left + 0.05)


async def eventually(check: Callable[[], Any], within: float = 10.0, interval: float = 0.1) -> Any:
    """Await `check()` until it returns truthy; fail with its last value after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {within}s; last value: {last!r}")


@pytest.fixture
async def fake():
    """A fake WeCom served over real HTTP for the test; `fake.base_url` ends in /cgi-bin/."""
    from tests.fakes.server import serve
    from tests.fakes.wecom import FakeWeCom

    wecom = FakeWeCom()
    async with serve(wecom.app()) as url:
        wecom.base_url = url + "/cgi-bin/"
        yield wecom
