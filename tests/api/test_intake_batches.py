"""Group commit: concurrent submissions written together must each get their own, correct, committed answer.

One batch in flight at a time (LEADFLOW_INTAKE_BATCHES_IN_FLIGHT=1), so requests that arrive while one is
being written are batched together; the batch-size histogram on /metrics shows that they were.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import text

from app.db import new_id
from app.domain.intake.acceptance import Acceptor, accept_in_database, create_intake_pool, lead_number_prefix
from app.domain.intake.mapping import MappedSubmission
from app.domain.intake.schemas import SubmissionDraft
from app.domain.sources.models import Source


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"intake_batches_in_flight": 1})


async def _batch_metrics(client) -> tuple[float, float, dict[str, float]]:
    """(batches, batches of one, retries by reason) from /metrics, as a user of the service reads them."""
    text_ = (await client.get("/metrics")).text
    count = float(re.search(r"^leadflow_intake_batch_size_count (\S+)$", text_, re.M).group(1))
    ones = float(re.search(r'^leadflow_intake_batch_size_bucket\{le="1.0"\} (\S+)$', text_, re.M).group(1))
    retries = {m.group(1): float(m.group(2)) for m in
               re.finditer(r'^leadflow_intake_batch_retries_total\{reason="([^"]+)"\} (\S+)$', text_, re.M)}
    return count, ones, retries


async def test_concurrent_submissions_are_batched_and_each_gets_its_own_lead(client, make_source, db):
    await make_source(key="batch")
    before = await _batch_metrics(client)
    phones = [f"1391234{n:04d}" for n in range(60)]
    answers = await asyncio.gather(*(
        client.post("/v1/intake/batch", json={"name": f"客户{n}", "phone": phone}) for n, phone in enumerate(phones)))
    after = await _batch_metrics(client)

    assert [a.status_code for a in answers] == [201] * 60
    batches, batches_of_one = after[0] - before[0], after[1] - before[1]
    assert batches < 60 and batches - batches_of_one >= 1, "the requests were not written together"
    # every answer names the lead made from that very request
    async with db.connect() as conn:
        rows = {r.lead_number: (r.phone_e164, r.name, str(r.submission_id)) for r in await conn.execute(text(
            "SELECT l.lead_number, l.phone_e164, l.name, s.id AS submission_id "
            "FROM leads l JOIN submissions s ON s.lead_id = l.id"))}
    assert len(rows) == 60
    for n, (phone, answer) in enumerate(zip(phones, answers, strict=True)):
        body = answer.json()
        assert rows[body["lead_id"]] == ("+86" + phone, f"客户{n}", body["submission_id"])


async def test_copies_and_same_phone_in_one_batch_are_decided_as_if_one_after_another(client, make_source, db):
    await make_source(key="batch")
    before = await _batch_metrics(client)
    same_key = [client.post("/v1/intake/batch", json={"name": "王五", "phone": "13900001111"},
                            headers={"Idempotency-Key": "form-7"}) for _ in range(5)]
    same_phone = [client.post("/v1/intake/batch", json={"name": f"李四{n}", "phone": "13900002222"})
                  for n in range(5)]
    others = [client.post("/v1/intake/batch", json={"name": "路人", "phone": f"1390000{n:04d}"}) for n in range(20)]
    requests = same_key + same_phone + others
    order = list(range(len(requests)))
    random.Random(7).shuffle(order)
    answers = dict(zip(order, await asyncio.gather(*(requests[i] for i in order)), strict=True))
    after = await _batch_metrics(client)
    assert after[0] - before[0] - (after[1] - before[1]) >= 1, "the requests were not written together"

    key_answers = [answers[i].json() for i in range(5)]
    assert sorted(a["status"] for a in key_answers) == ["accepted"] + ["duplicate"] * 4
    assert len({a["lead_id"] for a in key_answers}) == 1

    phone_answers = [answers[i].json() for i in range(5, 10)]
    assert sorted(a["status"] for a in phone_answers) == ["accepted"] + ["merged"] * 4
    assert len({a["lead_id"] for a in phone_answers}) == 1

    async with db.connect() as conn:
        leads = (await conn.execute(text("SELECT count(*) FROM leads"))).scalar_one()
        inquiries = (await conn.execute(text(
            "SELECT inquiry_count FROM leads WHERE phone_e164 = '+8613900002222'"))).scalar_one()
    assert leads == 1 + 1 + 20 and inquiries == 5


async def test_overlapping_batches_never_deadlock(client, make_source, db, app):
    """Batches in flight together lock the same phones in opposite arrival orders; none may deadlock."""
    app.state.acceptor.max_in_flight = 4
    await make_source(key="batch")
    before = await _batch_metrics(client)
    rng = random.Random(11)
    phones = [f"1370000{n:04d}" for n in range(8)]
    requests = [client.post("/v1/intake/batch", json={"name": "张三", "phone": rng.choice(phones)},
                            headers={"Idempotency-Key": f"k{rng.randrange(40)}"}) for _ in range(240)]
    answers = await asyncio.gather(*requests)
    after = await _batch_metrics(client)

    assert {a.status_code for a in answers} <= {200, 201, 409}, [a.text for a in answers if a.status_code >= 500]
    assert after[2].get("40P01", 0) == before[2].get("40P01", 0), "a batch deadlocked"
    async with db.connect() as conn:
        leads = (await conn.execute(text("SELECT count(*) FROM leads"))).scalar_one()
    assert leads == len({a.json()["lead_id"] for a in answers if a.status_code in (200, 201)}) <= 8


async def test_a_value_the_database_refuses_fails_only_its_own_submission(settings, client, make_source, db):
    source_json = await make_source(key="batch")
    pool = await create_intake_pool(settings.database_url, max_size=2)
    acceptor = Acceptor(pool, max_in_flight=1)
    source = Source(id=uuid.UUID(source_json["id"]), key="batch", kind="generic", name="batch")
    now = datetime.now(UTC)

    async def submit(n: int, gender: str) -> object:
        body = f'{{"n": {n}}}'.encode()
        draft = SubmissionDraft(id=new_id(), source_id=source.id, received_at=now, content_type="application/json",
                                raw_body=body, body_truncated=False, body_sha256=hashlib.sha256(body).hexdigest(),
                                headers={}, remote_addr=None)
        mapped = MappedSubmission(fields={"name": f"客户{n}", "phone": f"+86138000000{n:02d}", "gender": gender})
        try:
            return await accept_in_database(acceptor, source=source, draft=draft, mapped=mapped, key_is_native=False,
                                            signature=None, merge_since=now - timedelta(days=30),
                                            number_prefix=lead_number_prefix("LD", now, settings.tz))
        except Exception as error:  # the point is which submission fails
            return error

    try:
        before = await _batch_metrics(client)
        results = await asyncio.gather(*(submit(n, "x" * 50 if n == 3 else "男") for n in range(6)))
        after = await _batch_metrics(client)
    finally:
        await pool.close()

    assert isinstance(results[3], asyncpg.DataError)  # gender is varchar(20)
    assert [r.outcome for i, r in enumerate(results) if i != 3] == ["accepted"] * 5
    assert after[2].get("22001", 0) == before[2].get("22001", 0) + 1  # its batch failed, then went one by one
    async with db.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM leads"))).scalar_one() == 5
