"""intake in batches: advisory locks always in one order (leadflow_lock_keys), so batched and single
acceptances cannot deadlock

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25

The API now commits concurrent intake requests together (app/domain/intake/acceptance.py, Acceptor): one
transaction calls leadflow_accept_submission() once per submission after taking every advisory lock of the
batch in hash order. The function itself now takes its own locks (idempotency key, phone) the same way, at
its start, instead of one after the other; taking them again inside a batch is a no-op.
"""
import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOCK_KEYS = """
CREATE FUNCTION leadflow_lock_keys(p_keys text[]) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_hash bigint;
BEGIN
    -- ascending hash order, duplicates and NULLs skipped; transaction-scoped, re-entrant
    FOR v_hash IN SELECT DISTINCT hashtextextended(k, 0) FROM unnest(p_keys) AS k WHERE k IS NOT NULL ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(v_hash);
    END LOOP;
END
$$;
"""

ACCEPT = """
CREATE OR REPLACE FUNCTION leadflow_accept_submission(
    p_ids uuid[],               -- submission, lead, outbox, audit, inquiry
    p_source_id uuid,
    p_source_key text,
    p_channel text,
    p_received_at timestamptz,
    p_content_type text,
    p_raw_body bytea,
    p_body_sha256 text,
    p_headers jsonb,
    p_remote_addr text,
    p_idempotency_key text,
    p_key_is_native boolean,
    p_mapping_log jsonb,
    p_replay_of uuid,
    p_signature text,
    p_lead jsonb,               -- name, phone and the optional lead columns
    p_attributes jsonb,
    p_merge_since timestamptz,
    p_number_prefix text
) RETURNS TABLE (outcome text, lead_id uuid, lead_number text, detail text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_submission_id uuid := p_ids[1];
    v_outcome text;
    v_lead_id uuid;
    v_number text;
    v_detail text;
    v_reasons jsonb := '[]'::jsonb;
    v_earlier record;
    v_phone text := p_lead->>'phone';
    v_lead_status text;
BEGIN
    -- A replay that already produced a lead answers with it (R1.6: replaying twice creates nothing).
    IF p_replay_of IS NOT NULL THEN
        PERFORM 1 FROM submissions WHERE id = p_replay_of FOR UPDATE;  -- concurrent replays queue here
        SELECT s.outcome AS o, s.lead_id AS l, s.answered_lead_number AS n, s.id AS i INTO v_earlier
        FROM submissions r JOIN submissions s ON s.id = r.replayed_by_id
        WHERE r.id = p_replay_of;
        IF FOUND AND v_earlier.o IN ('accepted', 'merged', 'duplicate', 'spam') THEN
            RETURN QUERY SELECT 'already_replayed'::text, v_earlier.l, v_earlier.n::text, v_earlier.i::text;
            RETURN;
        END IF;
    END IF;

    -- Both locks this submission may need, taken in hash order: every intake transaction (one submission,
    -- or a batch that pre-locks all of its keys with leadflow_lock_keys) locks in that one order, so two
    -- of them can never deadlock.
    PERFORM leadflow_lock_keys(ARRAY[
        CASE WHEN p_idempotency_key IS NOT NULL THEN 'idem:' || p_source_id || ':' || p_idempotency_key END,
        'phone:' || v_phone]);

    -- R1.4: the same submission again answers with the original lead.
    IF p_idempotency_key IS NOT NULL THEN
        SELECT s.id, s.lead_id, s.answered_lead_number, s.body_sha256 INTO v_earlier
        FROM submissions s
        WHERE s.source_id = p_source_id AND s.idempotency_key = p_idempotency_key
          AND s.outcome IN ('accepted', 'merged', 'spam')
        LIMIT 1;
        IF FOUND THEN
            IF v_earlier.body_sha256 <> p_body_sha256 AND NOT p_key_is_native THEN
                v_outcome := 'rejected';
                v_detail := 'idempotency_key_reused';
                v_reasons := jsonb_build_array(jsonb_build_object(
                    'code', 'idempotency_key_reused', 'message', 'key already used with a different body',
                    'submission_id', v_earlier.id));
            ELSE
                v_outcome := 'duplicate';
                v_lead_id := v_earlier.lead_id;
                v_number := v_earlier.answered_lead_number;
                v_detail := v_earlier.id::text;
                v_reasons := jsonb_build_array(jsonb_build_object(
                    'code', 'duplicate_of', 'message', 'same submission as ' || v_earlier.id,
                    'submission_id', v_earlier.id));
            END IF;
        END IF;
    END IF;

    -- R1.11: a signature is good once (an exact retry under the same key was answered above).
    IF v_outcome IS NULL AND p_signature IS NOT NULL THEN
        INSERT INTO signature_nonces (source_id, signature, seen_at)
        VALUES (p_source_id, p_signature, p_received_at) ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            v_outcome := 'rejected';
            v_detail := 'signature_replayed';
            v_reasons := jsonb_build_array(jsonb_build_object(
                'code', 'signature_replayed', 'message', 'this signature was already used'));
        END IF;
    END IF;

    -- R1.9: an open lead with this phone takes the submission as an inquiry.
    IF v_outcome IS NULL THEN
        SELECT l.id, l.lead_number, l.status INTO v_lead_id, v_number, v_lead_status
        FROM leads l
        WHERE l.phone_e164 = v_phone AND l.created_at >= p_merge_since
          AND l.status IN ('new', 'awaiting_assignment', 'assigned', 'claimed', 'assignment_failed')
        ORDER BY l.created_at DESC LIMIT 1;
        IF FOUND THEN
            v_outcome := 'merged';
            v_reasons := jsonb_build_array(jsonb_build_object(
                'code', 'open_lead_same_phone', 'message', 'attached to open lead ' || v_number));
        END IF;
    END IF;

    IF v_outcome IS NULL THEN
        v_outcome := 'accepted';
        v_lead_id := p_ids[2];
        v_number := leadflow_next_lead_number(p_number_prefix);
        INSERT INTO leads (id, lead_number, source_id, channel, status, name, phone_e164, email, wechat, company,
                           province, city, gender, message, attributes, inquiry_count, created_at, updated_at,
                           last_inquiry_at, triggered_at)
        VALUES (v_lead_id, v_number, p_source_id, p_channel, 'new', p_lead->>'name', v_phone, p_lead->>'email',
                p_lead->>'wechat', p_lead->>'company', p_lead->>'province', p_lead->>'city', p_lead->>'gender',
                p_lead->>'message', p_attributes, 1, p_received_at, p_received_at, p_received_at, p_received_at);
    END IF;

    INSERT INTO submissions (id, source_id, received_at, content_type, raw_body, body_truncated, body_sha256,
                             headers, remote_addr, idempotency_key, outcome, reasons, mapping_log, lead_id,
                             answered_lead_number, replay_of_id)
    VALUES (v_submission_id, p_source_id, p_received_at, p_content_type, p_raw_body, false, p_body_sha256,
            p_headers, p_remote_addr, p_idempotency_key, v_outcome, v_reasons, p_mapping_log, v_lead_id,
            v_number, p_replay_of);
    IF p_replay_of IS NOT NULL THEN
        UPDATE submissions SET replayed_by_id = v_submission_id WHERE id = p_replay_of;
    END IF;

    IF v_outcome = 'merged' THEN
        INSERT INTO inquiries (id, lead_id, submission_id, source_id, fields, created_at)
        VALUES (p_ids[5], v_lead_id, v_submission_id, p_source_id,
                p_lead || jsonb_build_object('attributes', p_attributes), p_received_at);
        UPDATE leads SET inquiry_count = inquiry_count + 1, last_inquiry_at = p_received_at,
                         updated_at = p_received_at
        WHERE id = v_lead_id;
        IF v_lead_status = 'assignment_failed' THEN
            -- the customer asked again: nobody has this lead, so it goes through assignment afresh
            UPDATE leads SET status = 'awaiting_assignment', assignment_attempts = 0 WHERE id = v_lead_id;
            INSERT INTO outbox (id, job, payload, lead_id, created_at, enqueue_attempts)
            VALUES (p_ids[3], 'assign_lead', jsonb_build_object('lead_id', v_lead_id), v_lead_id, p_received_at, 0);
        END IF;
        INSERT INTO audit_log (id, lead_id, action, action_result, reason, actor, detail, created_at)
        VALUES (p_ids[4], v_lead_id, 'inquiry', 'success', 'open_lead_same_phone', 'system',
                jsonb_build_object('submission_id', v_submission_id, 'source', p_source_key), p_received_at);
    ELSIF v_outcome = 'accepted' THEN
        -- R1.12: the assignment job, committed with the lead. (No NOTIFY: it takes a database-wide lock at
        -- commit and would serialize every intake; the worker polls the outbox instead.)
        INSERT INTO outbox (id, job, payload, lead_id, created_at, enqueue_attempts)
        VALUES (p_ids[3], 'assign_lead', jsonb_build_object('lead_id', v_lead_id), v_lead_id, p_received_at, 0);
        INSERT INTO audit_log (id, lead_id, action, action_result, reason, actor, detail, created_at)
        VALUES (p_ids[4], v_lead_id, 'intake', 'success', NULL, 'system',
                jsonb_build_object('submission_id', v_submission_id, 'source', p_source_key), p_received_at);
    END IF;

    RETURN QUERY SELECT v_outcome, v_lead_id, v_number, v_detail;
END
$$;
"""


def upgrade() -> None:
    op.execute(LOCK_KEYS)
    op.execute(ACCEPT)


def downgrade() -> None:
    path = Path(__file__).with_name("20261125_0002_accept_submission_function.py")
    spec = importlib.util.spec_from_file_location("leadflow_migration_0002", path)
    previous = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(previous)
    op.execute(previous.ACCEPT.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.execute("DROP FUNCTION leadflow_lock_keys")
