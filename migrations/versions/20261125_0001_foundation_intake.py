"""foundation intake

Revision ID: 0001
Revises:
Create Date: 2026-11-25 12:18:49.762831
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Lead numbers: a sequence, so concurrent intakes never queue on one counter row.
    op.execute(sa.schema.CreateSequence(sa.Sequence('lead_number_seq')))
    op.create_table('sources',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('field_mapping', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('options', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('native_id_field', sa.String(length=100), nullable=True),
    sa.Column('auth_mode', sa.String(length=20), nullable=False),
    sa.Column('auth_settings', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("auth_mode IN ('none', 'hmac', 'browser')", name=op.f('ck_sources_auth_mode')),
    sa.CheckConstraint("kind IN ('wechat_h5', 'douyin', 'qr_offline', 'generic')", name=op.f('ck_sources_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sources')),
    sa.UniqueConstraint('key', name=op.f('uq_sources_key'))
    )
    op.create_table('leads',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('lead_number', sa.String(length=40), nullable=False),
    sa.Column('source_id', sa.Uuid(), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('phone_e164', sa.String(length=20), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('wechat', sa.String(length=100), nullable=True),
    sa.Column('company', sa.String(length=200), nullable=True),
    sa.Column('province', sa.String(length=100), nullable=True),
    sa.Column('city', sa.String(length=100), nullable=True),
    sa.Column('gender', sa.String(length=20), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('attributes', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('inquiry_count', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_inquiry_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('triggered_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('new', 'awaiting_assignment', 'assigned', 'claimed', 'assignment_failed', 'won', 'lost', 'closed')", name=op.f('ck_leads_status')),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], name=op.f('fk_leads_source_id_sources')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leads')),
    sa.UniqueConstraint('lead_number', name=op.f('uq_leads_lead_number'))
    )
    op.create_index(op.f('ix_leads_created_at'), 'leads', ['created_at'], unique=False)
    op.create_index('ix_leads_phone_open', 'leads', ['phone_e164', 'created_at'], unique=False, postgresql_where=sa.text("status IN ('new', 'awaiting_assignment', 'assigned', 'claimed', 'assignment_failed')"))
    op.create_index(op.f('ix_leads_source_id'), 'leads', ['source_id'], unique=False)
    op.create_table('signature_nonces',
    sa.Column('source_id', sa.Uuid(), nullable=False),
    sa.Column('signature', sa.String(length=128), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], name=op.f('fk_signature_nonces_source_id_sources')),
    sa.PrimaryKeyConstraint('source_id', 'signature', name=op.f('pk_signature_nonces'))
    )
    op.create_index(op.f('ix_signature_nonces_seen_at'), 'signature_nonces', ['seen_at'], unique=False)
    op.create_table('audit_log',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('lead_id', sa.Uuid(), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('action_result', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("action_result IN ('success', 'failed', 'skipped')", name=op.f('ck_audit_log_action_result')),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_audit_log_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index(op.f('ix_audit_log_lead_id'), 'audit_log', ['lead_id'], unique=False)
    op.create_table('outbox',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('job', sa.String(length=100), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('lead_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('enqueue_attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_outbox_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox'))
    )
    op.create_index(op.f('ix_outbox_lead_id'), 'outbox', ['lead_id'], unique=False)
    op.create_index('ix_outbox_unprocessed', 'outbox', ['created_at'], unique=False, postgresql_where=sa.text('processed_at IS NULL'))
    op.create_table('submissions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('source_id', sa.Uuid(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('content_type', sa.String(length=200), nullable=True),
    sa.Column('raw_body', sa.LargeBinary(), nullable=False),
    sa.Column('body_truncated', sa.Boolean(), nullable=False),
    sa.Column('body_sha256', sa.String(length=64), nullable=False),
    sa.Column('headers', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('remote_addr', sa.String(length=64), nullable=True),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('reasons', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('mapping_log', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('lead_id', sa.Uuid(), nullable=True),
    sa.Column('answered_lead_number', sa.String(length=40), nullable=True),
    sa.Column('replay_of_id', sa.Uuid(), nullable=True),
    sa.Column('replayed_by_id', sa.Uuid(), nullable=True),
    sa.CheckConstraint("outcome IN ('accepted', 'merged', 'duplicate', 'rejected', 'spam')", name=op.f('ck_submissions_outcome')),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_submissions_lead_id_leads')),
    sa.ForeignKeyConstraint(['replay_of_id'], ['submissions.id'], name=op.f('fk_submissions_replay_of_id_submissions')),
    sa.ForeignKeyConstraint(['replayed_by_id'], ['submissions.id'], name='fk_submissions_replayed_by_id_submissions', use_alter=True),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], name=op.f('fk_submissions_source_id_sources')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_submissions'))
    )
    op.create_index(op.f('ix_submissions_answered_lead_number'), 'submissions', ['answered_lead_number'], unique=False)
    op.create_index(op.f('ix_submissions_lead_id'), 'submissions', ['lead_id'], unique=False)
    op.create_index('ix_submissions_source_outcome_received', 'submissions', ['source_id', 'outcome', 'received_at'], unique=False)
    op.create_index('uq_submissions_source_idempotency_key', 'submissions', ['source_id', 'idempotency_key'], unique=True, postgresql_where=sa.text("idempotency_key IS NOT NULL AND outcome IN ('accepted', 'merged', 'spam')"))
    op.create_table('inquiries',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('lead_id', sa.Uuid(), nullable=False),
    sa.Column('submission_id', sa.Uuid(), nullable=False),
    sa.Column('source_id', sa.Uuid(), nullable=False),
    sa.Column('fields', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_inquiries_lead_id_leads')),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], name=op.f('fk_inquiries_source_id_sources')),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], name=op.f('fk_inquiries_submission_id_submissions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inquiries')),
    sa.UniqueConstraint('submission_id', name=op.f('uq_inquiries_submission_id'))
    )
    op.create_index(op.f('ix_inquiries_lead_id'), 'inquiries', ['lead_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_inquiries_lead_id'), table_name='inquiries')
    op.drop_table('inquiries')
    op.drop_index('uq_submissions_source_idempotency_key', table_name='submissions', postgresql_where=sa.text("idempotency_key IS NOT NULL AND outcome IN ('accepted', 'merged', 'spam')"))
    op.drop_index('ix_submissions_source_outcome_received', table_name='submissions')
    op.drop_index(op.f('ix_submissions_lead_id'), table_name='submissions')
    op.drop_index(op.f('ix_submissions_answered_lead_number'), table_name='submissions')
    op.drop_table('submissions')
    op.drop_index('ix_outbox_unprocessed', table_name='outbox', postgresql_where=sa.text('processed_at IS NULL'))
    op.drop_index(op.f('ix_outbox_lead_id'), table_name='outbox')
    op.drop_table('outbox')
    op.drop_index(op.f('ix_audit_log_lead_id'), table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_index(op.f('ix_signature_nonces_seen_at'), table_name='signature_nonces')
    op.drop_table('signature_nonces')
    op.drop_index(op.f('ix_leads_source_id'), table_name='leads')
    op.drop_index('ix_leads_phone_open', table_name='leads', postgresql_where=sa.text("status IN ('new', 'awaiting_assignment', 'assigned', 'claimed', 'assignment_failed')"))
    op.drop_index(op.f('ix_leads_created_at'), table_name='leads')
    op.drop_table('leads')
    op.drop_table('sources')
    op.execute(sa.schema.DropSequence(sa.Sequence('lead_number_seq')))
