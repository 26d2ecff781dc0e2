"""rollout: evaluations, blind A/B pairs and votes, alias moves; frozen model per brief; job arm

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 12:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'rollout_evaluations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('registry_name', sa.String(length=64), nullable=False),
        sa.Column('champion_version', sa.Integer(), nullable=False),
        sa.Column('challenger_version', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('golden_path', sa.String(length=1024), nullable=False),
        sa.Column('golden_sha256', sa.String(length=64), nullable=False),
        sa.Column('policy_path', sa.String(length=1024), nullable=True),
        sa.Column('policy_sha256', sa.String(length=64), nullable=True),
        sa.Column('metrics', sa.JSON(), nullable=False),
        sa.Column('gates', sa.JSON(), nullable=False),
        sa.Column('passed', sa.Boolean(), nullable=True),
        sa.Column('ab_round', sa.Boolean(), nullable=False),
        sa.Column('mlflow_run_id', sa.String(length=64), nullable=True),
        sa.Column('report_uri', sa.String(length=1024), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_rollout_evaluations_campaign_id_campaigns')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rollout_evaluations')),
    )
    op.create_index(op.f('ix_rollout_evaluations_registry_name'), 'rollout_evaluations', ['registry_name'])
    op.create_table(
        'ab_pairs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('evaluation_id', sa.Integer(), nullable=False),
        sa.Column('item_key', sa.String(length=64), nullable=False),
        sa.Column('champion_asset_id', sa.Integer(), nullable=False),
        sa.Column('challenger_asset_id', sa.Integer(), nullable=False),
        sa.Column('left_arm', sa.String(length=16), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['evaluation_id'], ['rollout_evaluations.id'], name=op.f('fk_ab_pairs_evaluation_id_rollout_evaluations')),
        sa.ForeignKeyConstraint(['champion_asset_id'], ['assets.id'], name=op.f('fk_ab_pairs_champion_asset_id_assets')),
        sa.ForeignKeyConstraint(['challenger_asset_id'], ['assets.id'], name=op.f('fk_ab_pairs_challenger_asset_id_assets')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ab_pairs')),
        sa.UniqueConstraint('evaluation_id', 'champion_asset_id', 'challenger_asset_id',
                            name=op.f('uq_ab_pairs_evaluation_id_champion_asset_id_challenger_asset_id')),
    )
    op.create_index(op.f('ix_ab_pairs_evaluation_id'), 'ab_pairs', ['evaluation_id'])
    op.create_table(
        'ab_votes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('pair_id', sa.Integer(), nullable=False),
        sa.Column('reviewer', sa.String(length=128), nullable=False),
        sa.Column('choice', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['pair_id'], ['ab_pairs.id'], name=op.f('fk_ab_votes_pair_id_ab_pairs')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ab_votes')),
        sa.UniqueConstraint('pair_id', 'reviewer', name=op.f('uq_ab_votes_pair_id_reviewer')),
    )
    op.create_index(op.f('ix_ab_votes_pair_id'), 'ab_votes', ['pair_id'])
    op.create_table(
        'alias_moves',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('registry_name', sa.String(length=64), nullable=False),
        sa.Column('alias', sa.String(length=64), nullable=False),
        sa.Column('from_version', sa.Integer(), nullable=True),
        sa.Column('to_version', sa.Integer(), nullable=True),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('evaluation_id', sa.Integer(), nullable=True),
        sa.Column('reverts_id', sa.Integer(), nullable=True),
        sa.Column('actor', sa.String(length=128), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['evaluation_id'], ['rollout_evaluations.id'], name=op.f('fk_alias_moves_evaluation_id_rollout_evaluations')),
        sa.ForeignKeyConstraint(['reverts_id'], ['alias_moves.id'], name=op.f('fk_alias_moves_reverts_id_alias_moves')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_alias_moves')),
    )
    op.create_index(op.f('ix_alias_moves_registry_name'), 'alias_moves', ['registry_name'])
    # Plain ADD COLUMNs (no constraint changes): SQLite alters in place, no table copy
    with op.batch_alter_table('briefs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model_version_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('canary_version_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('canary_fraction', sa.Float(), nullable=True))
    with op.batch_alter_table('generation_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('arm', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('generation_jobs', schema=None) as batch_op:
        batch_op.drop_column('arm')
    with op.batch_alter_table('briefs', schema=None) as batch_op:
        batch_op.drop_column('canary_fraction')
        batch_op.drop_column('canary_version_id')
        batch_op.drop_column('model_version_id')
    op.drop_index(op.f('ix_alias_moves_registry_name'), table_name='alias_moves')
    op.drop_table('alias_moves')
    op.drop_index(op.f('ix_ab_votes_pair_id'), table_name='ab_votes')
    op.drop_table('ab_votes')
    op.drop_index(op.f('ix_ab_pairs_evaluation_id'), table_name='ab_pairs')
    op.drop_table('ab_pairs')
    op.drop_index(op.f('ix_rollout_evaluations_registry_name'), table_name='rollout_evaluations')
    op.drop_table('rollout_evaluations')
