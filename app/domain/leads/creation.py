"""Write a new lead, its submission, its assignment outbox row and its audit entry in one statement.

This is the hot path of intake (R1.2, R1.12): one round trip instead of an ORM flush per object. The
statement runs inside the caller's transaction, so all four rows commit together or not at all.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.leads.models import OPEN_STATUSES

_INSERT_LEAD_WITH_FOLLOW_ON = text("""
WITH lead AS (
    INSERT INTO leads (id, lead_number, source_id, channel, status, name, phone_e164, email, wechat, company,
                       province, city, gender, message, attributes, inquiry_count, created_at, updated_at,
                       last_inquiry_at, triggered_at)
    SELECT CAST(:lead_id AS uuid), CAST(:number AS text), CAST(:source_id AS uuid), CAST(:channel AS text), 'new',
           CAST(:name AS text), CAST(:phone AS text), CAST(:email AS text), CAST(:wechat AS text),
           CAST(:company AS text), CAST(:province AS text), CAST(:city AS text), CAST(:gender AS text),
           CAST(:message AS text), CAST(:attributes AS jsonb), 1,
           CAST(:now AS timestamptz), CAST(:now AS timestamptz), CAST(:now AS timestamptz),
           CAST(:now AS timestamptz)
    WHERE NOT EXISTS (  -- R1.9: an open lead with this phone takes the submission as an inquiry instead
        SELECT 1 FROM leads open_lead
        WHERE open_lead.phone_e164 = CAST(:phone AS text) AND open_lead.status IN __OPEN_STATUSES__
          AND open_lead.created_at >= CAST(:since AS timestamptz))
    RETURNING id
), submission AS (
    INSERT INTO submissions (id, source_id, received_at, content_type, raw_body, body_truncated, body_sha256,
                             headers, remote_addr, idempotency_key, outcome, reasons, mapping_log, lead_id,
                             answered_lead_number, replay_of_id)
    SELECT CAST(:submission_id AS uuid), CAST(:source_id AS uuid), CAST(:now AS timestamptz),
           CAST(:content_type AS text), CAST(:raw_body AS bytea), false, CAST(:body_sha256 AS text),
           CAST(:headers AS jsonb), CAST(:remote_addr AS text), CAST(:idempotency_key AS text), 'accepted',
           '[]'::jsonb, CAST(:mapping_log AS jsonb), lead.id, CAST(:number AS text),
           CAST(:replay_of_id AS uuid)
    FROM lead
), outbox AS (
    INSERT INTO outbox (id, job, payload, lead_id, created_at, enqueue_attempts)
    SELECT CAST(:outbox_id AS uuid), 'assign_lead', CAST(:outbox_payload AS jsonb), lead.id,
           CAST(:now AS timestamptz), 0
    FROM lead
), audit AS (
    INSERT INTO audit_log (id, lead_id, action, action_result, reason, actor, detail, created_at)
    SELECT CAST(:audit_id AS uuid), lead.id, 'intake', 'success', NULL, 'system', CAST(:audit_detail AS jsonb),
           CAST(:now AS timestamptz)
    FROM lead
)
SELECT id FROM lead
""".replace("__OPEN_STATUSES__", repr(OPEN_STATUSES)))

OPTIONAL_LEAD_FIELDS = ("email", "wechat", "company", "province", "city", "gender", "message")


async def insert_lead_with_follow_on(
    session: AsyncSession,
    *,
    ids: dict[str, uuid.UUID],
    number: str,
    source_id: uuid.UUID,
    source_key: str,
    channel: str,
    fields: dict[str, Any],
    attributes: dict[str, Any],
    submission: dict[str, Any],
    now: datetime,
    open_lead_since: datetime,
) -> bool:
    """Insert lead + accepted submission + `assign_lead` outbox row + audit row. `ids` names each row's id.

    Returns False, writing nothing, when an open lead with the same phone exists since `open_lead_since`:
    the caller (holding the phone lock) then merges into it.
    """
    params = {
        "lead_id": ids["lead"], "number": number, "source_id": source_id, "channel": channel,
        "name": fields["name"], "phone": fields["phone"],
        **{name: fields.get(name) for name in OPTIONAL_LEAD_FIELDS},
        "attributes": json.dumps(attributes, ensure_ascii=False), "now": now, "since": open_lead_since,
        "submission_id": ids["submission"], "content_type": submission["content_type"],
        "raw_body": submission["raw_body"], "body_sha256": submission["body_sha256"],
        "headers": json.dumps(submission["headers"], ensure_ascii=False),
        "remote_addr": submission["remote_addr"], "idempotency_key": submission["idempotency_key"],
        "mapping_log": json.dumps(submission["mapping_log"], ensure_ascii=False),
        "replay_of_id": submission.get("replay_of_id"),
        "outbox_id": ids["outbox"], "outbox_payload": json.dumps({"lead_id": str(ids["lead"])}),
        "audit_id": ids["audit"],
        "audit_detail": json.dumps({"submission_id": str(ids["submission"]), "source": source_key}),
    }
    return (await session.execute(_INSERT_LEAD_WITH_FOLLOW_ON, params)).first() is not None
