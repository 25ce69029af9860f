"""R1.6: rejected submissions are listed per source and replayed once the mapping is fixed."""

from __future__ import annotations

from sqlalchemy import func, select

from app.domain.leads.models import Lead
from tests.conftest import within_one_rate_window


async def test_rejected_submission_is_listed_and_replayed_after_the_mapping_is_fixed(client, make_source, admin, db):
    await make_source(key="expo")
    rejected = await client.post("/v1/intake/expo", json={"姓名X": "马先生", "联系电话": "13612345678"})
    assert rejected.status_code == 422
    listed = await client.get("/v1/sources/expo/submissions?outcome=rejected", headers=admin)
    [item] = listed.json()
    assert item["id"] == rejected.json()["submission_id"] and item["outcome"] == "rejected"
    assert {"source_field": "联系电话", "status": "unmapped"} in item["mapping_log"]
    assert "13612345678" in item["raw_body"]

    fixed = await client.patch("/v1/sources/expo", headers=admin,
                               json={"field_mapping": {"姓名X": "name", "联系电话": "phone"}})
    assert fixed.status_code == 200
    replayed = await client.post(f"/v1/submissions/{item['id']}/replay", headers=admin)
    assert replayed.status_code == 201 and replayed.json()["status"] == "accepted"
    again = await client.post(f"/v1/submissions/{item['id']}/replay", headers=admin)
    assert again.status_code == 200 and again.json()["lead_id"] == replayed.json()["lead_id"]
    async with db.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(Lead))).scalar_one() == 1
    original = (await client.get(f"/v1/submissions/{item['id']}", headers=admin)).json()
    assert original["replayed_by"] == replayed.json()["submission_id"]
    replay_record = (await client.get(f"/v1/submissions/{replayed.json()['submission_id']}", headers=admin)).json()
    assert replay_record["replay_of"] == item["id"] and replay_record["lead_id"] == replayed.json()["lead_id"]


async def test_replay_still_invalid_is_422_and_recorded(client, make_source, admin):
    await make_source(key="expo2")
    rejected = await client.post("/v1/intake/expo2", json={"name": "马", "phone": "123"})
    r = await client.post(f"/v1/submissions/{rejected.json()['submission_id']}/replay", headers=admin)
    assert r.status_code == 422 and r.json()["replay_of"] == rejected.json()["submission_id"]
    assert r.json()["submission_id"] != rejected.json()["submission_id"]


async def test_only_rejected_submissions_can_be_replayed(client, make_source, admin):
    await make_source(key="expo3")
    ok = await client.post("/v1/intake/expo3", json={"name": "马", "phone": "13612345679"})
    r = await client.post(f"/v1/submissions/{ok.json()['submission_id']}/replay", headers=admin)
    assert r.status_code == 409 and r.json()["code"] == "not_rejected"


async def test_submission_admin_api_needs_the_admin_token(client, make_source):
    r = await client.get("/v1/sources")
    assert r.status_code == 401 and r.json()["code"] == "invalid_token"
    r = await client.get("/v1/sources", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401


async def test_concurrent_replays_of_one_submission_make_one_lead(client, make_source, admin, db):
    import asyncio

    await make_source(key="expo4")
    rejected = await client.post("/v1/intake/expo4", json={"姓名": "牛先生", "手机号码": "13612345670"})
    await client.patch("/v1/sources/expo4", headers=admin, json={"field_mapping": {"手机号码": "phone"}})
    url = f"/v1/submissions/{rejected.json()['submission_id']}/replay"
    answers = await asyncio.gather(*[client.post(url, headers=admin) for _ in range(5)])
    assert {a.status_code for a in answers} <= {200, 201} and [a.status_code for a in answers].count(201) == 1
    assert len({a.json()["lead_id"] for a in answers}) == 1
    async with db.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(Lead))).scalar_one() == 1


async def test_replaying_a_honeypot_body_says_spam_not_accepted(client, make_source, admin):
    await make_source(key="trap", kind="wechat_h5",
                      auth={"mode": "browser", "allowed_origins": ["https://a.cn"], "rate_limit_per_minute": 1})
    body = {"name": "bot", "phone": "13712345678", "website": "http://spam"}
    await within_one_rate_window()
    await client.post("/v1/intake/trap", json={"name": "a", "phone": "13712345600"}, headers={"Origin": "https://a.cn"})
    limited = await client.post("/v1/intake/trap", json=body, headers={"Origin": "https://a.cn"})
    assert limited.status_code == 429
    r = await client.post(f"/v1/submissions/{limited.json()['submission_id']}/replay", headers=admin)
    assert r.status_code == 409 and r.json()["code"] == "honeypot_filled"
    original = (await client.get(f"/v1/submissions/{limited.json()['submission_id']}", headers=admin)).json()
    assert original["replayed_by"] == r.json()["submission_id"]


async def test_a_rejected_submission_with_a_long_idempotency_key_can_be_replayed(client, make_source, admin, db):
    await make_source(key="long-key")
    key = "k" * 250  # kept as its first 200 characters, on the way in and on replay alike
    body = {"name": "周", "联系电话": "13812345678"}
    r = await client.post("/v1/intake/long-key", json=body, headers={"Idempotency-Key": key})
    assert r.status_code == 422
    await client.patch("/v1/sources/long-key", headers=admin, json={"field_mapping": {"联系电话": "phone"}})
    replayed = await client.post(f"/v1/submissions/{r.json()['submission_id']}/replay", headers=admin)
    assert replayed.status_code == 201 and replayed.json()["status"] == "accepted"
    retried = await client.post("/v1/intake/long-key", json=body, headers={"Idempotency-Key": key})
    assert retried.json()["status"] == "duplicate" and retried.json()["lead_id"] == replayed.json()["lead_id"]
