"""R1.2 / R1.4 for Douyin, and R1.11 source security: signatures, origins, rate limits, honeypots."""

from __future__ import annotations

import json
import time

from sqlalchemy import func, select

from app.domain.intake.models import Submission
from app.domain.intake.source_auth import sign_leadflow, sign_ocean_engine
from app.domain.leads.models import Lead
from tests.conftest import within_one_rate_window

DOUYIN_PUSH = {
    "id": "7301234567890123456", "name": "刘先生", "telphone": "13812345678", "weixin": "liu_wx",
    "gender": "男", "province_name": "山东", "city_name": "济南", "location": "山东+济南",
    "create_time": 1764000000, "adv_name": "冬季促销", "clue_type": 0, "remark": "想要报价",
    "remark_dict": {"公司规模": "50-200人"},
}


async def outcomes(db) -> list[tuple[str, list]]:
    async with db.connect() as conn:
        rows = await conn.execute(select(Submission.outcome, Submission.reasons).order_by(Submission.received_at))
        return [(o, r) for o, r in rows]


async def leads(db) -> int:
    async with db.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(Lead))).scalar_one()


async def test_douyin_push_is_mapped_and_answered_in_the_platform_shape(client, make_source, db):
    await make_source(key="dy-main", kind="douyin", options={"company_size": ["1-50人", "50-200人"]},
                      field_mapping={"remark_dict.公司规模": "company_size"})
    r = await client.post("/v1/intake/dy-main", json=DOUYIN_PUSH)
    assert r.status_code == 200
    body = r.json()
    assert body["code"] == 0 and body["message"] == "success" and body["status"] == "accepted"
    async with db.connect() as conn:
        lead = (await conn.execute(select(Lead).where(Lead.lead_number == body["lead_id"]))).one()
    assert (lead.phone_e164, lead.wechat, lead.province, lead.city, lead.message) == (
        "+8613812345678", "liu_wx", "山东", "济南", "想要报价")
    assert lead.attributes["company_size"] == "50-200人" and lead.attributes["ad_name"] == "冬季促销"


async def test_douyin_clue_id_makes_the_push_idempotent(client, make_source, db):
    await make_source(key="dy-idem", kind="douyin")
    first = await client.post("/v1/intake/dy-idem", json=DOUYIN_PUSH)
    retried = await client.post("/v1/intake/dy-idem", json=DOUYIN_PUSH)
    assert retried.status_code == 200 and retried.json()["status"] == "duplicate"
    assert retried.json()["lead_id"] == first.json()["lead_id"] and await leads(db) == 1


async def test_an_idempotency_key_cannot_take_or_override_a_douyin_clue_id(client, make_source, db):
    await make_source(key="dy-key", kind="douyin")
    squatter = await client.post("/v1/intake/dy-key", json={"name": "x", "telphone": "13712345679"},
                                 headers={"Idempotency-Key": f"native:{DOUYIN_PUSH['id']}"})
    assert squatter.status_code == 400 and squatter.json()["code"] == "idempotency_key_reserved"
    first = await client.post("/v1/intake/dy-key", json=DOUYIN_PUSH)
    replayed = await client.post("/v1/intake/dy-key", json=DOUYIN_PUSH, headers={"Idempotency-Key": "fresh-1"})
    assert first.json()["status"] == "accepted" and replayed.json()["status"] == "duplicate"  # the clue id decides
    assert replayed.json()["lead_id"] == first.json()["lead_id"] and await leads(db) == 1


async def test_douyin_telephone_spelling_is_accepted_too(client, make_source, db):
    await make_source(key="dy-tel", kind="douyin")
    push = {k: v for k, v in DOUYIN_PUSH.items() if k != "telphone"} | {"telephone": "13812345678"}
    assert (await client.post("/v1/intake/dy-tel", json=push)).json()["status"] == "accepted"


async def test_ocean_engine_signature_is_checked(client, make_source, db):
    await make_source(key="dy-signed", kind="douyin",
                      auth={"mode": "hmac", "hmac_scheme": "ocean_engine", "secret": "oe-secret"})
    body = json.dumps(DOUYIN_PUSH).encode()
    good = await client.post("/v1/intake/dy-signed", content=body, headers={
        "content-type": "application/json", "X-Open-Signature": sign_ocean_engine("oe-secret", body)})
    assert good.status_code == 200
    bad = await client.post("/v1/intake/dy-signed", content=body, headers={
        "content-type": "application/json", "X-Open-Signature": sign_ocean_engine("wrong", body)})
    assert bad.status_code == 401 and bad.json()["code"] == "signature_invalid"


def signed(body: dict, secret: str = "s3cret", at: float | None = None) -> tuple[bytes, dict]:
    raw = json.dumps(body).encode()
    ts = int(at if at is not None else time.time())
    return raw, {"content-type": "application/json", "X-Leadflow-Timestamp": str(ts),
                 "X-Leadflow-Signature": sign_leadflow(secret, ts, raw)}


async def test_signed_server_request_is_accepted(client, make_source):
    await make_source(key="erp", auth={"mode": "hmac", "secret": "s3cret"})
    raw, headers = signed({"name": "黄经理", "phone": "13912345678"})
    assert (await client.post("/v1/intake/erp", content=raw, headers=headers)).status_code == 201


async def test_bad_signatures_are_401_and_recorded(client, make_source, db):
    await make_source(key="erp2", auth={"mode": "hmac", "secret": "s3cret"})
    lead = {"name": "黄经理", "phone": "13912345678"}
    raw, headers = signed(lead, secret="other")
    wrong = await client.post("/v1/intake/erp2", content=raw, headers=headers)
    missing = await client.post("/v1/intake/erp2", json=lead)
    raw, headers = signed(lead, at=time.time() - 301)
    stale = await client.post("/v1/intake/erp2", content=raw, headers=headers)
    assert [r.status_code for r in (wrong, missing, stale)] == [401, 401, 401]
    assert [r.json()["code"] for r in (wrong, missing, stale)] == [
        "signature_invalid", "signature_missing", "timestamp_out_of_tolerance"]
    assert [o for o, _ in await outcomes(db)] == ["rejected"] * 3 and await leads(db) == 0


async def test_a_replayed_signature_is_refused(client, make_source, db):
    await make_source(key="erp3", auth={"mode": "hmac", "secret": "s3cret"})
    raw, headers = signed({"name": "黄经理", "phone": "13912345678"})
    assert (await client.post("/v1/intake/erp3", content=raw, headers=headers)).status_code == 201
    replay = await client.post("/v1/intake/erp3", content=raw, headers=headers)
    assert replay.status_code == 401 and replay.json()["code"] == "signature_replayed"
    assert await leads(db) == 1


BROWSER = {"mode": "browser", "allowed_origins": ["https://h5.example.cn"], "rate_limit_per_minute": 3}


async def test_browser_source_refuses_foreign_origins(client, make_source, db):
    await make_source(key="h5-main", kind="wechat_h5", auth=BROWSER)
    lead = {"name": "林女士", "phone": "13712345678"}
    ok = await client.post("/v1/intake/h5-main", json=lead, headers={"Origin": "https://h5.example.cn"})
    assert ok.status_code == 201 and ok.headers["access-control-allow-origin"] == "https://h5.example.cn"
    foreign = await client.post("/v1/intake/h5-main", json=lead, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403 and foreign.json()["code"] == "origin_not_allowed"
    assert [o for o, _ in await outcomes(db)] == ["accepted", "rejected"]


async def test_cors_preflight_answers_only_allowed_origins(client, make_source):
    await make_source(key="h5-cors", kind="wechat_h5", auth=BROWSER)
    allowed = await client.options("/v1/intake/h5-cors", headers={
        "Origin": "https://h5.example.cn", "Access-Control-Request-Method": "POST"})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "https://h5.example.cn"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "Idempotency-Key" in allowed.headers["access-control-allow-headers"]
    denied = await client.options("/v1/intake/h5-cors", headers={"Origin": "https://evil.example"})
    assert denied.status_code == 403 and "access-control-allow-origin" not in denied.headers


async def test_browser_clients_are_rate_limited_per_ip(client, make_source, db):
    await make_source(key="qr", kind="qr_offline", auth=BROWSER)
    await within_one_rate_window()
    answers = [await client.post("/v1/intake/qr", json={"name": f"展会{i}", "phone": f"1371234{i:04d}"},
                                 headers={"Origin": "https://h5.example.cn"}) for i in range(4)]
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
    assert answers[-1].json()["code"] == "rate_limited"
    assert [o for o, _ in await outcomes(db)][-1] == "rejected"


async def test_filled_honeypot_looks_accepted_but_is_stored_as_spam(client, make_source, db):
    await make_source(key="h5-trap", kind="wechat_h5", auth=BROWSER)
    r = await client.post("/v1/intake/h5-trap", data={"name": "bot", "phone": "13712345678", "website": "http://x"},
                          headers={"Origin": "https://h5.example.cn"})
    assert r.status_code == 201 and r.json()["status"] == "accepted" and r.json()["lead_id"].startswith("LD-")
    assert await leads(db) == 0
    [(outcome, reasons)] = await outcomes(db)
    assert outcome == "spam" and reasons[0]["code"] == "honeypot_filled"


async def test_an_exact_signed_retry_under_the_same_key_gets_the_original_lead(client, make_source, db):
    await make_source(key="erp4", auth={"mode": "hmac", "secret": "s3cret"})
    raw, headers = signed({"name": "黄经理", "phone": "13912345678"})
    headers["Idempotency-Key"] = "order-77"
    first = await client.post("/v1/intake/erp4", content=raw, headers=headers)
    retry = await client.post("/v1/intake/erp4", content=raw, headers=headers)  # sender timed out, resent bytes
    assert first.status_code == 201 and retry.status_code == 200
    assert retry.json()["status"] == "duplicate" and retry.json()["lead_id"] == first.json()["lead_id"]


async def test_a_bot_reusing_a_visitors_idempotency_key_gets_nothing_of_theirs(client, make_source, db):
    await make_source(key="h5-key", kind="wechat_h5", auth=BROWSER)
    headers = {"Origin": "https://h5.example.cn", "Idempotency-Key": "k-1"}
    real = await client.post("/v1/intake/h5-key", json={"name": "林", "phone": "13712345678"}, headers=headers)
    bot = await client.post("/v1/intake/h5-key", json={"name": "x", "phone": "13712345679", "website": "x"},
                            headers=headers)
    assert real.status_code == 201 and bot.status_code == 201
    assert bot.json()["lead_id"] != real.json()["lead_id"] and await leads(db) == 1


async def test_an_overlong_content_type_is_cut_not_fatal(client, make_source, db):
    await make_source(key="ct")
    r = await client.post("/v1/intake/ct", content=json.dumps({"name": "甲", "phone": "13712345670"}).encode(),
                          headers={"content-type": "application/json; x=" + "a" * 400})
    assert r.status_code == 201
