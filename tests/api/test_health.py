"""R7.1 / R7.2: what ops sees — health, readiness, metrics, and logs that never leak a phone number."""

from __future__ import annotations

import json
import logging

import httpx
import structlog

from tests.conftest import eventually


async def test_healthz_is_alive(client):
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_readyz_without_a_worker_is_503_and_names_it(client):
    r = await client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["down"] == ["worker"] and "leadflow worker" in body["checks"]["worker"]["error"]
    assert body["checks"]["migrations"]["ok"] and body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]


async def test_readyz_with_a_live_worker_is_ready(client, worker):
    async def ready():
        r = await client.get("/readyz")
        return r if r.status_code == 200 else None

    r = await eventually(ready)
    assert r.json()["status"] == "ready" and r.json()["down"] == []


async def test_readyz_names_redis_when_it_is_down(client, stack):
    stack.stop_redis()
    try:
        r = await client.get("/readyz")
    finally:
        stack.start_redis()
    assert r.status_code == 503 and "redis" in r.json()["down"]


async def test_metrics_count_intake_by_source_and_outcome(client, make_source, app):
    await make_source(key="metered")
    await client.post("/v1/intake/metered", json={"name": "张三", "phone": "13800138000"})
    await client.post("/v1/intake/metered", json={"name": "张三"})
    text = (await client.get("/metrics")).text
    assert 'leadflow_intake_requests_total{outcome="accepted",source="metered"}' in text
    assert 'leadflow_intake_requests_total{outcome="refused_validation-failed",source="metered"}' in text
    assert 'leadflow_intake_duration_seconds_bucket{le="0.05",source="metered"}' in text
    from datetime import UTC, datetime, timedelta

    from app.db import unit_of_work
    from app.domain.outbox.models import OutboxMessage

    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    async with unit_of_work(app.state.sessions) as session:  # three jobs nobody picked up for an hour
        session.add_all([OutboxMessage(job="assign_lead", payload={}, created_at=hour_ago) for _ in range(3)])
    assert "\nleadflow_outbox_backlog 3.0\n" in (await client.get("/metrics")).text  # the fresh lead's is not late
    await client.post("/v1/intake/no-such-source-x1", json={})
    text = (await client.get("/metrics")).text
    assert "no-such-source-x1" not in text and 'outcome="refused_not-found",source="unknown"' in text


async def test_logs_are_json_with_ids_and_phones_masked(client, make_source, capsys):
    await make_source(key="logged")
    capsys.readouterr()
    r = await client.post("/v1/intake/logged", json={"name": "张三", "phone": "13812348000"},
                          headers={"X-Request-ID": "req-42"})
    structlog.get_logger("t").info("note", text="call 13812348000 now", corpsecret="s3cr3t-value")
    logging.getLogger("uvicorn.error").warning("peer said +86 138 1234 8000")
    output = capsys.readouterr().err
    lines = [json.loads(line) for line in output.splitlines()]
    accepted = next(line for line in lines if line.get("intake") == "accepted")  # one line per request
    assert accepted["event"] == "http_request" and accepted["status"] == 201 and accepted["source"] == "logged"
    assert accepted["request_id"] == "req-42" and accepted["lead_id"] == r.json()["lead_id"]
    assert accepted["submission_id"] == r.json()["submission_id"]
    assert "13812348000" not in output and "1234 8000" not in output and "s3cr3t-value" not in output
    assert "138****8000" in output
    note = next(line for line in lines if line["event"] == "note")
    assert note["logger"] == "t" and note["level"] == "info" and note["corpsecret"] == "***"
    assert note["text"] == "call 138****8000 now"
    uvicorn = next(line for line in lines if line.get("logger") == "uvicorn.error")
    assert uvicorn["event"] == "peer said 138****8000" and uvicorn["level"] == "warning"


async def test_readyz_names_what_is_down_without_hosts_or_driver_messages(settings, clock, db):
    """Behind a load balancer /readyz is public: the class of the error, not 'connect call failed (10.0.3.7)'."""
    from app.main import create_app

    broken = settings.model_copy(update={"database_url": "postgresql+asyncpg://u:p@127.0.0.1:1/x",
                                         "redis_url": "redis://127.0.0.1:2/0"})
    application = create_app(broken, clock)
    async with application.router.lifespan_context(application), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://t") as http:
        body = (await http.get("/readyz")).json()
    assert body["down"] == ["database", "migrations", "redis", "worker"]
    assert "127.0.0.1" not in str(body) and ":1" not in body["checks"]["database"]["error"]


async def test_a_worker_of_another_deployment_on_the_same_redis_does_not_make_this_one_ready(
        client, settings, db, monkeypatch):
    from arq import create_pool
    from arq.worker import Worker

    from app.queue import arq_redis_settings, worker_heartbeat_key
    from app.workers.settings import build_worker

    staging = settings.model_copy(update={"queue_name": "staging:queue"})  # LEADFLOW_QUEUE_NAME, shared Redis
    other = build_worker(staging, handle_signals=False)
    other._pool = await create_pool(arq_redis_settings(staging), default_queue_name=staging.queue_name)

    async def polled(self) -> None:
        return None

    monkeypatch.setattr(Worker, "_poll_iteration", polled)
    try:
        await other._poll_iteration()  # staging's worker beats
        assert await other._pool.get(worker_heartbeat_key("staging:queue")) is not None  # it did beat
    finally:
        await other._pool.aclose()
    assert "worker" in (await client.get("/readyz")).json()["down"]  # ours (settings.queue_name) has none
