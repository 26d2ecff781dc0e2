"""qc outcomes and validations: per-check outcome, review findings (review_tasks.qc_outcome comes from 0002), Great Expectations results per campaign

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 10:19:39.255105

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('qc_validations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('brand', sa.String(length=64), nullable=False),
    sa.Column('profile_sha256', sa.String(length=64), nullable=False),
    sa.Column('suite', sa.String(length=128), nullable=False),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.Column('evaluated', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('results', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_qc_validations_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_qc_validations_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_qc_validations'))
    )
    with op.batch_alter_table('qc_validations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_qc_validations_campaign_id'), ['campaign_id'], unique=False)

    with op.batch_alter_table('qc_results', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.String(length=16), nullable=True))

    with op.batch_alter_table('review_tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('findings', sa.JSON(), nullable=True))



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('review_tasks', schema=None) as batch_op:
        batch_op.drop_column('findings')

    with op.batch_alter_table('qc_results', schema=None) as batch_op:
        batch_op.drop_column('outcome')

    with op.batch_alter_table('qc_validations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_qc_validations_campaign_id'))

    op.drop_table('qc_validations')
