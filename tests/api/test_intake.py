"""R1.2–R1.7, R1.9: what a form channel and its visitor see when they post a lead."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from app.domain.intake.models import Submission
from app.domain.leads.models import Inquiry, Lead

LEAD_ID = re.compile(r"^LD-\d{8}-\d{6,}$")


async def count(db, model, *where) -> int:
    async with db.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(model).where(*where))).scalar_one()


async def submissions(db, **eq):
    async with db.connect() as conn:
        query = select(Submission)
        for name, value in eq.items():
            query = query.where(getattr(Submission, name) == value)
        return (await conn.execute(query.order_by(Submission.received_at))).all()


async def test_accepted_lead_gets_a_quotable_id_and_is_committed(client, make_source, db):
    await make_source(key="web-form")
    r = await client.post("/v1/intake/web-form", json={"name": "张三", "phone": "138-0013-8000", "city": "济南"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert LEAD_ID.match(body["lead_id"]) and body["status"] == "accepted"
    async with db.connect() as conn:
        lead = (await conn.execute(select(Lead).where(Lead.lead_number == body["lead_id"]))).one()
    assert (lead.name, lead.phone_e164, lead.city, lead.channel) == ("张三", "+8613800138000", "济南", "generic")
    [sub] = await submissions(db)
    assert str(sub.id) == body["submission_id"] and sub.outcome == "accepted" and sub.lead_id == lead.id
    assert sub.raw_body.decode() == r.request.content.decode()
    assert {"source_field": "phone", "target": "phone", "status": "mapped"} in sub.mapping_log


async def test_form_encoded_post_is_accepted(client, make_source, db):
    await make_source(key="h5-plain")
    r = await client.post("/v1/intake/h5-plain", data={"name": "李四", "mobile": "+86 139 1234 5678"})
    assert r.status_code == 201, r.text
    [sub] = await submissions(db)
    assert sub.content_type.startswith("application/x-www-form-urlencoded")
    assert await count(db, Lead, Lead.phone_e164 == "+8613912345678") == 1


@pytest.fixture
def clock():
    from app.domain.clock import FrozenClock

    # 17:30 UTC is already the next day in Shanghai.
    return FrozenClock(datetime(2026, 11, 24, 17, 30, tzinfo=UTC))


async def test_lead_id_carries_the_business_timezone_date(client, make_source):
    await make_source(key="tz-check")
    r = await client.post("/v1/intake/tz-check", json={"name": "王五", "phone": "13700137000"})
    assert r.json()["lead_id"].startswith("LD-20261125-")


async def test_lead_ids_are_unique_under_concurrency(client, make_source, db):
    await make_source(key="burst")
    posts = [client.post("/v1/intake/burst", json={"name": f"客户{i}", "phone": f"1380000{i:04d}"})
             for i in range(40)]
    answers = await asyncio.gather(*posts)
    assert [a.status_code for a in answers] == [201] * 40
    ids = {a.json()["lead_id"] for a in answers}
    assert len(ids) == 40 and await count(db, Lead) == 40


async def test_same_idempotency_key_returns_the_original_lead(client, make_source, db):
    await make_source(key="idem")
    payload = {"name": "赵六", "phone": "13600136000"}
    first = await client.post("/v1/intake/idem", json=payload, headers={"Idempotency-Key": "k-1"})
    again = await client.post("/v1/intake/idem", json=payload, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["lead_id"] == first.json()["lead_id"] and again.json()["status"] == "duplicate"
    assert await count(db, Lead) == 1
    assert [s.outcome for s in await submissions(db)] == ["accepted", "duplicate"]


async def test_concurrent_copies_of_one_submission_create_one_lead(client, make_source, db):
    await make_source(key="idem-race")
    payload = {"name": "孙七", "phone": "13500135000"}
    answers = await asyncio.gather(*[
        client.post("/v1/intake/idem-race", json=payload, headers={"Idempotency-Key": "same"}) for _ in range(20)])
    assert sorted(a.status_code for a in answers) == [200] * 19 + [201]
    assert len({a.json()["lead_id"] for a in answers}) == 1
    assert await count(db, Lead) == 1 and await count(db, Submission) == 20


async def test_idempotency_key_reused_with_another_body_is_a_conflict(client, make_source, db):
    await make_source(key="idem-misuse")
    await client.post("/v1/intake/idem-misuse", json={"name": "甲", "phone": "13500135001"},
                      headers={"Idempotency-Key": "k"})
    r = await client.post("/v1/intake/idem-misuse", json={"name": "乙", "phone": "13500135002"},
                          headers={"Idempotency-Key": "k"})
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "idempotency_key_reused" and "submission_id" in r.json()
    assert await count(db, Lead) == 1


@pytest.mark.parametrize("spelling", [
    "13800138000", "138 0013 8000", "138-0013-8000", "+86 138 0013 8000", "+86-138-0013-8000",
    "008613800138000", "0086 138 0013 8000", "8613800138000", "86 138 0013 8000", "(+86) 138 0013 8000",
    "１３８００１３８０００",
])
async def test_every_common_phone_spelling_is_normalised_to_e164(client, make_source, db, spelling):
    await make_source(key="phones")
    r = await client.post("/v1/intake/phones", json={"name": "测试", "phone": spelling})
    assert r.status_code == 201, r.text
    assert await count(db, Lead, Lead.phone_e164 == "+8613800138000") == 1


async def test_invalid_input_gets_field_level_problem_details_and_is_kept(client, make_source, db):
    await make_source(key="strict", options={"company_size": ["1-10", "11-50", "51-200"]},
                      field_mapping={"size": "company_size"})
    r = await client.post("/v1/intake/strict", json={"phone": "010-12345678", "size": "about fifty"})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"].endswith("validation-failed") and problem["status"] == 422
    errors = {e["field"]: e for e in problem["errors"]}
    assert errors["phone"]["code"] == "not_mainland_mobile"
    assert errors["company_size"] == {"field": "company_size", "code": "not_in_options", "source_field": "size",
                                      "message": "company_size must be one of: 1-10, 11-50, 51-200"}
    assert errors["name"]["code"] == "required"
    [sub] = await submissions(db)
    assert str(sub.id) == problem["submission_id"] and sub.outcome == "rejected"
    assert {r["code"] for r in sub.reasons} == {"not_mainland_mobile", "not_in_options", "required"}
    assert {"source_field": "size", "target": "company_size", "status": "invalid", "code": "not_in_options"} \
        in sub.mapping_log
    assert await count(db, Lead) == 0


async def test_categorical_value_is_matched_to_its_canonical_option(client, make_source, db):
    await make_source(key="opts", options={"budget_range": ["<10万", "10-50万"]},
                      field_mapping={"budget": "budget_range"})
    r = await client.post("/v1/intake/opts", json={"name": "钱八", "phone": "13400134000", "budget": " 10-50万 "})
    assert r.status_code == 201
    async with db.connect() as conn:
        attributes = (await conn.execute(select(Lead.attributes))).scalar_one()
    assert attributes == {"budget_range": "10-50万"}


async def test_a_field_with_options_is_checked_under_its_own_name_without_a_mapping(client, make_source, db):
    """Options declared, mapping forgotten: free text used to pass as 'unmapped' and vanish from the lead."""
    await make_source(key="opts-only", options={"company_size": ["1-10", "11-50"]})
    refused = await client.post("/v1/intake/opts-only", json={"name": "钱八", "phone": "13400134000",
                                                              "company_size": "huge"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["code"] == "not_in_options"
    taken = await client.post("/v1/intake/opts-only", json={"name": "钱八", "phone": "13400134000",
                                                            "company_size": "11-50"})
    assert taken.status_code == 201
    async with db.connect() as conn:
        assert (await conn.execute(select(Lead.attributes))).scalar_one() == {"company_size": "11-50"}


async def test_unmapped_fields_are_logged_not_lost(client, make_source, db):
    await make_source(key="extras")
    await client.post("/v1/intake/extras", json={"name": "周九", "phone": "13300133000", "utm_source": "baidu"})
    [sub] = await submissions(db)
    assert {"source_field": "utm_source", "status": "unmapped"} in sub.mapping_log
    assert b"utm_source" in sub.raw_body


async def test_unknown_source_is_404_problem(client):
    r = await client.post("/v1/intake/nope", json={"name": "x", "phone": "13800138000"})
    assert r.status_code == 404 and r.json()["type"].endswith("not-found")


async def test_disabled_source_is_403_and_still_recorded(client, make_source, db):
    await make_source(key="off", enabled=False)
    r = await client.post("/v1/intake/off", json={"name": "吴十", "phone": "13800138000"})
    assert r.status_code == 403 and r.json()["code"] == "source_disabled"
    [sub] = await submissions(db)
    assert sub.outcome == "rejected" and sub.reasons[0]["code"] == "source_disabled"


async def test_oversized_body_is_413_and_recorded(client, make_source, db, settings):
    await make_source(key="big")
    r = await client.post("/v1/intake/big", content=b'{"name":"' + b"x" * (settings.max_body_bytes + 10) + b'"}',
                          headers={"content-type": "application/json"})
    assert r.status_code == 413
    [sub] = await submissions(db)
    assert sub.body_truncated and len(sub.raw_body) == settings.max_body_bytes
    assert sub.reasons[0]["code"] == "payload_too_large"


async def test_malformed_json_is_400_and_recorded(client, make_source, db):
    await make_source(key="broken")
    r = await client.post("/v1/intake/broken", content=b'{"name": "x", ', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "malformed_json"
    [sub] = await submissions(db)
    assert sub.outcome == "rejected" and sub.raw_body == b'{"name": "x", '


async def test_unsupported_media_type_is_415(client, make_source):
    await make_source(key="xml")
    r = await client.post("/v1/intake/xml", content=b"<lead/>", headers={"content-type": "application/xml"})
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type"


async def test_same_phone_on_an_open_lead_becomes_an_inquiry(client, make_source, db):
    await make_source(key="first")
    await make_source(key="second")
    first = await client.post("/v1/intake/first", json={"name": "郑一", "phone": "13800138001"})
    again = await client.post("/v1/intake/second", json={"name": "郑一", "phone": "+86 138 0013 8001",
                                                          "message": "还想了解价格"})
    assert again.status_code == 200
    assert again.json() == {"lead_id": first.json()["lead_id"], "status": "merged",
                            "submission_id": again.json()["submission_id"]}
    assert await count(db, Lead) == 1 and await count(db, Inquiry) == 1
    async with db.connect() as conn:
        lead = (await conn.execute(select(Lead))).one()
    assert lead.inquiry_count == 2


async def test_same_phone_outside_the_window_or_on_a_closed_lead_is_a_new_lead(client, make_source, db, clock):
    await make_source(key="window")
    old = await client.post("/v1/intake/window", json={"name": "陈二", "phone": "13800138002"})
    async with db.begin() as conn:  # relative to the service's clock (frozen here), not the database's now()
        await conn.execute(text("UPDATE leads SET created_at = :at"), {"at": clock.now() - timedelta(days=31)})
    newer = await client.post("/v1/intake/window", json={"name": "陈二", "phone": "13800138002"})
    assert newer.status_code == 201 and newer.json()["lead_id"] != old.json()["lead_id"]
    async with db.begin() as conn:
        await conn.execute(text("UPDATE leads SET status = 'lost'"))
    third = await client.post("/v1/intake/window", json={"name": "陈二", "phone": "13800138002"})
    assert third.status_code == 201 and await count(db, Lead) == 3


async def test_concurrent_posts_with_one_phone_make_one_lead(client, make_source, db):
    await make_source(key="phone-race")
    answers = await asyncio.gather(*[
        client.post("/v1/intake/phone-race", json={"name": f"访客{i}", "phone": "13800138003"}) for i in range(10)])
    assert sorted(a.json()["status"] for a in answers) == ["accepted"] + ["merged"] * 9
    assert len({a.json()["lead_id"] for a in answers}) == 1
    assert await count(db, Lead) == 1 and await count(db, Inquiry) == 9


async def test_asking_again_while_a_manager_closes_the_lead_makes_a_new_lead(client, make_source, db):
    """The merge used to read the lead unlocked: it attached the inquiry to a lead closed at that moment."""
    await make_source(key="closing")
    first = await client.post("/v1/intake/closing", json={"name": "吴", "phone": "13800138077"})
    async with db.connect() as conn:
        closing = await conn.begin()
        await conn.execute(text("UPDATE leads SET status = 'lost'"))  # the manager's close, not committed yet
        again = asyncio.create_task(client.post("/v1/intake/closing", json={"name": "吴", "phone": "13800138077"}))
        await asyncio.sleep(0.3)  # intake has found the lead and waits for it
        await closing.commit()
    answer = await again
    assert answer.status_code == 201 and answer.json()["status"] == "accepted"
    assert answer.json()["lead_id"] != first.json()["lead_id"] and await count(db, Lead) == 2


async def test_nul_characters_are_dropped_from_fields_but_kept_in_the_raw_body(client, make_source, db, admin):
    """Found by schemathesis: PostgreSQL text cannot hold NUL; it used to be a 500 and a lost lead."""
    await make_source(key="nul")
    r = await client.post("/v1/intake/nul", json={"name": "张\u0000三", "phone": "13800138000", "x\u0000": "y"})
    assert r.status_code == 201
    async with db.connect() as conn:
        name = (await conn.execute(select(Lead.name))).scalar_one()
    [sub] = await submissions(db)
    assert name == "张三" and b"\\u0000" in sub.raw_body
    bad = await client.post("/v1/sources", headers=admin, json={"name": "a\u0000b", "kind": "douyin"})
    assert bad.status_code == 422 and bad.json()["code"] == "unstorable_value"
