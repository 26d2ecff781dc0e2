"""generation engine: memory policy, dtype and batch of each job

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 10:30:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('generation_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('memory_policy', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('dtype', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('batch', sa.JSON(), nullable=False, server_default='{}'))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('generation_jobs', schema=None) as batch_op:
        batch_op.drop_column('batch')
        batch_op.drop_column('dtype')
        batch_op.drop_column('memory_policy')
