"""R1.6 under hostile or broken input: every request that reaches intake is answered with a clear problem
and kept as a submission (raw body), never a 500 that loses it."""

from __future__ import annotations

import json
import time

from sqlalchemy import select

from app.domain.intake import service
from app.domain.intake.models import Submission
from app.domain.intake.source_auth import sign_leadflow
from app.domain.leads.models import Lead


async def stored(db) -> list[Submission]:
    async with db.connect() as conn:
        return list((await conn.execute(select(Submission).order_by(Submission.received_at))).all())


async def test_an_emoji_cut_in_half_by_the_form_is_accepted_and_the_raw_body_kept(client, make_source, db):
    await make_source(key="h5")
    raw = b'{"name": "Li \\ud83d", "phone": "13812345678", "\\udc00note": "x"}'  # what JSON.stringify sends
    r = await client.post("/v1/intake/h5", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    async with db.connect() as conn:
        name = (await conn.execute(select(Lead.name))).scalar_one()
    assert name == "Li ?"
    [submission] = await stored(db)
    assert submission.raw_body == raw and submission.outcome == "accepted"


async def test_bodies_python_could_not_take_are_refused_with_a_problem_and_kept(client, make_source, db):
    await make_source(key="h5")
    bodies = {
        "nan": b'{"name": "a", "phone": "13812345678", "budget": NaN}',
        "huge_int": b'{"name": "a", "phone": "13812345678", "n": ' + b"9" * 5000 + b"}",
        "deep": b'{"name": "a", "phone": "13812345678", "x": ' + b'{"a": ' * 40 + b"1" + b"}" * 40 + b"}",
        "very_deep": b'{"x": ' * 8000 + b"1" + b"}" * 8000,  # under the 64 KB limit
    }
    answers = {name: await client.post("/v1/intake/h5", content=body, headers={"Content-Type": "application/json"})
               for name, body in bodies.items()}
    assert {name: (r.status_code, r.json()["code"]) for name, r in answers.items()} == {
        "nan": (400, "malformed_json"), "huge_int": (400, "malformed_json"), "deep": (400, "too_deep"),
        "very_deep": (400, "too_deep")}
    kept = await stored(db)
    assert [s.outcome for s in kept] == ["rejected"] * 4
    assert {s.raw_body for s in kept} == set(bodies.values())


async def test_garbage_in_signature_headers_is_401_not_500(client, make_source, db):
    await make_source(key="erp", auth={"mode": "hmac", "secret": "s3cret"})
    await make_source(key="oe", auth={"mode": "hmac", "hmac_scheme": "ocean_engine", "secret": "oe"})
    raw = json.dumps({"name": "黄经理", "phone": "13912345678"}).encode()
    now = str(int(time.time()))
    non_ascii = await client.post("/v1/intake/erp", content=raw, headers={
        "Content-Type": "application/json", "X-Leadflow-Timestamp": now, "X-Leadflow-Signature": b"sha256=\xe9"})
    huge_ts = await client.post("/v1/intake/erp", content=raw, headers={
        "Content-Type": "application/json", "X-Leadflow-Timestamp": "1" + "0" * 400,
        "X-Leadflow-Signature": sign_leadflow("s3cret", now, raw)})
    ocean = await client.post("/v1/intake/oe", content=raw, headers={
        "Content-Type": "application/json", "X-Open-Signature": b"\xe9\xe9"})
    assert [(r.status_code, r.json()["code"]) for r in (non_ascii, huge_ts, ocean)] == [
        (401, "signature_invalid"), (401, "timestamp_invalid"), (401, "signature_invalid")]
    assert [s.outcome for s in await stored(db)] == ["rejected"] * 3


async def test_a_defect_on_the_intake_path_keeps_the_submission_for_replay(client, make_source, db, admin,
                                                                             monkeypatch):
    await make_source(key="h5")

    def broken_mapping(*args, **kwargs):
        raise RuntimeError("a bug shipped on Friday")

    monkeypatch.setattr(service, "map_submission", broken_mapping)
    r = await client.post("/v1/intake/h5", json={"name": "张三", "phone": "13812345678"})
    assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
    [kept] = await stored(db)
    assert kept.outcome == "rejected" and kept.reasons[0]["code"] == "internal_error"
    monkeypatch.undo()  # the fix is deployed: the admin replays what was kept
    replayed = await client.post(f"/v1/submissions/{kept.id}/replay", headers=admin)
    assert replayed.status_code == 201 and replayed.json()["status"] == "accepted"
