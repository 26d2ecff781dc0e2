"""run processes: a run records the process running it (host, pid, start time)

so that a later run on the same host can tell a run whose process was killed from one still going, and mark it
``crashed`` (catalog.runs.mark_crashed). Rows written before this revision keep NULLs and are left alone.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 22:40:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('host', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('pid', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('pid_started_at', sa.Float(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('pid_started_at')
        batch_op.drop_column('pid')
        batch_op.drop_column('host')
