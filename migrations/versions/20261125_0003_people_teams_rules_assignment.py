"""people teams rules assignment

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 12:53:41.818474
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence('assignment_turn_seq')))
    op.create_table('roles',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('permissions', postgresql.ARRAY(sa.String(length=50)), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roles')),
    sa.UniqueConstraint('name', name=op.f('uq_roles_name'))
    )
    op.create_table('users',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('role_id', sa.Uuid(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('on_duty', sa.Boolean(), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=True),
    sa.Column('wecom_userid', sa.String(length=100), nullable=True),
    sa.Column('token_sha256', sa.String(length=64), nullable=True),
    sa.Column('last_turn', sa.BigInteger(), nullable=True),
    sa.Column('last_assigned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('sales', 'manager', 'finance', 'admin')", name=op.f('ck_users_kind')),
    sa.CheckConstraint('capacity IS NULL OR capacity >= 0', name=op.f('ck_users_capacity')),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], name=op.f('fk_users_role_id_roles')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_users_token_sha256'))
    )
    op.create_index(op.f('ix_users_role_id'), 'users', ['role_id'], unique=False)
    op.create_table('teams',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('manager_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['manager_id'], ['users.id'], name=op.f('fk_teams_manager_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_teams')),
    sa.UniqueConstraint('name', name=op.f('uq_teams_name'))
    )
    op.create_table('assignment_rules',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('source_id', sa.Uuid(), nullable=True),
    sa.Column('team_id', sa.Uuid(), nullable=False),
    sa.Column('strategy', sa.String(length=20), nullable=False),
    sa.Column('window', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=True),
    sa.Column('auto_claim', sa.Boolean(), nullable=False),
    sa.Column('auto_claim_window', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('claim_sla_minutes', sa.Integer(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("strategy IN ('round_robin', 'least_loaded')", name=op.f('ck_assignment_rules_strategy')),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], name=op.f('fk_assignment_rules_source_id_sources')),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_assignment_rules_team_id_teams')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assignment_rules'))
    )
    op.create_index(op.f('ix_assignment_rules_source_id'), 'assignment_rules', ['source_id'], unique=False)
    op.create_table('team_members',
    sa.Column('team_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('tier', sa.String(length=10), nullable=False),
    sa.CheckConstraint("tier IN ('primary', 'backup')", name=op.f('ck_team_members_tier')),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_team_members_team_id_teams'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_team_members_user_id_users')),
    sa.PrimaryKeyConstraint('team_id', 'user_id', name=op.f('pk_team_members'))
    )
    op.create_index(op.f('ix_team_members_user_id'), 'team_members', ['user_id'], unique=False)
    op.create_table('notifications',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('lead_id', sa.Uuid(), nullable=True),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('dedupe_key', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_notifications_lead_id_leads')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    op.create_index('ix_notifications_pending', 'notifications', ['created_at'], unique=False, postgresql_where=sa.text("status = 'pending'"))
    op.create_index('uq_notifications_once', 'notifications', ['lead_id', 'user_id', 'kind', 'dedupe_key'], unique=True)
    op.create_table('tickets',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('lead_id', sa.Uuid(), nullable=False),
    sa.Column('team_id', sa.Uuid(), nullable=True),
    sa.Column('manager_id', sa.Uuid(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('snapshot', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_tickets_lead_id_leads')),
    sa.ForeignKeyConstraint(['manager_id'], ['users.id'], name=op.f('fk_tickets_manager_id_users')),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_tickets_team_id_teams')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tickets'))
    )
    op.create_index('uq_tickets_open_lead', 'tickets', ['lead_id'], unique=True, postgresql_where=sa.text("status = 'open'"))
    op.add_column('outbox', sa.Column('not_before', sa.DateTime(timezone=True), nullable=True))
    op.add_column('leads', sa.Column('assignee_id', sa.Uuid(), nullable=True))
    op.add_column('leads', sa.Column('team_id', sa.Uuid(), nullable=True))
    op.add_column('leads', sa.Column('rule_id', sa.Uuid(), nullable=True))
    op.add_column('leads', sa.Column('assignment_attempts', sa.Integer(), server_default='0', nullable=False))
    op.add_column('leads', sa.Column('claim_due_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('leads', sa.Column('matched_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('leads', sa.Column('pushed_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('leads', sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f('ix_leads_assignee_id'), 'leads', ['assignee_id'], unique=False)
    op.create_index('ix_leads_pending_by_assignee', 'leads', ['assignee_id'], unique=False, postgresql_where=sa.text("status IN ('assigned', 'claimed')"))
    op.create_index('ix_leads_claim_due', 'leads', ['claim_due_at'], unique=False, postgresql_where=sa.text("status = 'assigned'"))
    op.create_foreign_key(op.f('fk_leads_assignee_id_users'), 'leads', 'users', ['assignee_id'], ['id'])
    op.create_foreign_key(op.f('fk_leads_rule_id_assignment_rules'), 'leads', 'assignment_rules', ['rule_id'], ['id'])
    op.create_foreign_key(op.f('fk_leads_team_id_teams'), 'leads', 'teams', ['team_id'], ['id'])
    # 0001 declared this foreign key with use_alter inside create_table, which Alembic skips: add it now.
    op.create_foreign_key('fk_submissions_replayed_by_id_submissions', 'submissions', 'submissions', ['replayed_by_id'], ['id'], use_alter=True)


def downgrade() -> None:
    op.drop_constraint('fk_submissions_replayed_by_id_submissions', 'submissions', type_='foreignkey')
    op.drop_constraint(op.f('fk_leads_team_id_teams'), 'leads', type_='foreignkey')
    op.drop_constraint(op.f('fk_leads_rule_id_assignment_rules'), 'leads', type_='foreignkey')
    op.drop_constraint(op.f('fk_leads_assignee_id_users'), 'leads', type_='foreignkey')
    op.drop_index('ix_leads_claim_due', table_name='leads')
    op.drop_index('ix_leads_pending_by_assignee', table_name='leads')
    op.drop_index(op.f('ix_leads_assignee_id'), table_name='leads')
    op.drop_column('outbox', 'not_before')
    op.drop_column('leads', 'claimed_at')
    op.drop_column('leads', 'pushed_at')
    op.drop_column('leads', 'matched_at')
    op.drop_column('leads', 'claim_due_at')
    op.drop_column('leads', 'assignment_attempts')
    op.drop_column('leads', 'rule_id')
    op.drop_column('leads', 'team_id')
    op.drop_column('leads', 'assignee_id')
    op.drop_index('uq_tickets_open_lead', table_name='tickets', postgresql_where=sa.text("status = 'open'"))
    op.drop_table('tickets')
    op.drop_index('uq_notifications_once', table_name='notifications')
    op.drop_index('ix_notifications_pending', table_name='notifications', postgresql_where=sa.text("status = 'pending'"))
    op.drop_table('notifications')
    op.drop_index(op.f('ix_team_members_user_id'), table_name='team_members')
    op.drop_table('team_members')
    op.drop_index(op.f('ix_assignment_rules_source_id'), table_name='assignment_rules')
    op.drop_table('assignment_rules')
    op.drop_table('teams')
    op.drop_index(op.f('ix_users_role_id'), table_name='users')
    op.drop_table('users')
    op.drop_table('roles')
    op.execute(sa.schema.DropSequence(sa.Sequence('assignment_turn_seq')))
