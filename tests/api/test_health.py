"""R7.1 / R7.2: what ops sees — health, readiness, metrics, and logs that never leak a phone number."""

from __future__ import annotations

import json
import logging

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


async def test_metrics_count_intake_by_source_and_outcome(client, make_source):
    await make_source(key="metered")
    await client.post("/v1/intake/metered", json={"name": "张三", "phone": "13800138000"})
    await client.post("/v1/intake/metered", json={"name": "张三"})
    text = (await client.get("/metrics")).text
    assert 'leadflow_intake_requests_total{outcome="accepted",source="metered"}' in text
    assert 'leadflow_intake_requests_total{outcome="refused_validation-failed",source="metered"}' in text
    assert 'leadflow_intake_duration_seconds_bucket{le="0.05",source="metered"}' in text
    assert "leadflow_outbox_backlog " in text
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
