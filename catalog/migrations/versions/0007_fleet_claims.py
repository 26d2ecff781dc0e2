"""fleet: job claims with a lease, GPU shard runs and per-worker metrics

generation_jobs gains the claim a GPU worker holds on it (token, worker, lease expiry, how many times it
was claimed); only the holder of the current token may record the job's clip. ``shard_runs`` keeps one
row per claimed shard with the times the worker held its GPU slot (the proof that a slot was never
oversubscribed); ``worker_metrics`` is a time series per worker (clips/hour, GPU busy fraction, queue depth).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 12:40:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('generation_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claim_token', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('claims', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_index(batch_op.f('ix_generation_jobs_claim_token'), ['claim_token'], unique=False)
        batch_op.create_index(batch_op.f('ix_generation_jobs_lease_expires_at'), ['lease_expires_at'], unique=False)
        batch_op.create_index('ix_generation_jobs_claim_order', ['status', 'campaign_id', 'id'], unique=False)

    op.create_table(
        'shard_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=True),
        sa.Column('worker', sa.String(length=128), nullable=False),
        sa.Column('slot', sa.String(length=128), nullable=False),
        sa.Column('claim_token', sa.String(length=32), nullable=False),
        sa.Column('job_ids', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('prefect_flow_run_id', sa.String(length=64), nullable=True),
        sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('gpu_started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('gpu_finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_shard_runs_campaign_id_campaigns')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_shard_runs')),
    )
    with op.batch_alter_table('shard_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shard_runs_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_shard_runs_slot'), ['slot'], unique=False)

    op.create_table(
        'worker_metrics',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('worker', sa.String(length=128), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=True),
        sa.Column('prefect_flow_run_id', sa.String(length=64), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('clips', sa.Integer(), nullable=False),
        sa.Column('clips_per_hour', sa.Float(), nullable=False),
        sa.Column('gpu_busy_fraction', sa.Float(), nullable=False),
        sa.Column('queue_depth', sa.Integer(), nullable=False),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'],
                                name=op.f('fk_worker_metrics_campaign_id_campaigns')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_worker_metrics')),
    )
    with op.batch_alter_table('worker_metrics', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_worker_metrics_worker'), ['worker'], unique=False)
        batch_op.create_index(batch_op.f('ix_worker_metrics_at'), ['at'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('worker_metrics')
    op.drop_table('shard_runs')
    with op.batch_alter_table('generation_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_generation_jobs_claim_order')
        batch_op.drop_index(batch_op.f('ix_generation_jobs_lease_expires_at'))
        batch_op.drop_index(batch_op.f('ix_generation_jobs_claim_token'))
        batch_op.drop_column('claims')
        batch_op.drop_column('lease_expires_at')
        batch_op.drop_column('claimed_by')
        batch_op.drop_column('claim_token')
