"""speed presets: each generation job records the speed preset it ran with

``generation_jobs.speed``: plain, fast or turbo (governance/speed.py), as resolved for the job's batch; what
applied and what fell back is in ``generation_jobs.batch['speed']``. Jobs made before this revision keep NULL:
they ran as plain.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 04:50:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0014'
down_revision: Union[str, Sequence[str], None] = '0013'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('generation_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('speed', sa.String(length=16), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('generation_jobs', schema=None) as batch_op:
        batch_op.drop_column('speed')
