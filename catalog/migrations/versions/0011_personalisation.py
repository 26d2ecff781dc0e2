"""personalisation: training assets with their rights, immutable dataset versions, brand LoRA versions, recall

``training_assets`` (by sha256, with owner, licence/consent, expiry, allowed use, status), ``training_datasets``
(name, version: immutable) and their members with captions, ``lora_versions`` (registry version → dataset
version, base model version, weights digest); ``briefs.lora_version_id``: the registry LoRA frozen on a brief.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 05:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0011'
down_revision: Union[str, Sequence[str], None] = '0010'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'training_assets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('filename', sa.String(length=512), nullable=False),
        sa.Column('uri', sa.String(length=1024), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('frames', sa.Integer(), nullable=False),
        sa.Column('owner', sa.String(length=256), nullable=False),
        sa.Column('licence', sa.String(length=256), nullable=False),
        sa.Column('expires', sa.String(length=10), nullable=False),
        sa.Column('allowed_use', sa.String(length=256), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('recalled_reason', sa.Text(), nullable=True),
        sa.Column('recalled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_training_assets')),
        sa.UniqueConstraint('sha256', name=op.f('uq_training_assets_sha256')),
    )
    op.create_index(op.f('ix_training_assets_status'), 'training_assets', ['status'])
    op.create_table(
        'training_datasets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('manifest', sa.String(length=1024), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('recalled_reason', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_training_datasets')),
        sa.UniqueConstraint('name', 'version', name=op.f('uq_training_datasets_name_version')),
    )
    op.create_index(op.f('ix_training_datasets_name'), 'training_datasets', ['name'])
    op.create_table(
        'training_dataset_assets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('dataset_id', sa.Integer(), nullable=False),
        sa.Column('asset_id', sa.Integer(), nullable=False),
        sa.Column('caption', sa.Text(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['dataset_id'], ['training_datasets.id'],
                                name=op.f('fk_training_dataset_assets_dataset_id_training_datasets')),
        sa.ForeignKeyConstraint(['asset_id'], ['training_assets.id'],
                                name=op.f('fk_training_dataset_assets_asset_id_training_assets')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_training_dataset_assets')),
        sa.UniqueConstraint('dataset_id', 'asset_id', name=op.f('uq_training_dataset_assets_dataset_id_asset_id')),
    )
    op.create_index(op.f('ix_training_dataset_assets_dataset_id'), 'training_dataset_assets', ['dataset_id'])
    op.create_index(op.f('ix_training_dataset_assets_asset_id'), 'training_dataset_assets', ['asset_id'])
    op.create_table(
        'lora_versions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('registry_name', sa.String(length=64), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('dataset_id', sa.Integer(), nullable=False),
        sa.Column('base_registry_name', sa.String(length=64), nullable=False),
        sa.Column('base_version', sa.Integer(), nullable=False),
        sa.Column('base_weights_sha256', sa.String(length=64), nullable=False),
        sa.Column('path', sa.String(length=1024), nullable=False),
        sa.Column('weights_sha256', sa.String(length=64), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('mlflow_run_id', sa.String(length=64), nullable=True),
        sa.Column('stand_in', sa.Boolean(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('recalled_reason', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['dataset_id'], ['training_datasets.id'],
                                name=op.f('fk_lora_versions_dataset_id_training_datasets')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_lora_versions')),
        sa.UniqueConstraint('registry_name', 'version', name=op.f('uq_lora_versions_registry_name_version')),
    )
    op.create_index(op.f('ix_lora_versions_dataset_id'), 'lora_versions', ['dataset_id'])
    with op.batch_alter_table('briefs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lora_version_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('briefs', schema=None) as batch_op:
        batch_op.drop_column('lora_version_id')
    op.drop_table('lora_versions')
    op.drop_table('training_dataset_assets')
    op.drop_table('training_datasets')
    op.drop_table('training_assets')
