"""R1.1: sources managed through the admin API or a YAML file; secrets are write-only."""

from __future__ import annotations

from pathlib import Path

from app.db import unit_of_work
from app.domain.clock import SystemClock
from app.domain.sources.service import load_sources, parse_sources_file


async def test_secret_is_never_shown_back(client, admin):
    r = await client.post("/v1/sources", headers=admin, json={
        "key": "erp", "name": "ERP", "kind": "generic", "auth": {"mode": "hmac", "secret": "top-secret"}})
    assert r.status_code == 201
    assert "top-secret" not in r.text and r.json()["auth"]["secret_set"] is True
    assert r.json()["intake_path"] == "/v1/intake/erp"
    listed = await client.get("/v1/sources", headers=admin)
    assert "top-secret" not in listed.text


async def test_incomplete_auth_is_refused_with_field_errors(client, admin):
    r = await client.post("/v1/sources", headers=admin, json={
        "key": "h5", "name": "H5", "kind": "wechat_h5", "auth": {"mode": "browser"}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "auth"
    r = await client.post("/v1/sources", headers=admin, json={"key": "gen", "name": "G", "kind": "generic"})
    assert r.status_code == 422 and r.json()["errors"] == [
        {"field": "auth", "code": "required", "message": "generic sources must say how they authenticate"}]


async def test_taken_key_is_a_conflict(client, admin, make_source):
    await make_source(key="dup")
    r = await client.post("/v1/sources", headers=admin, json={"key": "dup", "name": "x", "kind": "douyin"})
    assert r.status_code == 409


async def test_key_is_generated_when_omitted(client, admin):
    r = await client.post("/v1/sources", headers=admin, json={"name": "抖音", "kind": "douyin"})
    assert r.status_code == 201 and len(r.json()["key"]) >= 8


async def test_sources_file_creates_then_updates_by_key(tmp_path: Path, app, client, admin):
    path = tmp_path / "sources.yaml"
    path.write_text("""
sources:
  - key: expo-qr
    name: 展会二维码
    kind: qr_offline
    auth: {mode: browser, allowed_origins: ["https://expo.example.cn"]}
    options: {company_size: ["1-50", "51-200"]}
""", encoding="utf-8")
    async with unit_of_work(app.state.sessions) as session:
        await load_sources(session, parse_sources_file(path), SystemClock())
    path.write_text(path.read_text(encoding="utf-8").replace("51-200", "51-500"), encoding="utf-8")
    async with unit_of_work(app.state.sessions) as session:
        await load_sources(session, parse_sources_file(path), SystemClock())
    source = (await client.get("/v1/sources/expo-qr", headers=admin)).json()
    assert source["options"] == {"company_size": ["1-50", "51-500"]} and source["auth"]["honeypot_field"] == "website"


async def test_disabling_a_source_takes_effect_on_the_next_request(client, admin, make_source):
    await make_source(key="campaign")
    assert (await client.post("/v1/intake/campaign", json={"name": "甲", "phone": "13800138000"})).status_code == 201
    await client.patch("/v1/sources/campaign", headers=admin, json={"enabled": False})
    r = await client.post("/v1/intake/campaign", json={"name": "乙", "phone": "13800138001"})
    assert r.status_code == 403 and r.json()["code"] == "source_disabled"


async def test_sources_status_shows_last_success_failure_counts_and_staleness(client, admin, make_source, db):
    from sqlalchemy import text

    await make_source(key="live")
    await make_source(key="quiet")
    await client.post("/v1/intake/live", json={"name": "甲", "phone": "13800138000"})
    await client.post("/v1/intake/live", json={"name": "乙", "phone": "123"})
    await client.post("/v1/intake/quiet", json={"name": "丙", "phone": "13800138001"})
    async with db.begin() as conn:  # quiet's only success was two days ago
        await conn.execute(text("UPDATE submissions SET received_at = now() - interval '2 days' "
                                "WHERE source_id = (SELECT id FROM sources WHERE key = 'quiet')"))
        await conn.execute(text("UPDATE sources SET created_at = now() - interval '3 days'"))
    status = {s["key"]: s for s in (await client.get("/v1/sources/status", headers=admin)).json()}
    assert status["live"]["counts_24h"] == {"accepted": 1, "rejected": 1} and status["live"]["stale"] is False
    assert status["live"]["last_failure_reasons"][0]["code"] == "invalid_phone"
    assert status["quiet"]["stale"] is True and status["quiet"]["counts_24h"] == {}
    assert status["quiet"]["last_success_at"] is not None
